"""The witness's durable state (migration 5): pinned peer log keys and recorded split views.

- ``federation_witness_log_keys``: ``origin`` -> the log's verifier key (a C2SP vkey line),
  pinned the first time ``origin`` submitted a checkpoint. A pin is never replaced: a
  peer whose log key changes is refused until an operator deletes the row (the log key
  of a server is meant to live as long as its log).
- ``federation_witness_alerts``: the split views caught (``origin``, ``size``, the refused
  checkpoint note), at most :data:`MAX_ALERTS_PER_ORIGIN` per origin: the first ones are
  kept, as they are the evidence, and a peer cannot push another peer's alerts out.

Functions over a connection of :meth:`server.storage.Database.transaction` or ``read``.
"""

from __future__ import annotations

import aiosqlite

__all__ = ["MAX_ALERTS_PER_ORIGIN", "pinned_keys", "pin_key", "alerts", "record_alert"]

MAX_ALERTS_PER_ORIGIN = 100


async def pinned_keys(conn: aiosqlite.Connection) -> dict[str, str]:
    """origin -> vkey line of every pinned peer log key."""
    rows = await conn.execute_fetchall("SELECT origin, vkey FROM federation_witness_log_keys")
    return {r[0]: r[1] for r in rows}


async def pin_key(tx: aiosqlite.Connection, origin: str, vkey: str, now_ms: int) -> str:
    """Pin ``vkey`` for ``origin`` unless a key is pinned already; returns the pinned key."""
    await tx.execute("INSERT OR IGNORE INTO federation_witness_log_keys (origin, vkey, pinned_at) "
                     "VALUES (?, ?, ?)", (origin, vkey, now_ms))
    rows = await tx.execute_fetchall("SELECT vkey FROM federation_witness_log_keys WHERE origin = ?",
                                     (origin,))
    return rows[0][0]


async def alerts(conn: aiosqlite.Connection) -> list[dict]:
    """Every recorded split view, oldest first: ``{origin, size, checkpoint}``."""
    rows = await conn.execute_fetchall(
        "SELECT origin, size, checkpoint FROM federation_witness_alerts ORDER BY id")
    return [{"origin": r[0], "size": r[1], "checkpoint": r[2]} for r in rows]


async def record_alert(tx: aiosqlite.Connection, origin: str, size: int, checkpoint: str,
                       now_ms: int) -> bool:
    """Record a split view; False (nothing written) when ``origin`` has its maximum already."""
    rows = await tx.execute_fetchall("SELECT COUNT(*) FROM federation_witness_alerts WHERE origin = ?",
                                     (origin,))
    if rows[0][0] >= MAX_ALERTS_PER_ORIGIN:
        return False
    await tx.execute("INSERT INTO federation_witness_alerts (origin, size, checkpoint, recorded_at) "
                     "VALUES (?, ?, ?, ?)", (origin, size, checkpoint, now_ms))
    return True
