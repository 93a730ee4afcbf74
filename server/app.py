"""The composition root: :func:`create_app` builds the homeserver's aiohttp application.

Nothing else constructs services (``tests/test_layers.py`` checks it). At
creation the application gets its routes (client API, rooms, delivery,
attachments, federation; handlers look their service up under the
:mod:`server.appkeys` and :mod:`federation.appkeys` keys at request time) and
the federation item registry. On startup (one ``cleanup_ctx``, :func:`_root`)
every service is built once, in dependency order, each constructor naming
exactly what it uses:

1. storage (:func:`_storage`): the data directory, ``keys/log.key``, the
   database (migrations included), a second connection for the transparency
   log in the same file, the log's witness (``keys/witness.key``, following
   this server's own log; witnessing pins the peers' logs into it); the log's
   and the witness's routes are mounted on them;
2. the audit trail (its outbox drained), sessions, accounts, devices, the key
   directory;
3. federation's transport: the keyring (creating the first key), an aiohttp
   client session, the peer policy, discovery, the federation client, the peer
   key cache, the sender, the request verifier, the transaction receiver;
4. rooms: the wakeups, :class:`~federation.rooms.RoomFederation` (hub fan-out,
   follower store, remote rooms and users), the :class:`~server.rooms.hub.Hub`
   (which fans out and forwards through it), the forwarded submissions (which
   run through the hub), delivery (remote devices through room federation),
   the attachments' blob store, the item kinds; then witnessing;
5. the background tasks: maintenance (audit outbox, expired KeyPackages),
   transaction-id pruning, the keyring's reload, inbound-id pruning (each through
   :func:`server.background.run_forever`, which logs a failed pass and goes on)
   and, with federation enabled, the sender, witnessing and followed rooms' catch-up.

On cleanup the tasks stop, room federation's catch-ups are cancelled, the
client session closes, the wakeups close, the log is flushed and both
connections close (the reverse of the order above).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import NamedTuple

import aiohttp
from aiohttp import web

from crypto.note import SIG_COSIGNATURE_V1, Signer
from crypto.rng import Rng, system_rng
from federation import store as federation_store
from federation.appkeys import (
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
from federation.client import FederationClient
from federation.discovery import Discovery
from federation.forwarded import ForwardedSends
from federation.inbound import INBOUND_RETENTION_MS, ItemRegistry, TransactionReceiver
from federation.keyring import ServerKeyring
from federation.log_keys import add_log_key_routes
from federation.peer_keys import PeerKeys
from federation.policy import PeerPolicy
from federation.replay import ReplayCache
from federation.rooms import RoomFederation
from federation.rooms_routes import add_room_routes as add_federation_room_routes
from federation.routes import add_routes as add_federation_routes
from federation.sender import FederationSender
from federation.verifier import RequestVerifier
from federation.witnessing import Witnessing
from protocol.federation_rooms import ITEM_ROOM_EVENT, ITEM_TO_DEVICE, ITEM_WELCOME
from server.api import access_log_middleware, add_routes, error_middleware
from server.api.log_openings import add_routes as add_log_opening_routes
from server.api.mfa_routes import add_mfa_routes
from server.api.routes import REMOTE_USERS
from server.appkeys import (
    ACCOUNTS,
    ATTACHMENTS,
    AUDIT,
    CONFIG,
    DATABASE,
    DELIVERY,
    DEVICES,
    HUB,
    KEY_DIRECTORY,
    LOG_OPENINGS,
    MFA,
    REMOTE_ROOMS,
    SESSIONS,
    TRANSPARENCY_LOG,
    WAKEUPS,
)
from server.attachments.routes import add_routes as add_attachment_routes
from server.attachments.store import BlobStore
from server.background import run_forever
from server.config import Config
from server.delivery.fairness import ByteMeter, DeviceShare
from server.delivery.inbox import Quota
from server.delivery.routes import add_routes as add_delivery_routes
from server.delivery.sync import Delivery
from server.delivery.wakeups import Wakeups
from server.keyfiles import load_or_create_seed
from server.rooms.device_proof import DeviceProof
from server.rooms.hub import Hub
from server.rooms.routes import add_routes as add_room_routes
from server.services.accounts import Accounts
from server.services.audit import AuditTrail
from server.services.claim_limits import ClaimLimiter, TokenBucket
from server.services.devices import Devices
from server.services.key_directory import KeyDirectory
from server.services.log_openings import LogOpenings
from server.services.login_failures import FailedLoginCounter
from server.services.mfa import Mfa, MfaKeys
from server.services.passwords import PasswordHasher
from server.services.ratelimit import FailureWindow, LoginLimiter
from server.services.sessions import Sessions
from server.storage import Database, connect, key_packages, meta
from server.translog import TransparencyLog, Witness
from server.translog import add_routes as add_log_routes
from server.trust import TRUST_DOCUMENT, add_trust_routes, record_document, trust_document

__all__ = ["create_app", "MAINTENANCE_INTERVAL", "TXN_RETENTION_MS", "TXN_PRUNE_INTERVAL",
           "INBOUND_PRUNE_INTERVAL"]

#: Seconds between background passes (audit outbox drain, expired KeyPackages).
MAINTENANCE_INTERVAL = 30.0
#: A transaction id is answered from memory for a day; a retry after that is a new request.
TXN_RETENTION_MS = 24 * 3600 * 1000
#: Seconds between passes of the transaction-id pruning task.
TXN_PRUNE_INTERVAL = 600.0
#: Seconds between prunes of remembered inbound federation transaction ids.
INBOUND_PRUNE_INTERVAL = 3600.0

Clock = Callable[[], float]


def create_app(
    config: Config, *, clock: Clock = time.time, rng: Rng = system_rng,
    hasher: PasswordHasher | None = None,
) -> web.Application:
    """The application for ``config``; its services are built when the app starts.

    ``clock`` (POSIX seconds) and ``rng`` are injected everywhere time or
    randomness is used; ``hasher`` replaces the password hasher (tests).
    Item kinds may be registered on ``app[FEDERATION_ITEMS]`` until it starts.
    """
    app = web.Application(middlewares=[access_log_middleware, error_middleware],
                          client_max_size=config.limits.max_body)
    app[CONFIG] = config
    app[FEDERATION_ITEMS] = ItemRegistry()
    add_routes(app.router)
    add_log_opening_routes(app.router)
    add_mfa_routes(app.router)
    add_room_routes(app.router)
    add_delivery_routes(app)
    add_attachment_routes(app.router)
    add_federation_routes(app.router)
    add_federation_room_routes(app.router)
    add_trust_routes(app.router)
    add_log_key_routes(app.router)
    app.cleanup_ctx.append(_root(config, clock, rng, hasher))
    return app


class _Storage(NamedTuple):
    db: Database
    tlog: TransparencyLog
    witness: Witness


@contextlib.asynccontextmanager
async def _storage(app: web.Application, config: Config, clock: Clock,
                   rng: Rng) -> AsyncIterator[_Storage]:
    """The database, the transparency log and its witness (their routes mounted on them);
    closed on exit. The witness follows this server's own log; witnessing pins its peers'
    logs into the same witness."""
    config.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    log_seed = load_or_create_seed(config.keys_dir / "log.key", rng)
    # The salts of the log's commitments derive from this key; it never leaves the data dir.
    privacy_key = load_or_create_seed(config.keys_dir / "log_privacy.key", rng)
    db = await Database.open(config.database_path)
    log_conn = None
    try:
        async with db.transaction() as tx:
            await meta.pin(tx, "server_name", config.server_name)
        log_conn = await connect(config.database_path)
        tlog = await TransparencyLog.open(log_conn, Signer(config.server_name, log_seed),
                                          privacy_key=privacy_key, lock=db.lock)
        witness = Witness(tlog.storage, Signer(
            f"{config.server_name}/witness", load_or_create_seed(config.keys_dir / "witness.key", rng),
            SIG_COSIGNATURE_V1), {config.server_name: [tlog.verifier]}, clock)
        add_log_routes(app, tlog, witness)
        doc = trust_document(config, tlog.verifier)
        async with db.transaction() as tx:
            await record_document(tx, doc)
        app[TRUST_DOCUMENT] = doc.encode()
        yield _Storage(db, tlog, witness)
        await tlog.flush()
    finally:
        if log_conn is not None:
            await log_conn.close()
        await db.close()


def _root(config: Config, clock: Clock, rng: Rng, hasher: PasswordHasher | None):
    fed = config.federation
    name = config.server_name

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            db, tlog, witness = await stack.enter_async_context(_storage(app, config, clock, rng))
            audit = AuditTrail(db, tlog)
            await audit.flush()

            policy = config.login
            sessions = Sessions(db, audit, config.sessions, clock, rng)
            limiter = LoginLimiter(
                FailureWindow(policy.max_failures_per_user, policy.window, clock),
                FailureWindow(policy.max_failures_per_address, policy.window, clock),
            )
            passwords = hasher or PasswordHasher(policy.password_hash, policy.max_concurrent_hashes)
            failures = FailedLoginCounter(db, audit, policy.failure_log_window, clock)
            mfa = Mfa(db, audit, limiter, MfaKeys(load_or_create_seed(config.keys_dir / "mfa.key", rng), rng),
                      config.auth.mfa_required_roles, name, clock, rng)
            accounts = Accounts(db, sessions, passwords, limiter, audit, mfa, name, clock, rng, failures)
            devices = Devices(db, audit, clock)
            openings = LogOpenings(db, audit, devices, clock)
            kp = config.key_packages
            claims = ClaimLimiter(TokenBucket(kp.claim_burst, kp.claims_per_hour / 3600, clock),
                                  FailureWindow(kp.claims_per_pair, kp.claim_window, clock),
                                  FailureWindow(kp.stranger_claims_per_target, kp.claim_window,
                                                clock))
            key_directory = KeyDirectory(db, kp.max_one_time_per_device, clock, claims)

            keyring = await ServerKeyring.open(db, config.keys_dir, name, clock, rng)
            session = aiohttp.ClientSession(auto_decompress=False)
            stack.push_async_callback(session.close)
            peer_policy = PeerPolicy(fed.enabled, fed.allow, fed.deny, fed.peer_table)
            discovery = Discovery(session, fed.peer_table, fed.discovery_ttl, clock,
                                  fed.connect_timeout)
            client = FederationClient(session, name, keyring, discovery, peer_policy, clock,
                                      fed.request_timeout, fed.connect_timeout, fed.max_outbound)
            peer_keys = PeerKeys(client.fetch_server_keys, clock, fed.key_cache_ttl,
                                 fed.key_refetch_interval, fed.key_cache_servers)
            sender = FederationSender(db, client, name, clock, rng, fed.batch_items,
                                      fed.retry_initial_ms, fed.retry_max_ms, fed.max_txn_attempts)
            verifier = RequestVerifier(name, peer_policy, peer_keys,
                                       ReplayCache(fed.replay_cache_size, fed.max_clock_skew * 1000),
                                       clock, fed.max_clock_skew, sender.peer_alive)
            items = app[FEDERATION_ITEMS]
            receiver = TransactionReceiver(db, items, clock)

            wakeups = Wakeups()
            stack.callback(wakeups.close)
            dl = config.delivery
            quota = Quota(dl.max_inbox_items, dl.max_inbox_bytes)
            rooms = RoomFederation(db=db, keyring=keyring, peer_keys=peer_keys, client=client,
                                   sender=sender, wakeups=wakeups, key_directory=key_directory,
                                   server_name=name, clock=clock, inbox_quota=quota)
            stack.push_async_callback(rooms.close)
            hub = Hub(db, audit, name, wakeups, fan_out=rooms, remote_rooms=rooms,
                      device_proof=DeviceProof(db, name, rooms, clock), clock=clock, rng=rng,
                      inbox_quota=quota)
            forwarded = ForwardedSends(hub, name)
            delivery = Delivery(db, wakeups, remote_devices=rooms, server_name=name, clock=clock,
                                quota=quota, max_sync_bytes=dl.max_sync_bytes,
                                share=DeviceShare(ByteMeter(4 * dl.pull_rate, dl.pull_rate, clock),
                                                  ByteMeter(4 * dl.push_rate, dl.push_rate, clock)))
            blobs = BlobStore(config.attachments_dir, config.attachments.max_size, rng)
            await asyncio.to_thread(blobs.open)
            items.register(ITEM_ROOM_EVENT, rooms.on_room_event_item, rooms.prepare_room_event)
            items.register(ITEM_WELCOME, rooms.on_welcome_item)
            items.register(ITEM_TO_DEVICE, rooms.on_to_device_item)
            witnessing = Witnessing(tlog, client, name, witness, fed.peer_table, clock, db)
            await witnessing.load()

            app[DATABASE], app[TRANSPARENCY_LOG], app[AUDIT] = db, tlog, audit
            app[SESSIONS], app[ACCOUNTS], app[DEVICES] = sessions, accounts, devices
            app[KEY_DIRECTORY], app[LOG_OPENINGS], app[MFA] = key_directory, openings, mfa
            app[FEDERATION_KEYRING], app[FEDERATION_POLICY] = keyring, peer_policy
            app[FEDERATION_CLIENT], app[FEDERATION_PEER_KEYS] = client, peer_keys
            app[FEDERATION_SENDER], app[FEDERATION_VERIFIER] = sender, verifier
            app[FEDERATION_RECEIVER] = receiver
            app[WAKEUPS], app[HUB], app[DELIVERY], app[ATTACHMENTS] = wakeups, hub, delivery, blobs
            app[FEDERATION_ROOMS], app[FEDERATION_FORWARDED] = rooms, forwarded
            app[REMOTE_ROOMS], app[REMOTE_USERS] = rooms, rooms
            app[FEDERATION_WITNESSING] = witnessing

            loops: list[Callable[[], Awaitable[None]]] = [
                lambda: run_forever("maintenance", lambda: _maintenance(audit, db, clock),
                                    MAINTENANCE_INTERVAL),
                lambda: run_forever("txn_prune", lambda: hub.prune_txns(TXN_RETENTION_MS),
                                    TXN_PRUNE_INTERVAL),
                keyring.reload_forever,
                lambda: run_forever("inbound_prune", lambda: _prune_inbound(db, clock),
                                    INBOUND_PRUNE_INTERVAL, first="step"),
                lambda: run_forever("failed_logins", failures.log_closed_windows,
                                    min(policy.failure_log_window, 60)),
            ]
            if fed.enabled:
                loops += [sender.run, witnessing.run, rooms.run_catch_up]
            tasks = [asyncio.create_task(loop()) for loop in loops]
            try:
                yield
            finally:
                for task in tasks:
                    task.cancel()
                for task in tasks:
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

    return ctx


async def _maintenance(audit: AuditTrail, db: Database, clock: Clock) -> None:
    """One maintenance pass: drain the audit outbox, delete expired KeyPackages."""
    await audit.flush()
    async with db.transaction() as tx:
        await key_packages.delete_expired(tx, int(clock()))


async def _prune_inbound(db: Database, clock: Clock) -> None:
    """Forget inbound federation transaction ids older than the retention."""
    async with db.transaction() as tx:
        await federation_store.prune_inbound(tx, int(clock() * 1000) - INBOUND_RETENTION_MS)
