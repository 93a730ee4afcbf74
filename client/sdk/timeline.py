r"""Applying a room's signed events, in seq order, to this device's group state.

:func:`apply_event` takes one event (:class:`protocol.events.SignedEvent`) that
directly follows ``room.last_seq`` and returns what it produced. The sender of
everything shown is the MLS sender, never the envelope's (``spec/security.md``,
finding 4): the hub writes ``sender_user``/``sender_device``, MLS proves who sent.

* whose event: the MLS sender leaf (a PublicMessage's member sender, or a
  PrivateMessage's SenderData, opened without using a ratchet key:
  :meth:`crypto.mls.Group.claimed_sender`) and the envelope must agree. An event is
  our own only when both say so: then an application message or proposal is skipped
  (we stored it when sending), and our own commit was merged when the hub accepted
  it, or, if the answer was lost, the commit waiting in ``room.pending`` is adopted
  when its exact bytes appear. An envelope naming another device than the MLS
  sender, our own device for another's message, or another device for ours, is
  *refused*: a :class:`~client.sdk.messages.RefusedMessage` takes its place in the
  timeline and nothing of it is applied;
* others' application messages: decrypted and decoded into
  :class:`~client.sdk.messages.RoomMessage`\ s with the MLS sender's identity;
* others' proposals: remembered by the group for the next commit;
* others' commits: staged and merged; a commit that removes us ends the room
  (:attr:`RoomStatus.REMOVED`, group state dropped); the added and removed members
  become a ``membership`` message;
* a proposal or commit adding a device that the caller (:mod:`.sync`) could not prove
  (``unproven``, finding 5) is refused the same way: the group does not advance, and
  the next valid commit for the epoch the device is still at is applied (the re-base);
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
from crypto.mls.framing import ContentType, PublicMessage, SenderType
from crypto.mls.proposals import Add, Proposal
from protocol.events import SignedEvent

from .envelopes import Refusal
from .errors import InvalidPayload
from .event_checks import content_refusal, kind_refusal, record_refusal
from .groups import GroupStore
from .messages import (
    MembershipMessage,
    RefusalReason,
    RefusedMessage,
    RoomMessage,
    message_from_record,
)
from .payload import decode_payload
from .store import RoomState, RoomStatus

__all__ = ["Applied", "apply_event", "message_epoch", "added_devices"]

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


def added_devices(msg: MLSMessage, group) -> list[tuple[bytes | None, bytes]]:
    """(credential identity, signature key) of every device a handshake ``msg`` brings into
    ``group``: an Add proposal's KeyPackage; a commit's Adds, inline or by reference to a
    proposal of the epoch; an external joiner's new leaf. Empty for other messages."""
    body = msg.body
    if not isinstance(body, PublicMessage):
        return []
    content = body.content
    proposals: list[Proposal] = []
    out: list[tuple[bytes | None, bytes]] = []
    if content.content_type == ContentType.PROPOSAL:
        proposals.append(content.content)  # type: ignore[arg-type]
    elif content.content_type == ContentType.COMMIT:
        for por in content.content.proposals:  # type: ignore[union-attr]
            if isinstance(por.value, Proposal):
                proposals.append(por.value)
            else:
                pending = group.pending_proposals.get(por.value)
                if pending is not None:
                    proposals.append(pending.proposal)
        path = content.content.path  # type: ignore[union-attr]
        if content.sender.sender_type == SenderType.NEW_MEMBER_COMMIT and path is not None:
            out.append((path.leaf_node.credential.identity, path.leaf_node.signature_key))
    for p in proposals:
        if isinstance(p.body, Add):
            leaf = p.body.key_package.leaf_node
            out.append((leaf.credential.identity, leaf.signature_key))
    return out


def _warn(room: RoomState, text: str) -> None:
    room.warnings.append(text)
    del room.warnings[:-_MAX_WARNINGS]


def _meta(ev: SignedEvent, identity: bytes | None = None) -> dict[str, Any]:
    """Where and when ``ev`` is, and who sent it: ``identity`` (the MLS sender's credential)
    when given, else the envelope's (equal to it once checked)."""
    c = ev.content
    user, device = c.sender_user, c.sender_device
    if identity is not None:
        user, _, device = identity.decode(errors="replace").rpartition("/")
    return {"room_id": c.room_id, "seq": c.seq, "sender_user": user,
            "sender_device": device, "ts": c.ts, "epoch": c.epoch}


def _refuse(room: RoomState, ev: SignedEvent, out: Applied, reason: RefusalReason,
            detail: str) -> None:
    """``ev`` is refused: a :class:`RefusedMessage` in the timeline and a warning (which
    stays visible where the timeline already holds our own message at that seq)."""
    c = ev.content
    refused = RefusedMessage(c.room_id, c.seq, "", "", c.ts, c.epoch, c.kind.value,
                             reason.value, detail)
    out.messages.append(refused)
    _warn(room, refused.sentence())


def _refuse_content(room: RoomState, out: Applied, refusal: Refusal) -> None:
    """``refusal`` (a kind or content check, :mod:`.event_checks`) kept in ``room.refused``."""
    record_refusal(room, refusal)
    out.refused.append(refusal)


