"""The hub's rooms in memory: each room's head and public view, its queue of accepted
application messages (group commit, :mod:`server.rooms.hub`), and a bounded cache of them.

Only code holding the room's lock touches a :class:`CachedRoom`. A room with uncommitted
events is never dropped by the bound (:data:`MAX_CACHED_ROOMS`); a room whose batch failed
(or whose view may have moved under a refused handshake) is dropped with
:meth:`RoomCache.drop`, so the next submission reloads the last committed state.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass, field

from crypto.mls.public_group import PublicGroup
from protocol.room_rules import Applied, RoomHead
from protocol.rooms_api import SendResponse

__all__ = ["MAX_CACHED_ROOMS", "TxnKey", "PendingEvent", "CachedRoom", "RoomCache"]

#: Rooms whose public view stays in memory (least recently used ones are dropped).
MAX_CACHED_ROOMS = 1024

TxnKey = tuple[str, str, str, str]  # (user id, device id, scope, txn id)


@dataclass
class PendingEvent:
    """An accepted application message waiting for its batch's transaction."""

    applied: Applied
    key: TxnKey
    response: SendResponse
    future: asyncio.Future[SendResponse]


@dataclass(eq=False)
class CachedRoom:
    """A room's head (including queued events) and public view (of its last committed event:
    only handshakes change it, and they commit the queue first)."""

    head: RoomHead
    view: PublicGroup
    #: Accepted application messages not yet taken by a batch, in seq order.
    pending: list[PendingEvent] = field(default_factory=list)
    #: Held by whoever commits this room's events (batches in order, handshakes after them).
    commit_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    writer: asyncio.Task | None = None
    #: Set when a batch failed: this copy is no longer the room (the cache has dropped it).
    broken: bool = False

    @property
    def room_id(self) -> str:
        return self.head.room_id

    def busy(self) -> bool:
        return bool(self.pending) or self.commit_lock.locked()


class RoomCache:
    """At most ``bound`` rooms, least recently used dropped first (never a busy one)."""

    def __init__(self, bound: int = MAX_CACHED_ROOMS) -> None:
        self.bound = bound
        self._rooms: OrderedDict[str, CachedRoom] = OrderedDict()

    def get(self, room_id: str) -> CachedRoom | None:
        room = self._rooms.get(room_id)
        if room is not None:
            self._rooms.move_to_end(room_id)
        return room

    def put(self, room: CachedRoom) -> None:
        self._rooms[room.room_id] = room
        self._rooms.move_to_end(room.room_id)
        while len(self._rooms) > self.bound:
            victim = next((r for r in self._rooms.values() if not r.busy()), None)
            if victim is None:
                break  # every cached room has uncommitted events: keep them all for now
            del self._rooms[victim.room_id]

    def drop(self, room: CachedRoom) -> None:
        """Forget ``room`` if it is still the cached copy of its room."""
        if self._rooms.get(room.room_id) is room:
            del self._rooms[room.room_id]
