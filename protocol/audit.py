"""Entries of a Confide server's transparency log (``spec/audit-log.md``).

Each entry is one msgpack map whose keys come in the order the spec lists:
``kind``, ``time`` (milliseconds since the Unix epoch), then the kind's own
fields. Entries hold identifiers, hashes, sizes and public keys only: never
plaintext and never secret key material.

Kinds (:data:`ENTRY_KINDS`): ``device_added``, ``device_removed``,
``room_event``, ``access`` (with an :class:`AccessAction`), ``policy``,
``consent``, ``device_approved``, ``failed_logins`` (a count per window) and
``auditor_read``.

These classes are the *opened* (cleartext) form. The public log holds each
entry *sealed* (:mod:`protocol.audit_seal`): every field an entry class lists in
``COMMITTED`` replaced by a 32-byte commitment; ``SUBJECT`` and ``OPENED_BY``
say who may open it (``spec/audit-log.md``, "Commitments and openings"). Three
kinds carry a signature an auditor can check, once opened, without any secret:
``device_added`` is signed by the device's own signature key
(:func:`device_registration_message`), ``consent`` by the key of the device
that accepted (:func:`consent_message`), ``device_approved`` by the registered
key of the approving device of the same user (:func:`device_approval_message`).

Decoding is strict: at most :data:`MAX_ENTRY_SIZE` bytes, exactly the kind's
keys, typed and bounded values, and the bytes must be the canonical encoding
(re-encoding the decoded entry gives the same bytes), so one entry has one
encoding and one leaf hash. Errors: :class:`MalformedEntry` (code
``"malformed_entry"``) and its subclasses :class:`UnknownEntryKind`,
:class:`EntryTooLarge`; :class:`InvalidEntrySignature` for a carried
signature that does not verify.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import msgpack

from crypto.errors import DecodeError, InvalidSignature
from crypto.primitives import ed25519_public_key, ed25519_sign, ed25519_verify

__all__ = [
    "MAX_ENTRY_SIZE",
    "ENTRY_KINDS",
    "MalformedEntry",
    "UnknownEntryKind",
    "EntryTooLarge",
    "InvalidEntrySignature",
    "AccessAction",
    "RemovalReason",
    "Entry",
    "DeviceAdded",
    "DeviceRemoved",
    "RoomEvent",
    "AccessEvent",
    "PolicyRecord",
    "ConsentRecord",
    "DeviceApproved",
    "FailedLogins",
    "AuditorRead",
    "OpenedBy",
    "AuditEntry",
    "encode_entry",
    "decode_entry",
    "entry_map",
    "device_registration_message",
    "consent_message",
    "sign_device_registration",
    "sign_consent",
    "device_approval_message",
    "sign_device_approval",
]

#: Largest encoded entry (bytes). Entry bundles allow 65535; Confide's entries are far smaller.
MAX_ENTRY_SIZE = 4096
_MAX_ID = 255
_MAX_CREDENTIAL = 1024
_MAX_U63 = (1 << 63) - 1
_MAX_SIZE = (1 << 32) - 1

_DEVICE_REGISTRATION_LABEL = b"confide.audit.device-registration.v1\x00"
_CONSENT_LABEL = b"confide.audit.consent.v1\x00"
_DEVICE_APPROVAL_LABEL = b"confide.audit.device-approval.v1\x00"


class MalformedEntry(DecodeError):
    """The bytes are not a canonical, well-typed audit log entry."""

    code = "malformed_entry"


class UnknownEntryKind(MalformedEntry):
    code = "unknown_entry_kind"


class EntryTooLarge(MalformedEntry):
    code = "entry_too_large"


class InvalidEntrySignature(InvalidSignature):
    """A signature carried in an entry (device registration, consent) does not verify."""

    code = "invalid_entry_signature"


class AccessAction(enum.StrEnum):
    ACCOUNT_CREATED = "account_created"
    LOGIN = "login"
    LOGOUT = "logout"
    SESSION_EXPIRED = "session_expired"
    DEVICE_REVOKED = "device_revoked"
    EXPORT_REQUESTED = "export_requested"
    MFA_ENABLED = "mfa_enabled"
    MFA_DISABLED = "mfa_disabled"
    RECOVERY_CODE_USED = "recovery_code_used"


class OpenedBy(enum.StrEnum):
    """Who, besides the entry's ``SUBJECT`` user and auditors, may open an entry."""

    NOBODY_ELSE = "nobody_else"
    CONTACTS = "contacts"  # users who may list the subject's devices (spec/security.md, finding 12)
    ROOM_MEMBERS = "room_members"  # current and past members of the entry's ``room``
    USERS = "users"  # any signed-in user of this server


