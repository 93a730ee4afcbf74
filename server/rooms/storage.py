"""Rooms' tables: ``rooms``, ``room_events``, ``room_members``, ``txn_ids``, ``stream_position``.

Functions over a connection handed out by :meth:`server.storage.Database.transaction`
or :meth:`~server.storage.Database.read`. Every SQL statement over the room tables
is here (the hub, room federation and delivery call these functions). An event
and what it changes are written by ONE function, :func:`write_event`, from the
:class:`~protocol.room_rules.Applied` that the pure room core computed: the hub
(:mod:`server.rooms.hub`) and a follower (:mod:`federation.rooms`) write the same
rows for the same event. Nothing here raises HTTP errors
(:class:`~server.storage.errors.AlreadyExists` for a duplicate group id).

``txn_ids`` keeps SHA-256 of each client transaction id (:func:`protocol.txn_ids.txn_key`),
never the id itself.

``room_members`` keeps membership *intervals* per device: ``first_seq`` is the
first event the device may read (the one after the commit that added it),
``last_seq`` the last (the commit that removed it), NULL while it is a member.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass

import aiosqlite

from protocol.events import EventContent, EventKind, SignedEvent
from protocol.room_rules import Applied, RoomHead
from protocol.txn_ids import txn_key
from server.storage.errors import AlreadyExists

__all__ = [
    "StoredRoom",
    "write_event",
    "load_head",
    "event_id_at",
    "events_between",
    "events_for_device",
    "server_has_had_member",
    "rooms_with_local_members",
    "next_stream_position",
    "reserve_stream_positions",
    "current_stream_position",
    "insert_room",
    "get_room",
    "update_room",
    "insert_event",
    "insert_events",
    "events_in_range",
    "open_members",
    "add_members",
    "close_members",
    "device_rooms",
    "is_visible_member",
    "user_has_member_device",
    "added_by",
    "find_txn",
    "store_txn",
    "store_txns",
    "prune_txns",
    "event_from_row",
    "EVENT_COLUMNS",
]

EVENT_COLUMNS = ("stream_pos, room_id, seq, prev, epoch, kind, sender_user, sender_device, ts, "
                 "message, event_id, hub_signature, hub_key_id")


@dataclass(frozen=True)
class StoredRoom:
    room_id: str
    group_id: bytes
    cipher_suite: int
    epoch: int
    last_seq: int
    last_event_id: bytes
    view: bytes
    group_info: bytes
    group_info_epoch: int


async def write_event(tx: aiosqlite.Connection, *applied: Applied, now_ms: int) -> None:
    """Store events (in seq order, of one room) and what they change: the event rows, the
    room's head (its row, created by a ``create`` event), its view and latest GroupInfo when
    they changed, and the memberships (added devices read from ``seq + 1``, removed ones
    keep ``seq`` as their last event). Several application messages go in bulk. Raises
    :class:`AlreadyExists` when a ``create`` event's room or MLS group exists."""
    if not applied:
        return
    view = next((a.view for a in reversed(applied) if a.view is not None), None)
    group_info = next((a.group_info for a in reversed(applied) if a.group_info is not None), None)
    last = applied[-1].head
    create = applied[0].event.content.kind == EventKind.CREATE
    if create:
        a = applied[0]
        assert a.view is not None and a.group_info is not None
        await insert_room(tx, StoredRoom(last.room_id, last.group_id, last.cipher_suite, a.head.epoch,
                                         a.head.last_seq, a.head.last_event_id, a.view,
                                         *a.group_info), now_ms)
    first = await reserve_stream_positions(tx, len(applied))
    await insert_events(tx, [(first + i, a.event) for i, a in enumerate(applied)])
    if not create or len(applied) > 1:
        await update_room(tx, last.room_id, epoch=last.epoch, last_seq=last.last_seq,
                          last_event_id=last.last_event_id, view=view, group_info=group_info)
    for a in applied:
        seq = a.event.content.seq
        if a.removed:
            await close_members(tx, last.room_id, sorted(a.removed), seq)
        if a.added:
            await add_members(tx, last.room_id, sorted(a.added),
                              0 if a.event.content.kind == EventKind.CREATE else seq + 1)


async def load_head(conn: aiosqlite.Connection, room_id: str) -> tuple[RoomHead, StoredRoom] | None:
    """The room's head (with its current members) and its stored row, or None."""
    row = await get_room(conn, room_id)
    if row is None:
        return None
    members = await open_members(conn, room_id)
    return RoomHead(room_id, row.group_id, row.cipher_suite, row.epoch, row.last_seq,
                    row.last_event_id, frozenset(members)), row


