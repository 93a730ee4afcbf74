"""The homeserver's SQLite database: one aiosqlite connection, serialized transactions.

:meth:`Database.open` connects in autocommit mode with WAL, ``synchronous=FULL``
(a committed transaction is on disk, so an answered request is durable),
foreign keys on and a busy timeout for the other writers of the same file
(the transparency log's own connection, the ``confide admin`` commands), then
applies the numbered migrations of :mod:`server.storage.migrations`.

Every use goes through :meth:`Database.transaction` (``BEGIN IMMEDIATE`` ..
``COMMIT``, rolled back on any exception), :meth:`Database.read` (a
consistent snapshot) or :meth:`Database.statement` (exactly one statement,
which in autocommit mode is its own snapshot or transaction: no ``BEGIN`` and
``COMMIT``/``ROLLBACK`` round trips to the database thread on hot paths).
All three hold one lock (:class:`SerialLock`), so coroutines never see each
other's half-done work on the shared connection. Repositories are functions
that take the connection handed out by these context managers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiosqlite

from server.transactions import begin, rollback

from .migrations import migrate

__all__ = ["Database", "SerialLock", "begin", "connect"]

BUSY_TIMEOUT_MS = 10_000


async def connect(path: Path | str) -> aiosqlite.Connection:
    """An autocommit connection with Confide's pragmas (WAL, synchronous=FULL, foreign keys,
    secure_delete: freed pages are zeroed, so a deleted row or a dropped column, such as the
    device names the finding-9 migration step drops, leaves nothing readable in the file)."""
    conn = await aiosqlite.connect(str(path), isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
    await conn.execute("PRAGMA journal_mode=WAL")
    await conn.execute("PRAGMA synchronous=FULL")
    await conn.execute("PRAGMA foreign_keys=ON")
    await conn.execute("PRAGMA secure_delete=ON")
    await conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    return conn


class SerialLock:
    """An :class:`asyncio.Lock` that knows the task holding it.

    Entering it again from the holding task raises :class:`RuntimeError` at once
    instead of waiting forever (asyncio locks are not reentrant). The database's
    transactions and the transparency log's write transactions (a second
    connection to the same file) share one, so the two connections take SQLite's
    write lock in turn instead of meeting in SQLite's busy handler, which sleeps
    a millisecond or more per retry.
    """

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._owner: asyncio.Task | None = None

    async def __aenter__(self) -> None:
        task = asyncio.current_task()
        if self._owner is not None and self._owner is task:
            raise RuntimeError("the database lock is already held by this task")
        await self._lock.acquire()
        self._owner = task

    async def __aexit__(self, *exc: object) -> None:
        self._owner = None
        self._lock.release()


class Database:
    """The connection plus the lock that serializes its transactions. Build with :meth:`open`."""

    def __init__(self, conn: aiosqlite.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path
        self._lock = SerialLock()

    @property
    def lock(self) -> SerialLock:
        """The lock that serializes this connection's use (shared with the log's writes)."""
        return self._lock

    @classmethod
    async def open(cls, path: Path | str) -> Database:
        """Connect and migrate; raises :class:`~server.storage.errors.SchemaTooNew` for a newer schema."""
        conn = await connect(path)
        try:
            await migrate(conn)
        except BaseException:
            await conn.close()
            raise
        return cls(conn, Path(path))

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """A write transaction: committed (and fsynced) on exit, rolled back on an exception
        (cancellation included, also while ``BEGIN`` is in flight) or a failed ``COMMIT``, so
        the connection never stays inside a transaction once the lock is released."""
        async with self._lock:
            await begin(self.conn, "BEGIN IMMEDIATE")
            try:
                yield self.conn
                await self.conn.execute("COMMIT")
            except BaseException:  # the body's failure, or a COMMIT that failed (disk full, I/O)
                await rollback(self.conn)
                raise

    @asynccontextmanager
    async def read(self) -> AsyncIterator[aiosqlite.Connection]:
        """A read-only snapshot (``BEGIN DEFERRED``); nothing it does is kept."""
        async with self._lock:
            await begin(self.conn, "BEGIN")
            try:
                yield self.conn
            finally:
                await rollback(self.conn)

    @asynccontextmanager
    async def statement(self) -> AsyncIterator[aiosqlite.Connection]:
        """The connection for exactly one statement, in autocommit mode: a read sees one
        consistent snapshot; a write is its own transaction, committed (on disk: synchronous
        is FULL) when it returns. Several statements that must agree use :meth:`read` or
        :meth:`transaction`."""
        async with self._lock:
            yield self.conn

    async def close(self) -> None:
        await self.conn.close()