class RemovalReason(enum.StrEnum):
    SELF = "self"  # the user removed their own device
    ADMIN = "admin"  # an administrator revoked it
    EXPIRED = "expired"  # the server retired an unused device


# -- field validators: each returns the value or raises MalformedEntry -----------


def _int(lo: int, hi: int) -> Callable[[Any], int]:
    def check(v: Any) -> int:
        if type(v) is not int or not lo <= v <= hi:
            raise MalformedEntry(f"expected an integer in {lo}..{hi}")
        return v

    return check


def _str(max_len: int = _MAX_ID, prefix: str = "", need_server: bool = False) -> Callable[[Any], str]:
    def check(v: Any) -> str:
        if type(v) is not str or not v or len(v.encode()) > max_len:
            raise MalformedEntry(f"expected a non-empty string of at most {max_len} bytes")
        if any(ch < " " or ch == "\x7f" for ch in v):
            raise MalformedEntry("control character in an identifier")
        if prefix and not v.startswith(prefix):
            raise MalformedEntry(f"identifier must start with {prefix!r}")
        if need_server:
            local, sep, server = v[1:].partition(":")
            if not local or not sep or not server:
                raise MalformedEntry("identifier must be <sigil>local:server")
        return v

    return check


def _bin(exact: int | None = None, max_len: int = _MAX_ID) -> Callable[[Any], bytes]:
    def check(v: Any) -> bytes:
        if type(v) is not bytes:
            raise MalformedEntry("expected bytes")
        if (exact is not None and len(v) != exact) or len(v) > max_len:
            raise MalformedEntry("bytes of the wrong length")
        return v

    return check


def _optional(inner: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def check(v: Any) -> Any:
        return None if v is None else inner(v)

    return check


def _enum(cls: type[enum.StrEnum]) -> Callable[[Any], Any]:
    def check(v: Any) -> Any:
        if type(v) is not str and not isinstance(v, cls):
            raise MalformedEntry("expected an enumerated string")
        try:
            return cls(v)
        except ValueError as exc:
            raise MalformedEntry(f"unknown {cls.__name__} {v!r}") from exc

    return check


_USER = _str(prefix="@", need_server=True)
_ROOM = _str(prefix="!", need_server=True)
_DEVICE = _str(max_len=64)
_HASH = _bin(32)
_ED25519_KEY = _bin(32)
_SIGNATURE = _bin(64)
_TIME = _int(0, _MAX_U63)


class Entry:
    """Base of every entry kind: ``KIND`` and a ``VALIDATORS`` table in field order.

    ``COMMITTED`` names the fields the public log carries as commitments only (every
    field that holds a user, device, room or auditor id, or bytes that identify one);
    ``SUBJECT`` the field naming the user who may open the entry; ``OPENED_BY`` who
    else may. A new kind declares these three and needs nothing else.
    """

    KIND: ClassVar[str]
    VALIDATORS: ClassVar[dict[str, Callable[[Any], Any]]]
    COMMITTED: ClassVar[tuple[str, ...]] = ()
    SUBJECT: ClassVar[str | None] = None
    OPENED_BY: ClassVar[OpenedBy] = OpenedBy.NOBODY_ELSE

    def __post_init__(self) -> None:
        for f in fields(self):  # type: ignore[arg-type]
            value = self.VALIDATORS[f.name](getattr(self, f.name))
            object.__setattr__(self, f.name, value)

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.KIND}
        for f in fields(self):  # type: ignore[arg-type]
            v = getattr(self, f.name)
            out[f.name] = v.value if isinstance(v, enum.Enum) else v
        return out

    def to_bytes(self) -> bytes:
        return encode_entry(self)  # type: ignore[arg-type]


def _check_signature(key: bytes, msg: bytes, signature: bytes, what: str) -> None:
    """Raise :class:`InvalidEntrySignature` (``what`` signature does not verify) unless
    ``key`` signed ``msg``."""
    try:
        ed25519_verify(key, msg, signature)
    except InvalidSignature as exc:
        raise InvalidEntrySignature(f"{what} signature does not verify") from exc


