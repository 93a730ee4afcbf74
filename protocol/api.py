"""Request and response bodies of the client-server API (``spec/client-server.md``).

Each body is a frozen dataclass with ``from_wire(dict)`` / ``to_wire()``
(:class:`protocol.schema.Message`): exact field names, checked types, every
string, bytes value and array bounded. ``from_wire`` raises
:class:`~protocol.errors.MalformedBody` (or
:class:`~protocol.errors.InvalidIdentifier` for a malformed identifier) and
nothing else.

Paths are relative to :data:`CLIENT_PREFIX`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .audit_seal import MAX_OPENING_SIZE
from .channel_errors import DeviceNameNotAccepted
from .errors import MalformedBody
from .ids import DeviceId, RoomId, UserId, parse_localpart
from .mfa import MFA_REQUEST_TYPES
from .names import display_name
from .schema import Message, blob, boolean, list_of, nested, nullable, parsed, text, uint

__all__ = [
    "CLIENT_PREFIX",
    "MSGPACK",
    "ROLES",
    "INVITE_ROLES",
    "MAX_PASSWORD",
    "MIN_NEW_PASSWORD",
    "MAX_DISPLAY_NAME",
    "MAX_CREDENTIAL",
    "MAX_KEY_PACKAGE",
    "MAX_KEY_PACKAGES_PER_UPLOAD",
    "MAX_DEVICES_LISTED",
    "MAX_APPROVAL_CHAIN",
    "RegisterRequest",
    "LoginRequest",
    "SessionResponse",
    "WhoAmIResponse",
    "Empty",
    "DeviceInfo",
    "DevicesResponse",
    "DeviceKeysRequest",
    "DeviceKeysResponse",
    "DeviceKeys",
    "UserDevicesResponse",
    "KeyPackageUploadRequest",
    "KeyPackageCountResponse",
    "ClaimRequest",
    "ClaimedKeyPackage",
    "ClaimResponse",
    "ErrorDetail",
    "ErrorResponse",
    "REQUEST_TYPES",
]

CLIENT_PREFIX = "/_confide/client/v1"
MSGPACK = "application/msgpack"

ROLES = ("admin", "clinician", "staff", "client")
INVITE_ROLES = ("clinician", "staff", "client")

MAX_PASSWORD = 1024
MIN_NEW_PASSWORD = 8
MAX_DISPLAY_NAME = 128
MAX_INVITE = 64
MAX_TOKEN = 128
MAX_MFA_CODE = 32
MAX_CREDENTIAL = 1024
MAX_KEY_PACKAGE = 16 * 1024
MAX_KEY_PACKAGES_PER_UPLOAD = 100
MAX_DEVICES_LISTED = 256
#: Longest approval chain a device list may give (``spec/client-server.md`` 4.6).
MAX_APPROVAL_CHAIN = 64

_USER = parsed(UserId.parse)
_ROOM = parsed(RoomId.parse)
_DEVICE = parsed(DeviceId.parse, 64)
_TIME = uint()


def _role(v: object, where: str) -> str:
    if type(v) is not str or v not in ROLES:
        raise MalformedBody(f"{where}: role must be one of {', '.join(ROLES)}")
    return v  # type: ignore[return-value]


# -- accounts and sessions ------------------------------------------------------------

_DEVICE_NAME = display_name(MAX_DISPLAY_NAME)


def _no_device_name(v: object, where: str) -> str:
    """``device_name`` may only be empty (``spec/security.md`` finding 9): a name is checked
    as a name first (``invalid_name``, finding 14), then refused (``device_name_not_accepted``)."""
    if v == "":
        return ""
    _DEVICE_NAME(v, where)
    raise DeviceNameNotAccepted(f"{where}: the server stores no device name; keep it in the "
                                "client's profile")



@dataclass(frozen=True)
class RegisterRequest(Message):
    """``POST /register``: create an account from an invite and log in a first device."""

    SCHEMA: ClassVar = {
        "invite": text(MAX_INVITE),
        "user": parsed(parse_localpart, 64),
        "password": text(MAX_PASSWORD, MIN_NEW_PASSWORD),
        "device_name": _no_device_name,
    }
    invite: str
    user: str  # the localpart; the server appends its own name
    password: str
    #: Absent or empty: the server stores no device name (it stays in the client's profile).
    device_name: str = ""


@dataclass(frozen=True)
class LoginRequest(Message):
    """``POST /login``: a new device, or ``device_id`` to log an existing device in again."""

    SCHEMA: ClassVar = {
        "user": text(255),
        "password": text(MAX_PASSWORD),
        "device_name": _no_device_name,
        "device_id": nullable(_DEVICE),
        "totp": nullable(text(MAX_MFA_CODE)),
        "recovery_code": nullable(text(MAX_MFA_CODE)),
    }
    user: str  # a localpart or a full user id of this server
    password: str
    device_id: DeviceId | None = None
    totp: str | None = None  # the second factor (protocol/mfa.py), when the account has MFA on
    recovery_code: str | None = None
    device_name: str = ""  # absent or empty, as in RegisterRequest


@dataclass(frozen=True)
class SessionResponse(Message):
    """Answer of register and login: the device and its access token. With
    ``mfa_enrolment_required`` the token may only enrol a second factor (the role needs MFA)."""

    SCHEMA: ClassVar = {"user_id": _USER, "device_id": _DEVICE, "access_token": text(MAX_TOKEN),
                        "mfa_enrolment_required": boolean()}
    user_id: UserId
    device_id: DeviceId
    access_token: str
    mfa_enrolment_required: bool = False


@dataclass(frozen=True)
class WhoAmIResponse(Message):
    SCHEMA: ClassVar = {"user_id": _USER, "device_id": _DEVICE, "role": _role}
    user_id: UserId
    device_id: DeviceId
    role: str


@dataclass(frozen=True)
class Empty(Message):
    """An empty map: the body of requests and answers that carry nothing."""

    SCHEMA: ClassVar = {}


# -- devices -----------------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceInfo(Message):
    SCHEMA: ClassVar = {
        "device_id": _DEVICE,
        "created_at": _TIME,
        "last_seen": _TIME,
        "signature_key": nullable(blob(32, exact=32)),
        "credential": nullable(blob(MAX_CREDENTIAL, 1)),
        "log_index": nullable(uint()),
        "pending": boolean(),
    }
    device_id: DeviceId
    created_at: int  # ms since the Unix epoch
    last_seen: int  # ms, coarse (see "Sessions")
    signature_key: bytes | None  # None until the device registered its keys
    credential: bytes | None
    log_index: int | None  # index of the device_added entry in the transparency log
    pending: bool = False  # logged in, not yet approved by another device of the user


@dataclass(frozen=True)
class DevicesResponse(Message):
    SCHEMA: ClassVar = {"devices": list_of(nested(DeviceInfo), MAX_DEVICES_LISTED)}
    devices: tuple[DeviceInfo, ...]


@dataclass(frozen=True)
class DeviceKeysRequest(Message):
    """``PUT /devices/keys``: the calling device's signature key and MLS credential, self-signed.

    ``signature`` is Ed25519 by ``signature_key`` over
    :func:`protocol.audit.device_registration_message` of (user, device, key, credential).
    """

    SCHEMA: ClassVar = {
        "signature_key": blob(32, exact=32),
        "credential": blob(MAX_CREDENTIAL, 1),
        "signature": blob(64, exact=64),
    }
    signature_key: bytes
    credential: bytes  # the encoded MLS Credential (basic, identity "@user:server/DEVICE")
    signature: bytes


@dataclass(frozen=True)
class DeviceKeysResponse(Message):
    SCHEMA: ClassVar = {"log_index": uint()}
    log_index: int


@dataclass(frozen=True)
class DeviceKeys(Message):
    """One registered device; ``opening`` is the encoded :class:`protocol.audit_seal.Opening`
    of its ``device_added`` entry at ``log_index`` (the public entry holds commitments only)."""

    SCHEMA: ClassVar = {
        "device_id": _DEVICE,
        "signature_key": blob(32, exact=32),
        "credential": blob(MAX_CREDENTIAL, 1),
        "log_index": uint(),
        "opening": blob(MAX_OPENING_SIZE, 1),
        "chain": list_of(uint(), MAX_APPROVAL_CHAIN),
        "chain_openings": list_of(blob(MAX_OPENING_SIZE, 1), MAX_APPROVAL_CHAIN),
    }
    device_id: DeviceId
    signature_key: bytes
    credential: bytes
    log_index: int
    #: The encoded opening of the ``device_added`` entry at ``log_index`` (empty only where the
    #: hub checks a device of its own server's ``devices`` table; on the wire, never empty).
    opening: bytes = b""
    #: Log indexes proving the device's approval: its ``device_approved`` entry, then its
    #: approver's, ..., then the root device's ``device_added``; empty for the root itself.
    chain: tuple[int, ...] = ()
    #: The encoded opening of each entry of ``chain``, in the same order.
    chain_openings: tuple[bytes, ...] = ()


@dataclass(frozen=True)
class UserDevicesResponse(Message):
    """``GET /users/{user_id}/devices``: the devices of a user that registered keys."""

    SCHEMA: ClassVar = {"user_id": _USER, "devices": list_of(nested(DeviceKeys), MAX_DEVICES_LISTED)}
    user_id: UserId
    devices: tuple[DeviceKeys, ...]


# -- key directory -------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyPackageUploadRequest(Message):
    """``POST /keys/packages``: one-time KeyPackages and the device's new last-resort one.

    Each item is an encoded ``MLSMessage`` with wire format ``mls_key_package``.
    """

    SCHEMA: ClassVar = {
        "one_time": list_of(blob(MAX_KEY_PACKAGE, 1), MAX_KEY_PACKAGES_PER_UPLOAD),
        "last_resort": blob(MAX_KEY_PACKAGE, 1),
    }
    one_time: tuple[bytes, ...]
    last_resort: bytes


@dataclass(frozen=True)
class KeyPackageCountResponse(Message):
    SCHEMA: ClassVar = {"one_time": uint(), "last_resort": boolean()}
    one_time: int  # unclaimed, unexpired one-time KeyPackages of the device
    last_resort: bool  # whether an unexpired last-resort one is stored


@dataclass(frozen=True)
class ClaimRequest(Message):
    """``POST /keys/claim``: one KeyPackage for each device of ``user``; with ``room_id``, the
    claim is for that room and goes through the room's hub (``spec/client-server.md`` 5.3)."""

    SCHEMA: ClassVar = {"user": _USER, "room_id": nullable(_ROOM)}
    user: UserId
    room_id: RoomId | None = None


