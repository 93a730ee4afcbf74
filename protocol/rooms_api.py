"""Request and response bodies of rooms, the device inbox, delivery and attachments.

``spec/client-server.md`` sections 8-11 describe them; the field names follow the
rooms API contract. Like :mod:`protocol.api`, every body is a
:class:`~protocol.schema.Message` with exact fields and bounds, and
``from_wire`` raises only :class:`~protocol.errors.MalformedBody` or
:class:`~protocol.errors.InvalidIdentifier`.

Query parameters (``since``, ``from``, ``limit``, ``timeout``) are parsed by
:func:`parse_since` and :func:`parse_uint_param`, which raise
:class:`~protocol.room_errors.InvalidSinceToken` and
:class:`~protocol.room_errors.InvalidQuery`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from .errors import MalformedBody
from .events import MalformedEvent, SignedEvent
from .ids import DeviceId, RoomId, UserId
from .room_errors import InvalidQuery, InvalidSinceToken
from .schema import Message, blob, list_of, nested, nullable, parsed, text, uint
from .sealed import check_to_device
from .txn_ids import parse_client_txn_id

__all__ = [
    "MAX_TXN_ID",
    "MAX_WIRE_MESSAGE",
    "MAX_WELCOME",
    "MAX_GROUP_INFO",
    "MAX_TO_DEVICE_MESSAGES",
    "MAX_TO_DEVICE_PAYLOAD",
    "MAX_SYNC_LIMIT",
    "DEFAULT_SYNC_LIMIT",
    "MAX_SYNC_TIMEOUT_MS",
    "MAX_HISTORY_LIMIT",
    "DEFAULT_HISTORY_LIMIT",
    "MAX_ROOMS_LISTED",
    "INBOX_KINDS",
    "CreateRoomRequest",
    "CreateRoomResponse",
    "SendRequest",
    "SendResponse",
    "RoomSummary",
    "RoomsResponse",
    "Envelope",
    "EventsResponse",
    "GroupInfoResponse",
    "HubKeyResponse",
    "ToDeviceMessage",
    "SendToDeviceRequest",
    "InboxItem",
    "SyncResponse",
    "SyncAck",
    "AttachmentResponse",
    "ROOM_REQUEST_TYPES",
    "AttachmentLink",
    "format_since",
    "parse_since",
    "parse_uint_param",
]

MAX_TXN_ID = 128
#: Bound of the ``message`` field itself; the hub's own bound (MAX_EVENT_MESSAGE) is smaller,
#: so a message between the two gets ``message_too_large`` rather than ``malformed_body``.
MAX_WIRE_MESSAGE = 64 * 1024 * 1024
#: Welcome and GroupInfo bounds match what federation carries (protocol/federation_rooms.py),
#: so anything a client may send to a room can also reach a remote member's server.
MAX_WELCOME = 512 * 1024
MAX_GROUP_INFO = 256 * 1024
MAX_TO_DEVICE_MESSAGES = 100
MAX_TO_DEVICE_PAYLOAD = 256 * 1024
MAX_SYNC_LIMIT = 1000
DEFAULT_SYNC_LIMIT = 100
MAX_SYNC_TIMEOUT_MS = 30_000
MAX_HISTORY_LIMIT = 1000
DEFAULT_HISTORY_LIMIT = 100
MAX_ROOMS_LISTED = 10_000
INBOX_KINDS = ("welcome", "to_device")

_TXN = parsed(parse_client_txn_id, MAX_TXN_ID)
_USER = parsed(UserId.parse)
_DEVICE = parsed(DeviceId.parse, 64)
_ROOM = parsed(RoomId.parse)
_MAX_TOKEN_DIGITS = 19
_MAX_U63 = (1 << 63) - 1


def _hex32(v: Any, where: str) -> str:
    if type(v) is not str or len(v) != 64 or any(ch not in "0123456789abcdef" for ch in v):
        raise MalformedBody(f"{where}: expected 64 lower-case hex digits")
    return v


def _since(v: Any, where: str) -> str:
    if type(v) is not str:
        raise MalformedBody(f"{where}: expected a token string")
    try:
        parse_since(v)
    except InvalidSinceToken:
        raise MalformedBody(f"{where}: not a sync token") from None
    return v


_PAYLOAD = blob(MAX_TO_DEVICE_PAYLOAD, 1)


def _sealed_box(v: Any, where: str) -> bytes:
    """A to-device payload: a Confide sealed box (``to_device_not_sealed`` otherwise)."""
    payload = _PAYLOAD(v, where)
    check_to_device(payload)
    return payload


def _inbox_kind(v: Any, where: str) -> str:
    if type(v) is not str or v not in INBOX_KINDS:
        raise MalformedBody(f"{where}: kind must be one of {', '.join(INBOX_KINDS)}")
    return v


# -- rooms ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CreateRoomRequest(Message):
    """``POST /rooms``: the creator's GroupInfo (an MLSMessage with the ratchet_tree extension)."""

    SCHEMA: ClassVar = {"txn_id": _TXN, "group_info": blob(MAX_GROUP_INFO, 1)}
    txn_id: str
    group_info: bytes


