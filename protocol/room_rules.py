"""Room acceptance as a pure core: which message becomes a room's next event, and what it changes.

``spec/client-server.md`` sections 8.1-8.2 (the hub's checks) and
``spec/server-server.md`` 11.1 (a follower's checks 4 and 5). No asyncio, no
SQL, no clock: the room's state comes in as a :class:`RoomHead` (last seq and
event id, epoch, current members) and its public view
(:class:`crypto.mls.PublicGroup`), time as ``now`` (seconds).

The hub and a follower reach the same rows through the same function:

- the hub decides with :func:`accept_create` / :func:`accept` (membership, sender,
  epoch, Welcome routing, GroupInfo), signs the event it builds with
  :func:`next_content`, then calls :func:`apply`;
- a follower, once the hub's signature verified, decides with :func:`follow`
  (chain, then the handshake processed on its own view), which calls :func:`apply`.

:func:`apply` is the one transition: an event plus the view after it (the
handshake already merged) give an :class:`Applied`, the new head and the
membership changes that ``server.rooms.storage.write_event`` stores.

Both hold every message to the field checks of :mod:`protocol.room_channels` (finding 9:
each field the server can read in the one form an honest client gives it).

Refusals are raised, typed, with a stable code: the hub's are
:mod:`protocol.room_errors`, :mod:`protocol.channel_errors` (and
:class:`~protocol.errors.BadRequest`), a
follower's :class:`~protocol.federation_rooms.RoomEventChainBroken` and
:class:`~protocol.federation_rooms.RoomEventRejected`. **The view passed in is
changed** by an accepted handshake (and may be half-changed by a refused one:
a caller that keeps views in memory drops its copy on a refusal).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace

from crypto.errors import CryptoError
from crypto.mls.framing import PrivateMessage, PublicMessage, SenderType
from crypto.mls.group_errors import EpochMismatch
from crypto.mls.key_package_gen import key_package_ref
from crypto.mls.public_group import PublicGroup, PublicProcessed

from . import room_channels
from .errors import ApiError, BadRequest
from .events import GENESIS_PREV, MAX_EVENT_MESSAGE, EventContent, EventKind, SignedEvent
from .federation_rooms import RoomEventChainBroken, RoomEventRejected
from .member_devices import AddedDevice, added_devices
from .room_errors import (
    GroupInfoInvalid,
    MessageTooLarge,
    MlsRejected,
    NotMember,
    SenderMismatch,
    StaleEpoch,
    WelcomeInvalid,
)
from .room_messages import (
    Classified,
    classify_message,
    decode_group_info,
    decode_welcome,
    parse_device_identity,
)

__all__ = [
    "APPLICATION_PAST_EPOCHS",
    "Member",
    "Membership",
    "Outcome",
    "RoomHead",
    "Submission",
    "Accepted",
    "Applied",
    "Followed",
    "accept_create",
    "decode_submission",
    "accept",
    "next_content",
    "apply",
    "follow",
    "members_of",
]

#: Application messages are accepted for the current epoch and this many before it.
APPLICATION_PAST_EPOCHS = 3

Member = tuple[str, str]  # (user id, device id)


class Membership(enum.Enum):
    """A device's state in a room. The server records ``JOINED`` (an open interval of
    ``room_members``) and ``REMOVED`` (closed by the commit that removed it); ``LEFT`` is
    a client's own view of a room its device no longer takes part in."""

    JOINED = "joined"
    LEFT = "left"
    REMOVED = "removed"


class Outcome(enum.Enum):
    """What a follower does with a verified event (``spec/server-server.md`` 11.1)."""

    APPLIED = "applied"
    DUPLICATE = "duplicate"  # the same event is stored at its seq: acknowledged, not applied again
    GAP = "gap"  # past the stored last event: acknowledged, not stored, catch-up fills it


@dataclass(frozen=True)
class RoomHead:
    """A room's ordering state: its last event and the members after it."""

    room_id: str
    group_id: bytes
    cipher_suite: int
    epoch: int
    last_seq: int
    last_event_id: bytes
    members: frozenset[Member]


@dataclass(frozen=True)
class Submission:
    """One device's ``POST /rooms/{room_id}/send`` (or ``POST /rooms``: ``message`` is the
    GroupInfo)."""

    sender: Member
    message: bytes
    welcome: bytes | None = None
    group_info: bytes | None = None


