"""``confide admin auditor add|list|revoke --data DIR [NAME]``: auditor credentials.

- ``add NAME`` prints a new credential once (only its hash is stored); the auditor
  passes it to ``confide audit verify URL --credential TOKEN`` to open entries;
- ``list`` prints each auditor with its creation time and whether it is revoked;
- ``revoke NAME`` ends a credential at once.

Each expected failure is one sentence on stderr with exit status 1 (exists, unknown)
or 2 (usage).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import re
import sys
import time
from pathlib import Path

from crypto.rng import system_rng

__all__ = ["register"]

_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


def register(sub: argparse._SubParsersAction) -> None:
    aud = sub.add_parser("auditor", help="auditor credentials for the private log's openings")
    asub = aud.add_subparsers(dest="auditor_command", required=True)
    for cmd, helptext in (("add", "create an auditor and print its credential once"),
                          ("list", "list auditors"), ("revoke", "revoke an auditor's credential")):
        p = asub.add_parser(cmd, help=helptext)
        p.add_argument("--data", type=Path, required=True, help="the server's data directory")
        if cmd != "list":
            p.add_argument("name", help="lower-case letters, digits, '.', '_', '-' (at most 64)")
        p.set_defaults(func=_run, auditor_command=cmd)


def _iso(ms: int) -> str:
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _run(args: argparse.Namespace) -> int:
    from server.config import Config
    from server.services.log_openings import auditor_token_hash, new_auditor_token
    from server.storage import AlreadyExists, Database, NoSuchRow, log_privacy

    cmd = args.auditor_command
    if cmd != "list" and not _NAME.fullmatch(args.name):
        print(f"confide admin auditor: {args.name!r} is not a valid auditor name", file=sys.stderr)
        return 2
    if not Config(data_dir=args.data).database_path.exists():
        print(f"confide admin auditor: {args.data} is not a server data directory", file=sys.stderr)
        return 2

    async def go() -> str:
        db = await Database.open(Config(data_dir=args.data).database_path)
        now = int(time.time() * 1000)
        try:
            if cmd == "add":
                token = new_auditor_token(system_rng(32))
                async with db.transaction() as tx:
                    await log_privacy.add_auditor(tx, args.name, auditor_token_hash(token), now)
                return token
            if cmd == "revoke":
                async with db.transaction() as tx:
                    await log_privacy.revoke_auditor(tx, args.name, now)
                return f"revoked {args.name}"
            async with db.read() as conn:
                rows = await log_privacy.list_auditors(conn)
            return "\n".join(f"{a.name}  created {_iso(a.created_at)}  " +
                             (f"revoked {_iso(a.revoked_at)}" if a.revoked_at else "valid")
                             for a in rows)
        finally:
            await db.close()

    try:
        out = asyncio.run(go())
    except AlreadyExists:
        print(f"confide admin auditor: an auditor named {args.name} exists", file=sys.stderr)
        return 1
    except NoSuchRow:
        print(f"confide admin auditor: no valid auditor named {args.name}", file=sys.stderr)
        return 1
    if out:
        print(out)
    return 0
