"""The client-server routes of delivery (``spec/client-server.md`` sections 9 and 10).

``GET /sync`` (long-poll), ``GET /sync/ws`` (WebSocket push) and
``POST /sendToDevice``. The WebSocket handler runs two tasks per connection:
one reads ``{ack: TOKEN}`` frames and acknowledges, the other pushes a sync
object whenever something arrives after its cursor. The cursor starts at the
``since`` query parameter and advances with what was sent; the inbox is
cleared only by acknowledgements, so a reconnect from the last acknowledged
token gets every unacknowledged item again. A client that disconnects during a
push is not an error (a debug line, ``sync_ws_client_gone``). Open sockets are
closed (1001) at shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref

import structlog
from aiohttp import WSMsgType, web

from protocol.api import CLIENT_PREFIX
from protocol.errors import ApiError
from protocol.room_errors import InboxFull
from protocol.rooms_api import (
    DEFAULT_SYNC_LIMIT,
    MAX_SYNC_LIMIT,
    MAX_SYNC_TIMEOUT_MS,
    SendToDeviceRequest,
    SyncAck,
    parse_since,
    parse_uint_param,
)
from protocol.schema import decode_body, pack_body
from server.api import authenticate, read_request, respond
from server.appkeys import CONFIG, DELIVERY, WAKEUPS
from server.services.sessions import Session

from .fairness import MIN_PUSH
from .sync import Delivery
from .wakeups import device_key

__all__ = ["add_routes", "close_websockets", "WS_HEARTBEAT", "WS_IDLE"]

log = structlog.get_logger("confide.delivery")

#: Seconds between WebSocket pings.
WS_HEARTBEAT = 25.0
#: Seconds a pushing task waits before looking again without a wakeup (a safety net only).
WS_IDLE = 30.0
_MAX_FRAME = 4096
_SOCKETS: web.AppKey[weakref.WeakSet[web.WebSocketResponse]] = web.AppKey(
    "confide.delivery.sockets", weakref.WeakSet)


def _params(request: web.Request) -> tuple[int, int, int]:
    q = request.query
    since = parse_since(q["since"]) if q.get("since") else 0
    timeout = parse_uint_param(q.get("timeout"), "timeout", default=0, max_value=MAX_SYNC_TIMEOUT_MS)
    limit = parse_uint_param(q.get("limit"), "limit", default=DEFAULT_SYNC_LIMIT,
                             max_value=MAX_SYNC_LIMIT, min_value=1)
    return since, timeout, limit


async def sync(request: web.Request) -> web.Response:
    since, timeout, limit = _params(request)
    session = await authenticate(request)
    return respond(await request.app[DELIVERY].sync(session, since, timeout, limit))


async def send_to_device(request: web.Request) -> web.Response:
    """Authenticated and admitted by the device's push budget before the body is read
    (finding 10: :mod:`server.delivery.fairness`); an ``inbox_full`` refusal is tarpitted."""
    session = await authenticate(request)
    delivery = request.app[DELIVERY]
    key = device_key(str(session.user_id), str(session.device_id))
    await delivery.share.admit_push(key)
    req = await read_request(request, SendToDeviceRequest, request.app[CONFIG].limits.max_body)
    delivery.share.pushed.spend(key, max(MIN_PUSH, sum(len(m.payload) for m in req.messages)))
    try:
        return respond(await delivery.send_to_device(session, req))
    except InboxFull:
        await delivery.share.refused()
        raise


async def sync_ws(request: web.Request) -> web.WebSocketResponse:
    since, _, limit = _params(request)
    session = await authenticate(request)
    delivery = request.app[DELIVERY]
    ws = web.WebSocketResponse(heartbeat=WS_HEARTBEAT, max_msg_size=_MAX_FRAME)
    await ws.prepare(request)
    request.app[_SOCKETS].add(ws)
    user, device = str(session.user_id), str(session.device_id)
    cursor = await delivery.ack(user, device, since)
    reader = asyncio.create_task(_read_acks(ws, delivery, session))
    try:
        await _push(ws, request.app, delivery, session, cursor, limit, reader)
    except ConnectionError:  # the client went away during a push: nothing is lost (not acked)
        log.debug("sync_ws_client_gone")
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        await ws.close()
    return ws


async def _push(ws: web.WebSocketResponse, app: web.Application, delivery: Delivery,
                session: Session, cursor: int, limit: int, reader: asyncio.Task) -> None:
    user, device = str(session.user_id), str(session.device_id)
    wakeups = app[WAKEUPS]
    while not ws.closed and not reader.done() and not wakeups.closed:
        woken = wakeups.watch(device_key(user, device))
        response = await delivery.collect(user, device, cursor, limit)
        if response.events or response.inbox:
            await ws.send_bytes(pack_body(response))
            cursor = parse_since(response.next)
            continue
        waiter = asyncio.ensure_future(wakeups.wait(woken, WS_IDLE))
        try:
            await asyncio.wait({waiter, reader}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiter


async def _read_acks(ws: web.WebSocketResponse, delivery: Delivery, session: Session) -> None:
    """Acknowledge each ``{ack: TOKEN}`` frame; a malformed frame closes the socket (4400)."""
    user, device = str(session.user_id), str(session.device_id)
    async for msg in ws:
        if msg.type != WSMsgType.BINARY:
            await ws.close(code=4400, message=b"frames are binary msgpack {ack: TOKEN}")
            return
        try:
            ack = decode_body(msg.data, SyncAck)
            await delivery.ack(user, device, parse_since(ack.ack))
        except ApiError as exc:
            await ws.close(code=4400, message=exc.code.encode())
            return


async def close_websockets(app: web.Application) -> None:
    """``on_shutdown``: wake every waiting sync and close every open sync socket (going away)."""
    app[WAKEUPS].close()
    for ws in list(app[_SOCKETS]):
        with contextlib.suppress(Exception):
            await ws.close(code=1001, message=b"server shutdown")


def add_routes(app: web.Application, prefix: str = CLIENT_PREFIX) -> None:
    app[_SOCKETS] = weakref.WeakSet()
    app.on_shutdown.append(close_websockets)
    app.router.add_get(f"{prefix}/sync", sync)
    app.router.add_get(f"{prefix}/sync/ws", sync_ws)
    app.router.add_post(f"{prefix}/sendToDevice", send_to_device)