@dataclass(frozen=True)
class DeviceAdded(Entry):
    """A device registered under ``user``, self-signed with its Ed25519 ``signature_key``."""

    KIND: ClassVar[str] = "device_added"
    COMMITTED: ClassVar[tuple[str, ...]] = ("user", "device", "signature_key", "credential", "signature")
    SUBJECT: ClassVar[str | None] = "user"
    OPENED_BY: ClassVar[OpenedBy] = OpenedBy.CONTACTS
    VALIDATORS: ClassVar[dict] = {
        "time": _TIME, "user": _USER, "device": _DEVICE, "signature_key": _ED25519_KEY,
        "credential": _bin(max_len=_MAX_CREDENTIAL), "signature": _SIGNATURE,
    }
    time: int
    user: str
    device: str
    signature_key: bytes
    credential: bytes
    signature: bytes

    def verify_signature(self) -> None:
        """Raise :class:`InvalidEntrySignature` unless the device signed this registration."""
        msg = device_registration_message(self.user, self.device, self.signature_key, self.credential)
        _check_signature(self.signature_key, msg, self.signature, "device registration")


@dataclass(frozen=True)
class DeviceRemoved(Entry):
    KIND: ClassVar[str] = "device_removed"
    COMMITTED: ClassVar[tuple[str, ...]] = ("user", "device", "signature_key")
    SUBJECT: ClassVar[str | None] = "user"
    OPENED_BY: ClassVar[OpenedBy] = OpenedBy.CONTACTS
    VALIDATORS: ClassVar[dict] = {
        "time": _TIME, "user": _USER, "device": _DEVICE, "signature_key": _ED25519_KEY,
        "reason": _enum(RemovalReason),
    }
    time: int
    user: str
    device: str
    signature_key: bytes
    reason: RemovalReason


@dataclass(frozen=True)
class RoomEvent(Entry):
    """The hub accepted event ``seq`` of ``room``: hashes and sizes only, never content."""

    KIND: ClassVar[str] = "room_event"
    COMMITTED: ClassVar[tuple[str, ...]] = ("room", "sender", "sender_device")
    SUBJECT: ClassVar[str | None] = "sender"
    OPENED_BY: ClassVar[OpenedBy] = OpenedBy.ROOM_MEMBERS
    VALIDATORS: ClassVar[dict] = {
        "time": _TIME, "room": _ROOM, "seq": _int(0, _MAX_U63), "event_hash": _HASH,
        "sender": _USER, "sender_device": _DEVICE, "event_type": _str(max_len=128),
        "epoch": _int(0, _MAX_U63), "ciphertext_hash": _HASH, "ciphertext_size": _int(0, _MAX_SIZE),
    }
    time: int
    room: str
    seq: int
    event_hash: bytes
    sender: str
    sender_device: str
    event_type: str
    epoch: int
    ciphertext_hash: bytes
    ciphertext_size: int


@dataclass(frozen=True)
class AccessEvent(Entry):
    """Account and access events; ``device`` and ``room`` are null when they do not apply."""

    KIND: ClassVar[str] = "access"
    COMMITTED: ClassVar[tuple[str, ...]] = ("user", "device", "room")
    SUBJECT: ClassVar[str | None] = "user"
    VALIDATORS: ClassVar[dict] = {
        "time": _TIME, "action": _enum(AccessAction), "user": _USER,
        "device": _optional(_DEVICE), "room": _optional(_ROOM),
    }
    time: int
    action: AccessAction
    user: str
    device: str | None = None
    room: str | None = None


@dataclass(frozen=True)
class PolicyRecord(Entry):
    """A communication policy published: its id, version and the hash of its text."""

    KIND: ClassVar[str] = "policy"
    COMMITTED: ClassVar[tuple[str, ...]] = ("scope",)  # a scope may name a clinician
    OPENED_BY: ClassVar[OpenedBy] = OpenedBy.USERS
    VALIDATORS: ClassVar[dict] = {
        "time": _TIME, "scope": _str(), "policy_id": _str(max_len=128),
        "version": _int(0, _MAX_U63), "policy_hash": _HASH,
    }
    time: int
    scope: str
    policy_id: str
    version: int
    policy_hash: bytes


