"""The outbound queue's sender: one background task, one delivery loop per due destination.

Delivery guarantees (``spec/server-server.md`` section 6):

- an item enqueued in a committed transaction is delivered eventually, at
  least once at the HTTP level and exactly once at the receiver (the receiver
  is idempotent on ``(origin, txn_id)`` and a retried transaction keeps its
  id and its items);
- per destination, in enqueue order: the head transaction must be
  acknowledged (HTTP 200) before the next is formed;
- every failure (unreachable, any refusal) backs off the destination:
  ``retry_delay_ms(attempts, initial, cap, jitter)``; the queue is never
  dropped, it survives restarts (the task starts with the application and
  resumes from the table);
- a transaction the peer refuses for good (:func:`permanent_refusal`) or that
  failed ``max_attempts`` times in a row is parked with its reason (code and
  status) and the next one goes; parked rows stay until the operator retries
  or drops them (section 6.1, ``confide admin federation parked``);
- an inbound request verified from a destination (it is back) makes it due at once.

Items refused individually by the receiver (an item result with ``ok = false``)
are acknowledged with the transaction and logged: the receiver will never
accept them, retrying would block the queue. A part that needs the outcome
(e.g. a follower relaying the hub's answer to a submission) registers
:meth:`FederationSender.on_result` for its item kind.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog

from crypto.rng import Rng
from protocol.federation import (
    MAX_TXN_ITEMS,
    FederationError,
    ItemResult,
    PeerDenied,
    PeerRefused,
    Transaction,
    TransactionItem,
    retry_delay_ms,
)
from server.storage import Database

from . import store
from .client import FederationClient

__all__ = ["FederationSender", "ResultListener", "BATCH_DATA_BUDGET", "IDLE_POLL", "permanent_refusal",
           "park_reason"]

log = structlog.get_logger("confide.federation")

#: ``await listener(destination, item_id, result)`` after an item's transaction is acknowledged.
ResultListener = Callable[[str, int, ItemResult], Awaitable[None]]

#: Payload bytes per transaction (a single larger item still goes alone).
BATCH_DATA_BUDGET = 768 * 1024
#: Seconds the loop sleeps at most without a wake-up (catches rows written by other processes).
IDLE_POLL = 30.0

#: 4xx statuses a retry can fix: authentication (keys, clock), policy, timeout, misdirection, rate.
_TRANSIENT_4XX = frozenset({401, 403, 408, 421, 425, 429})


def permanent_refusal(exc: FederationError) -> bool:
    """True when the peer refused the transaction as a whole with a 4xx that retrying the
    same bytes cannot fix (e.g. ``400 malformed_body``, ``413``); unreachable peers, 5xx
    and the 4xx of :data:`_TRANSIENT_4XX` are retried."""
    return (isinstance(exc, PeerRefused) and 400 <= exc.remote_status < 500
            and exc.remote_status not in _TRANSIENT_4XX)


def park_reason(exc: FederationError) -> str:
    """What a parked transaction records: the peer's code and HTTP status, or our own code."""
    if isinstance(exc, PeerRefused):
        return f"{exc.remote_code[:64]} (HTTP {exc.remote_status})"
    return exc.code


