"""Server keys: the self-signed key document a server publishes, and which key verifies when."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from crypto.codec import Writer
from crypto.errors import InternalError, InvalidSignature
from crypto.primitives import ed25519_public_key, ed25519_sign, ed25519_verify

from ..errors import InvalidIdentifier, MalformedBody
from ..ids import parse_server_name
from ..schema import Message, blob, nullable, text, uint, unpack_body
from .grammar import (
    KEYS_LABEL,
    MAX_KEYS,
    KeyExpired,
    ServerKeysInvalid,
    UnknownKey,
    _opaque_str,
    key_id_check,
)


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
    return {key_id_check(k, f"{where} key"): ServerKey.from_wire(x, f"{where}.{k}") for k, x in v.items()}


def _sig_map(v: Any, where: str) -> dict[str, bytes]:
    if type(v) is not dict or not 1 <= len(v) <= MAX_KEYS:
        raise MalformedBody(f"{where}: expected a map of 1..{MAX_KEYS} signatures")
    return {key_id_check(k, f"{where} key"): blob(64, exact=64)(x, f"{where}.{k}") for k, x in v.items()}


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
