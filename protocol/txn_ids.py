"""Client transaction ids: one fixed format, so that a ``txn_id`` carries no text.

A client ``txn_id`` (``POST /rooms``, ``POST /rooms/{room_id}/send``, ``POST /sendToDevice``
and the forwarded submissions of room federation) is 16 random bytes in unpadded base64url:
exactly 22 characters of ``A-Z a-z 0-9 - _``, the last one of ``A Q g w`` (its low four bits
are zero), so every id has one spelling. :func:`parse_client_txn_id` is the check
(:class:`~protocol.channel_errors.InvalidTxnId` otherwise); :func:`new_client_txn_id` makes
one from an injected random source. The server keeps only a hash of it
(:func:`txn_key`), so even the 16 bytes a malicious client chose are not stored.
"""

from __future__ import annotations

import base64
import re
from typing import Any

from crypto.primitives import sha256
from crypto.rng import Rng

from .channel_errors import InvalidTxnId

__all__ = ["TXN_ID_LENGTH", "parse_client_txn_id", "new_client_txn_id", "txn_key"]

TXN_ID_LENGTH = 22
_FORM = re.compile(r"[A-Za-z0-9_-]{21}[AQgw]")


def parse_client_txn_id(v: Any) -> str:
    """``v`` if it is a client transaction id; raises :class:`InvalidTxnId`."""
    if type(v) is not str or not _FORM.fullmatch(v):
        raise InvalidTxnId("txn_id is 16 random bytes in unpadded base64url (22 characters)")
    return v


def new_client_txn_id(rng: Rng) -> str:
    return base64.urlsafe_b64encode(rng(16)).decode().rstrip("=")


def txn_key(txn_id: str) -> str:
    """What the server stores for a transaction id: SHA-256 of it, in hex."""
    return sha256(txn_id.encode()).hex()
