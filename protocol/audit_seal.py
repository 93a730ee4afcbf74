"""Sealed log entries: commitments in place of identifiers, and their openings.

The public transparency log holds every entry *sealed*: each field the entry's
class lists in ``COMMITTED`` (:class:`protocol.audit.Entry`) is replaced by

    commitment = SHA-256(COMMITMENT_LABEL || msgpack([kind, field, salt, value]))

with a 32-byte ``salt`` per entry and field, and ``value`` the field's msgpack
wire value (a string, bytes, an integer or nil). The other fields stay as they
are, in the same order, so a sealed entry is one msgpack map with the kind's
keys, exactly like the opened entry, and one entry has one sealed encoding.

A server derives the salts from its log-privacy key (32 secret bytes) and the
entry's log index:

    salt = HMAC-SHA256(key, SALT_LABEL || msgpack([index, kind, field]))

so salts differ in every entry (two entries of one user commit to different
values) and can be recomputed for an opening without storing them. An
:class:`Opening` is the index, the opened entry and its salts; anyone holding
one checks it against the public entry with :meth:`Opening.verify`.

Errors: :class:`protocol.audit.MalformedEntry` for bad bytes, and
:class:`OpeningMismatch` (code ``opening_mismatch``) for an opening that does
not reproduce the public entry.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgpack

from .audit import (
    MAX_ENTRY_SIZE,
    AuditEntry,
    Entry,
    MalformedEntry,
    decode_entry,
    encode_entry,
    entry_map,
)

__all__ = [
    "COMMITMENT_LABEL",
    "SALT_LABEL",
    "COMMITMENT_SIZE",
    "MAX_OPENING_SIZE",
    "OpeningMismatch",
    "SealedEntry",
    "Opening",
    "commitment",
    "derive_salt",
    "salts_for",
    "seal",
    "decode_sealed",
    "decode_opening",
    "subjects_of",
]

COMMITMENT_LABEL = b"confide.audit.commitment.v1\x00"
SALT_LABEL = b"confide.audit.salt.v1\x00"
COMMITMENT_SIZE = 32
#: Largest encoded opening: an opened entry and one salt per committed field.
MAX_OPENING_SIZE = MAX_ENTRY_SIZE + 512
_MAX_U63 = (1 << 63) - 1


class OpeningMismatch(MalformedEntry):
    """An opening whose entry and salts do not give the public (sealed) entry."""

    code = "opening_mismatch"


def _pack(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def commitment(kind: str, field: str, salt: bytes, value: Any) -> bytes:
    """The 32-byte commitment to ``value`` (a wire value) of ``kind``'s ``field``."""
    return hashlib.sha256(COMMITMENT_LABEL + _pack([kind, field, salt, value])).digest()


def derive_salt(key: bytes, index: int, kind: str, field: str) -> bytes:
    """The salt of ``field`` in the entry at log ``index``, under the log-privacy ``key``."""
    if len(key) != 32:
        raise ValueError("the log-privacy key is 32 bytes")
    return hmac.new(key, SALT_LABEL + _pack([index, kind, field]), hashlib.sha256).digest()


def salts_for(key: bytes, index: int, entry: Entry) -> tuple[bytes, ...]:
    """One salt per committed field of ``entry`` (in ``COMMITTED`` order) at ``index``."""
    return tuple(derive_salt(key, index, entry.KIND, f) for f in entry.COMMITTED)


@dataclass(frozen=True)
class SealedEntry:
    """A public log entry: the kind's keys in order; committed fields hold 32-byte commitments."""

    kind: str
    fields: tuple[tuple[str, Any], ...]  # (name, wire value) after "kind"

    def __getitem__(self, name: str) -> Any:
        for k, v in self.fields:
            if k == name:
                return v
        raise KeyError(name)

    @property
    def time(self) -> int:
        return self["time"]

    def to_bytes(self) -> bytes:
        return _pack({"kind": self.kind, **dict(self.fields)})


