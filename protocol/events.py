"""The hub's signed room event envelope (``spec/client-server.md``, "Signed event envelope").

Every message a room's hub accepts becomes one event: the hub gives it the
room's next sequence number ``seq``, links it to the ``event_id`` of event
``seq - 1`` (``prev``; 32 zero bytes for event 0), stamps the time and signs it
with its Ed25519 server key.

The signed bytes are a domain-separation label followed by the canonical
msgpack encoding of a 9-element array, in this order::

    "confide.room-event.v1" 0x00 ||
    msgpack([room_id: str, seq: uint, prev: bin(32), epoch: uint, kind: str,
             sender_user: str, sender_device: str, ts: uint (ms), message: bin])

Canonical msgpack: integers in their shortest encoding (positive fixint,
uint8, uint16, uint32, uint64), strings as str (fixstr/str8/str16/str32,
shortest), bytes as bin (bin8/bin16/bin32, shortest), the array header as
fixarray 0x99. ``event_id = SHA-256(signed bytes)``; ``hub_signature =
Ed25519(hub key, signed bytes)`` (RFC 8032, pure Ed25519, no prehash).

The hub key is one of the hub server's federation signing keys
(``spec/server-server.md`` section 2): the envelope names it as ``hub_key_id``
beside the signature. As in Matrix, the key id is not part of the signed bytes,
so an event's id does not depend on which of the hub's keys signed it; a
verifier looks the key id up in the hub's key document and uses the key only if
it was valid at the event's ``ts``.

Decoding is strict: :func:`decode_signed_bytes` refuses a wrong label, any
msgpack value other than exactly this array, wrong types, out-of-bound sizes
and a non-canonical encoding (re-encoding must give the same bytes), so one
event has exactly one encoding and one id. :meth:`SignedEvent.from_wire`
decodes the map form carried by sync and history and recomputes the id.

Errors (all :class:`crypto.errors.CryptoError`, each with a stable code):
:class:`MalformedEvent` (``malformed_event``) and its subclasses
:class:`EventTooLarge` (``event_too_large``) and :class:`EventIdMismatch`
(``event_id_mismatch``); :class:`InvalidEventSignature`
(``invalid_event_signature``); :class:`BrokenEventChain`
(``event_chain_broken``).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import msgpack

from crypto.errors import CryptoError, DecodeError, InvalidSignature
from crypto.primitives import ed25519_sign, ed25519_verify, sha256

__all__ = [
    "EVENT_LABEL",
    "GENESIS_PREV",
    "MAX_EVENT_MESSAGE",
    "MAX_SIGNED_EVENT",
    "EventKind",
    "MalformedEvent",
    "EventTooLarge",
    "EventIdMismatch",
    "InvalidEventSignature",
    "BrokenEventChain",
    "EventContent",
    "SignedEvent",
    "sign_event",
    "decode_signed_bytes",
    "verify_chain",
]

#: Domain separation: no other signed Confide object starts with these bytes.
EVENT_LABEL = b"confide.room-event.v1\x00"
#: ``prev`` of a room's first event (seq 0).
GENESIS_PREV = bytes(32)
#: Largest ``message`` (one MLSMessage) an event carries.
MAX_EVENT_MESSAGE = 512 * 1024
#: Largest signed bytes: the label, the message and the other fields' bounds.
MAX_SIGNED_EVENT = len(EVENT_LABEL) + MAX_EVENT_MESSAGE + 1024

_MAX_U63 = (1 << 63) - 1
_MAX_ID = 255
_MAX_DEVICE = 64
_FIELDS = ("room_id", "seq", "prev", "epoch", "kind", "sender_user", "sender_device", "ts", "message")
_WIRE_FIELDS = (*_FIELDS, "event_id", "hub_signature", "hub_key_id")
_KEY_ID = re.compile(r"ed25519:[A-Za-z0-9_-]{1,32}")


class EventKind(enum.StrEnum):
    """What an event carries: the room's creation (its GroupInfo) or one MLSMessage."""

    CREATE = "create"  # seq 0 only: the creator's GroupInfo
    COMMIT = "commit"
    PROPOSAL = "proposal"
    APPLICATION = "application"


class MalformedEvent(DecodeError):
    """Bytes or a map that are not exactly one canonical, well-typed event."""

    code = "malformed_event"


class EventTooLarge(MalformedEvent):
    code = "event_too_large"


class EventIdMismatch(MalformedEvent):
    """The ``event_id`` carried beside an event is not SHA-256 of its signed bytes."""

    code = "event_id_mismatch"


class InvalidEventSignature(InvalidSignature):
    """The hub's signature over the event does not verify with the given hub key."""

    code = "invalid_event_signature"


