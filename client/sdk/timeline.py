r"""Applying a room's signed events, in seq order, to this device's group state.

:func:`apply_event` takes one event (:class:`protocol.events.SignedEvent`) that
directly follows ``room.last_seq`` and returns what it produced:

* our own events: an application message or proposal we sent is skipped (we
  stored it when sending); our own commit was merged when the hub accepted it,
  or, if the answer was lost, the commit waiting in ``room.pending`` is adopted
  when its exact bytes appear;
* others' application messages: decrypted and decoded into
  :class:`~client.sdk.messages.RoomMessage`\ s;
* others' proposals: remembered by the group for the next commit;
* others' commits: staged and merged; a commit that removes us ends the room
  (:attr:`RoomStatus.REMOVED`, group state dropped); the added and removed members
  become a ``membership`` message;
* events this device cannot read (epochs before it joined, epochs whose keys it no
  longer keeps) are skipped; failures other than "before we joined" are noted in
  ``room.warnings``;
* an event whose MLS message is not of its envelope's kind, or that does not decrypt or
  authenticate, is *refused* (:mod:`.event_checks`): kept in ``room.refused`` and in
  :attr:`Applied.refused`, never shown as a message, and the group state is unchanged.

The caller (:mod:`.sync`) has verified the event and its chain.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from crypto.errors import CryptoError
from crypto.mls import MessageKind, MLSMessage
from protocol.events import SignedEvent

from .envelopes import Refusal
from .errors import InvalidPayload
from .event_checks import content_refusal, kind_refusal, record_refusal
from .groups import GroupStore
from .messages import MembershipMessage, RoomMessage, message_from_record
from .payload import decode_payload
from .store import RoomState, RoomStatus

__all__ = ["Applied", "apply_event", "message_epoch"]

_MAX_WARNINGS = 50


@dataclass
class Applied:
    messages: list[RoomMessage] = field(default_factory=list)
    added: list[bytes] = field(default_factory=list)  # identities a commit added
    refused: list[Refusal] = field(default_factory=list)  # its content was refused (event_checks)


def message_epoch(msg: MLSMessage) -> int | None:
    body = msg.body
    epoch = getattr(body, "epoch", None)
    if epoch is None:
        content = getattr(body, "content", None)
        epoch = getattr(content, "epoch", None)
    return epoch if isinstance(epoch, int) else None


def _warn(room: RoomState, text: str) -> None:
    room.warnings.append(text)
    del room.warnings[:-_MAX_WARNINGS]


def _refuse(room: RoomState, out: Applied, refusal: Refusal) -> None:
    record_refusal(room, refusal)
    out.refused.append(refusal)


def _meta(ev: SignedEvent) -> dict[str, Any]:
    c = ev.content
    return {"room_id": c.room_id, "seq": c.seq, "sender_user": c.sender_user,
            "sender_device": c.sender_device, "ts": c.ts, "epoch": c.epoch}


def apply_event(room: RoomState, ev: SignedEvent, own_device: str, own_user: str,
                groups: GroupStore) -> Applied:
    """Apply ``ev`` (seq ``room.last_seq + 1``) to ``room`` in place, on the room's live group
    from ``groups``; see the module docstring."""
    c = ev.content
    out = Applied()
    try:
        _apply(room, ev, own_device, own_user, groups, out)
    except BaseException:
        groups.forget(room.room_id)  # the live group may be half changed: the stored state holds
        raise
    finally:
        room.last_seq = c.seq
        room.last_event_id = ev.event_id
    return out


def _apply(room: RoomState, ev: SignedEvent, own_device: str, own_user: str, groups: GroupStore,
           out: Applied) -> None:
    c = ev.content
    kind = c.kind.value
    if room.group is None:
        return
    refusal = kind_refusal(ev)
    if refusal is not None:
        _refuse(room, out, refusal)  # e.g. a Welcome or a PublicMessage application as an event
        return
    if kind == "create":
        return
    mine = c.sender_device == own_device and c.sender_user == own_user
    if mine:
        if kind == "commit" and room.pending is not None and room.pending.message == c.message:
            room.group, room.pending = room.pending.new_group, None
        return
    if c.epoch < room.joined_epoch:
        return  # sent before this device joined: MLS gives us no keys for it
    try:
        msg = MLSMessage.from_bytes(c.message)
        group = groups.live(room)
        if kind in ("commit", "proposal") and message_epoch(msg) != group.epoch:
            _warn(room, f"seq {c.seq}: a {kind} for epoch {message_epoch(msg)} "
                        f"at our epoch {group.epoch} was skipped")
            return
        processed = group.process_message(msg)
    except CryptoError as exc:
        groups.forget(room.room_id)  # it may have changed before failing: the stored state holds
        refusal = content_refusal(ev, exc)
        if refusal is not None:
            _refuse(room, out, refusal)
        else:
            _warn(room, f"seq {c.seq}: cannot process ({exc.code})")
        return
    if processed.kind == MessageKind.APPLICATION:
        try:
            payload = decode_payload(processed.application_data or b"")
        except InvalidPayload as exc:
            _warn(room, f"seq {c.seq}: {exc}")
            groups.put(room, group)
            return
        out.messages.append(message_from_record({**_meta(ev), **payload}))
    elif processed.kind == MessageKind.COMMIT:
        staged = processed.staged_commit
        assert staged is not None
        if room.pending is not None:
            room.pending = None  # our commit for this epoch lost the race
        group.merge_staged_commit(staged)
        added = [kp.leaf_node.credential.identity for _, kp in staged.added]
        if staged.external and group.is_active:
            added += [m.identity for m in group.members if m.leaf_index == staged.committer]
        removed = [leaf.credential.identity for _, leaf in staged.removed]
        out.added.extend(added)
        if added or removed:
            out.messages.append(MembershipMessage(
                **_meta(ev), added=tuple(i.decode() for i in added),
                removed=tuple(i.decode() for i in removed)))
        if staged.self_removed or not group.is_active:
            room.group, room.status = None, RoomStatus.REMOVED
            groups.forget(room.room_id)
            return
    groups.put(room, group)
