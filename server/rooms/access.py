"""Who may ask about a room: ONE check, one error code, for the hub's clients and for
federation (``spec/client-server.md`` 8.4-8.5, ``spec/server-server.md`` 11.3, 11.5, 13.1).

A room this server does not hold answers ``unknown_room`` (404) everywhere; a room it holds
but where the asking user has no current member device answers ``not_member`` (403).
"""

from __future__ import annotations

import aiosqlite

from protocol.room_errors import NotMember, UnknownRoom

from . import storage

__all__ = ["known_room", "room_of_member_user"]


async def known_room(conn: aiosqlite.Connection, room_id: str) -> storage.StoredRoom:
    """The stored room; raises :class:`UnknownRoom`."""
    room = await storage.get_room(conn, room_id)
    if room is None:
        raise UnknownRoom("no such room")
    return room


async def room_of_member_user(conn: aiosqlite.Connection, room_id: str,
                              user_id: str) -> storage.StoredRoom:
    """The stored room, for a user with a current member device in it; raises
    :class:`UnknownRoom` or :class:`NotMember`."""
    room = await known_room(conn, room_id)
    if not await storage.user_has_member_device(conn, room_id, user_id):
        raise NotMember("no device of this user is a member of this room")
    return room