def seal(entry: Entry, salts: tuple[bytes, ...]) -> SealedEntry:
    """``entry`` with each committed field replaced by its commitment under ``salts``."""
    if len(salts) != len(entry.COMMITTED) or any(len(s) != 32 for s in salts):
        raise ValueError("one 32-byte salt per committed field")
    salt_of = dict(zip(entry.COMMITTED, salts, strict=True))
    out = []
    for name, value in entry.to_wire().items():
        if name == "kind":
            continue
        if name in salt_of:
            value = commitment(entry.KIND, name, salt_of[name], value)
        out.append((name, value))
    return SealedEntry(entry.KIND, tuple(out))


def decode_sealed(data: bytes) -> SealedEntry:
    """Decode a public entry strictly: the kind's exact keys in order, committed fields as
    32-byte bins, the others valid as in the opened entry, canonical encoding.
    Raises :class:`MalformedEntry`."""
    cls, obj = entry_map(data)
    committed = set(cls.COMMITTED)
    out = []
    for name, value in obj.items():
        if name == "kind":
            continue
        if name in committed:
            if type(value) is not bytes or len(value) != COMMITMENT_SIZE:
                raise MalformedEntry(f"{cls.KIND}.{name} must be a {COMMITMENT_SIZE}-byte commitment")
        else:
            checked = cls.VALIDATORS[name](value)
            value = getattr(checked, "value", checked)
        out.append((name, value))
    sealed = SealedEntry(cls.KIND, tuple(out))
    if not committed:  # nothing hidden: the opened entry's own checks apply (e.g. a window's order)
        cls(**dict(out))
    if sealed.to_bytes() != bytes(data):
        raise MalformedEntry("entry is not in canonical encoding")
    return sealed


@dataclass(frozen=True)
class Opening:
    """What opens the public entry at ``index``: the opened ``entry`` and its ``salts``."""

    index: int
    entry: AuditEntry
    salts: tuple[bytes, ...]

    def sealed(self) -> SealedEntry:
        return seal(self.entry, self.salts)

    def verify(self, public: bytes) -> AuditEntry:
        """The opened entry, if it and the salts give exactly the public entry ``public``;
        else :class:`OpeningMismatch`."""
        if self.sealed().to_bytes() != bytes(public):
            raise OpeningMismatch(f"the opening of entry {self.index} does not match the log")
        return self.entry

    def to_bytes(self) -> bytes:
        """msgpack ``{"index": uint, "entry": bin (opened entry), "salts": [bin32, ...]}``."""
        return _pack({"index": self.index, "entry": encode_entry(self.entry), "salts": list(self.salts)})


def decode_opening(data: bytes) -> Opening:
    """Decode an opening strictly; raises :class:`MalformedEntry`."""
    if len(data) > MAX_OPENING_SIZE:
        raise MalformedEntry("opening larger than the cap")
    try:
        obj = msgpack.unpackb(bytes(data), raw=False, strict_map_key=True, use_list=True,
                              max_str_len=64, max_bin_len=MAX_ENTRY_SIZE, max_array_len=16,
                              max_map_len=3, max_ext_len=0)
    except Exception as exc:  # msgpack raises a mix of ValueError, TypeError and its own types
        raise MalformedEntry(f"opening is not one msgpack value: {type(exc).__name__}") from exc
    if type(obj) is not dict or tuple(obj) != ("index", "entry", "salts"):
        raise MalformedEntry("an opening is a map of index, entry, salts")
    index, raw, salts = obj["index"], obj["entry"], obj["salts"]
    if type(index) is not int or not 0 <= index <= _MAX_U63 or type(raw) is not bytes:
        raise MalformedEntry("opening index or entry of the wrong type")
    entry = decode_entry(raw)
    if type(salts) is not list or len(salts) != len(entry.COMMITTED) or \
            any(type(s) is not bytes or len(s) != 32 for s in salts):
        raise MalformedEntry("an opening has one 32-byte salt per committed field")
    opening = Opening(index, entry, tuple(salts))
    if opening.to_bytes() != bytes(data):
        raise MalformedEntry("opening is not in canonical encoding")
    return opening


def subjects_of(entry: Entry) -> Mapping[str, str]:
    """The committed fields of ``entry`` that hold a user id (``@...``), by field name: the
    users whose "my entries" list names this entry."""
    return {f: v for f in entry.COMMITTED
            if isinstance(v := getattr(entry, f), str) and v.startswith("@")}
