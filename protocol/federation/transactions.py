"""Transactions and their answers, discovery (``/.well-known``), the queue's retry schedule."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..errors import MalformedBody
from ..schema import Message, blob, boolean, list_of, nested, nullable, text, unpack_body
from .grammar import (
    _BASE_URL,
    MAX_ITEM_DATA,
    MAX_TXN_BODY,
    MAX_TXN_ITEMS,
    TransactionTooLarge,
    _located,
    kind_check,
)


@dataclass(frozen=True)
class TransactionItem(Message):
    """One typed item: ``kind`` names the registered handler, ``data`` is its opaque payload."""

    SCHEMA: ClassVar = {"kind": kind_check, "data": blob(MAX_ITEM_DATA)}
    kind: str
    data: bytes


@dataclass(frozen=True)
class Transaction(Message):
    """The body of ``PUT /send/{txn_id}``: 1..100 items, applied in order."""

    SCHEMA: ClassVar = {"items": list_of(nested(TransactionItem), MAX_TXN_ITEMS, 1)}
    items: tuple[TransactionItem, ...]

    @classmethod
    def decode(cls, data: bytes) -> Transaction:
        """Raises :class:`TransactionTooLarge` over the bounds of section 5.2, else
        :class:`MalformedBody` for anything but the schema."""
        if len(data) > MAX_TXN_BODY:
            raise TransactionTooLarge(f"a transaction body is at most {MAX_TXN_BODY} bytes")
        obj = unpack_body(data)
        if type(obj) is dict and type(obj.get("items")) is list:
            items = obj["items"]
            if len(items) > MAX_TXN_ITEMS:
                raise TransactionTooLarge(f"a transaction holds at most {MAX_TXN_ITEMS} items")
            for item in items:
                if type(item) is dict and type(item.get("data")) is bytes and len(item["data"]) > MAX_ITEM_DATA:
                    raise TransactionTooLarge(f"an item's data is at most {MAX_ITEM_DATA} bytes")
        return cls.from_wire(obj, "transaction")


@dataclass(frozen=True)
class ItemResult(Message):
    """The outcome of one item: ``ok``, or the item's error ``code`` and ``message``."""

    SCHEMA: ClassVar = {"ok": boolean(), "code": nullable(text(64)), "message": nullable(text(1024))}
    ok: bool
    code: str | None = None
    message: str | None = None


@dataclass(frozen=True)
class TransactionResponse(Message):
    """The answer to a transaction: one result per item, in order; ``duplicate`` when the
    transaction had been applied before (the results are then empty)."""

    SCHEMA: ClassVar = {"results": list_of(nested(ItemResult), MAX_TXN_ITEMS), "duplicate": boolean()}
    results: tuple[ItemResult, ...]
    duplicate: bool = False


# -- discovery -------------------------------------------------------------------------


def parse_base_url(value: object) -> str:
    """``http(s)://host[:port]`` with a lower-case host and no path; raises :class:`MalformedBody`."""
    if type(value) is not str or not _BASE_URL.fullmatch(value):
        raise MalformedBody("a base URL is http(s)://host[:port], lower case, without a path")
    port = value.rsplit(":", 1)[1] if value.count(":") == 2 and not value.endswith("]") else None
    if port is not None and port.isdigit() and int(port) > 65535:
        raise MalformedBody("port must be 1..65535")
    return value


_base_url_check = _located(parse_base_url)


@dataclass(frozen=True)
class WellKnown(Message):
    """``https://NAME/.well-known/confide/server`` (JSON): where NAME's federation API lives."""

    SCHEMA: ClassVar = {"base_url": _base_url_check}
    base_url: str


# -- queue schedule --------------------------------------------------------------------


def retry_delay_ms(attempts: int, initial_ms: int, cap_ms: int, jitter: float) -> int:
    """The wait after ``attempts`` consecutive failures (``attempts >= 1``).

    ``base = min(cap_ms, initial_ms * 2**(attempts - 1))``; the delay is
    ``base/2 + jitter * base/2`` ("equal jitter"), ``jitter`` in ``[0, 1)``,
    so it never drops below half the exponential step and never exceeds the cap.
    """
    if attempts < 1:
        return 0
    if not 0.0 <= jitter < 1.0:
        raise ValueError("jitter must be in [0, 1)")
    base = cap_ms if attempts > 62 else min(cap_ms, initial_ms << (attempts - 1))
    half = base // 2
    return half + int(jitter * (base - half))
