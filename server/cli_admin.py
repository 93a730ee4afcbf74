"""``confide admin``: offline administration of a data directory.

- ``confide admin invite --data DIR --role clinician|staff|client [--config FILE]`` prints
  a new single-use invite, ``CODE#ANCHOR``: the code (only its hash is stored) and the
  server's trust anchor (``protocol.trust``: the hash of its trust document, whose log key
  and witness policy the client then holds the server to). The document is the one of
  ``--config`` (with the data directory's log key), else the one the server recorded at
  its last start, else that of a default ``[log]`` section.
- ``confide admin anchor --data DIR [--config FILE]`` prints that anchor alone (for a
  person whose account ``create-user`` made: their first device logs in with it).
- ``confide admin create-user --data DIR --user NAME --role ROLE [--password-stdin]``
  creates an account (roles: admin, clinician, staff, client). The password
  is read from stdin (first line) with ``--password-stdin``; otherwise a
  random one is generated and printed once.
- ``confide admin mfa-reset --data DIR --user NAME`` removes the account's TOTP
  secret and recovery codes (a lost authenticator; ``spec/security.md``, "MFA")
  and queues an ``mfa_disabled`` entry.

- ``confide admin reset-devices --data DIR --user NAME`` removes every device of an
  account whose devices are all lost, so that the next device that logs in is a new
  root: a new identity that peers see as such (``spec/security.md`` finding 2).
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
    inv.add_argument("--config", type=Path, help="the server's configuration (its [log] policy)")
    inv.set_defaults(func=_run_invite)
    anc = sub.add_parser("anchor", help="print the server's trust anchor")
    anc.add_argument("--data", type=Path, required=True, help="the server's data directory")
    anc.add_argument("--server-name", default="localhost", help="for a new data directory only")
    anc.add_argument("--config", type=Path, help="the server's configuration (its [log] policy)")
    anc.set_defaults(func=_run_anchor)
    cu = sub.add_parser("create-user", help="create an account")
    cu.add_argument("--data", type=Path, required=True)
    cu.add_argument("--user", required=True, help="localpart (or full user id of this server)")
    cu.add_argument("--role", required=True, choices=ROLES)
    cu.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    cu.add_argument("--server-name", default="localhost", help="for a new data directory only")
    cu.set_defaults(func=_run_create_user)
    mr = sub.add_parser("mfa-reset", help="remove an account's second factor (lost authenticator)")
    mr.add_argument("--data", type=Path, required=True)
    mr.add_argument("--user", required=True, help="localpart (or full user id of this server)")
    mr.add_argument("--server-name", default="localhost", help="for a new data directory only")
    mr.set_defaults(func=_run_mfa_reset)
    rd = sub.add_parser("reset-devices", help="remove every device of an account (recovery: "
                        "its next device starts a new identity)")
    rd.add_argument("--data", type=Path, required=True)
    rd.add_argument("--user", required=True, help="localpart (or full user id of this server)")
    rd.add_argument("--server-name", default="localhost", help="for a new data directory only")
    rd.set_defaults(func=_run_reset_devices)
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


async def _document(db, name: str, args: argparse.Namespace) -> tuple[bytes, Config]:
    """The trust document to anchor (see the module docstring) and the configuration."""
    from crypto.note import Signer
    from server.config import load_config
    from server.keyfiles import load_or_create_seed
    from server.trust import stored_document, trust_document

    config = load_config(args.config) if args.config is not None else None
    async with db.read() as conn:
        stored = await stored_document(conn)
    if config is not None and config.server_name != name:
        raise ConfigError(f"the configuration names {config.server_name}, the data directory {name}")
    if config is None and stored is not None:
        return stored, Config(server_name=name, data_dir=args.data)
    config = config or Config(server_name=name, data_dir=args.data)
    seed = load_or_create_seed(Config(server_name=name, data_dir=args.data).keys_dir / "log.key",
                               system_rng)
    return trust_document(config, Signer(name, seed).verifier).encode(), config


def _run_anchor(args: argparse.Namespace) -> int:
    from protocol.trust import anchor_of

    async def anchor(db, name: str) -> str:
        return anchor_of((await _document(db, name, args))[0])

    try:
        print(_with_database(args, anchor))
    except ConfigError as exc:
        print(f"confide admin anchor: {exc}", file=sys.stderr)
        return 2
    return 0


def _run_invite(args: argparse.Namespace) -> int:
    from protocol.trust import anchor_of, format_invite
    from server.services.provisioning import create_invite

    async def invite(db, name: str) -> str:
        doc, config = await _document(db, name, args)
        code = await create_invite(db, args.role, config.invites.lifetime, time.time, system_rng)
        return format_invite(code, anchor_of(doc))

    try:
        print(_with_database(args, invite))
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

    async def create(db, name: str) -> str:
        user = _local_user(args.user, name)
        await create_account(db, user, args.role, PasswordHasher().hash_sync(password), time.time)
        return str(user)

    try:
        user = _with_database(args, create)
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


def _with_database(args: argparse.Namespace, action):
    """``await action(db, server name)`` on the data directory's database, closed after.
    Raises ConfigError."""
    async def go():
        db, name = await _open(args.data, args.server_name)
        try:
            return await action(db, name)
        finally:
            await db.close()

    return asyncio.run(go())


def _local_user(given: str, name: str) -> UserId:
    """A localpart or a full user id of this server ``name``; raises InvalidIdentifier."""
    user = UserId.parse(given) if given.startswith("@") else UserId.of(given, name)
    if user.server != name:
        raise InvalidIdentifier(f"this server is {name}")
    return user


def _on_local_user(args: argparse.Namespace, action):
    """``await action(db, user, clock)`` for the local account ``args.user``: ``(user id,
    its result)``. Raises InvalidIdentifier, ConfigError."""
    async def on_user(db, name: str):
        user = _local_user(args.user, name)
        return str(user), await action(db, user, time.time)

    return _with_database(args, on_user)


def _run_mfa_reset(args: argparse.Namespace) -> int:
    from server.services.provisioning import reset_mfa

    try:
        user, done = _on_local_user(args, reset_mfa)
    except (InvalidIdentifier, ConfigError) as exc:
        print(f"confide admin mfa-reset: {exc}", file=sys.stderr)
        return 2
    if not done:
        print(f"confide admin mfa-reset: {user} has no second factor", file=sys.stderr)
        return 1
    print(f"{user}: second factor removed; it enrols again at its next sign-in")
    return 0


def _run_reset_devices(args: argparse.Namespace) -> int:
    from server.services.provisioning import reset_devices
    from server.storage import NoSuchRow

    try:
        user, n = _on_local_user(args, reset_devices)
    except (InvalidIdentifier, ConfigError) as exc:
        print(f"confide admin reset-devices: {exc}", file=sys.stderr)
        return 2
    except NoSuchRow:
        print(f"confide admin reset-devices: no account {args.user}", file=sys.stderr)
        return 1
    print(f"removed {n} device(s) of {user}; its next device starts a new identity")
    return 0
