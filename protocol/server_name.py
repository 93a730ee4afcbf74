"""The one server-name type: :class:`ServerName`, validated once where a name enters.

A name a client or a peer gives (the ``server`` query of ``GET /hub_key``, the
``{server}`` of the log relay) is parsed with :meth:`ServerName.parse` at the edge,
before anything else looks at it; code behind the edge holds a :class:`ServerName`
and never re-checks it. Grammar (``spec/security.md``, finding 6):

- a host: DNS labels of ``a-z 0-9 -`` (1..63 bytes each, not starting or ending
  in ``-``, lower case), at most 253 bytes in all, or an IPv4 literal;
- then optionally ``:port`` (1..65535, no leading zero): loopback test peers are
  named like ``127.0.0.1:8481``; a port is only ever *reached* when the name is a
  configured peer (the ``[federation.peers]`` table maps names to URLs);
- the whole name at most :data:`~protocol.ids.MAX_SERVER_NAME` (230) bytes, the bound
  every identifier naming a server already has.

Anything else (``/``, ``?``, ``%``, ``..``, an empty or 64-byte label, upper case,
non-ASCII such as U+2028) raises :class:`InvalidServerName` (``invalid_server_name``,
400): never a decoding error of a lower layer.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import BadRequest
from .ids import server_name_problem

__all__ = ["InvalidServerName", "ServerName"]


class InvalidServerName(BadRequest):
    """A server name given by a client or a peer breaks the grammar of :class:`ServerName`."""

    code = "invalid_server_name"
    status = 400


@dataclass(frozen=True, slots=True)
class ServerName:
    """A validated server name (``host`` and optional ``port``). Build with :meth:`parse`."""

    host: str
    port: int | None = None

    @classmethod
    def parse(cls, value: object) -> ServerName:
        """Raises :class:`InvalidServerName` (see the module docstring)."""
        problem = server_name_problem(value)
        if problem is not None:
            raise InvalidServerName(problem)
        host, sep, port = value.partition(":")  # type: ignore[union-attr]
        return cls(host, int(port) if sep else None)

    def __str__(self) -> str:
        return self.host if self.port is None else f"{self.host}:{self.port}"