async def event_id_at(conn: aiosqlite.Connection, room_id: str, seq: int) -> bytes | None:
    rows = await conn.execute_fetchall(
        "SELECT event_id FROM room_events WHERE room_id = ? AND seq = ?", (room_id, seq))
    return bytes(rows[0][0]) if rows else None  # type: ignore[index]


async def events_between(conn: aiosqlite.Connection, room_id: str, start: int,
                         end: int) -> list[SignedEvent]:
    """The room's events with ``start <= seq < end``, in seq order."""
    async with conn.execute(
        f"SELECT {EVENT_COLUMNS} FROM room_events WHERE room_id = ? AND seq >= ? AND seq < ? "
        "ORDER BY seq", (room_id, start, end)
    ) as cur:
        rows = await cur.fetchall()
    return [event_from_row(tuple(r))[1] for r in rows]


_EVENTS_FOR_DEVICE = (
    f"SELECT {', '.join('e.' + c for c in EVENT_COLUMNS.split(', '))} "
    "FROM room_members m JOIN room_events e ON e.room_id = m.room_id "
    "WHERE m.user_id = ? AND m.device_id = ? AND e.stream_pos > ? AND e.seq >= m.first_seq "
    "AND (m.last_seq IS NULL OR e.seq <= m.last_seq) AND e.kind != 'create' "
    "ORDER BY e.stream_pos LIMIT ?"
)


async def events_for_device(conn: aiosqlite.Connection, user_id: str, device_id: str, since: int,
                            limit: int) -> list[tuple[int, SignedEvent]]:
    """(stream position, event) after ``since`` that the device may read (its membership
    intervals; ``create`` events are not delivered), in stream order, at most ``limit``."""
    rows = await conn.execute_fetchall(_EVENTS_FOR_DEVICE, (user_id, device_id, since, limit))
    return [event_from_row(tuple(r)) for r in rows]


async def server_has_had_member(conn: aiosqlite.Connection, room_id: str, server: str) -> bool:
    """Whether a device of a user of ``server`` is or was a member of the room."""
    async with conn.execute(
        "SELECT 1 FROM room_members WHERE room_id = ? AND user_id LIKE ? LIMIT 1",
        (room_id, f"%:{server}")
    ) as cur:
        return await cur.fetchone() is not None


async def rooms_with_local_members(conn: aiosqlite.Connection, server: str) -> list[tuple[str, str]]:
    """(room_id, user_id) of current members whose user id ends in ``:server`` (a LIKE that
    narrows; the caller checks the exact server)."""
    rows = await conn.execute_fetchall(
        "SELECT DISTINCT room_id, user_id FROM room_members WHERE last_seq IS NULL AND "
        "user_id LIKE ?", (f"%:{server}",))
    return [(r[0], r[1]) for r in rows]


async def next_stream_position(tx: aiosqlite.Connection) -> int:
    """Hand out the next position of the delivery stream (events and inbox items)."""
    rows = await tx.execute_fetchall(
        "UPDATE stream_position SET pos = pos + 1 WHERE id = 1 RETURNING pos")
    return int(rows[0][0])  # type: ignore[index]


async def reserve_stream_positions(tx: aiosqlite.Connection, count: int) -> int:
    """Hand out ``count`` (>= 1) consecutive positions; returns the first of them."""
    rows = await tx.execute_fetchall(
        "UPDATE stream_position SET pos = pos + ? WHERE id = 1 RETURNING pos", (count,))
    return int(rows[0][0]) - count + 1  # type: ignore[index]


async def current_stream_position(conn: aiosqlite.Connection) -> int:
    rows = await conn.execute_fetchall("SELECT pos FROM stream_position WHERE id = 1")
    return int(rows[0][0]) if rows else 0


async def insert_room(tx: aiosqlite.Connection, room: StoredRoom, now_ms: int) -> None:
    """Raises :class:`AlreadyExists` when the room id or the MLS group id is taken."""
    try:
        await tx.execute(
            "INSERT INTO rooms (room_id, group_id, cipher_suite, epoch, last_seq, last_event_id, view, "
            "group_info, group_info_epoch, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (room.room_id, room.group_id, room.cipher_suite, room.epoch, room.last_seq,
             room.last_event_id, room.view, room.group_info, room.group_info_epoch, now_ms))
    except sqlite3.IntegrityError as exc:
        raise AlreadyExists("a room for this MLS group exists") from exc


