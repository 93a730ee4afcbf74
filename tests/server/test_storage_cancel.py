"""A task cancelled while ``BEGIN`` is in flight, or inside its transaction, leaves nothing behind.

aiosqlite runs statements on a worker thread: a coroutine cancelled while its
``BEGIN IMMEDIATE`` waits there stops waiting, but the ``BEGIN`` still runs.
The tests cause that for real: a second connection holds SQLite's write lock,
so the ``BEGIN`` sits in SQLite's busy handler; a trace callback on the
connection (called by SQLite when the statement starts) sets an event; the
test then cancels the task, releases the write lock (or a gate the trace
callback waits on, for a ``BEGIN`` that takes no lock), and shows that the next
transaction begins, commits and sees no half-written rows.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading

import pytest

from server.storage import Database

pytestmark = pytest.mark.timeout(30)


async def _open(tmp_path) -> Database:
    db = await Database.open(tmp_path / "confide.db")
    async with db.statement() as conn:
        await conn.execute("CREATE TABLE scratch (x INTEGER NOT NULL)")
    return db


async def _started(db: Database, sql: str, gate: threading.Event | None = None) -> asyncio.Event:
    """An event set (from the worker thread) when the connection starts running ``sql``;
    with ``gate``, the worker then waits for the gate before it runs the statement."""
    loop = asyncio.get_running_loop()
    seen = asyncio.Event()

    def trace(statement: str) -> None:
        if statement == sql:
            loop.call_soon_threadsafe(seen.set)
            if gate is not None:
                gate.wait(20)

    await db.conn.set_trace_callback(trace)
    return seen


async def _rows(db: Database) -> list[int]:
    async with db.read() as conn, conn.execute("SELECT x FROM scratch ORDER BY x") as cur:
        return [row[0] for row in await cur.fetchall()]


async def test_cancelled_during_begin_leaves_the_connection_usable(tmp_path):
    db = await _open(tmp_path)
    blocker = sqlite3.connect(str(db.path), isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # SQLite's write lock: our BEGIN IMMEDIATE must wait
    begun = await _started(db, "BEGIN IMMEDIATE")
    body_ran = asyncio.Event()

    async def write() -> None:
        async with db.transaction() as tx:
            body_ran.set()
            await tx.execute("INSERT INTO scratch (x) VALUES (1)")

    task = asyncio.create_task(write())
    try:
        await begun.wait()  # the BEGIN is running on the worker thread, in the busy handler
        task.cancel()
        blocker.execute("COMMIT")  # now the worker's BEGIN succeeds, after its caller left
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        blocker.close()
    assert not body_ran.is_set()
    await db.conn.set_trace_callback(None)

    assert not db.conn.in_transaction
    async with db.transaction() as tx:  # would fail: "cannot start a transaction within a transaction"
        await tx.execute("INSERT INTO scratch (x) VALUES (2)")
    assert await _rows(db) == [2]
    await db.close()


async def test_cancelled_between_begin_and_body_end_rolls_back(tmp_path):
    db = await _open(tmp_path)
    inserted = asyncio.Event()
    never = asyncio.Event()

    async def write() -> None:
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO scratch (x) VALUES (1)")
            inserted.set()
            await never.wait()  # cancelled here, inside the open transaction
            await tx.execute("INSERT INTO scratch (x) VALUES (2)")

    task = asyncio.create_task(write())
    await inserted.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    async with db.transaction() as tx:
        await tx.execute("INSERT INTO scratch (x) VALUES (3)")
    assert await _rows(db) == [3]  # the cancelled transaction's row 1 is gone
    await db.close()


async def test_cancelled_read_snapshot_during_begin_leaves_no_open_snapshot(tmp_path):
    db = await _open(tmp_path)
    gate = threading.Event()  # holds the worker thread at the start of the BEGIN
    begun = await _started(db, "BEGIN", gate)

    async def read() -> None:
        async with db.read():
            pass

    task = asyncio.create_task(read())
    await begun.wait()
    task.cancel()
    gate.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    await db.conn.set_trace_callback(None)
    async with db.transaction() as tx:
        await tx.execute("INSERT INTO scratch (x) VALUES (4)")
    assert not db.conn.in_transaction and await _rows(db) == [4]
    await db.close()


async def test_a_failed_commit_is_rolled_back_and_the_next_transaction_works(tmp_path):
    """A COMMIT that fails for real (a deferred foreign key still violated at commit time)
    leaves SQLite inside the transaction; it is rolled back before the lock is released."""
    db = await _open(tmp_path)
    async with db.statement() as conn:
        await conn.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
    async with db.statement() as conn:
        await conn.execute("CREATE TABLE child (pid INTEGER NOT NULL REFERENCES parent (id) "
                           "DEFERRABLE INITIALLY DEFERRED)")
    with pytest.raises(sqlite3.IntegrityError):
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO scratch (x) VALUES (5)")
            await tx.execute("INSERT INTO child (pid) VALUES (99)")  # checked at COMMIT
    assert not db.conn.in_transaction
    async with db.transaction() as tx:
        await tx.execute("INSERT INTO scratch (x) VALUES (6)")
    assert await _rows(db) == [6]
    await db.close()
