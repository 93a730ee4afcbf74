"""What a submitted byte string is, before the room rules look at the room (pure decoding).

:func:`classify_message` decodes one MLSMessage strictly and sorts it: application
data only as PrivateMessage, proposals and commits only as PublicMessage, nothing
else. :func:`decode_group_info` and :func:`decode_welcome` do the same for the
other two fields a client may send. :func:`parse_device_identity` reads a
member's basic credential ``@user:server/DEVICE``.

Raises the :mod:`protocol.room_errors` codes: :class:`NotMls` (with the decode
error's ``mls_code``), :class:`WrongWireFormat`, :class:`HandshakeNotPublic`,
:class:`ApplicationNotPrivate`, :class:`WelcomeInvalid`, :class:`MemberIdentityInvalid`.
"""

from __future__ import annotations

from dataclasses import dataclass

from crypto.mls.credential import Credential
from crypto.mls.framing import ContentType, PrivateMessage, PublicMessage
from crypto.mls.message import MLSMessage
from crypto.mls.welcome import GroupInfo, Welcome

from .errors import ApiError
from .events import EventKind
from .ids import DeviceId, UserId
from .room_errors import (
    ApplicationNotPrivate,
    HandshakeNotPublic,
    MemberIdentityInvalid,
    NotMls,
    WelcomeInvalid,
    WrongWireFormat,
)

__all__ = ["Classified", "classify_message", "decode_group_info", "decode_welcome",
           "parse_device_identity"]


@dataclass(frozen=True)
class Classified:
    message: MLSMessage
    kind: EventKind  # COMMIT, PROPOSAL or APPLICATION
    group_id: bytes
    epoch: int


def _decode(data: bytes, what: str) -> MLSMessage:
    try:
        return MLSMessage.from_bytes(data)
    except Exception as exc:  # every decode failure is the peer's: typed below, never a 500
        raise NotMls(f"{what} is not one MLSMessage", getattr(exc, "code", "decode_error")) from None


def classify_message(data: bytes) -> Classified:
    """Decode and sort a room message (see the module docstring)."""
    msg = _decode(data, "message")
    body = msg.body
    if isinstance(body, PrivateMessage):
        if body.content_type != ContentType.APPLICATION:
            raise HandshakeNotPublic("proposals and commits must be sent as PublicMessage")
        return Classified(msg, EventKind.APPLICATION, body.group_id, body.epoch)
    if isinstance(body, PublicMessage):
        content = body.content
        if content.content_type == ContentType.APPLICATION:
            raise ApplicationNotPrivate("application data must be sent as PrivateMessage")
        kind = EventKind.COMMIT if content.content_type == ContentType.COMMIT else EventKind.PROPOSAL
        return Classified(msg, kind, content.group_id, content.epoch)
    raise WrongWireFormat(f"a {msg.wire_format.name.lower()} is not a room message")


def decode_group_info(data: bytes) -> MLSMessage:
    """An MLSMessage carrying a GroupInfo; raises :class:`NotMls` or :class:`WrongWireFormat`."""
    msg = _decode(data, "group_info")
    if not isinstance(msg.body, GroupInfo):
        raise WrongWireFormat(f"group_info holds a {msg.wire_format.name.lower()}")
    return msg


def decode_welcome(data: bytes) -> Welcome:
    """The Welcome of an MLSMessage; raises :class:`WelcomeInvalid`."""
    try:
        msg = MLSMessage.from_bytes(data)
    except Exception as exc:
        raise WelcomeInvalid(f"welcome is not one MLSMessage ({getattr(exc, 'code', 'decode_error')})"
                             ) from None
    if not isinstance(msg.body, Welcome):
        raise WelcomeInvalid(f"welcome holds a {msg.wire_format.name.lower()}")
    return msg.body


def parse_device_identity(credential: Credential) -> tuple[UserId, DeviceId]:
    """(user, device) of a basic credential ``@user:server/DEVICE``; raises
    :class:`MemberIdentityInvalid`."""
    identity = credential.identity
    try:
        if identity is None:
            raise MemberIdentityInvalid("a member's credential is not a basic credential")
        user, sep, device = identity.decode("ascii").rpartition("/")
        if not sep:
            raise MemberIdentityInvalid("a member's identity is not @user:server/DEVICE")
        return UserId.parse(user), DeviceId.parse(device)
    except MemberIdentityInvalid:
        raise
    except (ApiError, UnicodeDecodeError):
        raise MemberIdentityInvalid("a member's identity is not @user:server/DEVICE") from None
