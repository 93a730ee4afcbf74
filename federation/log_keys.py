"""Peers' log keys, attested to this server's clients (``spec/security.md``, finding 3).

``GET /_confide/client/v1/federation/{server}/log_key`` (auth): a peer log key statement
(:func:`protocol.trust.peer_log_key_text`) signed by this server's log key, as msgpack
``{"note": bin}``. The key is the one ``[log.peer_log_keys]`` lists for ``server``, else
the one this server pinned for it (fetched from the peer once, then kept for life: the
key its witness checks that peer's checkpoints with). A client trusts this server's log
key through its invite's anchor, so it accepts a relayed peer log only under a key that
its own server signed for, never under one that merely came through the relay.

``{server}`` is parsed at this edge (``invalid_server_name``); this server's own name is
``not_found``; a server that is not an allowed peer and one that cannot be reached get
the same ``peer_unreachable``.
"""

from __future__ import annotations

from aiohttp import web

from crypto.note import sign_note
from protocol.api import CLIENT_PREFIX, MSGPACK
from protocol.errors import NotFound
from protocol.federation import PeerDenied, PeerRefused, PeerUnreachable
from protocol.schema import pack_body
from protocol.server_name import ServerName
from protocol.trust import peer_log_key_text
from server.api.routes import authenticate
from server.appkeys import CONFIG, TRANSPARENCY_LOG

from .appkeys import FEDERATION_WITNESSING

__all__ = ["LOG_KEY_PATH", "add_log_key_routes"]

LOG_KEY_PATH = CLIENT_PREFIX + "/federation/{server}/log_key"


async def peer_log_key(request: web.Request) -> web.Response:
    await authenticate(request)
    server = str(ServerName.parse(request.match_info["server"]))
    config = request.app[CONFIG]
    if server == config.server_name:
        raise NotFound("this server's own log key is in the trust document")
    key = dict(config.log.peer_log_keys).get(server)
    if key is None:
        try:
            key = await request.app[FEDERATION_WITNESSING].peer_log_key(server)
        except (PeerDenied, PeerRefused):
            raise PeerUnreachable(f"{server} cannot be reached") from None
    tlog = request.app[TRANSPARENCY_LOG]
    note = sign_note(peer_log_key_text(config.server_name, server, key), [tlog.signer])
    return web.Response(body=pack_body({"note": note}), content_type=MSGPACK)


def add_log_key_routes(router: web.UrlDispatcher) -> None:
    router.add_get(LOG_KEY_PATH, peer_log_key)