@dataclass(frozen=True)
class CreateRoomResponse(Message):
    SCHEMA: ClassVar = {"room_id": _ROOM, "seq": uint(), "epoch": uint(), "event_id": _hex32}
    room_id: RoomId
    seq: int  # always 0: the room's create event
    epoch: int
    event_id: str  # hex id of the create event (added field)


@dataclass(frozen=True)
class SendRequest(Message):
    """``POST /rooms/{room_id}/send``: one MLSMessage; with a commit, its Welcome and the new
    epoch's GroupInfo."""

    SCHEMA: ClassVar = {
        "txn_id": _TXN,
        "message": blob(MAX_WIRE_MESSAGE, 1),
        "welcome": nullable(blob(MAX_WELCOME, 1)),
        "group_info": nullable(blob(MAX_GROUP_INFO, 1)),
    }
    txn_id: str
    message: bytes
    welcome: bytes | None = None
    group_info: bytes | None = None


@dataclass(frozen=True)
class SendResponse(Message):
    SCHEMA: ClassVar = {"seq": uint(), "event_id": _hex32, "epoch": uint()}
    seq: int
    event_id: str
    epoch: int  # the room's epoch after the event (a commit's new epoch)


@dataclass(frozen=True)
class RoomSummary(Message):
    SCHEMA: ClassVar = {"room_id": _ROOM, "epoch": uint(), "last_seq": uint()}
    room_id: RoomId
    epoch: int
    last_seq: int


@dataclass(frozen=True)
class RoomsResponse(Message):
    SCHEMA: ClassVar = {"rooms": list_of(nested(RoomSummary), MAX_ROOMS_LISTED)}
    rooms: tuple[RoomSummary, ...]


@dataclass(frozen=True)
class Envelope(Message):
    """One signed event in its map form (``spec/client-server.md`` section 7); decoding
    recomputes and checks ``event_id`` (the signature needs the hub key:
    ``envelope.event.verify(key)``)."""

    SCHEMA: ClassVar = {}
    event: SignedEvent

    @classmethod
    def from_wire(cls, obj: Any, where: str = "body") -> Envelope:
        try:
            return cls(SignedEvent.from_wire(obj))
        except MalformedEvent as exc:
            raise MalformedBody(f"{where}: {exc}") from None

    def to_wire(self) -> dict[str, Any]:
        return self.event.to_wire()


@dataclass(frozen=True)
class EventsResponse(Message):
    """``GET /rooms/{room_id}/events``: events in seq order, and the ``from`` to ask next."""

    SCHEMA: ClassVar = {"events": list_of(nested(Envelope), MAX_HISTORY_LIMIT), "next": uint()}
    events: tuple[Envelope, ...]
    next: int


@dataclass(frozen=True)
class GroupInfoResponse(Message):
    SCHEMA: ClassVar = {"group_info": blob(MAX_GROUP_INFO, 1), "epoch": uint()}
    group_info: bytes
    epoch: int


@dataclass(frozen=True)
class HubKeyResponse(Message):
    """``GET /hub_key[?server=NAME]``: the keys that verify a hub's event signatures.

    ``signing_key``/``key_id``: the hub's current key; ``key_document``: the hub's
    self-signed federation key document (``protocol.federation.ServerKeys`` msgpack
    bytes) with every key and its validity, which verifies envelopes by ``hub_key_id``.
    """

    SCHEMA: ClassVar = {"server_name": text(255), "signing_key": blob(32, exact=32),
                        "key_id": text(40, 0), "key_document": blob(65536)}
    server_name: str
    signing_key: bytes
    key_id: str = ""  # absent only from servers before room federation
    key_document: bytes = b""


