"""Identifiers: server names, user ids ``@local:server``, device ids, room ids ``!opaque:server``.

Parsing is strict and bounded; every failure raises
:class:`~protocol.errors.InvalidIdentifier` (code ``invalid_identifier``).

Grammar (``spec/client-server.md``, section "Identifiers"):

- server name: a DNS name (labels of ``a-z 0-9 -``, not starting or ending in
  ``-``, 1..63 bytes each, lower case) or an IPv4 literal, then optionally
  ``:port`` (1..65535, no leading zero); at most 230 bytes.
- user id: ``@`` localpart ``:`` server name; localpart 1..64 of
  ``a-z 0-9 . _ = -``; the whole id at most 255 bytes.
- device id: 1..64 of ``A-Z a-z 0-9 _ -``.
- room id: ``!`` opaque ``:`` server name; opaque 1..64 of ``A-Z a-z 0-9 _ -``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import InvalidIdentifier

__all__ = [
    "MAX_SERVER_NAME",
    "MAX_LOCALPART",
    "MAX_USER_ID",
    "MAX_DEVICE_ID",
    "MAX_ROOM_OPAQUE",
    "MAX_HOST",
    "parse_server_name",
    "server_name_problem",
    "UserId",
    "DeviceId",
    "RoomId",
    "parse_localpart",
    "device_identity",
]

MAX_SERVER_NAME = 230
#: RFC 1035's bound on a whole DNS name (without the port).
MAX_HOST = 253
MAX_LOCALPART = 64
MAX_USER_ID = 255
MAX_DEVICE_ID = 64
MAX_ROOM_OPAQUE = 64

_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_LOCALPART = re.compile(r"[a-z0-9._=-]{1,64}")
_DEVICE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_OPAQUE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_PORT = re.compile(r"[1-9][0-9]{0,4}")


def _ascii(value: object, what: str, max_len: int) -> str:
    if type(value) is not str:
        raise InvalidIdentifier(f"{what} must be a string")
    if not value or len(value) > max_len or not value.isascii():
        raise InvalidIdentifier(f"{what} must be 1..{max_len} ASCII characters")
    return value


def server_name_problem(value: object) -> str | None:
    """Why ``value`` is not a server name (the grammar of the module docstring), or None.

    The one grammar check: :func:`parse_server_name` raises it as
    :class:`InvalidIdentifier`, :class:`protocol.server_name.ServerName` as
    ``invalid_server_name``."""
    if type(value) is not str or not value or len(value) > MAX_SERVER_NAME or not value.isascii():
        return f"a server name is 1..{MAX_SERVER_NAME} ASCII characters"
    host, sep, port = value.partition(":")
    if sep and (not _PORT.fullmatch(port) or int(port) > 65535):
        return "server name port must be 1..65535"
    labels = host.split(".")
    if len(host) > MAX_HOST or not all(_LABEL.fullmatch(label) for label in labels):
        return "server name must be a lower-case DNS name or an IPv4 address"
    if all(label.isdigit() for label in labels) and (
        len(labels) != 4 or any(int(label) > 255 or (label != "0" and label[0] == "0") for label in labels)
    ):
        return "a numeric server name must be an IPv4 address"
    return None


def parse_server_name(value: object) -> str:
    """Return ``value`` if it is a valid server name; raises :class:`InvalidIdentifier`."""
    problem = server_name_problem(value)
    if problem is not None:
        raise InvalidIdentifier(problem)
    return value  # type: ignore[return-value]


def parse_localpart(value: object) -> str:
    """Return ``value`` if it is a valid localpart (``a-z 0-9 . _ = -``, 1..64)."""
    local = _ascii(value, "localpart", MAX_LOCALPART)
    if not _LOCALPART.fullmatch(local):
        raise InvalidIdentifier("localpart may hold only a-z 0-9 . _ = -")
    return local


@dataclass(frozen=True, slots=True)
class UserId:
    """``@localpart:server``. Build with :meth:`parse` or :meth:`of`."""

    localpart: str
    server: str

    @classmethod
    def of(cls, localpart: str, server: str) -> UserId:
        """Raises :class:`InvalidIdentifier` for a bad part or an id over 255 bytes."""
        uid = cls(parse_localpart(localpart), parse_server_name(server))
        if len(str(uid)) > MAX_USER_ID:
            raise InvalidIdentifier(f"user id longer than {MAX_USER_ID} bytes")
        return uid

    @classmethod
    def parse(cls, value: object) -> UserId:
        """Parse ``@local:server``; raises :class:`InvalidIdentifier`."""
        text = _ascii(value, "user id", MAX_USER_ID)
        if not text.startswith("@") or ":" not in text:
            raise InvalidIdentifier("user id must be @localpart:server")
        local, _, server = text[1:].partition(":")
        return cls.of(local, server)

    def __str__(self) -> str:
        return f"@{self.localpart}:{self.server}"


@dataclass(frozen=True, slots=True)
class DeviceId:
    value: str

    @classmethod
    def parse(cls, value: object) -> DeviceId:
        """Raises :class:`InvalidIdentifier` unless 1..64 of ``A-Z a-z 0-9 _ -``."""
        text = _ascii(value, "device id", MAX_DEVICE_ID)
        if not _DEVICE.fullmatch(text):
            raise InvalidIdentifier("device id may hold only A-Z a-z 0-9 _ -")
        return cls(text)

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class RoomId:
    """``!opaque:server``; the server is the room's hub."""

    opaque: str
    server: str

    @classmethod
    def parse(cls, value: object) -> RoomId:
        """Raises :class:`InvalidIdentifier`."""
        text = _ascii(value, "room id", MAX_USER_ID)
        if not text.startswith("!") or ":" not in text:
            raise InvalidIdentifier("room id must be !opaque:server")
        opaque, _, server = text[1:].partition(":")
        if not _OPAQUE.fullmatch(opaque):
            raise InvalidIdentifier("room id opaque part may hold only A-Z a-z 0-9 _ -, 1..64")
        return cls(opaque, parse_server_name(server))

    def __str__(self) -> str:
        return f"!{self.opaque}:{self.server}"


def device_identity(user: UserId, device: DeviceId) -> bytes:
    """The basic-credential identity of a device: ``b"@user:server/DEVICEID"``."""
    return f"{user}/{device}".encode()
