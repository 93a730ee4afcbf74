"""Bodies of the log-openings endpoints (``spec/audit-log.md``, "Openings"; paths relative
to :data:`protocol.api.CLIENT_PREFIX`).

- ``GET /log/openings/{index}``: :class:`OpeningResponse`, the encoded
  :class:`protocol.audit_seal.Opening` of entry ``index``. A user session's token opens
  the entries the access rule gives it; an auditor's credential
  (``Authorization: ConfideAuditor <token>``) opens any entry and is itself logged.
  Everyone else, for an entry that exists or not, gets the one ``not_found`` answer.
- ``GET /log/mine?from=I&limit=N``: :class:`OwnEntriesResponse`, the indexes of the
  entries naming the caller's user (its devices, logins, consents, messages sent).

``from_wire`` raises :class:`~protocol.errors.MalformedBody` only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .audit_seal import MAX_OPENING_SIZE
from .schema import Message, blob, list_of, nullable, uint

__all__ = ["AUDITOR_SCHEME", "MAX_OWN_ENTRIES", "NOT_OPENABLE", "OpeningResponse",
           "OwnEntriesResponse"]

#: The ``Authorization`` scheme of an auditor credential (a user session uses ``Bearer``).
AUDITOR_SCHEME = "ConfideAuditor"
#: Most indexes in one ``/log/mine`` answer.
MAX_OWN_ENTRIES = 1000
#: The one message for an entry that does not exist and one the caller may not open.
NOT_OPENABLE = "no such log entry, or not one you may open"


@dataclass(frozen=True)
class OpeningResponse(Message):
    SCHEMA: ClassVar = {"opening": blob(MAX_OPENING_SIZE, 1)}
    opening: bytes


@dataclass(frozen=True)
class OwnEntriesResponse(Message):
    """Ascending indexes; ``next`` is where to continue, null at the end of the log."""

    SCHEMA: ClassVar = {"indexes": list_of(uint(), MAX_OWN_ENTRIES), "next": nullable(uint())}
    indexes: tuple[int, ...]
    next: int | None
