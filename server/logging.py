"""structlog configuration: one JSON object per line on stderr.

What the logs may hold: event names, route templates, statuses, durations,
counts, error types. Never message content, ciphertext, tokens, passwords,
invite codes, room names or people's names. User ids are not logged at info
level at all (the choice is "not at all" rather than a salted hash: the access
log is about the server's health, and the transparency log already records
who did what, signed). Debug-level lines may carry a user id, only through
:func:`user_ref`, a hash salted per process, so lines of one run can be
correlated and nothing more.
"""

from __future__ import annotations

import hashlib
import logging as std_logging
import secrets
import sys
from typing import TextIO

import structlog

__all__ = ["configure_logging", "user_ref"]

_SALT = secrets.token_bytes(16)


def user_ref(user_id: str) -> str:
    """A per-process salted hash of a user id (12 hex digits), for debug lines."""
    return hashlib.sha256(_SALT + user_id.encode()).hexdigest()[:12]


def configure_logging(level: str = "info", stream: TextIO | None = None) -> None:
    """JSON lines at ``level`` and above to ``stream`` (stderr by default)."""
    numeric = std_logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(stream or sys.stderr),
        cache_logger_on_first_use=False,
    )