@dataclass(frozen=True)
class Accepted:
    """A submission the hub takes: its kind and epoch (for the event), and what goes with it."""

    kind: EventKind
    epoch: int
    #: The GroupInfo that becomes the room's latest, with the epoch it describes.
    group_info: tuple[bytes, int] | None = None
    welcome: bytes | None = None
    #: The devices the Welcome goes to (by the KeyPackageRefs it names), in its order.
    welcome_to: tuple[Member, ...] = ()
    #: The devices the message adds (Add proposals, a commit's Adds, an external joiner):
    #: the hub proves each registered before it stores the event (finding 5).
    added_devices: tuple[AddedDevice, ...] = ()


@dataclass(frozen=True)
class Applied:
    """An event and what it changes: the rows every server holding the room writes alike."""

    event: SignedEvent
    head: RoomHead  # after the event
    before: frozenset[Member]
    #: The encoded public view after the event, when it changed (create, proposal, commit).
    view: bytes | None
    #: The GroupInfo that becomes the room's latest (create: the creator's; the hub: a commit's).
    group_info: tuple[bytes, int] | None = None

    @property
    def added(self) -> frozenset[Member]:
        return self.head.members - self.before

    @property
    def removed(self) -> frozenset[Member]:
        return self.before - self.head.members

    def memberships(self) -> dict[Member, Membership]:
        """Each device this event concerns: current members and the ones it removed."""
        out = {m: Membership.JOINED for m in self.head.members}
        out.update({m: Membership.REMOVED for m in self.removed})
        return out


@dataclass(frozen=True)
class Followed:
    outcome: Outcome
    applied: Applied | None = None


def members_of(view: PublicGroup) -> frozenset[Member]:
    """(user, device) of every leaf; raises :class:`MemberIdentityInvalid`."""
    out = set()
    for m in view.members:
        user, device = parse_device_identity(m.credential)
        out.add((str(user), str(device)))
    return frozenset(out)


# -- the hub ---------------------------------------------------------------------------------


def accept_create(sub: Submission, now: int) -> PublicGroup:
    """The view a new room starts from: ``sub.message`` is the creator's GroupInfo, and its
    group has the creator's device as its only member. Raises ``not_mls``,
    ``wrong_wire_format``, ``mls_rejected``, ``group_info_invalid``."""
    msg = decode_group_info(sub.message)
    try:
        view = PublicGroup.from_group_info(msg, now=now)
    except CryptoError as exc:
        raise MlsRejected(f"the GroupInfo was refused ({exc.code})", exc.code) from None
    members = view.members
    if len(members) != 1 or members[0].identity != _identity(sub.sender):
        raise GroupInfoInvalid("a new room's group must have the calling device as its only member")
    room_channels.check_new_group(view, msg.body)
    return view


def decode_submission(message: bytes) -> Classified:
    """A submitted message's size checked, then decoded and sorted (8.2 steps 3-4): raises
    ``message_too_large`` and the :func:`~protocol.room_messages.classify_message` codes."""
    if len(message) > MAX_EVENT_MESSAGE:
        raise MessageTooLarge(f"an MLSMessage may have at most {MAX_EVENT_MESSAGE} bytes")
    return classify_message(message)


def accept(head: RoomHead, view: PublicGroup, sub: Submission, now: int,
           classified: Classified | None = None) -> Accepted:
    """Whether ``sub`` becomes the room's next event (``spec/client-server.md`` 8.2 steps 3-6);
    an accepted handshake is merged into ``view``. ``classified`` is ``sub.message``
    already decoded (the hub decodes before it takes the room's view). Raises the refusal."""
    if classified is None:
        classified = decode_submission(sub.message)
    if classified.kind == EventKind.APPLICATION:
        _check_application(head, classified, sub)
        room_channels.check_application(classified.message.body)
        return Accepted(EventKind.APPLICATION, classified.epoch)
    return _accept_handshake(head, view, classified, sub, now)


def next_content(head: RoomHead, accepted: Accepted, sub: Submission, ts: int) -> EventContent:
    """The content of the room's next event (to be signed by the hub)."""
    return EventContent(head.room_id, head.last_seq + 1, head.last_event_id, accepted.epoch,
                        accepted.kind, sub.sender[0], sub.sender[1], ts, sub.message)


