"""Cancellation-safe ``BEGIN`` for aiosqlite connections in autocommit mode.

:func:`rollback` ends a transaction whose body or ``COMMIT`` failed, without masking
the failure when SQLite already rolled back by itself. Shared by the homeserver's database (:mod:`server.storage.database`) and the
transparency log's own connection (:mod:`server.translog.storage`); it lives
outside both packages so that neither imports the other to use it.
"""

from __future__ import annotations

import asyncio
import sqlite3

import aiosqlite

__all__ = ["begin", "rollback"]


async def begin(conn: aiosqlite.Connection, sql: str = "BEGIN IMMEDIATE") -> None:
    """Run ``sql`` (a ``BEGIN``) so that no caller leaves ``conn`` inside a transaction.

    aiosqlite queues the statement on the connection's worker thread, so a
    caller cancelled while it is in flight stops waiting but the ``BEGIN`` still
    runs. If the caller is cancelled (or the ``BEGIN`` fails) before it returns,
    a ``ROLLBACK`` is queued behind it and awaited (a second cancellation is held
    back until it is done), so whoever uses the connection next, under the same
    lock, finds it outside any transaction.
    """
    try:
        await conn.execute(sql)
    except BaseException:
        await rollback(conn)
        raise


async def _rollback_quietly(conn: aiosqlite.Connection) -> None:
    """``ROLLBACK``, where no open transaction (a ``BEGIN`` that never ran) is fine."""
    try:
        await conn.execute("ROLLBACK")
    except sqlite3.OperationalError as exc:
        if "no transaction is active" not in str(exc):
            raise


async def rollback(conn: aiosqlite.Connection) -> None:
    """``ROLLBACK`` after a failed or cancelled transaction (or ``COMMIT``), waited for even if
    the caller is cancelled again meanwhile (that cancellation is delivered once it is
    done). No open transaction is fine: SQLite rolls some failures back by itself, and a
    ``COMMIT`` whose caller was cancelled may have run."""
    rollback = asyncio.ensure_future(_rollback_quietly(conn))
    cancelled = False
    while True:
        try:
            await asyncio.shield(rollback)
            break
        except asyncio.CancelledError:
            if rollback.done():
                raise
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