class FederationSender:
    def __init__(self, db: Database, client: FederationClient, server_name: str, clock: Callable[[], float],
                 rng: Rng, batch_items: int = 50, retry_initial_ms: int = 1000,
                 retry_max_ms: int = 3_600_000, max_attempts: int = 20) -> None:
        self._db = db
        self._client = client
        self.server_name = server_name
        self._clock = clock
        self._rng = rng
        self._batch = max(1, min(batch_items, MAX_TXN_ITEMS))
        self._initial = retry_initial_ms
        self._cap = retry_max_ms
        self._max_attempts = max(1, max_attempts)
        self._wake = asyncio.Event()
        self._active: dict[str, asyncio.Task] = {}
        self._revived: set[str] = set()
        self._result_listeners: dict[str, ResultListener] = {}

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    # -- the seam ---------------------------------------------------------------------

    async def enqueue(self, destination: str, kind: str, data: bytes) -> int:
        """Queue one item in its own transaction and wake the sender; returns the item id.

        To make the item part of another change, call
        :func:`federation.store.enqueue` inside that change's transaction and
        then :meth:`wake`. Raises :class:`PeerDenied` for this server itself.
        """
        if destination == self.server_name:
            raise PeerDenied("a server does not federate with itself")
        async with self._db.transaction() as tx:
            item_id = await store.enqueue(tx, destination, kind, data, self._now_ms())
        self.wake()
        return item_id

    def on_result(self, kind: str, listener: ResultListener) -> None:
        """Call ``await listener(destination, item_id, result)`` for every item of ``kind``
        once its transaction is acknowledged (``result.ok`` false: the receiver refused
        it, with ``result.code``). ``item_id`` is what :meth:`enqueue` returned. A
        listener's exception is logged; the items stay delivered."""
        if kind in self._result_listeners:
            raise ValueError(f"item kind {kind!r} already has a result listener")
        self._result_listeners[kind] = listener

    def wake(self, destination: str | None = None) -> None:
        """Look at the queue now (after a commit that enqueued items)."""
        self._wake.set()

    def peer_alive(self, destination: str) -> None:
        """``destination`` just talked to us: deliver its queue now, regardless of backoff."""
        self._revived.add(destination)
        self._wake.set()

    # -- the loop ---------------------------------------------------------------------

    async def run(self) -> None:
        """Run until cancelled; each pass starts a delivery task per due destination."""
        try:
            while True:
                self._wake.clear()
                timeout = IDLE_POLL
                try:
                    async with self._db.read() as conn:
                        pending = await store.due_destinations(conn)
                except Exception:
                    log.error("federation_queue_read_failed", exc_info=True)
                    pending = []
                now = self._now_ms()
                self._revived &= {d for d, _ in pending}
                for destination, next_attempt in pending:
                    if destination in self._active:
                        continue
                    if next_attempt <= now or destination in self._revived:
                        self._revived.discard(destination)
                        self._active[destination] = asyncio.create_task(self._deliver(destination))
                    else:
                        timeout = min(timeout, (next_attempt - now) / 1000)
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for returns normally when
                # the task is cancelled just as the event is set, and the loop never stops.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(max(timeout, 0.001)):
                        await self._wake.wait()
        finally:
            tasks = list(self._active.values())
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _report(self, destination: str, items, results) -> None:
        for item, result in zip(items, results, strict=False):
            listener = self._result_listeners.get(item.kind)
            if listener is None:
                continue
            try:
                await listener(destination, item.id, result)
            except Exception:
                log.error("federation_result_listener_failed", exc_info=True)

    def _txn_id(self) -> str:
        return f"{self._now_ms():x}-{self._rng(8).hex()}"

    def _next_attempt(self, attempts: int) -> int:
        jitter = int.from_bytes(self._rng(4), "big") / 2**32
        return self._now_ms() + retry_delay_ms(attempts, self._initial, self._cap, jitter)

    async def _deliver(self, destination: str) -> None:
        try:
            while True:
                async with self._db.transaction() as tx:
                    head = await store.head_batch(tx, destination, self._txn_id(), self._batch, BATCH_DATA_BUDGET)
                if head is None:
                    return
                txn_id, items = head
                txn = Transaction(tuple(TransactionItem(i.kind, i.payload) for i in items))
                try:
                    response = await self._client.send_transaction(destination, txn_id, txn)
                except FederationError as exc:
                    reason = park_reason(exc)
                    async with self._db.transaction() as tx:
                        attempts, _ = await store.record_failure(tx, destination, exc.code, self._next_attempt)
                        park = permanent_refusal(exc) or attempts >= self._max_attempts
                        if park:
                            await store.park_txn(tx, destination, txn_id, reason, self._now_ms())
                    if park:
                        log.warning("federation_txn_parked", code=exc.code, reason=reason, attempts=attempts)
                        continue
                    log.info("federation_send_failed", code=exc.code, attempts=attempts)
                    return
                async with self._db.transaction() as tx:
                    await store.delete_txn(tx, destination, txn_id)
                    await store.record_success(tx, destination, self._now_ms())
                refused = [r.code for r in response.results if not r.ok]
                if refused:
                    log.warning("federation_items_refused", count=len(refused), codes=sorted(set(refused)))
                await self._report(destination, items, response.results)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.error("federation_deliver_failed", exc_info=True)
            with contextlib.suppress(Exception):
                async with self._db.transaction() as tx:
                    await store.record_failure(tx, destination, "internal", self._next_attempt)
        finally:
            self._active.pop(destination, None)
            self._wake.set()
