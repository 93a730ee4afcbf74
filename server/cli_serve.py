"""``confide serve [--config FILE]``: run the homeserver until SIGTERM or SIGINT.

On first start it creates the data directory, the database and the key files
(``keys/log.key``, ``keys/witness.key`` and the federation signing key under
``keys/federation/``, mode 0600). It prints one line,
``Confide <server_name> listening on http://HOST:PORT/`` (the real port when
the config says 0), then serves; on SIGTERM/SIGINT it stops accepting,
answers open long-polls and closes open sync WebSockets (1001, going away),
gives the requests in flight :data:`REQUEST_GRACE` seconds (then cancels them),
stops the background tasks, flushes the log, closes the database and exits
with status 0. A stop that takes longer than :data:`SHUTDOWN_BOUND` seconds
logs ``shutdown_timed_out`` and exits with status 1 at once (the database's
WAL keeps what was committed). A bad config exits with status 2 and the reason.
A stored transparency log that does not match its signed checkpoint (tampered
or damaged rows, a checkpoint not signed by ``keys/log.key``) prints one line
(what, where, what to do) and exits with status 3 (:data:`LOG_CORRUPT`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from pathlib import Path

from aiohttp import web

from server.config import Config, ConfigError, load_config

__all__ = ["register", "run", "serve", "REQUEST_GRACE", "SHUTDOWN_BOUND", "LOG_CORRUPT"]

#: Seconds the requests in flight at SIGTERM get to finish before they are cancelled.
REQUEST_GRACE = 10.0
#: Exit status when the stored log does not match its signed checkpoint (found at start).
LOG_CORRUPT = 3
#: Seconds the whole stop may take (requests, background tasks, log flush, database close).
SHUTDOWN_BOUND = 30.0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("serve", help="run the homeserver")
    p.add_argument("--config", type=Path, default=None, help="TOML config (defaults apply without)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from server.logging import configure_logging

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"confide serve: {exc}", file=sys.stderr)
        return 2
    configure_logging(args.log_level)
    return asyncio.run(serve(config))


async def serve(config: Config) -> int:
    from server.app import create_app
    from server.keyfiles import KeyFileError
    from server.translog import LegacyLog, StorageCorrupt

    runner = web.AppRunner(create_app(config), access_log=None, handle_signals=False,
                           shutdown_timeout=REQUEST_GRACE)
    try:
        await runner.setup()
    except KeyFileError as exc:
        print(f"confide serve: {exc}", file=sys.stderr, flush=True)
        return 2
    except LegacyLog as exc:
        print(f"confide serve: {exc}", file=sys.stderr, flush=True)
        return LOG_CORRUPT
    except StorageCorrupt as exc:
        print(f"confide serve: the transparency log in {config.database_path} does not match "
              f"its signed checkpoint ({exc}); restore the data directory from a backup, or move "
              "it aside to start a new server", file=sys.stderr, flush=True)
        return LOG_CORRUPT
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        site = web.TCPSite(runner, config.listen.host, config.listen.port)
        await site.start()
        host, port = runner.addresses[0][:2]
        shown = f"[{host}]" if ":" in host else host
        print(f"Confide {config.server_name} listening on http://{shown}:{port}/", flush=True)
        await stop.wait()
    finally:
        try:
            async with asyncio.timeout(SHUTDOWN_BOUND):
                await runner.cleanup()
        except TimeoutError:
            _exit_now()
    return 0


def _exit_now() -> None:
    """The stop is stuck: exit with status 1 without waiting for anything more (an
    unclosed database connection's thread would keep the interpreter from exiting)."""
    import structlog

    structlog.get_logger("confide.serve").error("shutdown_timed_out", seconds=SHUTDOWN_BOUND)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(1)
