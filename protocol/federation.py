"""The server-server protocol's pure parts (``spec/server-server.md``).

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

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from crypto.codec import Writer
from crypto.errors import InternalError, InvalidSignature
from crypto.primitives import ed25519_public_key, ed25519_sign, ed25519_verify, sha256

from .errors import ApiError, InvalidIdentifier, MalformedBody
from .ids import parse_server_name
from .schema import Message, blob, boolean, list_of, nested, nullable, text, uint, unpack_body

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

FEDERATION_PREFIX = "/_confide/federation/v1"
KEY_PATH = "/_confide/key/v1/server"
WELL_KNOWN_PATH = "/.well-known/confide/server"
SEND_PATH = FEDERATION_PREFIX + "/send/{txn_id}"

#: Domain-separation labels of the two signed structures.
REQUEST_LABEL = b"confide federation request v1"
KEYS_LABEL = b"confide server keys v1"

AUTH_SCHEME = "Confide-Signature"
MAX_AUTHORIZATION = 1024
MAX_TARGET = 2048
MAX_TXN_ITEMS = 100
MAX_ITEM_DATA = 512 * 1024
MAX_TXN_BODY = 1024 * 1024
MAX_KEYS = 64

_KEY_ID = re.compile(r"ed25519:[A-Za-z0-9_-]{1,32}")
_TXN_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_ITEM_KIND = re.compile(r"[a-z][a-z0-9_.]{0,63}")
_TARGET = re.compile(r"/[A-Za-z0-9\-._~!$&'()*+,;=:@%/]*(\?[A-Za-z0-9\-._~!$&'()*+,;=:@%/?]*)?")
_METHOD = re.compile(r"[A-Z]{1,16}")
_B64URL_SIG = re.compile(r"[A-Za-z0-9_-]{86}")
_TS = re.compile(r"0|[1-9][0-9]{0,15}")
_AUTH = re.compile(
    AUTH_SCHEME
    + r' origin="([^"]{1,230})",destination="([^"]{1,230})",key="([^"]{1,48})",ts="([^"]{1,16})",sig="([^"]{1,100})"'
)
_BASE_URL = re.compile(r"(https?)://([a-z0-9.-]{1,253}|\[[0-9a-f:.]{2,45}\])(:[1-9][0-9]{0,4})?")


# -- errors ------------------------------------------------------------------------


class FederationError(ApiError):
    """Base of the server-server errors (abstract grouping, no code of its own)."""


class Unsigned(FederationError):
    """A federation request without an ``Authorization: Confide-Signature`` header."""

    code = "unsigned"
    status = 401


class MalformedAuthorization(FederationError):
    """The ``Authorization`` header is not exactly the grammar of section 3.2."""

    code = "malformed_authorization"
    status = 401


class BadSignature(FederationError):
    """The signature does not verify over the request as received."""

    code = "bad_signature"
    status = 401


class UnknownKey(FederationError):
    """The origin does not publish the named key (after a fresh fetch of its keys)."""

    code = "unknown_key"
    status = 401


class KeyExpired(FederationError):
    """The named key was not valid at the request's timestamp."""

    code = "key_expired"
    status = 401


class WrongDestination(FederationError):
    """The request names another server as its destination."""

    code = "wrong_destination"
    status = 421


class ClockSkew(FederationError):
    """The request's timestamp is further from the receiver's clock than the allowed skew."""

    code = "clock_skew"
    status = 401


class Replayed(FederationError):
    """A request with the same origin and signature was already received."""

    code = "replayed"
    status = 401


class ReplayCacheFull(FederationError):
    """The replay cache is full of unexpired entries; the request is refused, try later."""

    code = "replay_cache_full"
    status = 503


class PeerDenied(FederationError):
    """The origin (or, outbound, the destination) is refused by the allow-list or deny-list."""

    code = "peer_denied"
    status = 403


class TransactionTooLarge(FederationError):
    """A transaction over the body, item-count or item-size bounds of section 5."""

    code = "transaction_too_large"
    status = 413


class UnknownItemKind(FederationError):
    """A transaction item of a kind this server has no handler for (a per-item result)."""

    code = "unknown_item_kind"
    status = 400


class ServerKeysInvalid(FederationError):
    """A server-keys document that does not decode, names another server or fails its self-signature."""

    code = "server_keys_invalid"
    status = 502


class PeerUnreachable(FederationError):
    """The peer could not be discovered, connected to, or did not answer in time (or not in msgpack)."""

    code = "peer_unreachable"
    status = 502