class BrokenEventChain(CryptoError):
    """Consecutive events whose ``seq`` does not increase by one or whose ``prev`` is not
    the previous event's id (or a room's event 0 whose ``prev`` is not 32 zero bytes)."""

    code = "event_chain_broken"


# -- field checks: each returns the value or raises MalformedEvent ------------------------


def _uint(v: Any, name: str) -> int:
    if type(v) is not int or not 0 <= v <= _MAX_U63:
        raise MalformedEvent(f"{name}: expected an integer 0..2^63-1")
    return v


def _text(v: Any, name: str, max_len: int, prefix: str = "") -> str:
    if type(v) is not str or not v or len(v.encode("utf-8", "surrogatepass")) > max_len:
        raise MalformedEvent(f"{name}: expected a string of 1..{max_len} bytes")
    if any(ch < " " or ch == "\x7f" for ch in v):
        raise MalformedEvent(f"{name}: control character")
    if prefix and (not v.startswith(prefix) or ":" not in v):
        raise MalformedEvent(f"{name}: expected {prefix}local:server")
    return v


def _bin(v: Any, name: str, max_len: int, exact: int | None = None) -> bytes:
    if type(v) is not bytes or len(v) > max_len or (exact is not None and len(v) != exact):
        raise MalformedEvent(f"{name}: expected bytes of the right length")
    return v


def _kind(v: Any) -> EventKind:
    if type(v) is not str:
        raise MalformedEvent("kind: expected a string")
    try:
        return EventKind(v)
    except ValueError:
        raise MalformedEvent(f"kind: unknown kind {v[:32]!r}") from None


