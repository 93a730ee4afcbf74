"""Rooms, delivery and attachments in the application: one call from the composition root.

:func:`setup_messaging` mounts the routes of :mod:`server.rooms.routes`,
:mod:`server.delivery.routes` and :mod:`server.attachments.routes`, and adds a
``cleanup_ctx`` (after the storage and services ones) that builds the
:class:`~server.delivery.wakeups.Wakeups`, the :class:`~server.rooms.hub.Hub`,
the :class:`~server.delivery.sync.Delivery` and the
:class:`~server.attachments.store.BlobStore` from what the root already built,
and runs one background task that forgets transaction ids older than
:data:`TXN_RETENTION_MS`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import structlog
from aiohttp import web

from crypto.rng import Rng
from server.appkeys import ATTACHMENTS, HUB, WAKEUPS
from server.attachments.routes import add_routes as add_attachment_routes
from server.attachments.store import BlobStore
from server.config import Config
from server.delivery.routes import add_routes as add_delivery_routes
from server.delivery.wakeups import Wakeups
from server.rooms.routes import add_routes as add_room_routes
from server.services.clock import Clock

__all__ = ["setup_messaging", "TXN_RETENTION_MS", "PRUNE_INTERVAL"]

log = structlog.get_logger("confide.messaging")

#: A transaction id is answered from memory for a day; a retry after that is a new request.
TXN_RETENTION_MS = 24 * 3600 * 1000
#: Seconds between passes of the pruning task.
PRUNE_INTERVAL = 600.0


def setup_messaging(app: web.Application, config: Config, clock: Clock, rng: Rng) -> None:
    add_room_routes(app.router)
    add_delivery_routes(app)
    add_attachment_routes(app.router)
    app.cleanup_ctx.append(_services(config, clock, rng))


def _services(config: Config, clock: Clock, rng: Rng):
    async def prune(app: web.Application) -> None:
        while True:
            await asyncio.sleep(PRUNE_INTERVAL)
            try:
                await app[HUB].prune_txns(TXN_RETENTION_MS)
            except Exception:
                log.error("txn_prune_failed", exc_info=True)

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        wakeups = Wakeups()
        app[WAKEUPS] = wakeups
        store = BlobStore(config.attachments_dir, config.attachments.max_size, rng)
        await asyncio.to_thread(store.open)
        app[ATTACHMENTS] = store
        task = asyncio.create_task(prune(app))
        yield
        wakeups.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return ctx
