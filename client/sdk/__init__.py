"""Confide's client SDK (async, aiohttp): accounts, device keys, rooms, messages.

Modules, one responsibility each:

* :mod:`.http`: msgpack requests, server errors mapped to typed ones;
* :mod:`.store`: the SDK's records in the encrypted profile;
* :mod:`.keys`: device keys, KeyPackages, claims and log verification of peers;
* :mod:`.envelopes`: verifying room events with the hubs' published keys;
* :mod:`.messages`: the timeline's messages (frozen dataclasses);
* :mod:`.groups`: the rooms' live MLS groups;
* :mod:`.timeline`: applying one room event to the group state;
* :mod:`.sync`: long-poll sync, history catch-up, Welcomes;
* :mod:`.rooms`: create, invite, remove, leave, rotate, send (the commit pipeline);
* :mod:`.payload`: the application payloads inside MLS, attachment encryption;
* :mod:`.session`: :class:`Client`, composing the above.
"""

from __future__ import annotations

from .device_trust import NewIdentity
from .envelopes import EventRefused, Failure, Refusal
from .errors import (
    InvalidPayload,
    LogInconsistent,
    NotAMember,
    NotSignedIn,
    RetriesExhausted,
    SdkError,
    ServerError,
    StaleEpoch,
    TransportError,
    TrustAnchorMismatch,
    UnknownRoom,
    VerificationFailed,
)
from .messages import (
    AttachmentMessage,
    MembershipMessage,
    MessageType,
    RoomMessage,
    TextMessage,
)
from .own_devices import CodeMismatch, Pending
from .session import Client, RoomSummary
from .store import RoomStatus
from .sync import SyncResult

__all__ = [
    "Client",
    "RoomSummary",
    "SyncResult",
    "RoomMessage",
    "TextMessage",
    "AttachmentMessage",
    "MembershipMessage",
    "MessageType",
    "RoomStatus",
    "Refusal",
    "Failure",
    "EventRefused",
    "SdkError",
    "ServerError",
    "StaleEpoch",
    "TransportError",
    "NotSignedIn",
    "UnknownRoom",
    "NotAMember",
    "VerificationFailed",
    "TrustAnchorMismatch",
    "LogInconsistent",
    "InvalidPayload",
    "RetriesExhausted",
    "NewIdentity",
    "CodeMismatch",
    "Pending",
]
