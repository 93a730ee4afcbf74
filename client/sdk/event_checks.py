"""What a verified envelope's content must be before it is applied, and what the SDK
refuses from the inbox (issue 10: the 2022 Matrix attack classes, ``spec/security.md``).

The hub's signature (:mod:`.envelopes`) proves only what the hub said. A malicious
server signs whatever it likes, so the content is checked here too, and every refusal
is *visible*: a :class:`~client.sdk.envelopes.Refusal` kept in ``room.refused`` (shown
by ``confide read`` on stderr, exit 5), never a silent drop and never a message.

* :func:`kind_refusal`: the envelope's ``kind`` must be what its MLS message is, by the
  hub's own rule (:func:`protocol.room_messages.classify_message`): application data only
  as PrivateMessage, proposals and commits only as PublicMessage, no Welcome, GroupInfo or
  KeyPackage as a room event, ``create`` only at seq 0, and the envelope's ``epoch`` the
  MLS message's (the hub copies it from there) (:attr:`Failure.KIND`).
* :func:`content_refusal`: an MLS message that does not decrypt or authenticate (AEAD of
  the content or of the sender data, the sender's signature, the membership tag, a ratchet
  key used before, another group's message) is refused (:attr:`Failure.CONTENT`). Only
  "this device no longer keeps that epoch's keys" stays a warning: it says nothing about
  the message.
* :func:`welcome_refusal`: a Welcome for a room this device is in cannot replace the
  room's group (a server or another user holding one of our KeyPackages could otherwise
  swap in a group of its making, with members of its choosing) (:attr:`Failure.WELCOME`).
* :func:`ignored_inbox_item`: the SDK takes no keys from to-device messages (there is no
  key forwarding in Confide): such an item is acknowledged and reported, never used.

Content refusals do not stop the room (the hub's chain holds; later events are applied);
at most :data:`MAX_CONTENT_REFUSALS` are kept per room.
"""

from __future__ import annotations

from crypto.errors import CryptoError
from crypto.mls.group_errors import EpochNotRetained
from protocol.errors import ApiError
from protocol.events import EventKind, SignedEvent
from protocol.room_messages import classify_message
from protocol.rooms_api import InboxItem

from .envelopes import Failure, Refusal
from .store import RoomState

__all__ = ["MAX_CONTENT_REFUSALS", "kind_refusal", "content_refusal", "welcome_refusal",
           "ignored_inbox_item", "record_refusal"]

MAX_CONTENT_REFUSALS = 50


def kind_refusal(ev: SignedEvent) -> Refusal | None:
    """A :attr:`Failure.KIND` refusal if ``ev``'s message is not a room message of its
    envelope's kind (see the module docstring); None when it is."""
    c = ev.content
    if c.kind == EventKind.CREATE:
        return None if c.seq == 0 else Refusal(c.room_id, c.seq, Failure.KIND,
                                               "a create event after seq 0")
    try:
        classified = classify_message(c.message)
    except ApiError as exc:
        return Refusal(c.room_id, c.seq, Failure.KIND, f"{exc.code}: {exc.message}")
    if classified.kind != c.kind:
        return Refusal(c.room_id, c.seq, Failure.KIND,
                       f"labelled {c.kind.value}, but its MLS message is {classified.kind.value}")
    if classified.epoch != c.epoch:
        return Refusal(c.room_id, c.seq, Failure.KIND,
                       f"labelled epoch {c.epoch}, but its MLS message is for epoch {classified.epoch}")
    return None


def content_refusal(ev: SignedEvent, exc: CryptoError) -> Refusal | None:
    """The :attr:`Failure.CONTENT` refusal for a message that failed MLS processing with
    ``exc``; None for a failure that says nothing against the message (keys of an epoch
    this device no longer keeps)."""
    if isinstance(exc, EpochNotRetained):
        return None
    return Refusal(ev.content.room_id, ev.content.seq, Failure.CONTENT, exc.code)


def welcome_refusal(item: InboxItem, detail: str) -> Refusal:
    """The :attr:`Failure.WELCOME` refusal of a Welcome inbox item for a room this device is in."""
    return Refusal(None if item.room_id is None else str(item.room_id), None, Failure.WELCOME,
                   detail)


def ignored_inbox_item(item: InboxItem) -> str:
    """One sentence saying that ``item`` (not a Welcome) was received and not used."""
    sender = (f"labelled as from {item.sender_user}/{item.sender_device}"
              if item.sender_user is not None else "with no sender")
    room = f" naming room {item.room_id}" if item.room_id is not None else ""
    return (f"A {item.kind} item {sender}{room} was ignored: Confide takes no keys or "
            "messages from to-device items (room keys come only inside MLS).")


def record_refusal(room: RoomState, refusal: Refusal) -> None:
    """Keep ``refusal`` in ``room.refused`` (once; at most :data:`MAX_CONTENT_REFUSALS` that
    do not stop the room)."""
    record = refusal.to_record()
    if record in room.refused:
        return
    room.refused.append(record)
    kept = [r for r in room.refused if not Refusal.from_record(r).stops_room]
    for old in kept[:-MAX_CONTENT_REFUSALS]:
        room.refused.remove(old)