def _pack(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


@dataclass(frozen=True)
class EventContent:
    """The fields the hub signs, in signing order. Construction checks every bound."""

    room_id: str
    seq: int
    prev: bytes
    epoch: int
    kind: EventKind
    sender_user: str
    sender_device: str
    ts: int
    message: bytes

    def __post_init__(self) -> None:
        _text(self.room_id, "room_id", _MAX_ID, "!")
        _uint(self.seq, "seq")
        _bin(self.prev, "prev", 32, 32)
        _uint(self.epoch, "epoch")
        object.__setattr__(self, "kind", _kind(str(self.kind)))
        _text(self.sender_user, "sender_user", _MAX_ID, "@")
        _text(self.sender_device, "sender_device", _MAX_DEVICE)
        _uint(self.ts, "ts")
        _bin(self.message, "message", MAX_EVENT_MESSAGE)

    def _array(self) -> list[Any]:
        return [self.room_id, self.seq, self.prev, self.epoch, self.kind.value, self.sender_user,
                self.sender_device, self.ts, self.message]

    def signed_bytes(self) -> bytes:
        """The exact bytes the hub signs (see the module docstring)."""
        return EVENT_LABEL + _pack(self._array())

    def event_id(self) -> bytes:
        """SHA-256 of :meth:`signed_bytes` (32 bytes; hex on the wire)."""
        return sha256(self.signed_bytes())


@dataclass(frozen=True)
class SignedEvent:
    """An event with its id and the hub's signature, as sync and history carry it."""

    content: EventContent
    event_id: bytes
    hub_signature: bytes
    key_id: str = "ed25519:unnamed"

    def verify(self, hub_public_key: bytes) -> None:
        """Raise :class:`EventIdMismatch` if the id is not the content's, and
        :class:`InvalidEventSignature` unless ``hub_public_key`` signed the content."""
        signed = self.content.signed_bytes()
        if sha256(signed) != self.event_id:
            raise EventIdMismatch("event_id is not SHA-256 of the signed bytes")
        try:
            ed25519_verify(hub_public_key, signed, self.hub_signature)
        except InvalidSignature as exc:
            raise InvalidEventSignature("the hub's signature does not verify") from exc

    def to_wire(self) -> dict[str, Any]:
        """The map form: the nine signed fields, ``event_id`` (hex), ``hub_signature`` and
        ``hub_key_id``."""
        c = self.content
        return {"room_id": c.room_id, "seq": c.seq, "prev": c.prev, "epoch": c.epoch,
                "kind": c.kind.value, "sender_user": c.sender_user, "sender_device": c.sender_device,
                "ts": c.ts, "message": c.message, "event_id": self.event_id.hex(),
                "hub_signature": self.hub_signature, "hub_key_id": self.key_id}

    @classmethod
    def from_wire(cls, obj: Any) -> SignedEvent:
        """Decode the map form strictly: exactly the twelve keys, typed and bounded values,
        ``event_id`` 64 lower-case hex digits equal to SHA-256 of the signed bytes,
        ``hub_key_id`` ``ed25519:`` then 1..32 of ``A-Z a-z 0-9 _ -``.

        Raises :class:`MalformedEvent` or :class:`EventIdMismatch`; the signature is checked
        only by :meth:`verify`.
        """
        if type(obj) is not dict or set(obj) != set(_WIRE_FIELDS) or len(obj) != len(_WIRE_FIELDS):
            raise MalformedEvent(f"an event map has exactly the keys {', '.join(_WIRE_FIELDS)}")
        content = _content([obj[name] for name in _FIELDS])
        eid = obj["event_id"]
        if type(eid) is not str or len(eid) != 64 or any(ch not in "0123456789abcdef" for ch in eid):
            raise MalformedEvent("event_id: expected 64 lower-case hex digits")
        signature = _bin(obj["hub_signature"], "hub_signature", 64, 64)
        key_id = obj["hub_key_id"]
        if type(key_id) is not str or not _KEY_ID.fullmatch(key_id):
            raise MalformedEvent("hub_key_id: expected ed25519: and 1..32 of A-Z a-z 0-9 _ -")
        if bytes.fromhex(eid) != content.event_id():
            raise EventIdMismatch("event_id is not SHA-256 of the signed bytes")
        return cls(content, bytes.fromhex(eid), signature, key_id)


def _content(items: list[Any]) -> EventContent:
    room_id, seq, prev, epoch, kind, sender_user, sender_device, ts, message = items
    return EventContent(
        _text(room_id, "room_id", _MAX_ID, "!"), _uint(seq, "seq"), _bin(prev, "prev", 32, 32),
        _uint(epoch, "epoch"), _kind(kind), _text(sender_user, "sender_user", _MAX_ID, "@"),
        _text(sender_device, "sender_device", _MAX_DEVICE), _uint(ts, "ts"),
        _bin(message, "message", MAX_EVENT_MESSAGE))


def sign_event(hub_seed: bytes, content: EventContent, key_id: str = "ed25519:unnamed") -> SignedEvent:
    """Sign ``content`` with the hub's Ed25519 seed (32 bytes), naming the key ``key_id``
    (the hub's federation key id). Raises :class:`MalformedEvent` for a key id outside its grammar."""
    if not _KEY_ID.fullmatch(key_id):
        raise MalformedEvent("hub_key_id: expected ed25519: and 1..32 of A-Z a-z 0-9 _ -")
    signed = content.signed_bytes()
    return SignedEvent(content, sha256(signed), ed25519_sign(hub_seed, signed), key_id)


def decode_signed_bytes(data: bytes) -> EventContent:
    """The content of exactly-signed bytes; raises :class:`EventTooLarge` above
    :data:`MAX_SIGNED_EVENT` and :class:`MalformedEvent` for anything else than the label and
    one canonical 9-element array of the right types."""
    data = bytes(data)
    if len(data) > MAX_SIGNED_EVENT:
        raise EventTooLarge(f"signed event larger than {MAX_SIGNED_EVENT} bytes")
    if not data.startswith(EVENT_LABEL):
        raise MalformedEvent("missing the confide.room-event.v1 label")
    body = data[len(EVENT_LABEL):]
    try:
        obj = msgpack.unpackb(body, raw=False, use_list=True, strict_map_key=True,
                              max_str_len=len(body), max_bin_len=len(body), max_array_len=9,
                              max_map_len=0, max_ext_len=0)
    except Exception as exc:  # msgpack raises ValueError, TypeError, ExtraData, StackError...
        raise MalformedEvent(f"not one msgpack value ({type(exc).__name__})") from None
    if type(obj) is not list or len(obj) != len(_FIELDS):
        raise MalformedEvent("an event is a msgpack array of 9 fields")
    content = _content(obj)
    if content.signed_bytes() != data:
        raise MalformedEvent("event is not in canonical encoding")
    return content


def verify_chain(events: Iterable[SignedEvent], previous: SignedEvent | None = None) -> None:
    """Check that ``events`` (in order, of one room) continue ``previous`` (or start at seq 0
    with :data:`GENESIS_PREV` when ``previous`` is None and the first event is seq 0):
    seq increases by one and each ``prev`` is the previous event's id.

    Raises :class:`BrokenEventChain`. Signatures are checked by :meth:`SignedEvent.verify`.
    """
    last = previous
    for event in events:
        c = event.content
        if last is None:
            if c.seq == 0 and c.prev != GENESIS_PREV:
                raise BrokenEventChain("event 0 must have a prev of 32 zero bytes")
        else:
            if c.room_id != last.content.room_id:
                raise BrokenEventChain("events of different rooms")
            if c.seq != last.content.seq + 1:
                raise BrokenEventChain(f"seq {c.seq} follows seq {last.content.seq}")
            if c.prev != last.event_id:
                raise BrokenEventChain(f"event {c.seq}: prev is not the id of event {last.content.seq}")
        last = event