async def get_room(conn: aiosqlite.Connection, room_id: str) -> StoredRoom | None:
    async with conn.execute(
        "SELECT room_id, group_id, cipher_suite, epoch, last_seq, last_event_id, view, group_info, "
        "group_info_epoch FROM rooms WHERE room_id = ?", (room_id,)
    ) as cur:
        row = await cur.fetchone()
    if row is None:
        return None
    return StoredRoom(row[0], bytes(row[1]), row[2], row[3], row[4], bytes(row[5]), bytes(row[6]),
                      bytes(row[7]), row[8])


async def update_room(tx: aiosqlite.Connection, room_id: str, *, epoch: int, last_seq: int,
                      last_event_id: bytes, view: bytes | None,
                      group_info: tuple[bytes, int] | None) -> None:
    """Advance the room to its new last event; ``view``/``group_info`` when they changed."""
    await tx.execute("UPDATE rooms SET epoch = ?, last_seq = ?, last_event_id = ? WHERE room_id = ?",
                     (epoch, last_seq, last_event_id, room_id))
    if view is not None:
        await tx.execute("UPDATE rooms SET view = ? WHERE room_id = ?", (view, room_id))
    if group_info is not None:
        await tx.execute("UPDATE rooms SET group_info = ?, group_info_epoch = ? WHERE room_id = ?",
                         (group_info[0], group_info[1], room_id))


async def insert_event(tx: aiosqlite.Connection, stream_pos: int, event: SignedEvent) -> None:
    c = event.content
    await tx.execute(
        f"INSERT INTO room_events ({EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (stream_pos, c.room_id, c.seq, c.prev, c.epoch, c.kind.value, c.sender_user, c.sender_device,
         c.ts, c.message, event.event_id, event.hub_signature, event.key_id))


async def insert_events(tx: aiosqlite.Connection, events: Iterable[tuple[int, SignedEvent]]) -> None:
    """Several ``(stream position, event)`` in one statement (one round trip)."""
    await tx.executemany(
        f"INSERT INTO room_events ({EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(pos, c.room_id, c.seq, c.prev, c.epoch, c.kind.value, c.sender_user, c.sender_device,
          c.ts, c.message, e.event_id, e.hub_signature, e.key_id)
         for pos, e in events for c in (e.content,)])


def event_from_row(row: tuple) -> tuple[int, SignedEvent]:
    """(stream position, event) of a row selected as :data:`EVENT_COLUMNS`."""
    content = EventContent(row[1], row[2], bytes(row[3]), row[4], EventKind(row[5]), row[6], row[7],
                           row[8], bytes(row[9]))
    return row[0], SignedEvent(content, bytes(row[10]), bytes(row[11]), row[12])


async def events_in_range(conn: aiosqlite.Connection, room_id: str, user_id: str, device_id: str,
                          from_seq: int, limit: int) -> list[SignedEvent]:
    """Events of the room with seq >= ``from_seq`` inside the device's membership intervals,
    in seq order, at most ``limit``."""
    sql = (f"SELECT {', '.join('e.' + c for c in EVENT_COLUMNS.split(', '))} FROM room_events e "
           "WHERE e.room_id = ? AND e.seq >= ? AND EXISTS (SELECT 1 FROM room_members m WHERE "
           "m.room_id = e.room_id AND m.user_id = ? AND m.device_id = ? AND e.seq >= m.first_seq "
           "AND (m.last_seq IS NULL OR e.seq <= m.last_seq)) ORDER BY e.seq LIMIT ?")
    async with conn.execute(sql, (room_id, from_seq, user_id, device_id, limit)) as cur:
        rows = await cur.fetchall()
    return [event_from_row(tuple(r))[1] for r in rows]


async def open_members(conn: aiosqlite.Connection, room_id: str) -> set[tuple[str, str]]:
    """(user, device) of the room's current members."""
    async with conn.execute("SELECT user_id, device_id FROM room_members WHERE room_id = ? AND "
                            "last_seq IS NULL", (room_id,)) as cur:
        return {(r[0], r[1]) for r in await cur.fetchall()}


async def add_members(tx: aiosqlite.Connection, room_id: str, members: Iterable[tuple[str, str]],
                      first_seq: int) -> None:
    await tx.executemany(
        "INSERT INTO room_members (room_id, user_id, device_id, first_seq, last_seq) "
        "VALUES (?, ?, ?, ?, NULL)", [(room_id, u, d, first_seq) for u, d in members])


