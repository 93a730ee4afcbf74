"""Delivery: long-poll sync, history catch-up and Welcomes from the device inbox.

:meth:`Sync.fetch` is ``GET /sync`` (no lock held: it may wait up to the
timeout). :meth:`Sync.apply` then, under the profile lock, re-reads the state
from disk and

1. joins the rooms of the Welcomes in the inbox (the KeyPackage private is
   found by the KeyPackageRef the Welcome names; a one-time one is then
   forgotten), and catches each new room up from its history;
2. applies the room events of each known room in seq order; a gap (an event
   past ``last_seq + 1``) is filled from ``GET /rooms/{id}/events`` first (a room
   just joined starts at its first visible event: the hub shows a device only
   the events after the commit that added it);
   events up to ``last_seq`` were seen and are skipped, which also makes
   at-least-once delivery harmless;
3. stores the new since-token *after* all of that is on disk: the next sync
   passes it and so acknowledges the inbox items.

:meth:`Sync.catch_up` applies a room's history from ``last_seq + 1`` to its end
(used after a ``stale_epoch`` refusal).

Envelopes are decoded strictly (:meth:`protocol.events.SignedEvent.from_wire`,
which checks ``event_id``) and chained by ``prev``; the hub's signature is
checked when its key is known (``hub_keys``: a seam until the server publishes
its key).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from crypto.errors import CryptoError
from crypto.mls import Group, MLSMessage, Welcome
from protocol.events import SignedEvent

from .errors import VerificationFailed
from .http import Http, quote_path
from .keys import Keys
from .store import RoomState, Store
from .timeline import Applied, apply_event

__all__ = ["Sync", "SyncResult", "HISTORY_PAGE"]

HISTORY_PAGE = 200


@dataclass
class SyncResult:
    messages: list[dict[str, Any]] = field(default_factory=list)
    joined: list[str] = field(default_factory=list)
    added: dict[str, list[bytes]] = field(default_factory=dict)  # room -> identities added
    welcomes_used: int = 0
    raw_count: int = 0  # events and inbox items the server returned


class Sync:
    def __init__(self, http: Http, store: Store, keys: Keys) -> None:
        self.http = http
        self.store = store
        self.keys = keys
        # hub server name -> its Ed25519 key, or {key_id: key} from GET /hub_key's key document
        self.hub_keys: dict[str, bytes | dict[str, bytes]] = {}

    async def fetch(self, timeout_ms: int = 0, limit: int | None = None) -> dict[str, Any]:
        """One ``GET /sync`` from the stored since-token."""
        params = {"since": self.store.sync_token(), "timeout": timeout_ms, "limit": limit}
        return await self.http.call("GET", "/sync", params=params,
                                    timeout=max(30.0, timeout_ms / 1000 + 15))

    def _decode(self, obj: Any) -> SignedEvent:
        try:
            ev = SignedEvent.from_wire(obj)
            hub = ev.content.room_id.split(":", 1)[1]
            key = self.hub_keys.get(hub)
            if isinstance(key, dict):  # key id -> public key (from GET /hub_key's key document)
                if ev.key_id not in key:
                    raise VerificationFailed(f"the hub signed with a key it does not publish: {ev.key_id}")
                key = key[ev.key_id]
            if key is not None:
                ev.verify(key)
        except CryptoError as exc:
            raise VerificationFailed(f"a room event fails its checks: {exc}") from None
        return ev

    async def history(self, room_id: str, start: int, end: int | None = None) -> list[SignedEvent]:
        """Events ``start..end-1`` (to the end of the room when ``end`` is None)."""
        out: list[SignedEvent] = []
        seq = start
        while end is None or seq < end:
            limit = HISTORY_PAGE if end is None else min(HISTORY_PAGE, end - seq)
            page = await self.http.call("GET", f"/rooms/{quote_path(room_id)}/events",
                                        params={"from": seq, "limit": limit})
            events = [self._decode(e) for e in page["events"]]
            if not events:
                break
            out.extend(events)
            seq = events[-1].content.seq + 1
        return out

    async def apply(self, body: dict[str, Any]) -> SyncResult:
        """Apply one sync answer (the caller holds the profile lock)."""
        result = SyncResult(raw_count=len(body.get("events", [])) + len(body.get("inbox", [])))
        for item in body.get("inbox", []):
            if item.get("kind") == "welcome":
                room_id = await self._join(item, result)
                if room_id is not None:
                    result.joined.append(room_id)
        by_room: dict[str, list[SignedEvent]] = {}
        for obj in body.get("events", []):
            ev = self._decode(obj)
            by_room.setdefault(ev.content.room_id, []).append(ev)
        for room_id, events in by_room.items():
            if room_id in result.joined or not self.store.has_room(room_id):
                continue  # a just-joined room was caught up from history; unknown rooms wait
            await self._apply_room(room_id, sorted(events, key=lambda e: e.content.seq), result)
        self.store.save_sync_token(body.get("next"))
        return result

    async def catch_up(self, room_id: str, result: SyncResult | None = None) -> SyncResult:
        """Apply everything after ``last_seq`` from the room's history."""
        result = result or SyncResult()
        room = self.store.room(room_id)
        await self._apply_room(room_id, await self.history(room_id, room.last_seq + 1), result)
        return result

    async def _apply_room(self, room_id: str, events: list[SignedEvent], result: SyncResult) -> None:
        room = self.store.room(room_id)
        acct = self.store.account()
        for ev in events:
            seq = ev.content.seq
            if seq <= room.last_seq:
                continue
            if seq > room.last_seq + 1 and room.last_event_id is not None:
                for missing in await self.history(room_id, room.last_seq + 1, seq):
                    self._one(room, missing, acct.device_id, acct.user_id, result)
            if seq > room.last_seq + 1:
                # The hub shows a device only the events of its membership: a fresh room
                # starts at the first event after the commit that added us.
                if room.last_event_id is not None:
                    room.warnings.append(f"events {room.last_seq + 1}..{seq - 1} are not "
                                         "visible to this device")
                room.last_seq, room.last_event_id = seq - 1, None
            self._one(room, ev, acct.device_id, acct.user_id, result)
        self.store.save_room(room)

    def _one(self, room: RoomState, ev: SignedEvent, device: str, user: str, result: SyncResult) -> None:
        if ev.content.seq != room.last_seq + 1:
            return
        applied: Applied = apply_event(room, ev, device, user)
        if applied.messages:
            self.store.add_messages(room.room_id, applied.messages)
            result.messages.extend(applied.messages)
        if applied.added:
            result.added.setdefault(room.room_id, []).extend(applied.added)

    async def _join(self, item: dict[str, Any], result: SyncResult) -> str | None:
        room_id = item.get("room_id")
        if not isinstance(room_id, str):
            return None
        try:
            msg = MLSMessage.from_bytes(item["payload"])
            if not isinstance(msg.body, Welcome):
                return None
            found = self.keys.for_welcome(msg.body)
            if found is None:
                return None  # not for a KeyPackage of ours (or already used)
            ref, kp, priv = found
            group = Group.join(msg, kp, priv)
        except CryptoError:
            return None
        if self.store.has_room(room_id):
            old = self.store.room(room_id)
            if old.status == "joined" and old.group is not None \
                    and Group.from_bytes(old.group).epoch >= group.epoch:
                self.keys.consume(ref)
                return None  # an older Welcome delivered again
        room = RoomState(room_id, group.to_bytes(), joined_epoch=group.epoch)
        self.store.save_room(room)
        self.keys.consume(ref)
        result.welcomes_used += 1
        await self.catch_up(room_id, result)
        return room_id
