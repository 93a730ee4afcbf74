"""Device approval: bodies, error codes and the short code (``spec/client-server.md`` 4.6).

The first device of an account (the one that called ``/register``) is its *root*; a
device created by ``/login`` is *pending* until an approved device of the same user
signs its signature key (:func:`protocol.audit.device_approval_message`), after the
person compared the :func:`short_code` both devices show. The server writes that
signature to its log as a ``device_approved`` entry; other users' clients accept a
device only with the chain of such entries back to the root (:class:`DeviceKeys.chain
<protocol.api.DeviceKeys>`).

Errors: :class:`DeviceNotPending` (``device_not_pending``), :class:`ApproverNotApproved`
(``approver_not_approved``), :class:`ApprovalInvalid` (``approval_invalid``: bad
signature or a time outside :data:`APPROVAL_SKEW_MS`), :class:`DeviceNotApproved`
(``device_not_approved``: an Add of, or a claim for, a pending device).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import ClassVar

import msgpack

from .errors import ApiError
from .ids import DeviceId, UserId
from .schema import Message, blob, list_of, nested, parsed, uint

__all__ = [
    "APPROVAL_SKEW_MS",
    "CODE_GROUPS",
    "DeviceNotPending",
    "ApproverNotApproved",
    "ApprovalInvalid",
    "DeviceNotApproved",
    "PendingDevice",
    "PendingDevicesResponse",
    "ApproveDeviceRequest",
    "ApproveDeviceResponse",
    "short_code",
    "same_code",
]

#: The approval's time may differ from the server's clock by at most this (ms).
APPROVAL_SKEW_MS = 10 * 60 * 1000
#: Groups of five digits in a short code.
CODE_GROUPS = 6

_CODE_LABEL = b"confide.device-code.v1\x00"
_MAX_PENDING = 256  # protocol.api.MAX_DEVICES_LISTED
_DEVICE = parsed(DeviceId.parse, 64)


class DeviceNotPending(ApiError):
    """The device is not waiting for approval (already approved, the root, or no keys yet)."""

    code = "device_not_pending"
    status = 409


class ApproverNotApproved(ApiError):
    """The calling device is itself pending: only approved devices approve others."""

    code = "approver_not_approved"
    status = 403


class ApprovalInvalid(ApiError):
    """The approval signature does not verify with the approver's registered key, or its
    time is too far from the server's clock."""

    code = "approval_invalid"
    status = 400


class DeviceNotApproved(ApiError):
    """The device waits for approval by another device of its user: it cannot be added to a
    room or handed out (``spec/security.md`` finding 2)."""

    code = "device_not_approved"
    status = 403


@dataclass(frozen=True)
class PendingDevice(Message):
    SCHEMA: ClassVar = {
        "device_id": _DEVICE,
        "signature_key": blob(32, exact=32),
        "log_index": uint(),
        "created_at": uint(),
    }
    device_id: DeviceId
    signature_key: bytes
    log_index: int  # its device_added entry
    created_at: int  # ms


@dataclass(frozen=True)
class PendingDevicesResponse(Message):
    """``GET /devices/pending``: the caller's devices that registered keys and wait."""

    SCHEMA: ClassVar = {"devices": list_of(nested(PendingDevice), _MAX_PENDING)}
    devices: tuple[PendingDevice, ...]


@dataclass(frozen=True)
class ApproveDeviceRequest(Message):
    """``POST /devices/{device_id}/approve``: the approver's signature over
    :func:`protocol.audit.device_approval_message` (user, device, the pending device's
    signature key, the approver's device id, ``time``)."""

    SCHEMA: ClassVar = {"time": uint(), "signature": blob(64, exact=64)}
    time: int
    signature: bytes


@dataclass(frozen=True)
class ApproveDeviceResponse(Message):
    SCHEMA: ClassVar = {"log_index": uint()}
    log_index: int  # the device_approved entry


def short_code(user: UserId | str, signature_key: bytes) -> str:
    """The code both devices show for a new device: :data:`CODE_GROUPS` groups of five
    digits from SHA-256 of a label, then msgpack ``[user, signature_key]``."""
    digest = hashlib.sha256(_CODE_LABEL + msgpack.packb([str(user), bytes(signature_key)],
                                                       use_bin_type=True)).digest()
    groups = (int.from_bytes(digest[4 * i:4 * i + 4], "big") % 100_000 for i in range(CODE_GROUPS))
    return " ".join(f"{g:05d}" for g in groups)


def same_code(typed: str, expected: str) -> bool:
    """Whether what the person typed is ``expected``, ignoring spaces and dashes."""
    def norm(s: str) -> str:
        return "".join(ch for ch in s if ch not in " -\t")
    return norm(typed) == norm(expected)
