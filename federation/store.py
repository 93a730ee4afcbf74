"""Federation's tables (migration 2 of :mod:`server.storage.migrations`): functions over a connection.

- ``federation_server_keys``: this server's signing keys (public part and validity);
- ``federation_outbox``: the durable outbound queue, one row per item, delivered
  per destination in ``id`` order; a row gets its ``txn_id`` when it is first
  batched and keeps it across retries, so a retried transaction is the same
  transaction;
- parked transactions (migration 6): rows of a transaction the peer refused for
  good, or that failed ``max_txn_attempts`` times, get ``parked_at`` and
  ``parked_reason`` and leave the queue (the next transaction goes); they stay
  until the operator retries (:func:`unpark_txn`) or drops (:func:`drop_parked_txn`) them;
- ``federation_destinations``: retry state per destination (the head
  transaction's consecutive failures and next attempt);
- ``federation_inbound_txns``: transactions applied, by ``(origin, txn_id)``.

Callers pass the connection of :meth:`server.storage.Database.transaction` or
``read``. Times are milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import aiosqlite

from protocol.errors import MalformedBody
from protocol.federation import MAX_ITEM_DATA, parse_item_kind
from protocol.ids import parse_server_name

__all__ = [
    "KeyRow",
    "OutboxItem",
    "DestinationState",
    "list_keys",
    "insert_key",
    "retire_current_keys",
    "enqueue",
    "head_batch",
    "delete_txn",
    "record_failure",
    "record_success",
    "due_destinations",
    "ParkedTxn",
    "park_txn",
    "parked_txns",
    "unpark_txn",
    "drop_parked_txn",
    "destination_states",
    "inbound_result",
    "record_inbound",
    "prune_inbound",
]


@dataclass(frozen=True)
class KeyRow:
    key_id: str
    public_key: bytes
    valid_from: int
    valid_until: int | None


@dataclass(frozen=True)
class OutboxItem:
    id: int
    kind: str
    payload: bytes


@dataclass(frozen=True)
class DestinationState:
    destination: str
    queued: int
    oldest: int | None
    attempts: int
    next_attempt: int
    last_error: str | None
    last_success: int | None
    parked: int = 0


@dataclass(frozen=True)
class ParkedTxn:
    txn_id: str
    destination: str
    items: int
    bytes: int
    parked_at: int
    reason: str


# -- own keys ------------------------------------------------------------------------


async def list_keys(conn: aiosqlite.Connection) -> list[KeyRow]:
    async with conn.execute(
        "SELECT key_id, public_key, valid_from, valid_until FROM federation_server_keys ORDER BY valid_from"
    ) as cur:
        return [KeyRow(r[0], bytes(r[1]), r[2], r[3]) for r in await cur.fetchall()]


async def insert_key(tx: aiosqlite.Connection, row: KeyRow) -> None:
    await tx.execute(
        "INSERT INTO federation_server_keys (key_id, public_key, valid_from, valid_until) VALUES (?, ?, ?, ?)",
        (row.key_id, row.public_key, row.valid_from, row.valid_until))


async def retire_current_keys(tx: aiosqlite.Connection, valid_until: int) -> list[str]:
    """End every open-ended key at ``valid_until``; returns their ids."""
    async with tx.execute("SELECT key_id FROM federation_server_keys WHERE valid_until IS NULL") as cur:
        ids = [r[0] for r in await cur.fetchall()]
    await tx.execute("UPDATE federation_server_keys SET valid_until = ? WHERE valid_until IS NULL",
                     (valid_until,))
    return ids


# -- outbox --------------------------------------------------------------------------


async def enqueue(tx: aiosqlite.Connection, destination: str, kind: str, payload: bytes, now_ms: int) -> int:
    """Queue one item for ``destination`` (in the caller's transaction); returns its id.

    Call this in the same transaction as the change the item announces, then
    :meth:`federation.FederationSender.wake` after the commit. Raises
    :class:`~protocol.errors.InvalidIdentifier` for a bad destination and
    :class:`~protocol.errors.MalformedBody` for a bad kind or a payload over
    :data:`~protocol.federation.MAX_ITEM_DATA`.
    """
    parse_server_name(destination)
    parse_item_kind(kind)
    if len(payload) > MAX_ITEM_DATA:
        raise MalformedBody(f"an item's data is at most {MAX_ITEM_DATA} bytes")
    cur = await tx.execute(
        "INSERT INTO federation_outbox (destination, kind, payload, created) VALUES (?, ?, ?, ?)",
        (destination, kind, bytes(payload), now_ms))
    await tx.execute("INSERT OR IGNORE INTO federation_destinations (destination) VALUES (?)", (destination,))
    return int(cur.lastrowid)


async def head_batch(tx: aiosqlite.Connection, destination: str, new_txn_id: str, max_items: int,
                     max_bytes: int) -> tuple[str, list[OutboxItem]] | None:
    """The destination's head transaction: the rows already batched under one txn id
    (a retry), else the next ``max_items`` rows (at most ``max_bytes`` of payload,
    at least one row) newly assigned ``new_txn_id``. None when the queue is empty."""
    async with tx.execute(
        "SELECT txn_id FROM federation_outbox WHERE destination = ? AND parked_at IS NULL "
        "ORDER BY id LIMIT 1", (destination,)
    ) as cur:
        row = await cur.fetchone()
    if row is None:
        return None
    txn_id = row[0]
    if txn_id is None:
        async with tx.execute(
            "SELECT id, length(payload) FROM federation_outbox WHERE destination = ? AND txn_id IS NULL "
            "AND parked_at IS NULL "
            "ORDER BY id LIMIT ?", (destination, max_items)
        ) as cur:
            rows = await cur.fetchall()
        chosen, total = [], 0
        for rid, size in rows:
            if chosen and total + size > max_bytes:
                break
            chosen.append(rid)
            total += size
        await tx.executemany("UPDATE federation_outbox SET txn_id = ? WHERE id = ?",
                             [(new_txn_id, rid) for rid in chosen])
        txn_id = new_txn_id
    async with tx.execute(
        "SELECT id, kind, payload FROM federation_outbox WHERE destination = ? AND txn_id = ? ORDER BY id",
        (destination, txn_id)
    ) as cur:
        items = [OutboxItem(r[0], r[1], bytes(r[2])) for r in await cur.fetchall()]
    return txn_id, items


async def delete_txn(tx: aiosqlite.Connection, destination: str, txn_id: str) -> int:
    cur = await tx.execute("DELETE FROM federation_outbox WHERE destination = ? AND txn_id = ?",
                           (destination, txn_id))
    return cur.rowcount


async def record_success(tx: aiosqlite.Connection, destination: str, now_ms: int) -> None:
    await tx.execute(
        "INSERT INTO federation_destinations (destination, attempts, next_attempt, last_success) "
        "VALUES (?, 0, 0, ?) ON CONFLICT (destination) DO UPDATE SET attempts = 0, next_attempt = 0, "
        "last_error = NULL, last_success = excluded.last_success", (destination, now_ms))


async def record_failure(tx: aiosqlite.Connection, destination: str, error: str,
                         delay_for_attempts) -> tuple[int, int]:
    """Count one more failure; ``delay_for_attempts(n) -> (next_attempt_ms)``. Returns
    ``(attempts, next_attempt)``."""
    async with tx.execute("SELECT attempts FROM federation_destinations WHERE destination = ?",
                          (destination,)) as cur:
        row = await cur.fetchone()
    attempts = (row[0] if row else 0) + 1
    next_attempt = delay_for_attempts(attempts)
    await tx.execute(
        "INSERT INTO federation_destinations (destination, attempts, next_attempt, last_error) "
        "VALUES (?, ?, ?, ?) ON CONFLICT (destination) DO UPDATE SET attempts = excluded.attempts, "
        "next_attempt = excluded.next_attempt, last_error = excluded.last_error",
        (destination, attempts, next_attempt, error[:200]))
    return attempts, next_attempt


async def due_destinations(conn: aiosqlite.Connection) -> list[tuple[str, int]]:
    """Every destination with queued items and its next attempt (0: now)."""
    async with conn.execute(
        "SELECT o.destination, COALESCE(d.next_attempt, 0) FROM "
        "(SELECT DISTINCT destination FROM federation_outbox WHERE parked_at IS NULL) o "
        "LEFT JOIN federation_destinations d ON d.destination = o.destination"
    ) as cur:
        return [(r[0], r[1]) for r in await cur.fetchall()]


async def destination_states(conn: aiosqlite.Connection) -> list[DestinationState]:
    """Every known destination with its queue depth (parked rows not counted), retry
    state and number of parked transactions, by name."""
    async with conn.execute(
        "SELECT d.destination, COUNT(o.id) - COUNT(o.parked_at), MIN(o.created), d.attempts, "
        "d.next_attempt, d.last_error, d.last_success, "
        "COUNT(DISTINCT CASE WHEN o.parked_at IS NOT NULL THEN o.txn_id END) FROM federation_destinations d "
        "LEFT JOIN federation_outbox o ON o.destination = d.destination "
        "GROUP BY d.destination ORDER BY d.destination"
    ) as cur:
        return [DestinationState(*r) for r in await cur.fetchall()]


# -- parked transactions ---------------------------------------------------------------


async def park_txn(tx: aiosqlite.Connection, destination: str, txn_id: str, reason: str, now_ms: int) -> int:
    """Take the transaction's rows out of the queue with ``reason`` (a code and status,
    never payload) and reset the destination's retry state so the next transaction
    goes at once; returns the rows parked."""
    cur = await tx.execute(
        "UPDATE federation_outbox SET parked_at = ?, parked_reason = ? WHERE destination = ? AND txn_id = ?",
        (now_ms, reason[:200], destination, txn_id))
    await tx.execute("UPDATE federation_destinations SET attempts = 0, next_attempt = 0 WHERE destination = ?",
                     (destination,))
    return cur.rowcount


async def parked_txns(conn: aiosqlite.Connection) -> list[ParkedTxn]:
    """Every parked transaction, oldest first."""
    async with conn.execute(
        "SELECT txn_id, destination, COUNT(*), SUM(length(payload)), MIN(parked_at), MIN(parked_reason) "
        "FROM federation_outbox WHERE parked_at IS NOT NULL GROUP BY destination, txn_id ORDER BY MIN(id)"
    ) as cur:
        return [ParkedTxn(*r) for r in await cur.fetchall()]


async def unpark_txn(tx: aiosqlite.Connection, txn_id: str) -> str | None:
    """Put a parked transaction back in its destination's queue, due now; its rows keep
    their ids, which are lower than every later item's, so it is the head again (after a
    transaction in flight). Returns the destination, None when no transaction is parked
    under ``txn_id``."""
    async with tx.execute("SELECT destination FROM federation_outbox WHERE txn_id = ? AND parked_at IS NOT NULL "
                          "LIMIT 1", (txn_id,)) as cur:
        row = await cur.fetchone()
    if row is None:
        return None
    await tx.execute("UPDATE federation_outbox SET parked_at = NULL, parked_reason = NULL WHERE txn_id = ? "
                     "AND destination = ?", (txn_id, row[0]))
    await tx.execute("UPDATE federation_destinations SET attempts = 0, next_attempt = 0 WHERE destination = ?",
                     (row[0],))
    return row[0]


async def drop_parked_txn(tx: aiosqlite.Connection, txn_id: str) -> int:
    """Delete a parked transaction's rows (the operator's decision); returns the rows
    deleted, 0 when no transaction is parked under ``txn_id``."""
    cur = await tx.execute("DELETE FROM federation_outbox WHERE txn_id = ? AND parked_at IS NOT NULL", (txn_id,))
    return cur.rowcount


# -- inbound -------------------------------------------------------------------------


async def inbound_result(conn: aiosqlite.Connection, origin: str, txn_id: str) -> bytes | None:
    async with conn.execute(
        "SELECT results FROM federation_inbound_txns WHERE origin = ? AND txn_id = ?", (origin, txn_id)
    ) as cur:
        row = await cur.fetchone()
    return None if row is None else bytes(row[0])


async def record_inbound(tx: aiosqlite.Connection, origin: str, txn_id: str, now_ms: int,
                         results: bytes) -> None:
    await tx.execute(
        "INSERT INTO federation_inbound_txns (origin, txn_id, received_at, results) VALUES (?, ?, ?, ?)",
        (origin, txn_id, now_ms, results))


async def prune_inbound(tx: aiosqlite.Connection, before_ms: int) -> int:
    cur = await tx.execute("DELETE FROM federation_inbound_txns WHERE received_at < ?", (before_ms,))
    return cur.rowcount
