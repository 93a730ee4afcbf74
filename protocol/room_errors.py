"""Error codes of rooms, delivery and attachments (``spec/client-server.md`` sections 8-11).

Each is an :class:`~protocol.errors.ApiError` subclass, registered by being
defined. Two carry details in the error body: :class:`StaleEpoch`
(``current_epoch``) and the MLS refusals (``mls_code``, the stable code of the
:mod:`crypto.mls` error that refused the message).
"""

from __future__ import annotations

from .errors import ApiError

__all__ = [
    "UnknownRoom",
    "NotMember",
    "SenderMismatch",
    "NotMls",
    "WrongWireFormat",
    "HandshakeNotPublic",
    "ApplicationNotPrivate",
    "MessageTooLarge",
    "StaleEpoch",
    "MlsRejected",
    "WelcomeInvalid",
    "GroupInfoInvalid",
    "MemberIdentityInvalid",
    "UnknownDevice",
    "DeviceKeyMismatch",
    "InvalidSinceToken",
    "InvalidQuery",
    "AttachmentTooLarge",
]


class UnknownRoom(ApiError):
    """No room with this id exists on this hub."""

    code = "unknown_room"
    status = 404


class NotMember(ApiError):
    """The calling device is not a current member of the room (or, for an external join or a
    GroupInfo, no device of the calling user is)."""

    code = "not_member"
    status = 403


class SenderMismatch(ApiError):
    """The MLS sender of a handshake message is not the calling device (another member's
    leaf, an external sender, or a new member whose credential names another device)."""

    code = "sender_mismatch"
    status = 403


class NotMls(ApiError):
    """The bytes do not decode as exactly one MLSMessage; ``mls_code`` says why."""

    code = "not_mls"
    status = 400

    def __init__(self, message: str, mls_code: str) -> None:
        super().__init__(message, mls_code=mls_code)


class WrongWireFormat(ApiError):
    """An MLSMessage of a wire format the field does not take (a Welcome, GroupInfo or
    KeyPackage sent as a room message, a message sent as a GroupInfo, ...)."""

    code = "wrong_wire_format"
    status = 400


class HandshakeNotPublic(ApiError):
    """A proposal or commit sent as PrivateMessage: the hub takes them only as PublicMessage."""

    code = "handshake_not_public"
    status = 400


class ApplicationNotPrivate(ApiError):
    """Application data sent as PublicMessage (a plaintext body): refused."""

    code = "application_not_private"
    status = 400


class MessageTooLarge(ApiError):
    """The MLSMessage exceeds the hub's per-message bound (512 KiB)."""

    code = "message_too_large"
    status = 413


class StaleEpoch(ApiError):
    """The message is for another epoch than the room's; ``current_epoch`` says where the
    group is (for commits: another commit won this epoch; catch up and re-commit)."""

    code = "stale_epoch"
    status = 409

    def __init__(self, message: str, current_epoch: int) -> None:
        super().__init__(message, current_epoch=current_epoch)
        self.current_epoch = current_epoch


class MlsRejected(ApiError):
    """The room's public MLS view refused the message; ``mls_code`` is the MLS error's code."""

    code = "mls_rejected"
    status = 400

    def __init__(self, message: str, mls_code: str) -> None:
        super().__init__(message, mls_code=mls_code)
        self.mls_code = mls_code


class WelcomeInvalid(ApiError):
    """A Welcome that is not one, comes without a commit adding members, has another cipher
    suite, or names a KeyPackageRef that the commit does not add."""

    code = "welcome_invalid"
    status = 400


class GroupInfoInvalid(ApiError):
    """A GroupInfo that does not describe the room (creation: not a one-member group of the
    calling device; a commit's: not the new epoch's). ``mls_code`` when MLS refused it."""

    code = "group_info_invalid"
    status = 400


class MemberIdentityInvalid(ApiError):
    """A member's credential is not a basic credential ``@user:server/DEVICE``."""

    code = "member_identity_invalid"
    status = 400


class UnknownDevice(ApiError):
    """A commit, proposal or external join adds a device that its user's home server does not
    list with registered keys (``spec/security.md``, finding 5)."""

    code = "unknown_device"
    status = 403


class DeviceKeyMismatch(ApiError):
    """A device is added with a signature key or credential other than the ones registered
    for it at its user's home server (finding 5)."""

    code = "device_key_mismatch"
    status = 403


class InvalidSinceToken(ApiError):
    """A sync ``since`` or ``ack`` token that is not one the server hands out."""

    code = "invalid_since_token"
    status = 400


class InvalidQuery(ApiError):
    """A query parameter that is missing, not a canonical decimal, or out of its range."""

    code = "invalid_query"
    status = 400


class AttachmentTooLarge(ApiError):
    """The attachment exceeds ``attachments.max_size`` (default 10 MiB)."""

    code = "attachment_too_large"
    status = 413
