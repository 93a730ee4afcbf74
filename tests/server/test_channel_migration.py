"""The finding-9 migration step (``spec/security.md``, ``_V8_NO_PLAINTEXT_CHANNELS``): a
database made before it keeps device names and transaction ids in the clear; after it,
neither is anywhere in the file or its WAL (the column is dropped, the ids deleted, and
``secure_delete``, which ``server.storage.database.connect`` sets whatever the SQLite
build's default, zeroes the freed pages)."""

from __future__ import annotations

import sqlite3

from server.storage.database import connect
from server.storage.migrations import MIGRATIONS, migrate, schema_version

NAME = "Zelda Quimby-Marsh's phone"
TXN = "Zelda-Quimby-bipolar-II"
#: The step that drops the names (found by what it does: the steps may be renumbered).
STEP = next(i for i, m in enumerate(MIGRATIONS) if "ALTER TABLE devices DROP COLUMN display_name" in m)


def _schema_before(path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    for stmts in MIGRATIONS[:STEP]:
        for stmt in stmts:
            conn.execute(stmt)
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    conn.execute("INSERT INTO schema_version (version) VALUES (?)", (STEP,))
    conn.execute("INSERT INTO accounts VALUES ('@zq:h.test', 'client', 'x', 1)")
    for i in range(50):
        conn.execute("INSERT INTO devices (user_id, device_id, display_name, created_at, last_seen) "
                     "VALUES ('@zq:h.test', ?, ?, 1, 1)", (f"D{i}", f"{NAME} {i}"))
        conn.execute("INSERT INTO txn_ids VALUES ('@zq:h.test', 'D0', 'create', ?, x'00', 1)",
                     (f"{TXN}-{i}",))
    conn.commit()
    conn.close()


def _holds(path, needle: bytes) -> bool:
    return any(p.exists() and needle in p.read_bytes()
               for p in (path, path.with_name(path.name + "-wal")))


async def test_the_migration_leaves_no_device_name_or_txn_id_in_the_file(tmp_path):
    path = tmp_path / "confide.sqlite"
    _schema_before(path)
    assert _holds(path, NAME.encode()) and _holds(path, TXN.encode())  # the check can fail
    conn = await connect(path)
    try:
        assert await migrate(conn) == len(MIGRATIONS)
        assert await schema_version(conn) == len(MIGRATIONS)
        cols = [r[1] for r in await conn.execute_fetchall("PRAGMA table_info(devices)")]
        assert "display_name" not in cols and len(await conn.execute_fetchall(
            "SELECT * FROM devices")) == 50
        assert await conn.execute_fetchall("SELECT * FROM txn_ids") == []
        await conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        await conn.close()
    assert not _holds(path, NAME.encode())
    assert not _holds(path, TXN.encode())
