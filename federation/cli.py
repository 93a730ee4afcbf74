"""``confide admin rotate-key`` and ``confide admin federation``: offline federation administration.

- ``confide admin rotate-key --data DIR [--overlap SECONDS]`` retires the
  current federation signing key at now + overlap (default 300 s: requests the
  running server signs before it reloads its keys, within 10 s, stay valid)
  and creates a new current key; prints the new key id.
- ``confide admin federation --data DIR`` lists each destination with its
  queue depth, oldest item, consecutive failures, next retry and last error,
  then the followed rooms that are stuck (:mod:`federation.stuck_rooms`): the
  seq and event they stopped at, the refusal's code, since when, attempts and
  the reason (``spec/server-server.md`` 11.4 says what the operator does).

- ``confide admin federation parked --data DIR`` lists parked transactions;
  ``retry TXN_ID`` puts one back at the head of its destination's queue (the
  running server sends it within its idle poll, 30 s); ``drop TXN_ID`` deletes
  it for good (``spec/server-server.md`` 6.1).

All work while the server runs (they use the database like the server does).
They are added under the ``admin`` command of :mod:`server.cli_admin`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

__all__ = ["register", "format_states", "format_stuck", "format_parked"]


def _admin_subparsers(subparsers: argparse._SubParsersAction) -> argparse._SubParsersAction:
    admin = subparsers.choices.get("admin")
    if admin is None:
        admin = subparsers.add_parser("admin", help="administer a data directory")
        return admin.add_subparsers(dest="admin_command", required=True)
    for action in admin._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return admin.add_subparsers(dest="admin_command", required=True)


def register(subparsers: argparse._SubParsersAction) -> None:
    sub = _admin_subparsers(subparsers)
    rk = sub.add_parser("rotate-key", help="rotate the federation signing key")
    rk.add_argument("--data", type=Path, required=True, help="the server's data directory")
    rk.add_argument("--overlap", type=int, default=300,
                    help="seconds the old key stays valid for signatures (default 300)")
    rk.set_defaults(func=_run_rotate)
    fd = sub.add_parser("federation", help="list federation destinations and their queues")
    fd.add_argument("--data", type=Path, help="the server's data directory (required)")
    fd.set_defaults(func=_run_federation)
    actions = fd.add_subparsers(dest="federation_command")
    pk = actions.add_parser("parked", help="list parked transactions")
    pk.add_argument("--data", type=Path, required=True)
    pk.set_defaults(func=_run_parked)
    for name, text in (("retry", "put a parked transaction back at the head of its queue"),
                       ("drop", "delete a parked transaction for good")):
        p = actions.add_parser(name, help=text)
        p.add_argument("txn_id")
        p.add_argument("--data", type=Path, required=True)
        p.set_defaults(func=_run_retry if name == "retry" else _run_drop)


async def _open(data: Path):
    from server.config import Config
    from server.storage import Database

    if not (data / "confide.sqlite").exists():
        raise FileNotFoundError(f"{data} holds no Confide database")
    return await Database.open(Config(data_dir=data).database_path)


def _run_rotate(args: argparse.Namespace) -> int:
    from crypto.rng import system_rng

    from .keyring import rotate

    if not 0 <= args.overlap <= 7 * 86400:
        print("confide admin rotate-key: --overlap must be 0..604800 seconds", file=sys.stderr)
        return 2

    async def go() -> str:
        db = await _open(args.data)
        try:
            return await rotate(db, args.data / "keys", system_rng, int(time.time() * 1000), args.overlap * 1000)
        finally:
            await db.close()

    try:
        print(asyncio.run(go()))
    except FileNotFoundError as exc:
        print(f"confide admin rotate-key: {exc}", file=sys.stderr)
        return 2
    return 0


def _when(ms: int | None, now_ms: int) -> str:
    if ms is None:
        return "-"
    if ms <= now_ms:
        return "now"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_states(states, now_ms: int) -> str:
    """The table ``confide admin federation`` prints."""
    rows = [("destination", "queued", "oldest", "attempts", "next_retry", "parked", "last_error")]
    for s in states:
        rows.append((s.destination, str(s.queued), _when(s.oldest, -1) if s.oldest else "-", str(s.attempts),
                     _when(s.next_attempt, now_ms) if s.queued else "-", str(s.parked), s.last_error or "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def format_stuck(rooms) -> str:
    """The stuck rooms' table of ``confide admin federation`` ("" when there are none)."""
    if not rooms:
        return ""
    rows = [("stuck room", "seq", "event", "code", "since", "attempts", "reason")]
    for r in rooms:
        rows.append((r.room_id, str(r.seq), r.event_id.hex()[:16] if r.event_id else "-", r.code,
                     _when(r.since, -1), str(r.attempts), r.reason))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join("  ".join([*(c.ljust(w) for c, w in zip(r, widths, strict=False)), r[-1]]).rstrip()
                     for r in rows)


def _run_federation(args: argparse.Namespace) -> int:
    from . import store, stuck_rooms

    if args.data is None:
        print("confide admin federation: --data DIR is required", file=sys.stderr)
        return 2

    async def go():
        db = await _open(args.data)
        try:
            async with db.read() as conn:
                return await store.destination_states(conn), await stuck_rooms.list_stuck(conn)
        finally:
            await db.close()

    try:
        states, stuck = asyncio.run(go())
    except FileNotFoundError as exc:
        print(f"confide admin federation: {exc}", file=sys.stderr)
        return 2
    print(format_states(states, int(time.time() * 1000)))
    table = format_stuck(stuck)
    if table:
        print()
        print(table)
    return 0


def format_parked(parked) -> str:
    """The table ``confide admin federation parked`` prints."""
    if not parked:
        return "no parked transactions"
    rows = [("txn_id", "destination", "items", "bytes", "parked", "reason")]
    for p in parked:
        rows.append((p.txn_id, p.destination, str(p.items), str(p.bytes), _when(p.parked_at, -1), p.reason))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def _with_db(args: argparse.Namespace, name: str, work) -> tuple[int, object]:
    async def go():
        db = await _open(args.data)
        try:
            return await work(db)
        finally:
            await db.close()

    try:
        return 0, asyncio.run(go())
    except FileNotFoundError as exc:
        print(f"confide admin federation {name}: {exc}", file=sys.stderr)
        return 2, None


def _run_parked(args: argparse.Namespace) -> int:
    from . import store

    async def work(db):
        async with db.read() as conn:
            return await store.parked_txns(conn)

    rc, parked = _with_db(args, "parked", work)
    if rc == 0:
        print(format_parked(parked))
    return rc


def _run_retry(args: argparse.Namespace) -> int:
    from . import store

    async def work(db):
        async with db.transaction() as tx:
            return await store.unpark_txn(tx, args.txn_id)

    rc, destination = _with_db(args, "retry", work)
    if rc:
        return rc
    if destination is None:
        print(f"confide admin federation retry: no parked transaction {args.txn_id!r}", file=sys.stderr)
        return 1
    print(f"transaction {args.txn_id} is back at the head of the queue for {destination}")
    return 0


def _run_drop(args: argparse.Namespace) -> int:
    from . import store

    async def work(db):
        async with db.transaction() as tx:
            return await store.drop_parked_txn(tx, args.txn_id)

    rc, rows = _with_db(args, "drop", work)
    if rc:
        return rc
    if not rows:
        print(f"confide admin federation drop: no parked transaction {args.txn_id!r}", file=sys.stderr)
        return 1
    print(f"dropped transaction {args.txn_id} ({rows} items)")
    return 0
