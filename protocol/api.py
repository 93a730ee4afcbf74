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

from .errors import MalformedBody
from .ids import DeviceId, RoomId, UserId, parse_localpart
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
MAX_CREDENTIAL = 1024
MAX_KEY_PACKAGE = 16 * 1024
MAX_KEY_PACKAGES_PER_UPLOAD = 100
MAX_DEVICES_LISTED = 256

_USER = parsed(UserId.parse)
_ROOM = parsed(RoomId.parse)
_DEVICE = parsed(DeviceId.parse, 64)
_TIME = uint()


def _role(v: object, where: str) -> str:
    if type(v) is not str or v not in ROLES:
        raise MalformedBody(f"{where}: role must be one of {', '.join(ROLES)}")
    return v  # type: ignore[return-value]


# -- accounts and sessions ------------------------------------------------------------


@dataclass(frozen=True)
class RegisterRequest(Message):
    """``POST /register``: create an account from an invite and log in a first device."""

    SCHEMA: ClassVar = {
        "invite": text(MAX_INVITE),
        "user": parsed(parse_localpart, 64),
        "password": text(MAX_PASSWORD, MIN_NEW_PASSWORD),
        "device_name": display_name(MAX_DISPLAY_NAME),
    }
    invite: str
    user: str  # the localpart; the server appends its own name
    password: str
    device_name: str


@dataclass(frozen=True)
class LoginRequest(Message):
    """``POST /login``: a new device, or ``device_id`` to log an existing device in again."""

    SCHEMA: ClassVar = {
        "user": text(255),
        "password": text(MAX_PASSWORD),
        "device_name": display_name(MAX_DISPLAY_NAME),
        "device_id": nullable(_DEVICE),
    }
    user: str  # a localpart or a full user id of this server
    password: str
    device_name: str
    device_id: DeviceId | None = None


@dataclass(frozen=True)
class SessionResponse(Message):
    """Answer of register and login: the device and its access token."""

    SCHEMA: ClassVar = {"user_id": _USER, "device_id": _DEVICE, "access_token": text(MAX_TOKEN)}
    user_id: UserId
    device_id: DeviceId
    access_token: str


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
        "display_name": text(MAX_DISPLAY_NAME),
        "created_at": _TIME,
        "last_seen": _TIME,
        "signature_key": nullable(blob(32, exact=32)),
        "credential": nullable(blob(MAX_CREDENTIAL, 1)),
        "log_index": nullable(uint()),
    }
    device_id: DeviceId
    display_name: str
    created_at: int  # ms since the Unix epoch
    last_seen: int  # ms, coarse (see "Sessions")
    signature_key: bytes | None  # None until the device registered its keys
    credential: bytes | None
    log_index: int | None  # index of the device_added entry in the transparency log


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
        "opening": blob(8192, 1),
    }
    device_id: DeviceId
    signature_key: bytes
    credential: bytes
    log_index: int
    opening: bytes


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


#: Request bodies by name, for the decoder property tests and the spec.
REQUEST_TYPES: tuple[type[Message], ...] = (
    RegisterRequest, LoginRequest, Empty, DeviceKeysRequest, KeyPackageUploadRequest, ClaimRequest,
    *_room_request_types(),
)
