"""``confide admin``: offline administration of a data directory.

- ``confide admin invite --data DIR --role clinician|staff|client`` prints a
  new single-use invite code (only its hash is stored).
- ``confide admin create-user --data DIR --user NAME --role ROLE [--password-stdin]``
  creates an account (roles: admin, clinician, staff, client). The password
  is read from stdin (first line) with ``--password-stdin``; otherwise a
  random one is generated and printed once.

- ``confide admin auditor add|list|revoke --data DIR [NAME]``: auditor credentials
  (:mod:`server.cli_auditor`).

All work while the server runs (SQLite allows several writers in turn). The
server name comes from the database (fixed at first start) or, for a new
data directory, from ``--server-name`` (default ``localhost``). The
``account_created`` log entry is queued in the database and appended to the
transparency log by the server (at start and every 30 seconds).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import sys
import time
from pathlib import Path

from crypto.rng import system_rng
from protocol.api import INVITE_ROLES, MAX_PASSWORD, MIN_NEW_PASSWORD, ROLES
from protocol.errors import InvalidIdentifier
from protocol.ids import UserId
from server.config import Config, ConfigError

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    admin = subparsers.add_parser("admin", help="administer a data directory")
    sub = admin.add_subparsers(dest="admin_command", required=True)
    inv = sub.add_parser("invite", help="print a new single-use invite code")
    inv.add_argument("--data", type=Path, required=True, help="the server's data directory")
    inv.add_argument("--role", required=True, choices=INVITE_ROLES)
    inv.add_argument("--server-name", default="localhost", help="for a new data directory only")
    inv.set_defaults(func=_run_invite)
    cu = sub.add_parser("create-user", help="create an account")
    cu.add_argument("--data", type=Path, required=True)
    cu.add_argument("--user", required=True, help="localpart (or full user id of this server)")
    cu.add_argument("--role", required=True, choices=ROLES)
    cu.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    cu.add_argument("--server-name", default="localhost", help="for a new data directory only")
    cu.set_defaults(func=_run_create_user)
    from server.cli_auditor import register as register_auditor

    register_auditor(sub)


async def _open(data: Path, server_name: str):
    from server.storage import Database, meta

    data.mkdir(mode=0o700, parents=True, exist_ok=True)
    db = await Database.open(Config(server_name=server_name, data_dir=data).database_path)
    async with db.transaction() as tx:
        name = await meta.get(tx, "server_name")
        if name is None:
            await meta.pin(tx, "server_name", server_name)
            name = server_name
    return db, name


def _run_invite(args: argparse.Namespace) -> int:
    from server.services.provisioning import create_invite

    async def go() -> str:
        db, _ = await _open(args.data, args.server_name)
        try:
            return await create_invite(db, args.role, Config().invites.lifetime, time.time, system_rng)
        finally:
            await db.close()

    try:
        print(asyncio.run(go()))
    except ConfigError as exc:
        print(f"confide admin invite: {exc}", file=sys.stderr)
        return 2
    return 0


def _run_create_user(args: argparse.Namespace) -> int:
    from server.services.passwords import PasswordHasher
    from server.services.provisioning import create_account
    from server.storage import UserAlreadyExists

    generated = None
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = generated = base64.urlsafe_b64encode(system_rng(15)).decode()
    if not MIN_NEW_PASSWORD <= len(password.encode()) <= MAX_PASSWORD:
        print(f"confide admin create-user: a password has {MIN_NEW_PASSWORD}..{MAX_PASSWORD} bytes",
              file=sys.stderr)
        return 2

    async def go() -> str:
        db, name = await _open(args.data, args.server_name)
        try:
            user = UserId.parse(args.user) if args.user.startswith("@") else UserId.of(args.user, name)
            if user.server != name:
                raise InvalidIdentifier(f"this server is {name}")
            await create_account(db, user, args.role, PasswordHasher().hash_sync(password), time.time)
            return str(user)
        finally:
            await db.close()

    try:
        user = asyncio.run(go())
    except (InvalidIdentifier, ConfigError) as exc:
        print(f"confide admin create-user: {exc}", file=sys.stderr)
        return 2
    except UserAlreadyExists:
        print(f"confide admin create-user: {args.user} exists", file=sys.stderr)
        return 1
    print(user)
    if generated is not None:
        print(f"password: {generated}")
    return 0
