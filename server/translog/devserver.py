"""A tiny standalone server for one log in a directory (tests, demos, ``audit verify URL``).

``python -m server.translog.devserver DIR --name NAME [--port P] [--host H] [--demo N]``
opens ``DIR/translog.sqlite`` and the log key ``DIR/log.key`` (32 raw bytes,
created on first run), optionally appends ``N`` demo entries, and serves the
routes of :mod:`server.translog.http`. A witness with its own key
(``DIR/witness.key``) is mounted too; ``--witness-for VKEY`` (repeatable)
adds a log it will cosign.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence
from pathlib import Path

from aiohttp import web

from crypto.note import SIG_COSIGNATURE_V1, Signer, Verifier, parse_vkey
from crypto.rng import system_rng
from server.api.middleware import error_middleware

from .http import add_routes
from .service import TransparencyLog
from .storage import open_connection
from .witness import Witness

__all__ = ["load_or_create_key", "open_log", "create_app", "demo_entries", "main"]


def load_or_create_key(path: Path) -> bytes:
    if path.exists():
        seed = path.read_bytes()
        if len(seed) != 32:
            raise SystemExit(f"{path}: a key file holds 32 bytes")
        return seed
    seed = system_rng(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(seed)
    return seed


async def open_log(directory: Path, name: str) -> TransparencyLog:
    directory.mkdir(parents=True, exist_ok=True)
    conn = await open_connection(str(directory / "translog.sqlite"))
    signer = Signer(name, load_or_create_key(directory / "log.key"))
    return await TransparencyLog.open(conn, signer,
                                      privacy_key=load_or_create_key(directory / "log_privacy.key"))


def demo_entries(n: int, start_time: int, users: int = 3, first: int = 0):
    """Entries ``first .. n-1`` of a deterministic mix: device registrations, logins, room events."""
    from protocol import audit

    out = []
    for i in range(first, n):
        user = f"@user{i % users}:demo.example"
        t = start_time + i * 1000
        r = i % 10
        if r == 0:
            seed = (i.to_bytes(8, "big") * 4)[:32]
            out.append(audit.sign_device_registration(seed, t, user, f"D{i}", b"basic:" + user.encode()))
        elif r == 1:
            out.append(audit.AccessEvent(t, audit.AccessAction.LOGIN, user, f"D{i - 1}"))
        else:
            out.append(audit.RoomEvent(
                t, "!room:demo.example", i, i.to_bytes(32, "big"), user, "D0",
                "m.mls.application", i // 100, (i + 1).to_bytes(32, "big"), 100 + i % 900,
            ))
    return out


async def create_app(
    directory: Path, name: str, witness_for: Sequence[Verifier] = (), demo: int = 0
) -> web.Application:
    log = await open_log(directory, name)
    if demo and log.size == 0:
        await log.append_many(demo_entries(demo, 1_700_000_000_000))
    logs: dict[str, list[Verifier]] = {}
    for v in witness_for:
        logs.setdefault(v.name, []).append(v)
    witness = Witness(
        log.storage,
        Signer(name + "/witness", load_or_create_key(directory / "witness.key"), SIG_COSIGNATURE_V1),
        logs,
        time.time,
    )
    app = web.Application(middlewares=[error_middleware])  # answers the routes' errors
    add_routes(app, log, witness)

    async def close(app: web.Application) -> None:
        await log.flush()
        await log.storage.conn.close()

    app.on_cleanup.append(close)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m server.translog.devserver")
    parser.add_argument("directory", type=Path)
    parser.add_argument("--name", required=True, help="server name: the checkpoint origin")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8008)
    parser.add_argument("--demo", type=int, default=0, help="append N demo entries to a new log")
    parser.add_argument("--witness-for", action="append", default=[], type=parse_vkey)
    args = parser.parse_args(argv)
    web.run_app(create_app(args.directory, args.name, args.witness_for, args.demo),
                host=args.host, port=args.port, print=None)


if __name__ == "__main__":
    main()
