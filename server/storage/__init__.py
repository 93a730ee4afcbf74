"""The homeserver's storage: one SQLite database, numbered migrations, repositories.

Seam for the other parts of the server::

    db = await Database.open(config.database_path)     # done by server.app (cleanup_ctx)
    async with db.transaction() as tx:                 # one write transaction, fsynced on exit
        await accounts.create(tx, ...)
    async with db.read() as conn:                      # a consistent snapshot
        device = await devices.get(conn, user, device_id)

Repositories (``accounts``, ``devices``, ``device_trust``, ``tokens``, ``invites``,
``key_packages``, ``mfa``, ``outbox``) are modules of functions over the connection
and raise :mod:`server.storage.errors` (domain errors, never HTTP). New tables
come as new entries of :data:`server.storage.migrations.MIGRATIONS`.
"""

from . import (
    accounts,
    device_trust,
    devices,
    invites,
    key_packages,
    log_privacy,
    meta,
    mfa,
    outbox,
    tokens,
)
from .database import Database, connect
from .errors import (
    AlreadyExists,
    InviteUnusable,
    NoSuchRow,
    SchemaTooNew,
    StorageError,
    UserAlreadyExists,
)
from .migrations import MIGRATIONS, migrate

__all__ = [
    "accounts", "device_trust", "devices", "invites", "key_packages", "log_privacy", "meta", "mfa",
    "outbox", "tokens", "Database", "connect",
    "AlreadyExists", "InviteUnusable", "NoSuchRow", "SchemaTooNew", "StorageError",
    "UserAlreadyExists", "MIGRATIONS", "migrate",
]