class PeerRefused(FederationError):
    """The peer answered a federation request with an error; ``remote_code`` and
    ``remote_status`` are the peer's own code and HTTP status."""

    code = "peer_refused"
    status = 502

    def __init__(self, message: str, remote_code: str, remote_status: int) -> None:
        super().__init__(message, remote_code=remote_code, remote_status=remote_status)
        self.remote_code = remote_code
        self.remote_status = remote_status


# -- grammar -----------------------------------------------------------------------


def parse_key_id(value: object) -> str:
    """``ed25519:`` then 1..32 of ``A-Z a-z 0-9 _ -``; raises :class:`MalformedBody`."""
    if type(value) is not str or not _KEY_ID.fullmatch(value):
        raise MalformedBody("a key id is ed25519: followed by 1..32 of A-Z a-z 0-9 _ -")
    return value


def key_id_for(public_key: bytes) -> str:
    """The key id Confide derives from a public key: ``ed25519:`` + base64url(SHA-256(pk)[:6])."""
    return "ed25519:" + base64.urlsafe_b64encode(sha256(public_key)[:6]).decode()


def parse_txn_id(value: object) -> str:
    """1..64 of ``A-Z a-z 0-9 _ -``; raises :class:`MalformedBody`."""
    if type(value) is not str or not _TXN_ID.fullmatch(value):
        raise MalformedBody("a transaction id is 1..64 of A-Z a-z 0-9 _ -")
    return value


def parse_item_kind(value: object) -> str:
    """A lower-case letter then up to 63 of ``a-z 0-9 _ .``; raises :class:`MalformedBody`."""
    if type(value) is not str or not _ITEM_KIND.fullmatch(value):
        raise MalformedBody("an item kind is [a-z][a-z0-9_.]{0,63}")
    return value


def parse_target(value: object) -> str:
    """A request target (path and optional query) of URI characters, at most 2048 bytes."""
    if type(value) is not str or len(value) > MAX_TARGET or not _TARGET.fullmatch(value):
        raise MalformedBody("a request target is an absolute path of URI characters, optional ?query")
    return value


# -- signed requests -------------------------------------------------------------------


def _opaque_str(w: Writer, s: str) -> None:
    w.opaque(s.encode("ascii"))


def signed_request_bytes(method: str, target: str, body: bytes, origin: str, destination: str,
                         timestamp_ms: int) -> bytes:
    """The bytes an origin signs for one request (``spec/server-server.md`` section 3.1)::

        opaque label<V>        = "confide federation request v1"
        opaque method<V>       (upper-case ASCII)
        opaque target<V>       (path and query exactly as on the request line)
        opaque body_hash[32]   = SHA-256(body), SHA-256("") without a body
        opaque origin<V>
        opaque destination<V>
        uint64 timestamp_ms

    Raises :class:`MalformedBody` for a method, target or name outside its grammar.
    """
    if not _METHOD.fullmatch(method):
        raise MalformedBody("method must be upper-case ASCII letters")
    parse_target(target)
    for name in (origin, destination):
        try:
            parse_server_name(name)
        except InvalidIdentifier as exc:
            raise MalformedBody(exc.message) from None
    if type(timestamp_ms) is not int or not 0 <= timestamp_ms < 1 << 63:
        raise MalformedBody("timestamp must be 0..2^63-1")
    w = Writer()
    w.opaque(REQUEST_LABEL)
    _opaque_str(w, method)
    _opaque_str(w, target)
    w.write(sha256(body))
    _opaque_str(w, origin)
    _opaque_str(w, destination)
    w.u64(timestamp_ms)
    return w.getvalue()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64url_sig(value: str) -> bytes:
    if not _B64URL_SIG.fullmatch(value):
        raise MalformedAuthorization("sig must be 86 characters of unpadded base64url")
    try:
        raw = base64.urlsafe_b64decode(value + "==")
    except (binascii.Error, ValueError):
        raise MalformedAuthorization("sig is not base64url") from None
    if len(raw) != 64 or _b64url(raw) != value:
        raise MalformedAuthorization("sig is not the canonical encoding of 64 bytes")
    return raw