@dataclass(frozen=True)
class ConsentRecord(Entry):
    """A device accepted a policy version; signed with that device's signature key."""

    KIND: ClassVar[str] = "consent"
    COMMITTED: ClassVar[tuple[str, ...]] = ("user", "device", "signature")
    SUBJECT: ClassVar[str | None] = "user"
    VALIDATORS: ClassVar[dict] = {
        "time": _TIME, "user": _USER, "device": _DEVICE, "policy_id": _str(max_len=128),
        "version": _int(0, _MAX_U63), "policy_hash": _HASH, "signature": _SIGNATURE,
    }
    time: int
    user: str
    device: str
    policy_id: str
    version: int
    policy_hash: bytes
    signature: bytes

    def verify_signature(self, signature_key: bytes) -> None:
        """Raise :class:`InvalidEntrySignature` unless ``signature_key`` signed this consent."""
        msg = consent_message(
            self.user, self.device, self.policy_id, self.version, self.policy_hash, self.time
        )
        _check_signature(signature_key, msg, self.signature, "consent")


@dataclass(frozen=True)
class DeviceApproved(Entry):
    """``approver_device``, an approved device of ``user``, approved ``device`` with its
    ``signature_key``; ``signature`` is the approver's Ed25519 signature, with its registered
    key, over :func:`device_approval_message` (``spec/audit-log.md``)."""

    KIND: ClassVar[str] = "device_approved"
    VALIDATORS: ClassVar[dict] = {
        "time": _TIME, "user": _USER, "device": _DEVICE, "signature_key": _ED25519_KEY,
        "approver_device": _DEVICE, "signature": _SIGNATURE,
    }
    COMMITTED: ClassVar[tuple[str, ...]] = (
        "user", "device", "signature_key", "approver_device", "signature")
    SUBJECT: ClassVar[str | None] = "user"
    OPENED_BY: ClassVar[OpenedBy] = OpenedBy.CONTACTS
    time: int
    user: str
    device: str
    signature_key: bytes
    approver_device: str
    signature: bytes

    def verify_signature(self, approver_key: bytes) -> None:
        """Raise :class:`InvalidEntrySignature` unless ``approver_key`` signed this approval."""
        msg = device_approval_message(
            self.user, self.device, self.signature_key, self.approver_device, self.time)
        _check_signature(approver_key, msg, self.signature, "device approval")


@dataclass(frozen=True)
class FailedLogins(Entry):
    """``count`` (at least 1) failed logins, for any user, in ``[window_start, time)``.

    One entry per window instead of one per guess: no attempted user id is logged."""

    KIND: ClassVar[str] = "failed_logins"
    VALIDATORS: ClassVar[dict] = {
        "time": _TIME, "window_start": _TIME, "count": _int(1, _MAX_SIZE),
    }
    time: int
    window_start: int
    count: int

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.window_start >= self.time:
            raise MalformedEntry("a window ends after it starts")


@dataclass(frozen=True)
class AuditorRead(Entry):
    """The auditor ``auditor`` (its name at this server) opened entry ``index``."""

    KIND: ClassVar[str] = "auditor_read"
    VALIDATORS: ClassVar[dict] = {
        "time": _TIME, "auditor": _str(max_len=64), "index": _int(0, _MAX_U63),
    }
    COMMITTED: ClassVar[tuple[str, ...]] = ("auditor", "index")
    time: int
    auditor: str
    index: int


AuditEntry = (DeviceAdded | DeviceRemoved | RoomEvent | AccessEvent | PolicyRecord | ConsentRecord
              | DeviceApproved | FailedLogins | AuditorRead)

ENTRY_KINDS: dict[str, type[Entry]] = {
    cls.KIND: cls
    for cls in (DeviceAdded, DeviceRemoved, RoomEvent, AccessEvent, PolicyRecord, ConsentRecord,
                DeviceApproved, FailedLogins, AuditorRead)
}

# The wire order of each kind's keys: "kind" first, then the dataclass fields.
_WIRE_KEYS = {
    kind: ("kind", *(f.name for f in fields(cls)))  # type: ignore[arg-type]
    for kind, cls in ENTRY_KINDS.items()
}


