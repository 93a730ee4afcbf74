"""The messages of a room's timeline, as this device read or sent them.

Each is a frozen dataclass: where and by whom (:class:`RoomMessage`'s fields:
room, seq, sender, hub time, epoch), then what, by :class:`MessageType`:

* :class:`TextMessage`: ``body``;
* :class:`AttachmentMessage`: the attachment's ``content_id``, key, nonce, name and size
  (download it with :meth:`client.sdk.Client.download_attachment`);
* :class:`MembershipMessage`: the identities a commit ``added`` and ``removed``;
* :class:`RefusedMessage`: an event the hub ordered that this device refused as a
  verification failure (its envelope's sender is not the MLS sender, or a commit adds a
  device its home server's log does not prove): shown in the timeline, never applied and
  never dropped silently. Its ``sender_user``/``sender_device`` are empty (the envelope's
  claim is what failed); ``reason`` is a :class:`RefusalReason` value, ``detail`` a sentence.

The profile stores them as records (:meth:`RoomMessage.to_record`: the fields and
``"type"``, the form ``confide read --json`` prints); :func:`message_from_record`
reads one back and raises :class:`~client.sdk.errors.InvalidPayload` for anything else.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from enum import Enum
from typing import Any, ClassVar

from .errors import InvalidPayload
from .payload import Attachment

__all__ = ["MessageType", "RoomMessage", "TextMessage", "AttachmentMessage", "MembershipMessage",
           "RefusedMessage", "RefusalReason", "message_from_record"]


class MessageType(Enum):
    TEXT = "text"
    ATTACHMENT = "attachment"
    MEMBERSHIP = "membership"
    REFUSED = "refused"


class RefusalReason(Enum):
    """Why an event was refused (:class:`RefusedMessage`)."""

    SENDER_MISMATCH = "sender_mismatch"  # the envelope's sender is not the MLS sender
    UNPROVEN_DEVICE = "unproven_device"  # a handshake adds a device its log does not prove
    UNCHECKABLE_SENDER = "uncheckable_sender"  # "ours" by the envelope; MLS cannot confirm it
    HANDSHAKE_NOT_PUBLIC = "handshake_not_public"  # a proposal or commit not in a PublicMessage
    MLS_REJECTED = "mls_rejected"  # a proposal or commit of our epoch that MLS does not accept


@dataclass(frozen=True)
class RoomMessage:
    """What every timeline message has; see the subclasses for what it says."""

    TYPE: ClassVar[MessageType]

    room_id: str
    seq: int
    sender_user: str
    sender_device: str
    ts: int  # ms since the Unix epoch (the hub's acceptance time, or the send time for our own)
    epoch: int

    @property
    def type(self) -> MessageType:
        return self.TYPE

    def to_record(self) -> dict[str, Any]:
        d = asdict(self)
        d["type"] = self.TYPE.value
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


@dataclass(frozen=True)
class TextMessage(RoomMessage):
    TYPE: ClassVar = MessageType.TEXT
    body: str


@dataclass(frozen=True)
class AttachmentMessage(RoomMessage):
    TYPE: ClassVar = MessageType.ATTACHMENT
    content_id: str
    key: bytes
    nonce: bytes
    name: str
    size: int

    @property
    def attachment(self) -> Attachment:
        return Attachment(self.content_id, self.key, self.nonce, self.name, self.size)


@dataclass(frozen=True)
class MembershipMessage(RoomMessage):
    TYPE: ClassVar = MessageType.MEMBERSHIP
    added: tuple[str, ...]
    removed: tuple[str, ...]


@dataclass(frozen=True)
class RefusedMessage(RoomMessage):
    TYPE: ClassVar = MessageType.REFUSED
    kind: str  # the event's kind: application, proposal or commit
    reason: str  # a RefusalReason value
    detail: str

    def sentence(self) -> str:
        """One plain sentence, e.g. ``Event 7 was refused: verification failure (...).``"""
        return f"Event {self.seq} of room {self.room_id} was refused: verification failure ({self.detail})."


_BY_TYPE: dict[str, type[RoomMessage]] = {
    cls.TYPE.value: cls for cls in (TextMessage, AttachmentMessage, MembershipMessage, RefusedMessage)}


def message_from_record(d: dict[str, Any]) -> RoomMessage:
    """The message of a record (its fields and ``"type"``); raises :class:`InvalidPayload`."""
    cls = _BY_TYPE.get(str(d.get("type")))
    names = {f.name for f in fields(cls)} if cls is not None else set()
    if cls is None or set(d) != names | {"type"}:
        raise InvalidPayload(f"not a timeline message record: {sorted(d)}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items() if k != "type"}
    return cls(**values)