async def close_members(tx: aiosqlite.Connection, room_id: str, members: Iterable[tuple[str, str]],
                        last_seq: int) -> None:
    await tx.executemany(
        "UPDATE room_members SET last_seq = ? WHERE room_id = ? AND user_id = ? AND device_id = ? "
        "AND last_seq IS NULL", [(last_seq, room_id, u, d) for u, d in members])


async def device_rooms(conn: aiosqlite.Connection, user_id: str, device_id: str
                       ) -> list[tuple[str, int, int]]:
    """(room_id, epoch, last_seq) of each room the device is a current member of."""
    async with conn.execute(
        "SELECT r.room_id, r.epoch, r.last_seq FROM room_members m JOIN rooms r ON r.room_id = "
        "m.room_id WHERE m.user_id = ? AND m.device_id = ? AND m.last_seq IS NULL ORDER BY r.room_id",
        (user_id, device_id)
    ) as cur:
        return [(r[0], r[1], r[2]) for r in await cur.fetchall()]


async def is_visible_member(conn: aiosqlite.Connection, room_id: str, user_id: str,
                            device_id: str) -> bool:
    """Whether the device is or ever was a member (it may read its intervals' history)."""
    async with conn.execute("SELECT 1 FROM room_members WHERE room_id = ? AND user_id = ? AND "
                            "device_id = ? LIMIT 1", (room_id, user_id, device_id)) as cur:
        return await cur.fetchone() is not None


async def user_has_member_device(conn: aiosqlite.Connection, room_id: str, user_id: str) -> bool:
    async with conn.execute("SELECT 1 FROM room_members WHERE room_id = ? AND user_id = ? AND "
                            "last_seq IS NULL LIMIT 1", (room_id, user_id)) as cur:
        return await cur.fetchone() is not None


async def added_by(conn: aiosqlite.Connection, room_id: str, user_id: str, device_id: str,
                   sender: tuple[str, str]) -> int | None:
    """The seq of the latest stored commit of ``sender`` that opened one of the device's
    membership intervals (the commit at ``first_seq - 1``), or None: whether the hub's signed
    events vouch that the sender added the device."""
    async with conn.execute(
        "SELECT MAX(e.seq) FROM room_members m JOIN room_events e ON e.room_id = m.room_id AND "
        "e.seq = m.first_seq - 1 WHERE m.room_id = ? AND m.user_id = ? AND m.device_id = ? AND "
        "e.kind = ? AND e.sender_user = ? AND e.sender_device = ?",
        (room_id, user_id, device_id, EventKind.COMMIT.value, *sender)) as cur:
        row = await cur.fetchone()
    return None if row is None or row[0] is None else int(row[0])


async def find_txn(conn: aiosqlite.Connection, user_id: str, device_id: str, scope: str,
                   txn_id: str) -> bytes | None:
    rows = await conn.execute_fetchall(
        "SELECT response FROM txn_ids WHERE user_id = ? AND device_id = ? AND scope = ? AND "
        "txn_id = ?", (user_id, device_id, scope, txn_key(txn_id)))
    return bytes(rows[0][0]) if rows else None


async def store_txn(tx: aiosqlite.Connection, user_id: str, device_id: str, scope: str, txn_id: str,
                    response: bytes, now_ms: int) -> None:
    await tx.execute("INSERT INTO txn_ids (user_id, device_id, scope, txn_id, response, created_at) "
                     "VALUES (?, ?, ?, ?, ?, ?)", (user_id, device_id, scope, txn_key(txn_id), response,
                                                    now_ms))


async def store_txns(tx: aiosqlite.Connection,
                     rows: Iterable[tuple[str, str, str, str, bytes, int]]) -> None:
    """Several ``(user, device, scope, txn_id, response, now_ms)`` in one statement."""
    await tx.executemany("INSERT INTO txn_ids (user_id, device_id, scope, txn_id, response, "
                         "created_at) VALUES (?, ?, ?, ?, ?, ?)",
                         [(u, d, scope, txn_key(t), r, n) for u, d, scope, t, r, n in rows])


async def prune_txns(tx: aiosqlite.Connection, older_than_ms: int) -> int:
    cur = await tx.execute("DELETE FROM txn_ids WHERE created_at < ?", (older_than_ms,))
    return cur.rowcount
