"""Inbound transactions: the item-kind registry and the idempotent receiver.

Seam for room federation (and anything else that rides on transactions)::

    async def on_room_event(item: InboundItem) -> None:
        event = decode_event(item.data)              # raise an ApiError to refuse the item
        await rooms_store.insert(item.tx, ...)       # write through item.tx only
        item.after_commit(lambda: notifier.wake(room))   # side effects after the commit

    app[FEDERATION_ITEMS].register("room_event", on_room_event)

:meth:`TransactionReceiver.apply` runs one transaction in ONE database
transaction: if ``(origin, txn_id)`` was applied before, it answers the stored
results with ``duplicate = true`` and runs nothing; otherwise it runs each
item's handler inside its own SAVEPOINT, in order. A handler that raises an
:class:`~protocol.errors.ApiError` refuses that item only: its writes are
rolled back and its result carries the error code; an item of an unknown
kind gets ``unknown_item_kind``. Any other exception is a bug: the whole
transaction rolls back (nothing recorded) and the sender retries later. The
record of ``(origin, txn_id)`` commits together with the items' writes, so a
transaction is applied exactly once.

Handlers must not open their own :meth:`Database.transaction` (the
receiver holds the database); they use ``item.tx``. Nor should they wait on
the network while it is held: a kind that needs something remote (a hub's
key document) registers a ``prepare(origin, data)`` hook, which the receiver
awaits for each item *before* it opens the database transaction (and only for
a transaction not applied before). A hook fetches into a cache that the
handler then reads without I/O. A hook that raises an
:class:`~protocol.errors.ApiError` refuses the whole transaction with that
error (nothing applied or recorded; the origin retries); any other exception
from a hook is logged and ignored (the handler judges the item).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiosqlite
import structlog

from protocol.errors import ApiError
from protocol.federation import ItemResult, Transaction, TransactionResponse, parse_item_kind
from protocol.schema import pack_body, unpack_body
from server.storage import Database

from . import store

__all__ = ["InboundItem", "ItemHandler", "ItemPrepare", "ItemRegistry", "TransactionReceiver", "INBOUND_RETENTION_MS"]

log = structlog.get_logger("confide.federation")

#: Applied transaction ids are remembered this long (30 days) for idempotency.
INBOUND_RETENTION_MS = 30 * 86400 * 1000


@dataclass
class InboundItem:
    """One item being applied: who sent it, in which transaction, and the open database transaction."""

    origin: str
    txn_id: str
    index: int
    kind: str
    data: bytes
    received_ms: int
    tx: aiosqlite.Connection
    _after: list[Callable[[], Awaitable[None] | None]] = field(default_factory=list)

    def after_commit(self, fn: Callable[[], Awaitable[None] | None]) -> None:
        """Run ``fn`` after the transaction commits (not if this item is refused)."""
        self._after.append(fn)


ItemHandler = Callable[[InboundItem], Awaitable[None]]
#: ``prepare(origin, data)``: awaited before the database transaction opens.
ItemPrepare = Callable[[str, bytes], Awaitable[None]]


class ItemRegistry:
    """Handlers by item kind; one handler per kind."""

    def __init__(self) -> None:
        self._handlers: dict[str, ItemHandler] = {}
        self._prepare: dict[str, ItemPrepare] = {}

    def register(self, kind: str, handler: ItemHandler, prepare: ItemPrepare | None = None) -> None:
        """Raises :class:`~protocol.errors.MalformedBody` for a kind outside the grammar and
        ``ValueError`` for a kind registered twice (a wiring bug)."""
        parse_item_kind(kind)
        if kind in self._handlers:
            raise ValueError(f"item kind {kind!r} already has a handler")
        self._handlers[kind] = handler
        if prepare is not None:
            self._prepare[kind] = prepare

    def get(self, kind: str) -> ItemHandler | None:
        return self._handlers.get(kind)

    def prepare(self, kind: str) -> ItemPrepare | None:
        return self._prepare.get(kind)

    def kinds(self) -> list[str]:
        return sorted(self._handlers)


class TransactionReceiver:
    def __init__(self, db: Database, registry: ItemRegistry, clock: Callable[[], float]) -> None:
        self._db = db
        self._registry = registry
        self._clock = clock

    async def apply(self, origin: str, txn_id: str, txn: Transaction) -> TransactionResponse:
        now_ms = int(self._clock() * 1000)
        after: list[Callable[[], Awaitable[None] | None]] = []
        async with self._db.statement() as conn:  # one read: applied before?
            stored = await store.inbound_result(conn, origin, txn_id)
        if stored is not None:
            return TransactionResponse(TransactionResponse.from_wire(unpack_body(stored)).results,
                                       duplicate=True)
        await self._prepare_items(origin, txn)
        async with self._db.transaction() as tx:
            stored = await store.inbound_result(tx, origin, txn_id)
            if stored is not None:
                first = TransactionResponse.from_wire(unpack_body(stored))
                return TransactionResponse(first.results, duplicate=True)
            results = []
            for index, wire_item in enumerate(txn.items):
                results.append(await self._apply_item(tx, origin, txn_id, index, wire_item, now_ms, after))
            response = TransactionResponse(tuple(results))
            await store.record_inbound(tx, origin, txn_id, now_ms, pack_body(response))
        for fn in after:
            try:
                result = fn()
                if result is not None:
                    await result
            except Exception:
                log.error("federation_after_commit_failed", exc_info=True)
        return response

    async def _prepare_items(self, origin: str, txn: Transaction) -> None:
        """Run the items' prepare hooks, outside any database transaction."""
        for wire_item in txn.items:
            hook = self._registry.prepare(wire_item.kind)
            if hook is None:
                continue
            try:
                await hook(origin, wire_item.data)
            except ApiError:
                raise
            except Exception:
                log.warning("federation_item_prepare_failed", kind=wire_item.kind, exc_info=True)

    async def _apply_item(self, tx, origin, txn_id, index, wire_item, now_ms, after) -> ItemResult:
        handler = self._registry.get(wire_item.kind)
        if handler is None:
            return ItemResult(False, "unknown_item_kind", f"no handler for {wire_item.kind}")
        item = InboundItem(origin, txn_id, index, wire_item.kind, wire_item.data, now_ms, tx)
        await tx.execute("SAVEPOINT federation_item")
        try:
            await handler(item)
        except ApiError as exc:
            await tx.execute("ROLLBACK TO federation_item")
            await tx.execute("RELEASE federation_item")
            return ItemResult(False, exc.code, _printable(exc.message))
        await tx.execute("RELEASE federation_item")
        after.extend(item._after)
        return ItemResult(True)


def _printable(text: str) -> str:
    clean = "".join(ch if " " <= ch != "\x7f" else " " for ch in text)
    return clean.encode("utf-8", "replace")[:1000].decode("utf-8", "ignore") or "refused"
