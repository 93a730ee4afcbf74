"""Delivery: the per-device sync stream, acknowledgements and device-to-device messages.

One stream position (``stream_position``) orders everything a device can
receive: room events (``room_events.stream_pos``) and inbox items
(``inbox.stream_pos``). A sync token is a position. :meth:`Delivery.collect`
returns, after a token, the events of rooms the device was a member of at that
event (its ``room_members`` intervals; the ``create`` event is not pushed) and
the device's inbox items, merged in stream order, with the token to pass next.
Positions are handed out inside write transactions, which the database
serializes with its reads, so a read never sees a position without every
position before it, and ``next`` never skips anything.

Acknowledgement: passing a token (``since`` of a sync, or an ``ack`` frame on
the WebSocket) deletes the device's inbox items up to it. Room events stay (in
history). A token beyond the stream's end counts as its end.

Waiting: :meth:`Delivery.sync` long-polls on :class:`~server.delivery.wakeups.Wakeups`:
it watches the device before reading, so a write committed after the read wakes it.
Its deadline is on the injected clock: a wake-up after the deadline answers, and so
does the wait's own timer (the time left on the clock, at most the timeout).

Errors: :class:`~protocol.room_errors.InvalidSinceToken`, and for
:meth:`Delivery.send_to_device` :class:`~protocol.errors.NotFound` (unknown
target device). Targets on other servers go to :class:`RemoteDevices` (room federation).
"""

from __future__ import annotations

from typing import Protocol

import aiosqlite

from protocol.api import Empty
from protocol.errors import NotFound
from protocol.ids import DeviceId, RoomId, UserId
from protocol.rooms_api import (
    Envelope,
    InboxItem,
    SendToDeviceRequest,
    SyncResponse,
    ToDeviceMessage,
    format_since,
)
from protocol.schema import pack_body
from server.rooms.storage import (
    current_stream_position,
    events_for_device,
    find_txn,
    next_stream_position,
    store_txn,
)
from server.services.clock import Clock, now_ms
from server.services.sessions import Session
from server.storage import Database, devices

from . import inbox
from .wakeups import Wakeups, device_key

__all__ = ["Delivery", "RemoteDevices"]

class RemoteDevices(Protocol):
    """Other servers' devices (room federation): ``await enqueue_to_device(tx, sender,
    messages)`` queues payloads for them in the caller's transaction; ``wake()`` after it."""

    async def enqueue_to_device(self, tx: aiosqlite.Connection, sender: tuple[str, str],
                                messages: list[ToDeviceMessage]) -> None: ...

    def wake(self) -> None: ...


class Delivery:
    def __init__(self, db: Database, wakeups: Wakeups, remote_devices: RemoteDevices,
                 server_name: str, clock: Clock) -> None:
        self.db = db
        self.wakeups = wakeups
        self.remote_devices = remote_devices
        self.server_name = server_name
        self.clock = clock

    # -- the stream ------------------------------------------------------------------------

    async def ack(self, user_id: str, device_id: str, position: int) -> int:
        """Acknowledge (delete) the device's inbox items up to ``position``; returns the
        position clamped to the stream's end."""
        async with self.db.read() as conn:
            position = min(position, await current_stream_position(conn))
            work = await inbox.has_acknowledged(conn, user_id, device_id, position)
        if work:
            async with self.db.transaction() as tx:
                await inbox.ack(tx, user_id, device_id, position)
        return position

    async def collect(self, user_id: str, device_id: str, since: int, limit: int) -> SyncResponse:
        """What the device has after ``since``, at most ``limit`` items in all."""
        async with self.db.read() as conn:
            end = await current_stream_position(conn)
            events = await events_for_device(conn, user_id, device_id, since, limit)
            items = await inbox.pending(conn, user_id, device_id, since, limit)
        merged: list[tuple[int, object]] = sorted(
            [(pos, e) for pos, e in events] + [(i.position, i) for i in items], key=lambda t: t[0])
        truncated = len(merged) > limit or len(events) == limit or len(items) == limit
        merged = merged[:limit]
        nxt = merged[-1][0] if truncated and merged else max(end, since)
        out_events = tuple(Envelope(e) for _, e in merged if not isinstance(e, inbox.StoredItem))
        out_items = tuple(_inbox_item(i) for _, i in merged if isinstance(i, inbox.StoredItem))
        return SyncResponse(format_since(nxt), out_events, out_items)

    async def sync(self, session: Session, since: int, timeout_ms: int, limit: int) -> SyncResponse:
        """Acknowledge ``since``, then answer at once if anything is there, else wait up to
        ``timeout_ms`` for something to arrive."""
        user, device = str(session.user_id), str(session.device_id)
        since = await self.ack(user, device, since)
        timeout = timeout_ms / 1000
        deadline = self.clock() + timeout
        expired = False
        while True:
            woken = self.wakeups.watch(device_key(user, device))
            response = await self.collect(user, device, since, limit)
            remaining = min(deadline - self.clock(), timeout)  # a clock set back waits no longer
            if response.events or response.inbox or expired or remaining <= 0 \
                    or self.wakeups.closed:
                return response
            expired = not await self.wakeups.wait(woken, remaining)

    # -- device-to-device ----------------------------------------------------------------------

    async def send_to_device(self, session: Session, req: SendToDeviceRequest) -> Empty:
        """Queue each payload in its target device's inbox, once per transaction id."""
        user, device = str(session.user_id), str(session.device_id)
        remote = [m for m in req.messages if m.user_id.server != self.server_name]
        now = now_ms(self.clock)
        async with self.db.transaction() as tx:  # serialized: one answer per txn_id
            if await find_txn(tx, user, device, "to_device", req.txn_id) is not None:
                return Empty()
            for m in req.messages:
                if m.user_id.server != self.server_name:
                    continue
                if await devices.get(tx, str(m.user_id), str(m.device_id)) is None:
                    raise NotFound(f"no device {m.device_id} of {m.user_id}")
                await inbox.push(tx, await next_stream_position(tx), str(m.user_id),
                                 str(m.device_id), "to_device", m.payload, sender=(user, device),
                                 room_id=None, now_ms=now)
            if remote:
                await self.remote_devices.enqueue_to_device(tx, (user, device), remote)
            await store_txn(tx, user, device, "to_device", req.txn_id, pack_body(Empty()), now)
        if remote:
            self.remote_devices.wake()
        self.wakeups.notify({device_key(str(m.user_id), str(m.device_id)) for m in req.messages})
        return Empty()


def _inbox_item(item: inbox.StoredItem) -> InboxItem:
    return InboxItem(
        item.position, item.kind, item.payload,
        UserId.parse(item.sender_user) if item.sender_user else None,
        DeviceId(item.sender_device) if item.sender_device else None,
        RoomId.parse(item.room_id) if item.room_id else None)
