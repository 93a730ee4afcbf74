"""SQLite storage of the transparency log, the witness state and received cosignatures.

All tables carry the ``translog_`` prefix and are created by :func:`migrate`
inside a connection the caller gives, so the log can live in the homeserver's
own database file. The log needs a connection of its own (opened with
``isolation_level=None``, i.e. autocommit): it runs its own ``BEGIN IMMEDIATE``
/ ``COMMIT`` under an asyncio lock, and a batch (entries, node hashes, the
event index and the signed checkpoint) is written in one transaction, so a
crash leaves either the whole batch or none of it.

Storage raises domain errors (:class:`StorageCorrupt`), never HTTP statuses.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import aiosqlite

from crypto.merkle import MerkleNode
from server.transactions import begin, rollback

__all__ = ["SCHEMA_VERSION", "StorageCorrupt", "LegacyLog", "migrate", "open_connection", "LogStorage", "node_id"]

#: 2: entries are sealed (protocol/audit_seal.py); openings and subjects are kept beside them.
SCHEMA_VERSION = 2

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS translog_schema (version INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS translog_entries (
        idx INTEGER PRIMARY KEY, data BLOB NOT NULL)""",
    # node (level, index) is stored under id = level << 48 | index: one rowid lookup per
    # node, and a tile (one level, consecutive indexes) is one rowid range.
    """CREATE TABLE IF NOT EXISTS translog_hashes (
        id INTEGER PRIMARY KEY, hash BLOB NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS translog_checkpoints (
        size INTEGER PRIMARY KEY, note BLOB NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS translog_events (
        event_hash BLOB PRIMARY KEY, idx INTEGER NOT NULL) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS translog_cosignatures (
        size INTEGER NOT NULL, name TEXT NOT NULL, key_id INTEGER NOT NULL, line TEXT NOT NULL,
        PRIMARY KEY (size, name, key_id))""",
    # The opened entry of each sealed one (never served without the access rule).
    """CREATE TABLE IF NOT EXISTS translog_openings (
        idx INTEGER PRIMARY KEY, data BLOB NOT NULL)""",
    # Users named by a committed field of an entry: their "my entries" list.
    """CREATE TABLE IF NOT EXISTS translog_subjects (
        subject TEXT NOT NULL, idx INTEGER NOT NULL, PRIMARY KEY (subject, idx)) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS translog_witness_state (
        origin TEXT PRIMARY KEY, size INTEGER NOT NULL, root BLOB NOT NULL,
        note BLOB NOT NULL, cosignature TEXT NOT NULL)""",
]


def node_id(level: int, index: int) -> int:
    """The row id of node ``(level, index)`` in ``translog_hashes``."""
    return level << 48 | index


class StorageCorrupt(Exception):
    """The database contradicts itself (a stored hash is missing, sizes disagree)."""

    code = "storage_corrupt"


class LegacyLog(StorageCorrupt):
    """The log was written before entries were sealed: its public entries name people."""

    code = "legacy_log"


async def open_connection(path: str) -> aiosqlite.Connection:
    """A connection suitable for the log: autocommit, WAL, full fsync on commit."""
    conn = await aiosqlite.connect(path, isolation_level=None)
    await conn.execute("PRAGMA journal_mode=WAL")
    await conn.execute("PRAGMA synchronous=FULL")
    return conn


async def migrate(conn: aiosqlite.Connection) -> None:
    """Create the ``translog_`` tables if missing (idempotent) and record the schema version."""
    for stmt in _SCHEMA:
        await conn.execute(stmt)
    async with conn.execute("SELECT version FROM translog_schema") as cur:
        row = await cur.fetchone()
    if row is None:
        await conn.execute("INSERT INTO translog_schema (version) VALUES (?)", (SCHEMA_VERSION,))
    elif row[0] == 1:
        async with conn.execute("SELECT COUNT(*) FROM translog_entries") as cur:
            (count,) = await cur.fetchone()  # type: ignore[misc]
        if count:
            raise LegacyLog(
                "this data directory's transparency log was written before log entries were "
                "sealed (schema 1: its public entries name users, devices and rooms); Confide "
                "does not rewrite a signed log, so start this server with a new data directory "
                "and keep the old one for the auditors")
        await conn.execute("UPDATE translog_schema SET version = ?", (SCHEMA_VERSION,))
    elif row[0] != SCHEMA_VERSION:
        raise StorageCorrupt(f"translog schema version {row[0]}, expected {SCHEMA_VERSION}")
    if conn.in_transaction:
        await conn.commit()


