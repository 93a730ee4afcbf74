"""Room federation's endpoints (``spec/server-server.md`` sections 11-14), all signed.

- ``POST /_confide/federation/v1/rooms/{room_id}/send``: a follower forwards a submission;
- ``GET  /_confide/federation/v1/rooms/{room_id}/events?from=SEQ&limit=N``: signed history
  for a follower's catch-up;
- ``POST /_confide/federation/v1/rooms/{room_id}/group_info``: the room's current GroupInfo
  for a user of the origin with a member device (a further device's external join);
- ``POST /_confide/federation/v1/rooms/{room_id}/claim``: a follower's claim for a room,
  run by the hub (claimed here or at the user's home server);
- ``POST /_confide/federation/v1/keys/claim``: KeyPackages of a local user (a ``room_id``
  in the body only from that room's hub, else ``not_hub``);
- ``GET  /_confide/federation/v1/users/{user_id}/devices``: a local user's device keys;
- ``GET  /_confide/client/v1/federation/{server}/_confide/log/v1/{path}`` (client-server, a
  signed-in local user's token; 401 without): a peer's public transparency-log resources
  relayed as they are, so a client checks a remote device's registration against the
  remote server's log. Only the public resources: a peer's openings are not relayed;
- the witness endpoints of :mod:`federation.witnessing`.

Handlers verify the request (:func:`~federation.routes.authenticate_peer`), decode the
body strictly and call :class:`~federation.rooms.RoomFederation`,
:class:`~federation.forwarded.ForwardedSends` or the key directory.
"""

from __future__ import annotations

from aiohttp import web

from protocol.api import CLIENT_PREFIX, MSGPACK
from protocol.errors import MalformedBody, NotFound
from protocol.federation import (
    FEDERATION_PREFIX,
    PeerDenied,
    PeerRefused,
    PeerUnreachable,
    parse_target,
)
from protocol.federation_rooms import (
    FederatedClaim,
    FederatedGroupInfo,
    FederatedRoomClaim,
    FederatedSend,
    NotHub,
    NotYourUser,
)
from protocol.ids import RoomId, UserId, parse_server_name
from protocol.rooms_api import MAX_HISTORY_LIMIT, parse_uint_param
from protocol.schema import decode_body, pack_body, unpack_body
from protocol.server_name import ServerName
from server.api import respond
from server.appkeys import CONFIG, DEVICES, KEY_DIRECTORY, SESSIONS
from server.services.key_directory import peer_claimer
from server.translog import LOG_PREFIX

from .appkeys import (
    FEDERATION_CLIENT,
    FEDERATION_FORWARDED,
    FEDERATION_ROOMS,
    FEDERATION_WITNESSING,
)
from .routes import authenticate_peer
from .witnessing import WITNESS_PATH

__all__ = ["add_room_routes"]

_MAX_U63 = (1 << 63) - 1
_SEND_BODY = 2 * 1024 * 1024


async def forwarded_send(request: web.Request) -> web.Response:
    room_id = RoomId.parse(request.match_info["room_id"])
    peer = await authenticate_peer(request, _SEND_BODY)
    req = decode_body(peer.body, FederatedSend)
    return respond(await request.app[FEDERATION_FORWARDED].submit(peer.origin, room_id, req))


async def history(request: web.Request) -> web.Response:
    room_id = RoomId.parse(request.match_info["room_id"])
    from_seq = parse_uint_param(request.query.get("from"), "from", default=0, max_value=_MAX_U63)
    limit = parse_uint_param(request.query.get("limit"), "limit", default=MAX_HISTORY_LIMIT,
                             max_value=MAX_HISTORY_LIMIT, min_value=1)
    peer = await authenticate_peer(request)
    return respond(await request.app[FEDERATION_ROOMS].history_for(peer.origin, room_id, from_seq, limit))


async def group_info(request: web.Request) -> web.Response:
    room_id = RoomId.parse(request.match_info["room_id"])
    peer = await authenticate_peer(request, 4096)
    req = decode_body(peer.body, FederatedGroupInfo)
    return respond(await request.app[FEDERATION_ROOMS].group_info_for(peer.origin, room_id, req))


def _local(request: web.Request, user: UserId) -> None:
    if user.server != request.app[CONFIG].server_name:
        raise NotYourUser("that user is not on this server")


