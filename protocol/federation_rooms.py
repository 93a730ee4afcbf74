"""Room federation's wire model: item kinds, synchronous bodies and error codes.

``spec/server-server.md`` sections 11-15. Everything here is pure: item data
and request bodies are msgpack maps decoded strictly by :class:`Message`
schemas (:class:`~protocol.errors.MalformedBody` or an identifier error for
anything else), and a ``room_event`` item is exactly one envelope map of
``spec/client-server.md`` section 7 (:func:`decode_room_event`).

Item kinds (in transactions, section 5 of the server-server spec):

- ``room_event``: hub -> follower, one signed event (:func:`decode_room_event`);
- ``welcome``: hub -> a joiner's home server, a Welcome for some of its devices
  (:class:`WelcomeItem`);
- ``to_device``: a device's server -> the target devices' server
  (:class:`ToDeviceItem`).

Errors (each an :class:`~protocol.errors.ApiError` with a stable code):
:class:`NotHub` (``not_hub``), :class:`HubUnreachable` (``hub_unreachable``),
:class:`RoomEventMalformed` (``room_event_malformed``),
:class:`RoomEventBadSignature` (``room_event_bad_signature``),
:class:`RoomEventChainBroken` (``room_event_chain_broken``),
:class:`RoomEventRejected` (``room_event_rejected``),
:class:`NotYourUser` (``not_your_user``),
:class:`HubKeysUnavailable` (``hub_keys_unavailable``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .errors import ApiError, MalformedBody
from .events import MalformedEvent, SignedEvent
from .ids import DeviceId, RoomId, UserId
from .rooms_api import MAX_TO_DEVICE_MESSAGES, ToDeviceMessage
from .schema import Message, blob, list_of, nested, nullable, pack_body, parsed, unpack_body
from .txn_ids import parse_client_txn_id

__all__ = [
    "ITEM_ROOM_EVENT", "ITEM_WELCOME", "ITEM_TO_DEVICE", "MAX_WELCOME_TARGETS",
    "NotHub", "HubUnreachable", "RoomEventMalformed", "RoomEventBadSignature",
    "RoomEventChainBroken", "RoomEventRejected", "NotYourUser", "HubKeysUnavailable",
    "WelcomeUnvouched",
    "DeviceRef", "WelcomeItem", "ToDeviceItem", "FederatedSend", "FederatedClaim",
    "FederatedRoomClaim", "FederatedGroupInfo",
    "decode_room_event", "encode_room_event",
]

ITEM_ROOM_EVENT = "room_event"
ITEM_WELCOME = "welcome"
ITEM_TO_DEVICE = "to_device"
MAX_WELCOME_TARGETS = 1000
_MAX_MESSAGE = 512 * 1024 + 64 * 1024
# The same bounds as the client API (protocol/rooms_api.py MAX_WELCOME, MAX_GROUP_INFO).
_MAX_WELCOME = 512 * 1024
_MAX_GROUP_INFO = 256 * 1024


class NotHub(ApiError):
    """The room is not hosted by this server (a submission or history request sent to a
    follower), or a room event came from a server that is not the room's hub."""

    code = "not_hub"
    status = 409


class HubUnreachable(ApiError):
    """A follower could not reach the room's hub. Nothing was stored or queued: the client
    keeps its message and sends it again (same ``txn_id``) later."""

    code = "hub_unreachable"
    status = 503


class RoomEventMalformed(ApiError):
    """A ``room_event`` item or history page that is not exactly signed envelopes."""

    code = "room_event_malformed"
    status = 400


class RoomEventBadSignature(ApiError):
    """The hub's signature does not verify with the named key valid at the event's ``ts``."""

    code = "room_event_bad_signature"
    status = 400


class RoomEventChainBroken(ApiError):
    """``prev`` is not the stored previous event's id, or a stored seq has another event."""

    code = "room_event_chain_broken"
    status = 409


class RoomEventRejected(ApiError):
    """The event's MLS handshake does not apply to the follower's public view of the group."""

    code = "room_event_rejected"
    status = 400


class NotYourUser(ApiError):
    """The origin server speaks for a user or device of another server."""

    code = "not_your_user"
    status = 403


class WelcomeUnvouched(ApiError):
    """A ``welcome`` item names a target device that no stored commit of the item's sender
    added to the room (the hub's signed events do not vouch for it)."""

    code = "welcome_unvouched"
    status = 403