class LogStorage:
    """Reads and batched writes of one log's tables over an autocommit connection."""

    def __init__(self, conn: aiosqlite.Connection, lock: Any = None) -> None:
        """``lock`` (an async context manager) serializes the write transactions; the
        homeserver passes its database's lock, so that its two connections to one file
        do not wait for each other in SQLite's busy handler."""
        self.conn = conn
        self._lock = lock if lock is not None else asyncio.Lock()

    async def _transaction(self, statements: Sequence[tuple[str, Sequence]]) -> None:
        async with self._lock:
            await begin(self.conn)
            try:
                for sql, rows in statements:
                    if rows:
                        await self.conn.executemany(sql, rows)
                await self.conn.execute("COMMIT")
            except BaseException:
                await rollback(self.conn)
                raise

    async def append_batch(
        self,
        entries: Sequence[tuple[int, bytes]],
        hashes: Sequence[tuple[MerkleNode, bytes]],
        events: Sequence[tuple[bytes, int]],
        checkpoint: tuple[int, bytes],
        openings: Sequence[tuple[int, bytes]] = (),
        subjects: Sequence[tuple[str, int]] = (),
    ) -> None:
        """Write one batch (sealed entries, their openings and subjects) and its signed
        checkpoint atomically."""
        await self._transaction([
            ("INSERT INTO translog_entries (idx, data) VALUES (?, ?)", entries),
            ("INSERT INTO translog_openings (idx, data) VALUES (?, ?)", openings),
            ("INSERT OR IGNORE INTO translog_subjects (subject, idx) VALUES (?, ?)", subjects),
            ("INSERT INTO translog_hashes (id, hash) VALUES (?, ?)",
             [(node_id(n.level, n.index), h) for n, h in hashes]),
            ("INSERT OR IGNORE INTO translog_events (event_hash, idx) VALUES (?, ?)", events),
            ("INSERT OR REPLACE INTO translog_checkpoints (size, note) VALUES (?, ?)", [checkpoint]),
        ])

    async def put_checkpoint(self, size: int, note: bytes) -> None:
        await self._transaction([
            ("INSERT OR REPLACE INTO translog_checkpoints (size, note) VALUES (?, ?)", [(size, note)])
        ])

    async def size(self) -> int:
        async with self.conn.execute("SELECT MAX(idx) FROM translog_entries") as cur:
            row = await cur.fetchone()
        return 0 if row is None or row[0] is None else row[0] + 1

    async def read_hashes(self, nodes: Sequence[MerkleNode]) -> list[bytes]:
        """The stored hash of each node, in order; :class:`StorageCorrupt` if one is missing."""
        ids = [node_id(n.level, n.index) for n in nodes]
        found: dict[int, bytes] = {}
        unique = list(dict.fromkeys(ids))
        for i in range(0, len(unique), 500):
            chunk = unique[i : i + 500]
            sql = f"SELECT id, hash FROM translog_hashes WHERE id IN ({','.join('?' * len(chunk))})"
            async with self.conn.execute(sql, chunk) as cur:
                async for row_id, h in cur:
                    found[row_id] = h
        try:
            return [found[i] for i in ids]
        except KeyError as exc:
            raise StorageCorrupt(f"stored hash {exc.args[0]:#x} missing") from exc

    async def read_hash_range(self, level: int, start: int, count: int) -> list[bytes]:
        lo = node_id(level, start)
        async with self.conn.execute(
            "SELECT id, hash FROM translog_hashes WHERE id >= ? AND id < ? ORDER BY id",
            (lo, lo + count),
        ) as cur:
            rows = await cur.fetchall()
        if [r[0] for r in rows] != list(range(lo, lo + count)):
            raise StorageCorrupt(f"stored hashes at level {level} from {start} are incomplete")
        return [r[1] for r in rows]

    async def read_entries(self, start: int, count: int) -> list[bytes]:
        """Entries ``start .. start+count-1`` as stored, in index order (gaps are not filled)."""
        async with self.conn.execute(
            "SELECT data FROM translog_entries WHERE idx >= ? AND idx < ? ORDER BY idx",
            (start, start + count),
        ) as cur:
            return [r[0] for r in await cur.fetchall()]

    async def read_opened(self, index: int) -> bytes | None:
        """The opened entry at ``index`` (None beyond the log)."""
        async with self.conn.execute("SELECT data FROM translog_openings WHERE idx = ?", (index,)) as cur:
            row = await cur.fetchone()
        return None if row is None else bytes(row[0])

    async def read_opened_range(self, start: int, count: int) -> list[bytes]:
        """Opened entries ``start .. start+count-1``, in index order (operators and tests)."""
        async with self.conn.execute(
            "SELECT data FROM translog_openings WHERE idx >= ? AND idx < ? ORDER BY idx",
            (start, start + count),
        ) as cur:
            return [bytes(r[0]) for r in await cur.fetchall()]

    async def subject_indexes(self, subject: str, start: int, limit: int, below: int) -> list[int]:
        """Indexes from ``start`` (and below ``below``) of entries naming ``subject``, ascending."""
        async with self.conn.execute(
            "SELECT idx FROM translog_subjects WHERE subject = ? AND idx >= ? AND idx < ? "
            "ORDER BY idx LIMIT ?", (subject, start, below, limit),
        ) as cur:
            return [r[0] for r in await cur.fetchall()]

    async def checkpoint_note(self, size: int | None = None) -> tuple[int, bytes] | None:
        """The signed checkpoint at ``size`` (the latest when None)."""
        if size is None:
            sql, params = "SELECT size, note FROM translog_checkpoints ORDER BY size DESC LIMIT 1", ()
        else:
            sql, params = "SELECT size, note FROM translog_checkpoints WHERE size = ?", (size,)
        async with self.conn.execute(sql, params) as cur:
            row = await cur.fetchone()
        return None if row is None else (row[0], bytes(row[1]))

    async def event_index(self, event_hash: bytes) -> int | None:
        async with self.conn.execute(
            "SELECT idx FROM translog_events WHERE event_hash = ?", (event_hash,)
        ) as cur:
            row = await cur.fetchone()
        return None if row is None else row[0]

    # -- cosignatures the log received on its own checkpoints -------------------

    async def add_cosignatures(self, size: int, sigs: Sequence[tuple[str, int, str]]) -> None:
        await self._transaction([
            ("INSERT OR REPLACE INTO translog_cosignatures (size, name, key_id, line) "
             "VALUES (?, ?, ?, ?)", [(size, n, k, line) for n, k, line in sigs])
        ])

    async def latest_cosigned_size(self, min_count: int) -> int | None:
        """The largest tree size with cosignatures of at least ``min_count`` keys."""
        async with self.conn.execute(
            "SELECT size FROM translog_cosignatures GROUP BY size HAVING COUNT(*) >= ? "
            "ORDER BY size DESC LIMIT 1", (min_count,)
        ) as cur:
            row = await cur.fetchone()
        return None if row is None else int(row[0])

    async def cosignature_lines(self, size: int) -> list[str]:
        async with self.conn.execute(
            "SELECT line FROM translog_cosignatures WHERE size = ? ORDER BY name, key_id", (size,)
        ) as cur:
            return [r[0] for r in await cur.fetchall()]

    # -- witness state: the last checkpoint cosigned per origin ------------------

    async def witness_state(self, origin: str) -> tuple[int, bytes, bytes, str] | None:
        async with self.conn.execute(
            "SELECT size, root, note, cosignature FROM translog_witness_state WHERE origin = ?",
            (origin,),
        ) as cur:
            row = await cur.fetchone()
        return None if row is None else (row[0], bytes(row[1]), bytes(row[2]), row[3])

    async def witness_advance(
        self, origin: str, old_size: int, new_size: int, root: bytes, note: bytes, cosignature: str
    ) -> int | None:
        """Atomically move ``origin`` from ``old_size`` to ``new_size``.

        Returns None on success, or the size actually recorded when it is not
        ``old_size`` (the caller answers 409 with it). Check and write happen
        in one ``BEGIN IMMEDIATE`` transaction.
        """
        async with self._lock:
            await begin(self.conn)
            try:
                async with self.conn.execute(
                    "SELECT size FROM translog_witness_state WHERE origin = ?", (origin,)
                ) as cur:
                    row = await cur.fetchone()
                current = 0 if row is None else row[0]
                if current != old_size:
                    await self.conn.execute("ROLLBACK")
                    return current
                await self.conn.execute(
                    "INSERT OR REPLACE INTO translog_witness_state "
                    "(origin, size, root, note, cosignature) VALUES (?, ?, ?, ?, ?)",
                    (origin, new_size, root, note, cosignature),
                )
                await self.conn.execute("COMMIT")
                return None
            except BaseException:
                await rollback(self.conn)
                raise
