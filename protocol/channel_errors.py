"""Error codes of the plaintext-channel checks (``spec/security.md`` finding 9).

Every field the server can check is checked against the one form an honest Confide client
produces; a field in any other form is refused with one of these codes, before anything is
stored. Each is an :class:`~protocol.errors.ApiError` subclass, registered by being defined.
"""

from __future__ import annotations

from .errors import ApiError

__all__ = [
    "GroupIdInvalid",
    "ExtensionNotAllowed",
    "AuthenticatedDataNotEmpty",
    "ProposalNotAllowed",
    "FieldLengthInvalid",
    "MessageNotPadded",
    "InvalidTxnId",
    "DeviceNameNotAccepted",
    "ToDeviceNotSealed",
    "AttachmentNotSealed",
]


class GroupIdInvalid(ApiError):
    """A new room's MLS group id is not the one derived from its creator's leaf
    (:func:`protocol.room_channels.derive_group_id`)."""

    code = "group_id_invalid"
    status = 400


class ExtensionNotAllowed(ApiError):
    """An MLS extension (of a GroupInfo, GroupContext, KeyPackage or LeafNode) or a
    capability value that is not on Confide's allow-list, or an allowed extension holding a
    value Confide never sends."""

    code = "extension_not_allowed"
    status = 400


class AuthenticatedDataNotEmpty(ApiError):
    """A PrivateMessage or PublicMessage carries ``authenticated_data``: Confide sends none."""

    code = "authenticated_data_not_empty"
    status = 400


class ProposalNotAllowed(ApiError):
    """A proposal type Confide never sends in a room (PreSharedKey, ReInit)."""

    code = "proposal_not_allowed"
    status = 400


class FieldLengthInvalid(ApiError):
    """An MLS key or ciphertext (a leaf's or KeyPackage's keys, a commit path's keys and
    encrypted path secrets) whose length is not the one its cipher suite gives it."""

    code = "field_length_invalid"
    status = 400


class MessageNotPadded(ApiError):
    """An application PrivateMessage whose ciphertext length is not one of the padding
    buckets (:data:`protocol.padding.BUCKETS`)."""

    code = "message_not_padded"
    status = 400


class InvalidTxnId(ApiError):
    """A ``txn_id`` that is not 16 bytes in unpadded base64url (22 characters)."""

    code = "invalid_txn_id"
    status = 400


class DeviceNameNotAccepted(ApiError):
    """A register or login request carries a device name: the server stores none (the name
    stays in the client's own profile)."""

    code = "device_name_not_accepted"
    status = 400


class ToDeviceNotSealed(ApiError):
    """A to-device payload that is not a Confide sealed to-device box
    (:func:`protocol.sealed.check_to_device`)."""

    code = "to_device_not_sealed"
    status = 400


class AttachmentNotSealed(ApiError):
    """An uploaded attachment that is not a Confide sealed blob
    (:func:`protocol.sealed.check_attachment`)."""

    code = "attachment_not_sealed"
    status = 400
