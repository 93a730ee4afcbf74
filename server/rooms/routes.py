"""The client-server routes of rooms (``spec/client-server.md`` section 8).

Thin handlers: decode the body, authenticate, call the :class:`~server.rooms.hub.Hub`
(hub keys: :data:`~server.appkeys.REMOTE_ROOMS`).
:func:`add_routes` mounts them under :data:`protocol.api.CLIENT_PREFIX`.
"""

from __future__ import annotations

from aiohttp import web

from protocol.api import CLIENT_PREFIX
from protocol.ids import RoomId
from protocol.rooms_api import (
    DEFAULT_HISTORY_LIMIT,
    MAX_HISTORY_LIMIT,
    CreateRoomRequest,
    SendRequest,
    parse_uint_param,
)
from protocol.server_name import ServerName
from server.api import authenticate, read_request, respond
from server.appkeys import CONFIG, HUB, REMOTE_ROOMS

__all__ = ["add_routes"]

_MAX_U63 = (1 << 63) - 1


def _max_body(request: web.Request) -> int:
    return request.app[CONFIG].limits.max_body


def _room(request: web.Request) -> RoomId:
    return RoomId.parse(request.match_info["room_id"])


async def create_room(request: web.Request) -> web.Response:
    req = await read_request(request, CreateRoomRequest, _max_body(request))
    session = await authenticate(request)
    return respond(await request.app[HUB].create_room(session, req))


async def send(request: web.Request) -> web.Response:
    req = await read_request(request, SendRequest, _max_body(request))
    room_id = _room(request)
    session = await authenticate(request)
    return respond(await request.app[HUB].submit(session, room_id, req))


async def list_rooms(request: web.Request) -> web.Response:
    session = await authenticate(request)
    return respond(await request.app[HUB].rooms(session))


async def history(request: web.Request) -> web.Response:
    room_id = _room(request)
    q = request.query
    from_seq = parse_uint_param(q.get("from"), "from", default=0, max_value=_MAX_U63)
    limit = parse_uint_param(q.get("limit"), "limit", default=DEFAULT_HISTORY_LIMIT,
                             max_value=MAX_HISTORY_LIMIT, min_value=1)
    session = await authenticate(request)
    return respond(await request.app[HUB].history(session, room_id, from_seq, limit))


async def group_info(request: web.Request) -> web.Response:
    room_id = _room(request)
    session = await authenticate(request)
    return respond(await request.app[HUB].group_info(session, room_id))


async def hub_key(request: web.Request) -> web.Response:
    """This hub's keys (no token), or with ``?server=NAME`` another hub's: ``NAME`` parsed at
    this edge (``invalid_server_name``), then a token (another hub's keys may need a fetch,
    which no anonymous request may cause), then the keys as room federation has them or
    fetches them from a configured peer (else ``peer_unreachable``)."""
    own = request.app[CONFIG].server_name
    raw = request.query.get("server")
    if raw is None or raw == own:
        return respond(await request.app[REMOTE_ROOMS].hub_keys(own))
    server = ServerName.parse(raw)
    await authenticate(request)
    return respond(await request.app[REMOTE_ROOMS].hub_keys(str(server)))


def add_routes(router: web.UrlDispatcher, prefix: str = CLIENT_PREFIX) -> None:
    router.add_post(f"{prefix}/rooms", create_room)
    router.add_get(f"{prefix}/rooms", list_rooms)
    router.add_post(f"{prefix}/rooms/{{room_id}}/send", send)
    router.add_get(f"{prefix}/rooms/{{room_id}}/events", history)
    router.add_get(f"{prefix}/rooms/{{room_id}}/group_info", group_info)
    router.add_get(f"{prefix}/hub_key", hub_key)