@dataclass(frozen=True)
class Authorization:
    """The ``Authorization`` header of a federation request (section 3.2)::

        Confide-Signature origin="a.example",destination="b.example",key="ed25519:AbCdEfGh",ts="1767225600000",sig="<86 base64url>"
    """

    origin: str
    destination: str
    key_id: str
    timestamp_ms: int
    signature: bytes

    def to_header(self) -> str:
        return (f'{AUTH_SCHEME} origin="{self.origin}",destination="{self.destination}",'
                f'key="{self.key_id}",ts="{self.timestamp_ms}",sig="{_b64url(self.signature)}"')

    @classmethod
    def parse(cls, value: str | None) -> Authorization:
        """Raises :class:`Unsigned` without a ``Confide-Signature`` header and
        :class:`MalformedAuthorization` for any deviation from the grammar."""
        if value is None or not value.startswith(AUTH_SCHEME + " "):
            raise Unsigned("federation requests carry Authorization: Confide-Signature")
        if len(value) > MAX_AUTHORIZATION:
            raise MalformedAuthorization("Authorization header too long")
        m = _AUTH.fullmatch(value)
        if m is None:
            raise MalformedAuthorization("Authorization must be exactly origin, destination, key, ts, sig")
        origin, destination, key_id, ts, sig = m.groups()
        try:
            parse_server_name(origin)
            parse_server_name(destination)
            parse_key_id(key_id)
        except (InvalidIdentifier, MalformedBody) as exc:
            raise MalformedAuthorization(exc.message) from None
        if not _TS.fullmatch(ts):
            raise MalformedAuthorization("ts must be a canonical decimal of milliseconds")
        return cls(origin, destination, key_id, int(ts), _unb64url_sig(sig))

    def signed_bytes(self, method: str, target: str, body: bytes) -> bytes:
        return signed_request_bytes(method, target, body, self.origin, self.destination, self.timestamp_ms)


def sign_request(seed: bytes, key_id: str, method: str, target: str, body: bytes, origin: str,
                 destination: str, timestamp_ms: int) -> Authorization:
    """Sign one request with the Ed25519 ``seed`` of ``key_id``."""
    msg = signed_request_bytes(method, target, body, origin, destination, timestamp_ms)
    return Authorization(origin, destination, key_id, timestamp_ms, ed25519_sign(seed, msg))


def verify_request(auth: Authorization, public_key: bytes, method: str, target: str, body: bytes) -> None:
    """Raises :class:`BadSignature` unless ``auth`` signs exactly this request."""
    try:
        msg = auth.signed_bytes(method, target, body)
        ed25519_verify(public_key, msg, auth.signature)
    except (InvalidSignature, MalformedBody):
        raise BadSignature("the request signature does not verify") from None


def _located(parse: Callable[[Any], str]) -> Callable[[Any, str], str]:
    """A schema check from a parser: its MalformedBody names the field (``where``)."""

    def check(v: Any, where: str) -> str:
        try:
            return parse(v)
        except MalformedBody as exc:
            raise MalformedBody(f"{where}: {exc.message}") from None

    return check


# -- server keys -----------------------------------------------------------------------


_key_id_check = _located(parse_key_id)


@dataclass(frozen=True)
class ServerKey(Message):
    """One published key: valid for signatures made at ``valid_from <= t < valid_until``
    (``valid_until`` None: the current key, open-ended)."""

    SCHEMA: ClassVar = {"public_key": blob(32, exact=32), "valid_from": uint(), "valid_until": nullable(uint())}
    public_key: bytes
    valid_from: int
    valid_until: int | None = None

    def valid_at(self, t_ms: int) -> bool:
        return self.valid_from <= t_ms and (self.valid_until is None or t_ms < self.valid_until)


def _keys_map(v: Any, where: str) -> dict[str, ServerKey]:
    if type(v) is not dict or not 1 <= len(v) <= MAX_KEYS:
        raise MalformedBody(f"{where}: expected a map of 1..{MAX_KEYS} keys")
    return {_key_id_check(k, f"{where} key"): ServerKey.from_wire(x, f"{where}.{k}") for k, x in v.items()}


def _sig_map(v: Any, where: str) -> dict[str, bytes]:
    if type(v) is not dict or not 1 <= len(v) <= MAX_KEYS:
        raise MalformedBody(f"{where}: expected a map of 1..{MAX_KEYS} signatures")
    return {_key_id_check(k, f"{where} key"): blob(64, exact=64)(x, f"{where}.{k}") for k, x in v.items()}