def apply_event(room: RoomState, ev: SignedEvent, own_device: str, own_user: str,
                groups: GroupStore, unproven: tuple[str, ...] = ()) -> Applied:
    """Apply ``ev`` (seq ``room.last_seq + 1``) to ``room`` in place, on the room's live group
    from ``groups``; ``unproven``: sentences on the devices ``ev`` adds that the caller could
    not prove (the event is then refused). See the module docstring."""
    c = ev.content
    out = Applied()
    try:
        _apply(room, ev, own_device, own_user, groups, out, unproven)
    except BaseException:
        groups.forget(room.room_id)  # the live group may be half changed: the stored state holds
        raise
    finally:
        room.last_seq = c.seq
        room.last_event_id = ev.event_id
    return out


def _mls_identity(msg: MLSMessage, group, claimed: int | None) -> bytes | None:
    """The identity of the MLS sender of ``msg`` as it claims itself: the member at the
    claimed leaf (in the message's epoch), or an external joiner's new leaf."""
    body = msg.body
    if isinstance(body, PublicMessage) and body.content.sender.sender_type == SenderType.NEW_MEMBER_COMMIT:
        path = getattr(body.content.content, "path", None)
        return None if path is None else path.leaf_node.credential.identity
    if claimed is None:
        return None
    return group.leaf_identity(int(claimed), message_epoch(msg))


def _apply(room: RoomState, ev: SignedEvent, own_device: str, own_user: str, groups: GroupStore,
           out: Applied, unproven: tuple[str, ...]) -> None:
    c = ev.content
    kind = c.kind.value
    if room.group is None:
        return
    refusal = kind_refusal(ev)
    if refusal is not None:
        _refuse_content(room, out, refusal)  # e.g. a Welcome or a PublicMessage application
        return
    if kind == "create":
        return
    envelope_mine = c.sender_device == own_device and c.sender_user == own_user
    if envelope_mine and kind == "commit" and room.pending is not None \
            and room.pending.message == c.message:
        room.group, room.pending = room.pending.new_group, None  # exactly the bytes we made
        return
    if c.epoch < room.joined_epoch:
        return  # sent before this device joined: MLS gives us no keys for it
    envelope_identity = f"{c.sender_user}/{c.sender_device}".encode()
    try:
        msg = MLSMessage.from_bytes(c.message)
        group = groups.live(room)
        if kind in ("commit", "proposal") and not isinstance(msg.body, PublicMessage):
            _refuse(room, ev, out, RefusalReason.HANDSHAKE_NOT_PUBLIC,
                    f"a {kind} that is not a PublicMessage")
            return
        claimed = group.claimed_sender(msg)
        mls_identity = _mls_identity(msg, group, claimed)
    except CryptoError as exc:
        groups.forget(room.room_id)
        refusal = content_refusal(ev, exc)  # e.g. sender data that does not open
        if refusal is not None:
            _refuse_content(room, out, refusal)
        else:
            _warn(room, f"seq {c.seq}: cannot process ({exc.code})")
        return
    mls_mine = claimed is not None and claimed == group.own_leaf_index
    if envelope_mine and mls_mine:
        return  # our own message or proposal (stored when sent) or our merged commit
    if mls_mine or (mls_identity is not None and mls_identity != envelope_identity):
        who = "this device" if mls_mine else (mls_identity or b"?").decode(errors="replace")
        _refuse(room, ev, out, RefusalReason.SENDER_MISMATCH,
                f"the envelope's sender is not the MLS sender, {who}")
        return
    handshake = kind in ("commit", "proposal")
    if handshake and message_epoch(msg) != group.epoch:
        _warn(room, f"seq {c.seq}: a {kind} for epoch {message_epoch(msg)} "
                    f"at our epoch {group.epoch} was skipped")
        return
    if mls_identity is None:
        _refuse(room, ev, out, RefusalReason.UNCHECKABLE_SENDER,
                "the envelope names this device as its sender, which MLS cannot confirm"
                if envelope_mine else "MLS names no member of the group as its sender")
        return
    if unproven:
        _refuse(room, ev, out, RefusalReason.UNPROVEN_DEVICE,
                f"the {kind} adds a device that is not proven: {'; '.join(unproven)}")
        return
    try:
        processed = group.process_message(msg)
    except CryptoError as exc:
        groups.forget(room.room_id)  # it may have changed before failing: the stored state holds
        refusal = None if handshake else content_refusal(ev, exc)
        if handshake:
            _refuse(room, ev, out, RefusalReason.MLS_REJECTED,
                    f"the {kind} does not verify in the group ({exc.code})")
        elif refusal is not None:
            _refuse_content(room, out, refusal)
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
        sender = group.leaf_identity(int(processed.sender or 0), processed.epoch) or mls_identity
        out.messages.append(message_from_record({**_meta(ev, sender), **payload}))
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
                **_meta(ev, mls_identity), added=tuple(i.decode() for i in added),
                removed=tuple(i.decode() for i in removed)))
        if staged.self_removed or not group.is_active:
            room.group, room.status = None, RoomStatus.REMOVED
            groups.forget(room.room_id)
            return
    groups.put(room, group)
