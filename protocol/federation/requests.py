"""Signed requests: the bytes an origin signs, the ``Authorization`` header, sign and verify."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from crypto.codec import Writer
from crypto.errors import InvalidSignature
from crypto.primitives import ed25519_sign, ed25519_verify, sha256

from ..errors import InvalidIdentifier, MalformedBody
from ..ids import parse_server_name
from .grammar import (
    _AUTH,
    _B64URL_SIG,
    _METHOD,
    _TS,
    AUTH_SCHEME,
    MAX_AUTHORIZATION,
    REQUEST_LABEL,
    BadSignature,
    MalformedAuthorization,
    Unsigned,
    _opaque_str,
    parse_key_id,
    parse_target,
)


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