@dataclass(frozen=True)
class ClaimedKeyPackage(Message):
    SCHEMA: ClassVar = {
        "device_id": _DEVICE,
        "key_package": blob(MAX_KEY_PACKAGE, 1),
        "last_resort": boolean(),
    }
    device_id: DeviceId
    key_package: bytes  # the MLSMessage exactly as uploaded
    last_resort: bool


@dataclass(frozen=True)
class ClaimResponse(Message):
    SCHEMA: ClassVar = {
        "user_id": _USER,
        "key_packages": list_of(nested(ClaimedKeyPackage), MAX_DEVICES_LISTED),
        "missing": list_of(_DEVICE, MAX_DEVICES_LISTED),
    }
    user_id: UserId
    key_packages: tuple[ClaimedKeyPackage, ...]
    missing: tuple[DeviceId, ...]  # devices with keys but no KeyPackage to hand out


# -- errors ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ErrorDetail(Message):
    SCHEMA: ClassVar = {
        "code": text(64),
        "message": text(1024, 0),
        "retry_after_ms": nullable(uint()),
    }
    code: str
    message: str
    retry_after_ms: int | None = None

    def to_wire(self) -> dict:
        out = super().to_wire()
        if self.retry_after_ms is None:
            del out["retry_after_ms"]
        return out


@dataclass(frozen=True)
class ErrorResponse(Message):
    """The body of every error answer: ``{"error": {"code", "message"[, "retry_after_ms"]}}``."""

    SCHEMA: ClassVar = {"error": nested(ErrorDetail)}
    error: ErrorDetail


def _room_request_types() -> tuple[type[Message], ...]:
    """Rooms, inbox and delivery bodies (:mod:`protocol.rooms_api`, which does not import this
    module)."""
    from .rooms_api import ROOM_REQUEST_TYPES

    return ROOM_REQUEST_TYPES


def _approval_request_types() -> tuple[type[Message], ...]:
    """Device approval bodies (:mod:`protocol.device_approval`)."""
    from .device_approval import ApproveDeviceRequest

    return (ApproveDeviceRequest,)


#: Request bodies by name, for the decoder property tests and the spec.
REQUEST_TYPES: tuple[type[Message], ...] = (
    RegisterRequest, LoginRequest, Empty, DeviceKeysRequest, KeyPackageUploadRequest, ClaimRequest,
    *_approval_request_types(), *_room_request_types(), *MFA_REQUEST_TYPES,
)