async def claim(request: web.Request) -> web.Response:
    peer = await authenticate_peer(request, 4096)
    req = decode_body(peer.body, FederatedClaim)
    _local(request, req.user_id)
    if req.room_id is not None and req.room_id.server != peer.origin:
        raise NotHub("only the room's hub claims naming the room")
    return respond(await request.app[KEY_DIRECTORY].claim(req.user_id, peer_claimer(peer.origin)))


async def room_claim(request: web.Request) -> web.Response:
    room_id = RoomId.parse(request.match_info["room_id"])
    peer = await authenticate_peer(request, 4096)
    req = decode_body(peer.body, FederatedRoomClaim)
    return respond(await request.app[FEDERATION_ROOMS].claim_for_room(peer.origin, room_id, req))


async def user_devices(request: web.Request) -> web.Response:
    user = UserId.parse(request.match_info["user_id"])
    await authenticate_peer(request, 0)
    _local(request, user)
    return respond(await request.app[DEVICES].user_devices(user))


async def peer_log(request: web.Request) -> web.Response:
    """A configured peer's public log resource. ``{server}`` is parsed at this edge
    (``invalid_server_name``); a server that is not a configured peer and one that cannot
    be reached get the same answer (``peer_unreachable``), and nothing is fetched for the
    first. Only a signed-in local user may use it (``unauthorized`` otherwise, before anything
    is parsed or fetched)."""
    await request.app[SESSIONS].authenticate(request.headers.get("Authorization"))
    server = str(ServerName.parse(request.match_info["server"]))
    target = f"{LOG_PREFIX}/{request.match_info['path']}"
    if request.query_string:
        target += "?" + request.query_string
    try:
        parse_target(target)
    except MalformedBody:
        raise NotFound("no such log resource") from None
    try:
        body = await request.app[FEDERATION_CLIENT].get_public(server, target)
    except PeerRefused:
        raise NotFound("the peer has no such log resource") from None
    except PeerDenied:
        raise PeerUnreachable(f"{server} cannot be reached") from None
    return web.Response(body=body, content_type="text/plain", charset="utf-8")


async def witness_add_checkpoint(request: web.Request) -> web.Response:
    peer = await authenticate_peer(request, 80 * 1024)
    body = unpack_body(peer.body)
    if type(body) is not dict or set(body) != {"request"} or type(body["request"]) is not bytes:
        raise MalformedBody("expected {request: bin}")
    lines = await request.app[FEDERATION_WITNESSING].add_checkpoint(peer.origin, body["request"])
    return web.Response(body=pack_body({"cosignatures": lines}), content_type=MSGPACK)


async def witness_vkey(request: web.Request) -> web.Response:
    w = request.app[FEDERATION_WITNESSING]
    return web.Response(body=pack_body({"vkey": w.signer.verifier.vkey()}), content_type=MSGPACK)


async def witness_alerts(request: web.Request) -> web.Response:
    w = request.app[FEDERATION_WITNESSING]
    return web.Response(body=pack_body({"alerts": w.alerts}), content_type=MSGPACK)


async def witness_checkpoint(request: web.Request) -> web.Response:
    origin = parse_server_name(request.match_info["origin"])
    note = await request.app[FEDERATION_WITNESSING].cosigned(origin)
    if note is None:
        raise NotFound("no cosigned checkpoint of that log")
    return web.Response(body=note, content_type="text/plain", charset="utf-8")


def add_room_routes(router: web.UrlDispatcher) -> None:
    router.add_post(FEDERATION_PREFIX + "/rooms/{room_id}/send", forwarded_send)
    router.add_get(FEDERATION_PREFIX + "/rooms/{room_id}/events", history)
    router.add_post(FEDERATION_PREFIX + "/rooms/{room_id}/group_info", group_info)
    router.add_post(FEDERATION_PREFIX + "/rooms/{room_id}/claim", room_claim)
    router.add_post(FEDERATION_PREFIX + "/keys/claim", claim)
    router.add_get(FEDERATION_PREFIX + "/users/{user_id}/devices", user_devices)
    router.add_get(CLIENT_PREFIX + "/federation/{server}" + LOG_PREFIX + "/{path:.+}", peer_log)
    router.add_post(WITNESS_PATH + "/add-checkpoint", witness_add_checkpoint)
    router.add_get(WITNESS_PATH + "/vkey", witness_vkey)
    router.add_get(WITNESS_PATH + "/alerts", witness_alerts)
    router.add_get(WITNESS_PATH + "/checkpoint/{origin}", witness_checkpoint)


