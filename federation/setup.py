"""Wiring of the federation services into the homeserver application.

:func:`setup_federation` is called once by the composition root
(:func:`server.app.create_app`), after the storage context is registered. It
creates the item registry at once (so other parts can register item kinds),
mounts the routes, and adds a ``cleanup_ctx`` that, on start, opens the
keyring (creating the first key), an aiohttp client session, discovery,
peer-key cache, replay cache, verifier, receiver, client and sender, loads
the witness's pinned keys and alerts, and starts the sender, witnessing,
followed rooms' catch-up and the keyring reload tasks; on cleanup it stops
them and closes the session.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import aiohttp
from aiohttp import web

from crypto.rng import Rng
from protocol.federation_rooms import ITEM_ROOM_EVENT, ITEM_TO_DEVICE, ITEM_WELCOME
from server import appkeys as server_appkeys
from server.api.routes import REMOTE_USERS
from server.config import Config
from server.delivery.sync import Delivery
from server.keyfiles import load_or_create_seed
from server.rooms.hub import Hub

from . import store
from .appkeys import (
    FEDERATION_CLIENT,
    FEDERATION_FORWARDED,
    FEDERATION_ITEMS,
    FEDERATION_KEYRING,
    FEDERATION_PEER_KEYS,
    FEDERATION_POLICY,
    FEDERATION_RECEIVER,
    FEDERATION_ROOMS,
    FEDERATION_SENDER,
    FEDERATION_VERIFIER,
    FEDERATION_WITNESSING,
)
from .client import FederationClient
from .discovery import Discovery
from .forwarded import ForwardedSends
from .inbound import INBOUND_RETENTION_MS, ItemRegistry, TransactionReceiver
from .keyring import ServerKeyring
from .peer_keys import PeerKeys
from .policy import PeerPolicy
from .replay import ReplayCache
from .rooms import RoomFederation
from .rooms_routes import add_room_routes
from .routes import add_routes
from .sender import FederationSender
from .verifier import RequestVerifier
from .witnessing import Witnessing

__all__ = ["setup_federation"]

#: Seconds between prunes of remembered inbound transaction ids.
PRUNE_INTERVAL = 3600.0


def setup_federation(app: web.Application, config: Config, clock: Callable[[], float], rng: Rng) -> None:
    """Register the federation routes, the item registry and the services' start/stop."""
    app[FEDERATION_ITEMS] = ItemRegistry()
    add_routes(app.router)
    add_room_routes(app.router)
    app.cleanup_ctx.append(_federation(config, clock, rng))


def _federation(config: Config, clock: Callable[[], float], rng: Rng):
    fed = config.federation

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        db = app[server_appkeys.DATABASE]
        keyring = await ServerKeyring.open(db, config.keys_dir, config.server_name, clock, rng)
        session = aiohttp.ClientSession(auto_decompress=False)
        try:
            policy = PeerPolicy(fed.enabled, fed.allow, fed.deny)
            discovery = Discovery(session, fed.peer_table, fed.discovery_ttl, clock, fed.connect_timeout)
            client = FederationClient(session, config.server_name, keyring, discovery, policy, clock,
                                      fed.request_timeout, fed.connect_timeout)
            peer_keys = PeerKeys(client.fetch_server_keys, clock, fed.key_cache_ttl, fed.key_refetch_interval)
            sender = FederationSender(db, client, config.server_name, clock, rng, fed.batch_items,
                                      fed.retry_initial_ms, fed.retry_max_ms,
                                      fed.max_txn_attempts)
            verifier = RequestVerifier(config.server_name, policy, peer_keys,
                                       ReplayCache(fed.replay_cache_size, fed.max_clock_skew * 1000),
                                       clock, fed.max_clock_skew, sender.peer_alive)
            app[FEDERATION_KEYRING] = keyring
            app[FEDERATION_POLICY] = policy
            app[FEDERATION_CLIENT] = client
            app[FEDERATION_PEER_KEYS] = peer_keys
            app[FEDERATION_SENDER] = sender
            app[FEDERATION_VERIFIER] = verifier
            app[FEDERATION_RECEIVER] = TransactionReceiver(db, app[FEDERATION_ITEMS], clock)
            rooms = _rooms(app, config, db, keyring, peer_keys, client, sender, clock, rng)
            witnessing = Witnessing(app[server_appkeys.TRANSPARENCY_LOG], client, config.server_name,
                                    load_or_create_seed(config.keys_dir / "witness.key", rng),
                                    fed.peer_table, clock, db)
            await witnessing.load()
            app[FEDERATION_WITNESSING] = witnessing
            tasks = [asyncio.create_task(keyring.reload_forever())]
            if fed.enabled:
                tasks.append(asyncio.create_task(sender.run()))
                tasks.append(asyncio.create_task(witnessing.run()))
                tasks.append(asyncio.create_task(rooms.run_catch_up()))
            tasks.append(asyncio.create_task(_prune(db, clock)))
            try:
                yield
            finally:
                for task in tasks:
                    task.cancel()
                for task in tasks:
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                await rooms.close()
        finally:
            await session.close()

    return ctx


def _rooms(app: web.Application, config: Config, db, keyring, peer_keys, client, sender,
           clock: Callable[[], float], rng: Rng) -> RoomFederation:
    """Room federation, then the hub and delivery that fan out through it."""
    wakeups = app[server_appkeys.WAKEUPS]
    rooms = RoomFederation(db=db, keyring=keyring, peer_keys=peer_keys, client=client,
                           sender=sender, wakeups=wakeups,
                           key_directory=app[server_appkeys.KEY_DIRECTORY],
                           server_name=config.server_name, clock=clock)
    hub = Hub(db, app[server_appkeys.AUDIT], config.server_name, wakeups, rooms, rooms, clock, rng)
    items = app[FEDERATION_ITEMS]
    items.register(ITEM_ROOM_EVENT, rooms.on_room_event_item, rooms.prepare_room_event)
    items.register(ITEM_WELCOME, rooms.on_welcome_item)
    items.register(ITEM_TO_DEVICE, rooms.on_to_device_item)
    app[server_appkeys.HUB] = hub
    app[server_appkeys.DELIVERY] = Delivery(db, wakeups, rooms, config.server_name, clock)
    app[server_appkeys.REMOTE_ROOMS] = rooms
    app[FEDERATION_ROOMS] = rooms
    app[FEDERATION_FORWARDED] = ForwardedSends(hub, config.server_name)
    app[REMOTE_USERS] = rooms
    return rooms


async def _prune(db, clock: Callable[[], float]) -> None:
    while True:
        with contextlib.suppress(Exception):
            async with db.transaction() as tx:
                await store.prune_inbound(tx, int(clock() * 1000) - INBOUND_RETENTION_MS)
        await asyncio.sleep(PRUNE_INTERVAL)