# -- device inbox --------------------------------------------------------------------------


@dataclass(frozen=True)
class ToDeviceMessage(Message):
    SCHEMA: ClassVar = {"user_id": _USER, "device_id": _DEVICE, "payload": _sealed_box}
    user_id: UserId
    device_id: DeviceId
    payload: bytes


@dataclass(frozen=True)
class SendToDeviceRequest(Message):
    """``POST /sendToDevice``: opaque payloads for other devices' inboxes."""

    SCHEMA: ClassVar = {"txn_id": _TXN,
                        "messages": list_of(nested(ToDeviceMessage), MAX_TO_DEVICE_MESSAGES, 1)}
    txn_id: str
    messages: tuple[ToDeviceMessage, ...]


@dataclass(frozen=True)
class InboxItem(Message):
    """An inbox item; ``sender_*`` and ``room_id`` are omitted when they do not apply."""

    SCHEMA: ClassVar = {
        "id": uint(),
        "kind": _inbox_kind,
        "sender_user": nullable(_USER),
        "sender_device": nullable(_DEVICE),
        "room_id": nullable(_ROOM),
        "payload": blob(MAX_WELCOME, 1),
    }
    id: int
    kind: str
    payload: bytes
    sender_user: UserId | None = None
    sender_device: DeviceId | None = None
    room_id: RoomId | None = None

    def to_wire(self) -> dict[str, Any]:
        return {k: v for k, v in super().to_wire().items() if v is not None}


@dataclass(frozen=True)
class SyncResponse(Message):
    SCHEMA: ClassVar = {
        "next": _since,
        "events": list_of(nested(Envelope), MAX_SYNC_LIMIT),
        "inbox": list_of(nested(InboxItem), MAX_SYNC_LIMIT),
    }
    next: str
    events: tuple[Envelope, ...]
    inbox: tuple[InboxItem, ...]


@dataclass(frozen=True)
class SyncAck(Message):
    """A frame a client sends on ``/sync/ws``: every inbox item up to ``ack`` was handled."""

    SCHEMA: ClassVar = {"ack": _since}
    ack: str


# -- attachments ----------------------------------------------------------------------------


@dataclass(frozen=True)
class AttachmentResponse(Message):
    SCHEMA: ClassVar = {"content_id": _hex32}
    content_id: str


@dataclass(frozen=True)
class AttachmentLink(Message):
    """``POST /rooms/{room_id}/attachments/{content_id}``: the seq of the caller's message
    that announces the attachment in the room."""

    SCHEMA: ClassVar = {"seq": uint()}
    seq: int


#: Request bodies of this part, added to :data:`protocol.api.REQUEST_TYPES`.
ROOM_REQUEST_TYPES: tuple[type[Message], ...] = (
    CreateRoomRequest, SendRequest, SendToDeviceRequest, SyncAck, AttachmentLink,
)


# -- tokens and query parameters -------------------------------------------------------------


def format_since(position: int) -> str:
    """The sync token of a stream position: its canonical decimal."""
    return str(position)


def parse_since(value: object) -> int:
    """The stream position of a token; raises :class:`InvalidSinceToken` unless ``value`` is
    a canonical decimal (no sign, no leading zero, at most 19 digits, below 2^63)."""
    if (type(value) is not str or not 1 <= len(value) <= _MAX_TOKEN_DIGITS
            or not value.isascii() or not value.isdigit() or (len(value) > 1 and value[0] == "0")
            or int(value) > _MAX_U63):
        raise InvalidSinceToken("not a sync token")
    return int(value)


def parse_uint_param(value: str | None, name: str, *, default: int, max_value: int,
                     min_value: int = 0) -> int:
    """A query parameter as a canonical decimal in ``min_value..max_value`` (``default`` when
    absent); raises :class:`InvalidQuery` naming the parameter."""
    if value is None:
        return default
    if (not 1 <= len(value) <= _MAX_TOKEN_DIGITS or not value.isascii() or not value.isdigit()
            or (len(value) > 1 and value[0] == "0")
            or not min_value <= int(value) <= max_value):
        raise InvalidQuery(f"{name} must be an integer {min_value}..{max_value}")
    return int(value)
