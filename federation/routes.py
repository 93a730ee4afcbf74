"""The federation HTTP endpoints and the helper that authenticates a peer's request.

- ``GET /_confide/key/v1/server``: this server's key document (unsigned request);
- ``GET /.well-known/confide/server``: ``{"base_url"}`` in JSON, when
  ``federation.public_base_url`` is set (404 otherwise);
- ``GET /_confide/federation/v1/ping`` (signed): who we are, who you are;
- ``PUT /_confide/federation/v1/send/{txn_id}`` (signed): a transaction.

Other federation endpoints (room federation) use :func:`authenticate_peer`
and mount their routes under :data:`~protocol.federation.FEDERATION_PREFIX`.
"""

from __future__ import annotations

import json

from aiohttp import web

from protocol.api import MSGPACK
from protocol.errors import BodyTooLarge, NotFound
from protocol.federation import (
    FEDERATION_PREFIX,
    KEY_PATH,
    MAX_TXN_BODY,
    SEND_PATH,
    WELL_KNOWN_PATH,
    Transaction,
    TransactionTooLarge,
    parse_txn_id,
)
from protocol.schema import pack_body
from server import appkeys as server_appkeys
from server.api import read_body, respond

from .appkeys import FEDERATION_KEYRING, FEDERATION_RECEIVER, FEDERATION_VERIFIER
from .verifier import VerifiedRequest

__all__ = ["add_routes", "authenticate_peer", "read_federation_body"]


async def read_federation_body(request: web.Request, max_body: int,
                               too_large: type[Exception] = BodyTooLarge) -> bytes:
    """The whole body (``b""`` without one); otherwise as :func:`server.api.read_body`."""
    if not request.body_exists:
        return b""
    return await read_body(request, max_body, too_large)


async def authenticate_peer(request: web.Request, max_body: int = MAX_TXN_BODY,
                            too_large: type[Exception] = BodyTooLarge) -> VerifiedRequest:
    """Read the body and verify the request's signature (``spec/server-server.md`` 3.3).

    Returns the verified origin and body; raises the body errors of
    :func:`read_federation_body` and the verification errors of
    :class:`~federation.verifier.RequestVerifier`.
    """
    body = await read_federation_body(request, max_body, too_large)
    return await request.app[FEDERATION_VERIFIER].verify(
        request.method, request.raw_path, request.headers.get("Authorization"), body)


async def server_keys(request: web.Request) -> web.Response:
    keyring = request.app[FEDERATION_KEYRING]
    await keyring.refresh()
    return respond(keyring.document())


async def well_known(request: web.Request) -> web.Response:
    url = request.app[server_appkeys.CONFIG].federation.public_base_url
    if not url:
        raise NotFound("no well-known federation document")
    return web.Response(body=json.dumps({"base_url": url}).encode(), content_type="application/json")


async def ping(request: web.Request) -> web.Response:
    peer = await authenticate_peer(request)
    me = request.app[server_appkeys.CONFIG].server_name
    return web.Response(body=pack_body({"server_name": me, "origin": peer.origin}), content_type=MSGPACK)


async def send_transaction(request: web.Request) -> web.Response:
    txn_id = parse_txn_id(request.match_info["txn_id"])
    peer = await authenticate_peer(request, MAX_TXN_BODY, TransactionTooLarge)
    txn = Transaction.decode(peer.body)
    return respond(await request.app[FEDERATION_RECEIVER].apply(peer.origin, txn_id, txn))


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get(KEY_PATH, server_keys)
    router.add_get(WELL_KNOWN_PATH, well_known)
    router.add_get(FEDERATION_PREFIX + "/ping", ping)
    router.add_put(SEND_PATH, send_transaction)
