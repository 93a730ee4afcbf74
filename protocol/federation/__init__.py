"""The server-server protocol's pure parts (``spec/server-server.md``), one module a concept:
:mod:`.grammar` (constants, errors, identifiers), :mod:`.requests`, :mod:`.keys` and
:mod:`.transactions` (with discovery and the queue schedule); every name is re-exported here.

- Signed requests: :func:`signed_request_bytes` is the exact byte string an
  origin signs (domain label, method, request target, SHA-256 of the body,
  origin, destination, timestamp); :class:`Authorization` is the header that
  carries the signature; :func:`sign_request` and :func:`verify_request`
  make and check it.
- Server keys: :class:`ServerKey` and :class:`ServerKeys`, the self-signed key
  document a server publishes; :meth:`ServerKeys.key_at` answers which key
  verifies a signature made at a given time (``unknown_key``, ``key_expired``).
- Transactions: :class:`Transaction` (typed items) and :class:`TransactionResponse`.
- Discovery: :class:`WellKnown` and :func:`parse_base_url`.
- Queue schedule: :func:`retry_delay_ms`, exponential backoff with jitter and a cap.

Every error a peer can be answered with is an
:class:`~protocol.errors.ApiError` subclass registered here with a stable
code. Decoders raise only those (or :class:`~protocol.errors.MalformedBody`,
:class:`~protocol.errors.InvalidIdentifier`). Time is always a parameter
(milliseconds since the Unix epoch).
"""

from __future__ import annotations

from .grammar import (
    AUTH_SCHEME,
    FEDERATION_PREFIX,
    KEY_PATH,
    KEYS_LABEL,
    MAX_AUTHORIZATION,
    MAX_ITEM_DATA,
    MAX_KEYS,
    MAX_TARGET,
    MAX_TXN_BODY,
    MAX_TXN_ITEMS,
    REQUEST_LABEL,
    SEND_PATH,
    WELL_KNOWN_PATH,
    BadSignature,
    ClockSkew,
    FederationError,
    KeyExpired,
    MalformedAuthorization,
    PeerDenied,
    PeerRefused,
    PeerUnreachable,
    ReplayCacheFull,
    Replayed,
    ServerKeysInvalid,
    TransactionTooLarge,
    UnknownItemKind,
    UnknownKey,
    Unsigned,
    WrongDestination,
    key_id_for,
    parse_item_kind,
    parse_key_id,
    parse_target,
    parse_txn_id,
)
from .keys import (
    ServerKey,
    ServerKeys,
    server_keys_tbs,
)
from .requests import (
    Authorization,
    sign_request,
    signed_request_bytes,
    verify_request,
)
from .transactions import (
    ItemResult,
    Transaction,
    TransactionItem,
    TransactionResponse,
    WellKnown,
    parse_base_url,
    retry_delay_ms,
)

__all__ = [
    "FEDERATION_PREFIX",
    "KEY_PATH",
    "WELL_KNOWN_PATH",
    "SEND_PATH",
    "REQUEST_LABEL",
    "KEYS_LABEL",
    "AUTH_SCHEME",
    "MAX_AUTHORIZATION",
    "MAX_TARGET",
    "MAX_TXN_ITEMS",
    "MAX_ITEM_DATA",
    "MAX_TXN_BODY",
    "MAX_KEYS",
    "FederationError",
    "Unsigned",
    "MalformedAuthorization",
    "BadSignature",
    "UnknownKey",
    "KeyExpired",
    "WrongDestination",
    "ClockSkew",
    "Replayed",
    "ReplayCacheFull",
    "PeerDenied",
    "TransactionTooLarge",
    "UnknownItemKind",
    "ServerKeysInvalid",
    "PeerUnreachable",
    "PeerRefused",
    "parse_key_id",
    "key_id_for",
    "parse_txn_id",
    "parse_item_kind",
    "parse_target",
    "signed_request_bytes",
    "Authorization",
    "sign_request",
    "verify_request",
    "ServerKey",
    "ServerKeys",
    "server_keys_tbs",
    "TransactionItem",
    "Transaction",
    "ItemResult",
    "TransactionResponse",
    "WellKnown",
    "parse_base_url",
    "retry_delay_ms",
]