def _pack(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def encode_entry(entry: AuditEntry) -> bytes:
    """The canonical msgpack encoding; raises :class:`EntryTooLarge` above the cap."""
    data = _pack(entry.to_wire())
    if len(data) > MAX_ENTRY_SIZE:
        raise EntryTooLarge(f"entry is {len(data)} bytes, the cap is {MAX_ENTRY_SIZE}")
    return data


def entry_map(data: bytes) -> tuple[type[Entry], dict[str, Any]]:
    """The kind's class and the msgpack map of one entry (opened or sealed), its keys
    checked to be exactly the kind's, in order; raises :class:`MalformedEntry`."""
    if len(data) > MAX_ENTRY_SIZE:
        raise EntryTooLarge("entry larger than the cap")
    try:
        obj = msgpack.unpackb(
            bytes(data), raw=False, use_list=True, strict_map_key=True,
            max_str_len=MAX_ENTRY_SIZE, max_bin_len=MAX_ENTRY_SIZE,
            max_array_len=16, max_map_len=16, max_ext_len=0,
        )
    except Exception as exc:  # msgpack raises a mix of ValueError, TypeError and its own types
        raise MalformedEntry(f"not one msgpack value: {type(exc).__name__}") from exc
    if type(obj) is not dict or "kind" not in obj:
        raise MalformedEntry("an entry is a map with a 'kind'")
    kind = obj["kind"]
    cls = ENTRY_KINDS.get(kind) if type(kind) is str else None
    if cls is None:
        raise UnknownEntryKind(f"unknown entry kind {kind!r}")
    if tuple(obj) != _WIRE_KEYS[kind]:
        raise MalformedEntry(f"{kind} entry must have exactly the keys {_WIRE_KEYS[kind]} in order")
    return cls, obj


def decode_entry(data: bytes) -> AuditEntry:
    """Decode one opened entry strictly (see the module docstring); raises :class:`MalformedEntry`."""
    cls, obj = entry_map(data)
    entry = cls(**{k: v for k, v in obj.items() if k != "kind"})
    if _pack(entry.to_wire()) != bytes(data):
        raise MalformedEntry("entry is not in canonical encoding")
    return entry  # type: ignore[return-value]


def device_registration_message(
    user: str, device: str, signature_key: bytes, credential: bytes
) -> bytes:
    """What a device signs to register: a label, then msgpack ``[user, device, key, credential]``."""
    return _DEVICE_REGISTRATION_LABEL + _pack([user, device, signature_key, credential])


def consent_message(
    user: str, device: str, policy_id: str, version: int, policy_hash: bytes, time: int
) -> bytes:
    """What a device signs to accept a policy: a label, then msgpack of the consent fields."""
    return _CONSENT_LABEL + _pack([user, device, policy_id, version, policy_hash, time])


def sign_device_registration(
    seed: bytes, time: int, user: str, device: str, credential: bytes
) -> DeviceAdded:
    """A :class:`DeviceAdded` entry signed by the device key ``seed`` (client side)."""
    pk = ed25519_public_key(seed)
    sig = ed25519_sign(seed, device_registration_message(user, device, pk, credential))
    return DeviceAdded(time, user, device, pk, credential, sig)


def sign_consent(
    seed: bytes, time: int, user: str, device: str, policy_id: str, version: int, policy_hash: bytes
) -> ConsentRecord:
    """A :class:`ConsentRecord` signed by the device key ``seed`` (client side)."""
    sig = ed25519_sign(seed, consent_message(user, device, policy_id, version, policy_hash, time))
    return ConsentRecord(time, user, device, policy_id, version, policy_hash, sig)


def device_approval_message(
    user: str, device: str, signature_key: bytes, approver_device: str, time: int
) -> bytes:
    """What an approving device signs: a label, then msgpack
    ``[user, device, signature_key, approver_device, time]``."""
    return _DEVICE_APPROVAL_LABEL + _pack([user, device, signature_key, approver_device, time])


def sign_device_approval(
    seed: bytes, time: int, user: str, device: str, signature_key: bytes, approver_device: str
) -> DeviceApproved:
    """A :class:`DeviceApproved` entry signed by the approver's device key ``seed`` (client side)."""
    sig = ed25519_sign(seed, device_approval_message(user, device, signature_key, approver_device, time))
    return DeviceApproved(time, user, device, signature_key, approver_device, sig)
