"""Delivery: long-poll sync, history catch-up and Welcomes from the device inbox.

:meth:`Sync.fetch` is ``GET /sync`` (no lock held: it may wait up to the
timeout). :meth:`Sync.apply` then, under the profile lock, re-reads the state
from disk and

1. joins the rooms of the Welcomes in the inbox (the KeyPackage private is
   found by the KeyPackageRef the Welcome names; a one-time one is then
   forgotten), and catches each new room up from its history. A Welcome for a
   room this device is in waits until that room's events are applied (they may
   remove us), and is then refused if we are still in it: a Welcome never
   replaces a room's group. Other inbox items (``to_device``) are reported in
   :attr:`SyncResult.ignored` and the profile's notices, never used
   (:mod:`.event_checks`);
2. applies the room events of each known room in seq order; a gap (an event
   past ``last_seq + 1``) is filled from ``GET /rooms/{id}/events`` first (a room
   just joined starts at its first visible event: the hub shows a device only
   the events after the commit that added it);
   events up to ``last_seq`` were seen and are skipped, which also makes
   at-least-once delivery harmless;
3. stores the new since-token *after* all of that is on disk: the next sync
   passes it and so acknowledges the inbox items.

:meth:`Sync.catch_up` applies a room's history from ``last_seq + 1`` to its end
(after a ``stale_epoch`` refusal, before ``confide send``, and for a room with
refused events).

Every envelope is verified before it is applied (:mod:`.envelopes`: strict decoding,
``event_id``, the hub's key by ``hub_key_id`` from ``GET /hub_key``, its signature) and
chained here, and the devices a proposal or commit adds are proven in their home server's
log before it is applied (:meth:`Sync._unproven`; a refused one becomes a
:class:`~client.sdk.messages.RefusedMessage`, see :mod:`.timeline`). An event must carry ``seq`` one past the room's last event and ``prev``
that event's id. An event that fails is *refused*: it is not applied and the room
stops at the event before it (later events cannot be chained past it); the
:class:`~client.sdk.envelopes.Refusal` is kept in ``room.refused`` until the hub
serves a valid event at that seq (every sync asks the history of such a room
again), and listed in :attr:`SyncResult.refused`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NoReturn

from crypto.errors import CryptoError
from crypto.mls import Group, MLSMessage, Welcome
from protocol.errors import ApiError
from protocol.events import SignedEvent
from protocol.rooms_api import InboxItem

from .envelopes import EventRefused, Failure, HubKeys, Refusal, verify_envelope
from .errors import ServerError, VerificationFailed
from .event_checks import ignored_inbox_item, record_refusal, welcome_refusal
from .groups import GroupStore
from .http import Http, quote_path
from .keys import Keys, split_identity
from .messages import RoomMessage
from .store import RoomState, RoomStatus, Store
from .timeline import Applied, added_devices, apply_event, message_epoch

__all__ = ["Sync", "SyncResult", "HISTORY_PAGE"]

HISTORY_PAGE = 200


def _stopped(room: RoomState) -> bool:
    """Whether ``room`` waits for the hub to serve a valid event where one was refused."""
    return any(Refusal.from_record(r).stops_room for r in room.refused)


def _seq(ev: SignedEvent | Refusal) -> int | None:
    return ev.seq if isinstance(ev, Refusal) else ev.content.seq


@dataclass
class SyncResult:
    messages: list[RoomMessage] = field(default_factory=list)
    joined: list[str] = field(default_factory=list)
    added: dict[str, list[bytes]] = field(default_factory=dict)  # room -> identities added
    refused: list[Refusal] = field(default_factory=list)  # events that failed their checks
    ignored: list[str] = field(default_factory=list)  # inbox items not used (event_checks.py)
    welcomes_used: int = 0
    raw_count: int = 0  # events and inbox items the server returned


class Sync:
    def __init__(self, http: Http, store: Store, keys: Keys, groups: GroupStore,
                 hub_keys: HubKeys | None = None) -> None:
        self.http = http
        self.store = store
        self.keys = keys
        self.groups = groups
        self.hub_keys = hub_keys or HubKeys(http)

    async def fetch(self, timeout_ms: int = 0, limit: int | None = None) -> dict[str, Any]:
        """One ``GET /sync`` from the stored since-token."""
        params = {"since": self.store.sync_token(), "timeout": timeout_ms, "limit": limit}
        return await self.http.call("GET", "/sync", params=params,
                                    timeout=max(30.0, timeout_ms / 1000 + 15))

    async def _verified(self, obj: Any) -> SignedEvent | Refusal:
        try:
            return await verify_envelope(obj, self.hub_keys)
        except EventRefused as exc:
            return exc.refusal

    async def history(self, room_id: str, start: int, end: int | None = None) -> list[SignedEvent | Refusal]:
        """Events ``start..end-1`` (to the end of the room when ``end`` is None), each
        verified; the list ends at the first refused one (its :class:`Refusal`)."""
        out: list[SignedEvent | Refusal] = []
        seq = start
        while end is None or seq < end:
            limit = HISTORY_PAGE if end is None else min(HISTORY_PAGE, end - seq)
            page = await self.http.call("GET", f"/rooms/{quote_path(room_id)}/events",
                                        params={"from": seq, "limit": limit})
            events = page.get("events")
            if not isinstance(events, list) or not events:
                break
            for obj in events:
                item = await self._verified(obj)
                out.append(item)
                if isinstance(item, Refusal):
                    return out
                if item.content.room_id != room_id or item.content.seq < seq:
                    out[-1] = Refusal(room_id, item.content.seq, Failure.CHAIN,
                                      f"the history of {room_id} from {seq} returned it")
                    return out
                seq = item.content.seq + 1
        return out

    async def apply(self, body: dict[str, Any]) -> SyncResult:
        """Apply one sync answer (the caller holds the profile lock)."""
        result = SyncResult(raw_count=len(body.get("events", [])) + len(body.get("inbox", [])))
        in_joined_rooms: list[InboxItem] = []
        for obj in body.get("inbox", []):
            try:
                item = InboxItem.from_wire(obj, "inbox item")
            except ApiError:
                continue  # not an inbox item: nothing to act on (acknowledged with the token)
            if item.kind != "welcome":
                self._ignore(item, result)
            elif self._in_room(item):
                in_joined_rooms.append(item)  # after the room's events: they may remove us
            else:
                room_id = await self._join(item, result)
                if room_id is not None:
                    result.joined.append(room_id)
        by_room: dict[str | None, list[SignedEvent | Refusal]] = {}
        for obj in body.get("events", []):
            ev = await self._verified(obj)
            by_room.setdefault(ev.room_id if isinstance(ev, Refusal) else ev.content.room_id,
                               []).append(ev)
        for room_id, events in by_room.items():
            if room_id is None:
                result.refused.extend(e for e in events if isinstance(e, Refusal))
                continue  # an envelope that does not even name its room
            if room_id in result.joined or not self.store.has_room(room_id):
                continue  # a just-joined room was caught up from history; unknown rooms wait
            await self._apply_room(room_id, sorted(events, key=lambda e: _seq(e) or 0), result)
        for item in in_joined_rooms:
            room_id = await self._join(item, result)  # refused if we are still in the room
            if room_id is not None:
                result.joined.append(room_id)
        for room_id in self.store.room_ids():
            if room_id not in by_room and room_id not in result.joined and _stopped(self.store.room(room_id)):
                await self.catch_up(room_id, result)  # ask again for the events refused before
        self.store.save_sync_token(body.get("next"))
        return result

    async def catch_up(self, room_id: str, result: SyncResult | None = None) -> SyncResult:
        """Apply everything after ``last_seq`` from the room's history."""
        result = result or SyncResult()
        room = self.store.room(room_id)
        await self._apply_room(room_id, await self.history(room_id, room.last_seq + 1), result)
        return result

    async def _apply_room(self, room_id: str, events: list[SignedEvent | Refusal],
                          result: SyncResult) -> None:
        room = self.store.room(room_id)
        acct = self.store.account()
        try:
            for ev in events:
                seq = _seq(ev)
                if seq is not None and seq <= room.last_seq:
                    continue  # seen already (at-least-once delivery)
                if seq is not None and seq > room.last_seq + 1 and room.last_event_id is not None:
                    for missing in await self.history(room_id, room.last_seq + 1, seq):
                        await self._one(room, missing, acct.device_id, acct.user_id, result)
                    if seq > room.last_seq + 1:
                        self._refuse(room, Refusal(room_id, seq, Failure.CHAIN,
                                                   f"events {room.last_seq + 1}..{seq - 1} are missing"),
                                     result)
                if isinstance(ev, SignedEvent) and seq > room.last_seq + 1:
                    # The hub shows a device only the events of its membership: a fresh room
                    # starts at the first event after the commit that added us.
                    room.last_seq, room.last_event_id = seq - 1, None
                await self._one(room, ev, acct.device_id, acct.user_id, result)
        except EventRefused:
            pass  # the room stops before the refused event; the next sync tries again
        finally:
            self.store.save_room(room)

    def _refuse(self, room: RoomState, refusal: Refusal, result: SyncResult) -> NoReturn:
        """Record ``refusal`` in the result and the room, and stop the room (raises)."""
        result.refused.append(refusal)
        record = refusal.to_record()
        if record not in room.refused:
            room.refused.append(record)
        raise EventRefused(refusal)

    async def _one(self, room: RoomState, ev: SignedEvent | Refusal, device: str, user: str,
                   result: SyncResult) -> None:
        """Apply ``ev`` (seq ``room.last_seq + 1``) after checking its chain and proving the
        devices it adds; raises :class:`EventRefused` (after recording it) for a refused
        envelope."""
        if isinstance(ev, Refusal):
            self._refuse(room, ev, result)
        c = ev.content
        if c.seq != room.last_seq + 1:
            self._refuse(room, Refusal(room.room_id, c.seq, Failure.CHAIN,
                                       f"the next event is {room.last_seq + 1}"), result)
        if room.last_event_id is not None and c.prev != room.last_event_id:
            self._refuse(room, Refusal(room.room_id, c.seq, Failure.CHAIN,
                                       f"its prev is not the id of event {room.last_seq}"), result)
        unproven = await self._unproven(room, ev, device, user)
        applied: Applied = apply_event(room, ev, device, user, self.groups, unproven)
        room.refused = [r for r in room.refused if r["seq"] is None or r["seq"] > c.seq
                        or not Refusal.from_record(r).stops_room]
        result.refused.extend(applied.refused)
        if applied.messages:
            self.store.add_messages(room.room_id, applied.messages)
            result.messages.extend(applied.messages)
        if applied.added:
            result.added.setdefault(room.room_id, []).extend(applied.added)

    async def _unproven(self, room: RoomState, ev: SignedEvent, device: str,
                        user: str) -> tuple[str, ...]:
        """Why each device that ``ev`` (another's proposal or commit for the group's epoch)
        adds is not proven (:meth:`Keys.verify_device_approved`); empty when all are.
        A server that cannot be reached raises: that is no verdict, the event waits."""
        c = ev.content
        if c.kind.value not in ("commit", "proposal") or room.group is None \
                or c.epoch < room.joined_epoch or (c.sender_user, c.sender_device) == (user, device):
            return ()
        try:
            msg = MLSMessage.from_bytes(c.message)
            group = self.groups.live(room)
        except CryptoError:
            return ()  # the timeline reports what it cannot process
        if message_epoch(msg) != group.epoch:
            return ()
        out: list[str] = []
        for identity, key in added_devices(msg, group):
            name = (identity or b"?").decode(errors="replace")
            try:
                if identity is None:
                    raise VerificationFailed("a member credential that is not a basic one")
                member_user, member_device = split_identity(identity)
                await self.keys.verify_device_approved(member_user, member_device, key)
            except VerificationFailed as exc:
                out.append(str(exc) if name in str(exc) else f"{name}: {exc}")
            except ServerError as exc:
                if exc.code != "not_found":
                    raise
                out.append(f"{name}: its server lists no such device")
        return tuple(out)

    async def _join(self, item: InboxItem, result: SyncResult) -> str | None:
        if item.room_id is None:
            return None
        room_id = str(item.room_id)
        try:
            msg = MLSMessage.from_bytes(item.payload)
            if not isinstance(msg.body, Welcome):
                return None
            found = self.keys.for_welcome(msg.body)
            if found is None:
                return None  # not for a KeyPackage of ours (or already used)
            ref, kp, priv = found
            group = Group.join(msg, kp, priv)
        except CryptoError:
            return None
        if self._in_room(item):
            # Refused, and its KeyPackage kept: it joined nothing, and the server may still
            # hand that KeyPackage to an honest inviter.
            self._refuse_welcome(item, group, result)
            return None
        room = RoomState(room_id, None, joined_epoch=group.epoch)
        self.groups.put(room, group)
        self.store.save_room(room)
        self.keys.consume(ref)
        result.welcomes_used += 1
        await self.catch_up(room_id, result)
        return room_id

    def _in_room(self, item: InboxItem) -> bool:
        room_id = None if item.room_id is None else str(item.room_id)
        return (room_id is not None and self.store.has_room(room_id)
                and self.store.room(room_id).status is RoomStatus.JOINED)

    def _refuse_welcome(self, item: InboxItem, group: Group, result: SyncResult) -> None:
        """A Welcome for a room this device is in: the room keeps its group. A Welcome into
        the very epoch state the group is in (the one this device joined with, delivered
        again before the group moved on) is no news, one for an older epoch of the same group
        only a notice (it cannot replace anything); any other one is refused, visibly
        (:func:`.event_checks.welcome_refusal`)."""
        room = self.store.room(str(item.room_id))
        current = self.groups.view(room)
        if (current is not None and group.group_id == current.group_id
                and group.epoch == current.epoch
                and group.epoch_authenticator == current.epoch_authenticator):
            return
        named = f"{item.sender_user}/{item.sender_device}" if item.sender_user else "no sender"
        if current is not None and group.group_id == current.group_id and group.epoch < current.epoch:
            # Older than the group: it could replace nothing (e.g. another device of this user
            # added this one while it joined by itself). Noted, not refused.
            self.store.add_notice(f"A Welcome of room {item.room_id} for epoch {group.epoch}, "
                                  f"older than this device's epoch {current.epoch}, was not used "
                                  f"(its inbox item names {named}).")
            return
        refusal = welcome_refusal(item, f"for epoch {group.epoch}; its inbox item names {named}")
        record_refusal(room, refusal)
        self.store.save_room(room)
        result.refused.append(refusal)

    def _ignore(self, item: InboxItem, result: SyncResult) -> None:
        """A to-device item: reported (in the result, the profile's notices, and the room it
        names if this device knows it), never used."""
        sentence = ignored_inbox_item(item)
        result.ignored.append(sentence)
        self.store.add_notice(sentence)
        room_id = None if item.room_id is None else str(item.room_id)
        if room_id is not None and self.store.has_room(room_id):
            room = self.store.room(room_id)
            room.warnings.append(sentence)
            del room.warnings[:-50]
            self.store.save_room(room)
