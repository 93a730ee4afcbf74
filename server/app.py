"""The composition root: :func:`create_app` builds the homeserver's aiohttp application.

Nothing else constructs services. On startup (``cleanup_ctx``) it creates the
data directory and the key files, opens the database (migrations included)
and a second connection for the transparency log in the same file, drains the
audit outbox, builds each service with exactly its collaborators and stores
them under the :mod:`server.appkeys` keys; on cleanup it stops the
background task, flushes the log and closes both connections.

Rooms, delivery and attachments are mounted by :func:`server.messaging.setup_messaging`.

Seams for rooms, delivery and federation:

- routes: add a module like :mod:`server.api.routes` with its own
  ``add_routes(router)`` and call it in :func:`create_app` (paths under
  :data:`protocol.api.CLIENT_PREFIX`); handlers authenticate with
  :func:`server.api.authenticate` and raise :class:`protocol.errors.ApiError`
  subclasses; the middleware answers them;
- services: build them in :func:`_services` from ``app[DATABASE]``,
  ``app[AUDIT]``, ``app[SIGNING_KEY]``, the clock and rng, under new AppKeys;
- storage: new tables are a new entry of ``server.storage.migrations.MIGRATIONS``;
- log: ``await app[AUDIT].append_now(entry)`` or ``AuditTrail.record(tx, entry)``
  then ``await app[AUDIT].flush()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web

from crypto.note import SIG_COSIGNATURE_V1, Signer
from crypto.rng import Rng, system_rng
from federation import setup_federation
from server.api import access_log_middleware, add_routes, error_middleware
from server.appkeys import (
    ACCOUNTS,
    AUDIT,
    CONFIG,
    DATABASE,
    DEVICES,
    KEY_DIRECTORY,
    SESSIONS,
    SIGNING_KEY,
    TRANSPARENCY_LOG,
    TRANSPARENCY_WITNESS,
)
from server.background import run_forever
from server.config import Config
from server.keyfiles import load_or_create_seed
from server.messaging import setup_messaging
from server.services.accounts import Accounts
from server.services.audit import AuditTrail
from server.services.devices import Devices
from server.services.key_directory import KeyDirectory
from server.services.passwords import PasswordHasher
from server.services.ratelimit import FailureWindow, LoginLimiter
from server.services.sessions import Sessions
from server.storage import Database, connect, key_packages, meta
from server.translog import TransparencyLog, Witness
from server.translog import add_routes as add_log_routes

__all__ = ["create_app", "MAINTENANCE_INTERVAL"]

#: Seconds between background passes (audit outbox drain, expired KeyPackages).
MAINTENANCE_INTERVAL = 30.0


class _LateLog:
    """The transparency log as the log routes see it: resolved per request, once started."""

    def __init__(self, app: web.Application, key: web.AppKey = TRANSPARENCY_LOG) -> None:
        self._app, self._key = app, key

    def __getattr__(self, name: str) -> Any:
        return getattr(self._app[self._key], name)


def create_app(
    config: Config, *, clock: Callable[[], float] = time.time, rng: Rng = system_rng,
    hasher: PasswordHasher | None = None,
) -> web.Application:
    """The application for ``config``; storage opens when the app starts.

    ``clock`` (POSIX seconds) and ``rng`` are injected everywhere time or
    randomness is used; ``hasher`` replaces the password hasher (tests).
    """
    app = web.Application(middlewares=[access_log_middleware, error_middleware],
                          client_max_size=config.limits.max_body)
    app[CONFIG] = config
    app.cleanup_ctx.append(_storage(config, clock, rng))
    app.cleanup_ctx.append(_services(config, clock, rng, hasher))
    app.cleanup_ctx.append(_maintenance(clock))
    add_routes(app.router)
    add_log_routes(app, _LateLog(app), _LateLog(app, TRANSPARENCY_WITNESS))  # type: ignore[arg-type]
    setup_messaging(app, config, clock, rng)
    setup_federation(app, config, clock, rng)
    return app


def _storage(config: Config, clock: Callable[[], float], rng: Rng):
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        config.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        app[SIGNING_KEY] = load_or_create_seed(config.keys_dir / "server.key", rng)
        log_seed = load_or_create_seed(config.keys_dir / "log.key", rng)
        db = await Database.open(config.database_path)
        log_conn = None
        try:
            async with db.transaction() as tx:
                await meta.pin(tx, "server_name", config.server_name)
            log_conn = await connect(config.database_path)
            tlog = await TransparencyLog.open(log_conn, Signer(config.server_name, log_seed),
                                              lock=db.lock)
            app[DATABASE] = db
            app[TRANSPARENCY_LOG] = tlog
            # C2SP tlog-witness for the server's own log (peers' logs: federation witnessing).
            app[TRANSPARENCY_WITNESS] = Witness(tlog.storage, Signer(
                f"{config.server_name}/witness", load_or_create_seed(config.keys_dir / "witness.key", rng),
                SIG_COSIGNATURE_V1), {config.server_name: [tlog.verifier]}, clock)
            app[AUDIT] = AuditTrail(db, tlog)
            await app[AUDIT].flush()
            yield
            await tlog.flush()
        finally:
            if log_conn is not None:
                await log_conn.close()
            await db.close()

    return ctx


def _services(config: Config, clock: Callable[[], float], rng: Rng, hasher: PasswordHasher | None):
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        db, audit = app[DATABASE], app[AUDIT]
        sessions = Sessions(db, audit, config.sessions, clock, rng)
        policy = config.login
        limiter = LoginLimiter(
            FailureWindow(policy.max_failures_per_user, policy.window, clock),
            FailureWindow(policy.max_failures_per_address, policy.window, clock),
        )
        app[SESSIONS] = sessions
        app[ACCOUNTS] = Accounts(db, sessions, hasher or PasswordHasher(policy.password_hash), limiter,
                                 audit, config.server_name, clock, rng)
        app[DEVICES] = Devices(db, audit, clock)
        app[KEY_DIRECTORY] = KeyDirectory(db, config.key_packages.max_one_time_per_device, clock)
        yield

    return ctx


def _maintenance(clock: Callable[[], float]):
    async def step(app: web.Application) -> None:
        await app[AUDIT].flush()
        async with app[DATABASE].transaction() as tx:
            await key_packages.delete_expired(tx, int(clock()))

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(run_forever("maintenance", lambda: step(app), MAINTENANCE_INTERVAL))
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return ctx