def server_keys_tbs(server_name: str, keys: dict[str, ServerKey], published: int) -> bytes:
    """The bytes each signing key signs (section 2.1)::

        opaque label<V> = "confide server keys v1"
        opaque server_name<V>
        uint64 published
        KeyEntry keys<V>     (sorted by key_id bytes)
        struct { opaque key_id<V>; opaque public_key[32]; uint64 valid_from;
                 optional<uint64> valid_until; } KeyEntry
    """
    w = Writer()
    w.opaque(KEYS_LABEL)
    _opaque_str(w, server_name)
    w.u64(published)

    def entry(w2: Writer, item: tuple[str, ServerKey]) -> None:
        kid, key = item
        _opaque_str(w2, kid)
        w2.write(key.public_key)
        w2.u64(key.valid_from)
        w2.optional(key.valid_until, Writer.u64)

    w.vector(sorted(keys.items(), key=lambda kv: kv[0].encode()), entry)
    return w.getvalue()


@dataclass(frozen=True)
class ServerKeys(Message):
    """The self-signed key document at ``GET /_confide/key/v1/server`` (section 2).

    ``signatures`` maps each key that was current at ``published`` to its
    signature over :func:`server_keys_tbs`. Decode with :meth:`from_wire` (or
    :meth:`decode`), then :meth:`verify` before use.
    """

    SCHEMA: ClassVar = {
        "server_name": text(230),
        "published": uint(),
        "keys": _keys_map,
        "signatures": _sig_map,
    }
    server_name: str
    published: int
    keys: dict[str, ServerKey]
    signatures: dict[str, bytes]

    def to_wire(self) -> dict[str, Any]:
        return {"server_name": self.server_name, "published": self.published,
                "keys": {k: v.to_wire() for k, v in self.keys.items()},
                "signatures": dict(self.signatures)}

    @classmethod
    def decode(cls, data: bytes) -> ServerKeys:
        """Raises :class:`ServerKeysInvalid` for anything but one valid document."""
        try:
            return cls.from_wire(unpack_body(data), "server_keys")
        except MalformedBody as exc:
            raise ServerKeysInvalid(exc.message) from None

    @classmethod
    def build(cls, server_name: str, keys: dict[str, ServerKey], signing: dict[str, bytes],
              published: int) -> ServerKeys:
        """Sign with each ``key_id -> seed`` of ``signing`` (each must be in ``keys``)."""
        tbs = server_keys_tbs(server_name, keys, published)
        sigs = {}
        for kid, seed in signing.items():
            if keys[kid].public_key != ed25519_public_key(seed):
                raise InternalError(f"seed of {kid} does not match its published key")
            sigs[kid] = ed25519_sign(seed, tbs)
        return cls(server_name, published, dict(keys), sigs)

    def verify(self, expected_server: str) -> None:
        """Raises :class:`ServerKeysInvalid` unless the document is ``expected_server``'s,
        and every signature is by a listed key valid at ``published`` and verifies."""
        if self.server_name != expected_server:
            raise ServerKeysInvalid(f"key document of {self.server_name!r}, expected {expected_server!r}")
        try:
            parse_server_name(self.server_name)
        except InvalidIdentifier as exc:
            raise ServerKeysInvalid(exc.message) from None
        tbs = server_keys_tbs(self.server_name, self.keys, self.published)
        for kid, sig in self.signatures.items():
            key = self.keys.get(kid)
            if key is None or not key.valid_at(self.published):
                raise ServerKeysInvalid(f"signature by {kid}, not a key valid at publication")
            try:
                ed25519_verify(key.public_key, tbs, sig)
            except InvalidSignature:
                raise ServerKeysInvalid(f"self-signature by {kid} does not verify") from None

    def key_at(self, key_id: str, t_ms: int) -> bytes:
        """The public key of ``key_id`` for a signature made at ``t_ms``.

        Raises :class:`UnknownKey` (not listed) or :class:`KeyExpired` (listed,
        but ``t_ms`` is outside its validity).
        """
        key = self.keys.get(key_id)
        if key is None:
            raise UnknownKey(f"{self.server_name} publishes no key {key_id}")
        if not key.valid_at(t_ms):
            raise KeyExpired(f"key {key_id} of {self.server_name} is not valid at {t_ms}")
        return key.public_key


# -- transactions ----------------------------------------------------------------------


_kind_check = _located(parse_item_kind)


@dataclass(frozen=True)
class TransactionItem(Message):
    """One typed item: ``kind`` names the registered handler, ``data`` is its opaque payload."""

    SCHEMA: ClassVar = {"kind": _kind_check, "data": blob(MAX_ITEM_DATA)}
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