def _check_application(head: RoomHead, c: Classified, sub: Submission) -> None:
    if sub.sender not in head.members:
        raise NotMember("the device is not a member of this room")
    if sub.welcome is not None or sub.group_info is not None:
        raise BadRequest("welcome and group_info go with a commit only")
    if c.group_id != head.group_id:
        raise MlsRejected("the message is for another MLS group", "mls_wrong_group")
    epoch = head.epoch
    if not epoch - APPLICATION_PAST_EPOCHS <= c.epoch <= epoch:
        raise StaleEpoch(f"application messages are taken for epochs "
                         f"{max(0, epoch - APPLICATION_PAST_EPOCHS)}..{epoch}", current_epoch=epoch)


def _accept_handshake(head: RoomHead, view: PublicGroup, c: Classified, sub: Submission,
                      now: int) -> Accepted:
    user, device = sub.sender
    body = c.message.body
    assert isinstance(body, PublicMessage)
    sender_type = body.content.sender.sender_type
    if sender_type == SenderType.NEW_MEMBER_COMMIT:
        # A user's further device joining by itself: the user must already be in the room.
        if not any(u == user for u, _ in head.members):
            raise NotMember("no device of this user is a member of this room")
    elif sub.sender not in head.members:
        raise NotMember("the device is not a member of this room")
    elif sender_type != SenderType.MEMBER:
        raise SenderMismatch("the hub takes handshake messages from members and new-member commits only")
    if c.kind != EventKind.COMMIT and (sub.welcome is not None or sub.group_info is not None):
        raise BadRequest("welcome and group_info go with a commit only")
    room_channels.check_handshake(body)
    try:
        processed = view.process(c.message, now=now)
    except EpochMismatch as exc:
        raise StaleEpoch(f"the room is at epoch {exc.current_epoch}",
                         current_epoch=exc.current_epoch) from None
    except CryptoError as exc:
        raise MlsRejected(f"the message was refused ({exc.code})", exc.code) from None
    if _sender_identity(view, processed, body) != _identity(sub.sender):
        raise SenderMismatch("the MLS sender is not the calling device")
    added = added_devices(processed, body)
    if c.kind == EventKind.PROPOSAL:
        processed.merge()
        return Accepted(c.kind, c.epoch, added_devices=added)
    welcome_to = _welcome_targets(head, view, processed, sub.welcome)
    processed.merge()
    group_info = None
    if sub.group_info is not None:
        info = decode_group_info(sub.group_info)
        try:
            view.check_group_info(info)
        except CryptoError as exc:
            raise GroupInfoInvalid(f"the GroupInfo is not the new epoch's ({exc.code})",
                                   mls_code=exc.code) from None
        room_channels.check_group_info(view, info.body)
        group_info = (sub.group_info, view.epoch)
    return Accepted(c.kind, c.epoch, group_info, sub.welcome, welcome_to, added)


def _welcome_targets(head: RoomHead, view: PublicGroup, processed: PublicProcessed,
                     welcome_bytes: bytes | None) -> tuple[Member, ...]:
    """The devices a commit's Welcome goes to: those whose KeyPackage the commit adds and
    the Welcome names by KeyPackageRef. Raises :class:`WelcomeInvalid`."""
    if welcome_bytes is None:
        return ()
    welcome = decode_welcome(welcome_bytes)
    room_channels.check_welcome(welcome)
    if not processed.added:
        raise WelcomeInvalid("a Welcome goes with a commit that adds members")
    if welcome.cipher_suite != head.cipher_suite:
        raise WelcomeInvalid("the Welcome's cipher suite is not the room's")
    by_ref = {}
    for _, kp in processed.added:
        user, device = parse_device_identity(kp.leaf_node.credential)
        by_ref[key_package_ref(view.cipher_suite, kp)] = (str(user), str(device))
    targets: list[Member] = []
    for secrets in welcome.secrets:
        member = by_ref.get(secrets.new_member)
        if member is None:
            raise WelcomeInvalid("the Welcome names a KeyPackage the commit does not add")
        if member not in targets:
            targets.append(member)
    return tuple(targets)


def _sender_identity(view: PublicGroup, processed: PublicProcessed, body: PublicMessage) -> bytes | None:
    """The credential identity of a handshake message's sender (before the view merges it)."""
    if processed.sender_type == SenderType.NEW_MEMBER_COMMIT:
        path = getattr(body.content.content, "path", None)
        return None if path is None else path.leaf_node.credential.identity
    if processed.sender is None:
        return None
    leaf = next((m for m in view.members if m.leaf_index == processed.sender), None)
    return None if leaf is None else leaf.identity


