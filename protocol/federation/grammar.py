"""Constants, the error types a peer can be answered with, and the identifier grammar
(``spec/server-server.md``)."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from typing import Any

from crypto.codec import Writer
from crypto.primitives import sha256

from ..errors import ApiError, MalformedBody

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


def _opaque_str(w: Writer, s: str) -> None:
    w.opaque(s.encode("ascii"))



def _located(parse: Callable[[Any], str]) -> Callable[[Any, str], str]:
    """A schema check from a parser: its MalformedBody names the field (``where``)."""

    def check(v: Any, where: str) -> str:
        try:
            return parse(v)
        except MalformedBody as exc:
            raise MalformedBody(f"{where}: {exc.message}") from None

    return check


#: Schema checks of the identifiers above (``where`` names the field).
key_id_check = _located(parse_key_id)
kind_check = _located(parse_item_kind)