class HubKeysUnavailable(ApiError):
    """A transaction carries room events of a hub whose key document this server has never
    been able to fetch: nothing was applied or recorded, the origin's queue retries."""

    code = "hub_keys_unavailable"
    status = 503


_USER = parsed(UserId.parse)
_DEVICE = parsed(DeviceId.parse, 64)
_ROOM = parsed(RoomId.parse)
_TXN = parsed(parse_client_txn_id, 128)


@dataclass(frozen=True)
class DeviceRef(Message):
    SCHEMA: ClassVar = {"user_id": _USER, "device_id": _DEVICE}
    user_id: UserId
    device_id: DeviceId


@dataclass(frozen=True)
class WelcomeItem(Message):
    """Item ``welcome``: a Welcome the hub routed (by KeyPackageRef) to ``targets``, devices
    of the receiving server; the committer is ``sender_user``/``sender_device``."""

    SCHEMA: ClassVar = {"room_id": _ROOM, "sender_user": _USER, "sender_device": _DEVICE,
                        "welcome": blob(_MAX_WELCOME, 1),
                        "targets": list_of(nested(DeviceRef), MAX_WELCOME_TARGETS, 1)}
    room_id: RoomId
    sender_user: UserId
    sender_device: DeviceId
    welcome: bytes
    targets: tuple[DeviceRef, ...]


@dataclass(frozen=True)
class ToDeviceItem(Message):
    """Item ``to_device``: payloads from a device of the origin server for devices of the receiver."""

    SCHEMA: ClassVar = {"sender_user": _USER, "sender_device": _DEVICE,
                        "messages": list_of(nested(ToDeviceMessage), MAX_TO_DEVICE_MESSAGES, 1)}
    sender_user: UserId
    sender_device: DeviceId
    messages: tuple[ToDeviceMessage, ...]


@dataclass(frozen=True)
class FederatedSend(Message):
    """``POST /_confide/federation/v1/rooms/{room_id}/send``: a follower forwards its
    device's submission (the fields of the client's ``SendRequest``)."""

    SCHEMA: ClassVar = {"user_id": _USER, "device_id": _DEVICE, "txn_id": _TXN,
                        "message": blob(_MAX_MESSAGE, 1),
                        "welcome": nullable(blob(_MAX_WELCOME, 1)),
                        "group_info": nullable(blob(_MAX_GROUP_INFO, 1))}
    user_id: UserId
    device_id: DeviceId
    txn_id: str
    message: bytes
    welcome: bytes | None = None
    group_info: bytes | None = None


@dataclass(frozen=True)
class FederatedClaim(Message):
    """``POST /_confide/federation/v1/keys/claim``: one KeyPackage per device of a local user.

    ``room_id`` (optional) names the room the claim is for; only that room's hub may name
    it (the receiver answers ``not_hub`` otherwise). Absent, not null, when not given."""

    SCHEMA: ClassVar = {"user_id": _USER, "room_id": nullable(_ROOM)}
    user_id: UserId
    room_id: RoomId | None = None

    def to_wire(self) -> dict:
        out = super().to_wire()
        if self.room_id is None:
            del out["room_id"]
        return out


@dataclass(frozen=True)
class FederatedRoomClaim(Message):
    """``POST /_confide/federation/v1/rooms/{room_id}/claim``: a follower asks the room's hub
    for one KeyPackage per device of ``user_id`` on behalf of ``requester``, a user of the
    origin with a current member device in the room (MIMI's KeyPackage claim via the hub)."""

    SCHEMA: ClassVar = {"user_id": _USER, "requester": _USER}
    user_id: UserId
    requester: UserId


@dataclass(frozen=True)
class FederatedGroupInfo(Message):
    """``POST /_confide/federation/v1/rooms/{room_id}/group_info``: the hub's current
    GroupInfo, for ``user_id`` (a user of the origin with a current member device)."""

    SCHEMA: ClassVar = {"user_id": _USER}
    user_id: UserId


def decode_room_event(data: bytes) -> SignedEvent:
    """One envelope map, strictly (``event_id`` recomputed). Raises :class:`RoomEventMalformed`."""
    try:
        return SignedEvent.from_wire(unpack_body(data))
    except (MalformedBody, MalformedEvent) as exc:
        raise RoomEventMalformed(f"not a signed event: {exc}") from None


def encode_room_event(event: SignedEvent) -> bytes:
    """The item data of ``room_event``: the envelope map in msgpack."""
    return pack_body(event.to_wire())