def _identity(member: Member) -> bytes:
    """The basic-credential identity of a (user, device) pair (:func:`~protocol.ids.device_identity`)."""
    return f"{member[0]}/{member[1]}".encode()


# -- the one transition ------------------------------------------------------------------------


def apply(head: RoomHead | None, view: PublicGroup | None, event: SignedEvent,
          group_info: tuple[bytes, int] | None = None) -> Applied:
    """The event as the room's next one: ``head`` is the room before it (None for a
    ``create``), ``view`` the public view *after* it (the handshake merged; None for an
    application message, which changes no view). Memberships follow from the view: a
    commit's members are the view's leaves. ``group_info``: the room's new latest GroupInfo
    (a ``create`` event's own message when not given)."""
    c = event.content
    if head is None:
        assert view is not None and c.kind == EventKind.CREATE
        members = members_of(view)
        new = RoomHead(c.room_id, view.group_id, view.cipher_suite.id, view.epoch, c.seq,
                       event.event_id, members)
        return Applied(event, new, frozenset(), view.to_bytes(), group_info or (c.message, view.epoch))
    members = head.members
    if c.kind == EventKind.APPLICATION:
        return Applied(event, replace(head, last_seq=c.seq, last_event_id=event.event_id), members,
                       None, group_info)
    assert view is not None
    if c.kind == EventKind.COMMIT:
        members = members_of(view)
    new = replace(head, epoch=view.epoch, last_seq=c.seq, last_event_id=event.event_id, members=members)
    return Applied(event, new, head.members, view.to_bytes(), group_info)


# -- a follower ----------------------------------------------------------------------------------


def follow(head: RoomHead | None, view: bytes | None, event: SignedEvent,
           stored_event_id: bytes | None = None) -> Followed:
    """A verified event of a room hosted elsewhere (``spec/server-server.md`` 11.1, checks 4
    and 5). ``head``/``view``: the stored room (None if unknown here); ``stored_event_id``:
    the id stored at the event's seq when that seq is not past the head. Raises
    :class:`RoomEventChainBroken` or :class:`RoomEventRejected`."""
    c = event.content
    if head is None:
        if c.seq != 0:
            return Followed(Outcome.GAP)
        if c.kind != EventKind.CREATE or c.prev != GENESIS_PREV:
            raise RoomEventChainBroken("a room starts with a create event with the genesis prev")
        try:
            info = decode_group_info(c.message)
            start = PublicGroup.from_group_info(info, now=c.ts // 1000)
            room_channels.check_new_group(start, info.body)
        except CryptoError as exc:
            raise RoomEventRejected(f"the room's GroupInfo does not check ({exc.code})") from None
        except ApiError as exc:  # the hub's checks, applied again (finding 9)
            raise RoomEventRejected(f"the room's GroupInfo is refused ({exc.code})") from None
        return Followed(Outcome.APPLIED, apply(None, start, event))
    if c.seq <= head.last_seq:
        if stored_event_id == event.event_id:
            return Followed(Outcome.DUPLICATE)
        raise RoomEventChainBroken(f"seq {c.seq} already holds another event")
    if c.seq > head.last_seq + 1:
        return Followed(Outcome.GAP)
    if c.prev != head.last_event_id or c.kind == EventKind.CREATE:
        raise RoomEventChainBroken(f"event {c.seq} does not continue the stored chain")
    classified = _follow_channels(c.message)
    if c.kind == EventKind.APPLICATION:
        return Followed(Outcome.APPLIED, apply(head, None, event))
    assert view is not None
    group = PublicGroup.from_bytes(view)
    try:
        group.process(classified.message, now=c.ts // 1000).merge()
    except CryptoError as exc:
        raise RoomEventRejected(f"the handshake does not apply ({exc.code})") from None
    return Followed(Outcome.APPLIED, apply(head, group, event))


def _follow_channels(message: bytes) -> Classified:
    """A hub's event message decoded and held to the hub's own field checks (finding 9), so a
    hub that skipped them cannot make a follower store a plaintext channel. Raises
    :class:`RoomEventRejected`."""
    try:
        classified = classify_message(message)
        body = classified.message.body
        if isinstance(body, PrivateMessage):  # application messages only (classify_message)
            room_channels.check_application(body)
        elif isinstance(body, PublicMessage):
            room_channels.check_handshake(body)
    except ApiError as exc:
        raise RoomEventRejected(f"the event's message is refused ({exc.code})") from None
    return classified
