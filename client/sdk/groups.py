"""Live MLS groups of this device's rooms, decoded from the profile once.

The profile holds each room's group state as bytes (``RoomState.group``,
:meth:`crypto.mls.Group.to_bytes`). :class:`GroupStore` hands out the
:class:`~crypto.mls.Group` those bytes encode and keeps it between events and
operations, so a batch of events decodes the group once, not once per event:

* :meth:`GroupStore.live`: the room's group, to read or change in place; it is
  decoded only when ``room.group`` differs from the bytes this store last
  decoded or wrote for the room (first use, or another process changed the
  profile, which every operation re-reads under its lock);
* :meth:`GroupStore.put`: after a change, encode it into ``room.group`` (the
  caller saves the room) and keep it live;
* :meth:`GroupStore.forget`: after a failure that may have left the live group
  half changed; the next :meth:`live` decodes the last stored bytes;
* :meth:`GroupStore.changing`: :meth:`live` for a block that changes it, then
  :meth:`put`, or :meth:`forget` if the block raises;
* :meth:`GroupStore.copy`: a separate group to stage a commit or proposal on,
  which only :meth:`put` makes the room's.

:meth:`live` and :meth:`copy` raise :class:`~client.sdk.errors.NotAMember` for a
room without group state (left or removed).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from crypto.mls import Group

from .errors import NotAMember
from .store import RoomState

__all__ = ["GroupStore"]


class GroupStore:
    """See the module docstring."""

    def __init__(self) -> None:
        self._live: dict[str, tuple[bytes, Group]] = {}

    def live(self, room: RoomState) -> Group:
        data = self._state(room)
        cached = self._live.get(room.room_id)
        if cached is not None and cached[0] == data:
            return cached[1]
        group = Group.from_bytes(data)
        self._live[room.room_id] = (data, group)
        return group

    def view(self, room: RoomState) -> Group | None:
        """:meth:`live`, or None for a room without group state (to read, not to change)."""
        return None if room.group is None else self.live(room)

    def copy(self, room: RoomState) -> Group:
        return Group.from_bytes(self._state(room))

    def put(self, room: RoomState, group: Group) -> None:
        room.group = group.to_bytes()
        self._live[room.room_id] = (room.group, group)

    def forget(self, room_id: str) -> None:
        self._live.pop(room_id, None)

    @contextlib.contextmanager
    def changing(self, room: RoomState) -> Iterator[Group]:
        """The live group to change in place: :meth:`put` after the block, :meth:`forget`
        if it raises."""
        group = self.live(room)
        try:
            yield group
        except BaseException:
            self.forget(room.room_id)
            raise
        self.put(room, group)

    @staticmethod
    def _state(room: RoomState) -> bytes:
        if room.group is None:
            raise NotAMember(f"this device has no group state for {room.room_id} ({room.status.value})")
        return room.group
