"""Domain errors raised by the storage repositories (never HTTP statuses).

Each carries the stable ``code`` of the API error it becomes; the error
middleware looks the status up in :mod:`protocol.errors`.
"""

from __future__ import annotations

__all__ = [
    "StorageError",
    "SchemaTooNew",
    "AlreadyExists",
    "UserAlreadyExists",
    "NoSuchRow",
    "InviteUnusable",
]


class StorageError(Exception):
    """Base of the storage layer's domain errors."""

    code = "internal"


class SchemaTooNew(StorageError):
    """The database was written by a newer Confide (its schema version is unknown here)."""

    code = "internal"


class AlreadyExists(StorageError):
    code = "conflict"


class UserAlreadyExists(AlreadyExists):
    code = "user_exists"


class NoSuchRow(StorageError):
    code = "not_found"


class InviteUnusable(StorageError):
    """The invite code is unknown, used or expired."""

    code = "invite_invalid"
