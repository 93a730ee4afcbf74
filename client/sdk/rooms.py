"""Room operations that send: create, invite, remove, leave, rotate, add own devices, send.

Every commit goes through :meth:`Rooms.commit`:

1. the change is staged on a *copy* of the group state, merged on that copy, and
   the new epoch's GroupInfo (with ratchet tree and external_pub) is signed;
2. the commit, the copy's state and the transaction id are stored as
   ``room.pending`` (sealed in the profile) *before* the request;
3. ``POST /rooms/{id}/send`` with the commit (PublicMessage), the Welcome, if
   any, and the GroupInfo;
4. accepted: the copy becomes the room's state (the real group merges only
   after the hub accepted). ``stale_epoch``: the pending commit is dropped, the
   room is caught up from its history and the change is staged again on the new
   state (up to :data:`MAX_ATTEMPTS`). Another refusal: dropped, raised. No
   answer: ``pending`` stays, and the next operation on the room re-sends it
   with the same transaction id (the hub's answer is idempotent), or sync adopts
   it when the commit shows up in the room's events.

Each commit also takes in the proposals received in the epoch (e.g. a member's
proposal to remove itself), so a leave is completed by the next commit of any
member; after a sync, pending proposals of others are committed at once.

Application messages: :meth:`Rooms.send_payload` protects the payload, stores the
advanced ratchet, sends it with a transaction id (re-sent on a lost answer) and
stores the message with its seq. On ``stale_epoch`` it catches up and re-protects.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from crypto.errors import CryptoError, InternalError
from crypto.mls import (
    Add,
    Group,
    GroupInfo,
    KeyPackage,
    MLSMessage,
    Proposal,
    RatchetTree,
    Remove,
    StagedCommit,
)
from crypto.mls.ciphersuite import get_suite
from crypto.mls.extensions import ExtensionType, find_extension
from crypto.mls.key_package_gen import generate_key_package
from crypto.rng import Rng, system_rng
from protocol.padding import application_padding
from protocol.room_channels import derive_group_id
from protocol.rooms_api import (
    CreateRoomRequest,
    CreateRoomResponse,
    GroupInfoResponse,
    RoomsResponse,
    SendRequest,
    SendResponse,
)
from protocol.rooms_api import RoomSummary as ServerRoom
from protocol.txn_ids import new_client_txn_id

from .errors import NotAMember, RetriesExhausted, ServerError, StaleEpoch, TransportError
from .groups import GroupStore
from .http import Http, quote_path
from .keys import SUITE, Keys, device_identity
from .messages import MembershipMessage, message_from_record
from .store import PendingCommit, RoomState, RoomStatus, Store
from .sync import Sync

__all__ = ["Rooms", "MAX_ATTEMPTS"]

T = TypeVar("T")

#: How many times a commit is re-staged after losing its epoch to another member's commit.
MAX_ATTEMPTS = 8

Build = Callable[[Group], StagedCommit | None]


def _txn(rng: Rng) -> str:
    return new_client_txn_id(rng)


def pending_refs(group: Group, exclude_leaves: set[int] = frozenset()) -> list[bytes]:
    """Refs of the epoch's proposals by others, leaving out Removes of ``exclude_leaves``."""
    me = group.own_leaf_index
    out = []
    for ref, pending in group.pending_proposals.items():
        if pending.leaf == me:
            continue
        body = pending.proposal.body
        if isinstance(body, Remove) and body.removed in exclude_leaves:
            continue
        out.append(ref)
    return out


class Rooms:
    def __init__(self, http: Http, store: Store, keys: Keys, sync: Sync, groups: GroupStore,
                 rng: Rng = system_rng) -> None:
        self.http = http
        self.store = store
        self.keys = keys
        self.sync = sync
        self.groups = groups
        self.rng = rng

    # -- helpers ---------------------------------------------------------------------------

    def _joined(self, room_id: str) -> RoomState:
        room = self.store.room(room_id)
        if room.status is not RoomStatus.JOINED or room.group is None:
            raise NotAMember(f"this device is no longer a member of {room_id} ({room.status.value})")
        return room

    async def _post(self, room_id: str, body: SendRequest) -> SendResponse:
        """``POST /rooms/{room_id}/send``."""
        return await self.http.request("POST", f"/rooms/{quote_path(room_id)}/send", body, SendResponse)

    async def _post_retrying(self, room_id: str, body: SendRequest) -> SendResponse:
        """:meth:`_post`; a lost answer is retried with the same transaction id (the hub is
        idempotent)."""
        return await _retrying(lambda: self._post(room_id, body))

    async def resolve_pending(self, room_id: str) -> None:
        """Settle a commit whose answer was lost: send it again with its transaction id."""
        room = self.store.room(room_id)
        p = room.pending
        if p is None:
            return
        try:
            await self._post_retrying(room_id, self._commit_body(p))
        except ServerError:
            room.pending = None  # refused (e.g. stale): the change was not made
            self.store.save_room(room)
            return
        room.group, room.pending = p.new_group, None
        self.store.save_room(room)

    @staticmethod
    def _commit_body(p: PendingCommit) -> SendRequest:
        return SendRequest(p.txn_id, p.message, p.welcome, p.group_info)

    # -- the commit pipeline ----------------------------------------------------------------

    async def commit(self, room_id: str, build: Build) -> StagedCommit | None:
        """Stage ``build(group)`` and get it accepted (see the module docstring). Returns the
        accepted StagedCommit, or None when ``build`` found nothing to do."""
        await self.resolve_pending(room_id)
        for _ in range(MAX_ATTEMPTS):
            room = self._joined(room_id)
            tentative = self.groups.copy(room)
            staged = build(tentative)
            if staged is None:
                return None
            if staged.commit is None:
                raise InternalError("a staged commit of our own carries no commit message")
            tentative.merge_staged_commit(staged)
            info = MLSMessage(tentative.group_info(with_ratchet_tree=True))
            room.pending = PendingCommit(
                _txn(self.rng), staged.commit.to_bytes(),
                staged.welcome.to_bytes() if staged.welcome is not None else None,
                info.to_bytes(), tentative.to_bytes())
            self.store.save_room(room)
            try:
                out = await self._post_retrying(room_id, self._commit_body(room.pending))
            except StaleEpoch:
                room.pending = None
                self.store.save_room(room)
                await self.sync.catch_up(room_id)
                continue
            except ServerError:
                room.pending = None
                self.store.save_room(room)
                raise
            room.pending = None
            self.groups.put(room, tentative)  # the staged group is the room's now
            self.store.save_room(room)
            self._record_membership(room_id, out, staged)
            return staged
        raise RetriesExhausted(f"{room_id}: lost the race for {MAX_ATTEMPTS} epochs in a row")

    def _record_membership(self, room_id: str, out: SendResponse, staged: StagedCommit) -> None:
        added = [kp.leaf_node.credential.identity.decode() for _, kp in staged.added]
        removed = [leaf.credential.identity.decode() for _, leaf in staged.removed]
        if not added and not removed:
            return
        acct = self.store.account()
        self.store.add_messages(room_id, [MembershipMessage(
            room_id, out.seq, acct.user_id, acct.device_id, int(time.time() * 1000),
            staged.epoch - 1, tuple(added), tuple(removed))])

    # -- operations ---------------------------------------------------------------------------

    async def create(self, name: str | None = None) -> str:
        """A new room with this device as its only member (suite 3); returns the room id."""
        acct = self.store.account()
        suite = get_suite(SUITE)
        kp, priv = generate_key_package(suite, device_identity(acct.user_id, acct.device_id),
                                        self.rng, signature_priv=acct.signature_seed)
        group = Group.create(suite, derive_group_id(kp.leaf_node.encryption_key), kp, priv,
                             rng=self.rng)
        info = MLSMessage(group.group_info(with_ratchet_tree=True)).to_bytes()
        request = CreateRoomRequest(_txn(self.rng), info)
        out = await _retrying(lambda: self.http.request("POST", "/rooms", request, CreateRoomResponse))
        room = RoomState(str(out.room_id), None, last_seq=-1, name=name)
        self.groups.put(room, group)
        self.store.save_room(room)
        await self.sync.catch_up(room.room_id)  # the create event (seq 0) sets the chain
        return room.room_id

    async def invite(self, room_id: str, user_id: str) -> list[str]:
        """Add every device of ``user_id`` (claimed, verified KeyPackages); returns the
        device ids added."""
        self._joined(room_id)
        claimed = await self.keys.claim(user_id, room_id)  # through the room's hub
        return await self._add(room_id, claimed)

    async def _add(self, room_id: str, claimed: list[tuple[str, KeyPackage]]) -> list[str]:
        added: list[str] = []

        def build(g: Group) -> StagedCommit | None:
            have = {m.identity for m in g.members}
            todo = [kp for _, kp in claimed if kp.leaf_node.credential.identity not in have]
            added[:] = [kp.leaf_node.credential.identity.decode() for kp in todo]
            if not todo:
                return None
            return g.stage_commit([Proposal(Add(kp)) for kp in todo],
                                  proposal_refs=pending_refs(g))

        await self.commit(room_id, build)
        return added

    async def remove_member(self, room_id: str, user_id: str) -> int:
        """Remove every device of ``user_id`` from the room; returns how many leaves."""
        prefix = f"{user_id}/".encode()
        count = 0

        def build(g: Group) -> StagedCommit | None:
            nonlocal count
            leaves = {int(m.leaf_index) for m in g.members if m.identity.startswith(prefix)}
            leaves.discard(int(g.own_leaf_index))
            count = len(leaves)
            if not leaves:
                return None
            return g.stage_commit([Proposal(Remove(i)) for i in sorted(leaves)],
                                  proposal_refs=pending_refs(g, leaves))

        g = self.groups.live(self._joined(room_id))
        if not any(m.identity.startswith(prefix) for m in g.members):
            raise NotAMember(f"{user_id} is not a member of {room_id}")
        await self.commit(room_id, build)
        return count

    async def rotate_keys(self, room_id: str) -> int:
        """An empty commit with a fresh path (our leaf's keys renewed); returns the new epoch."""
        staged = await self.commit(room_id, lambda g: g.stage_commit(proposal_refs=pending_refs(g),
                                                                     force_path=True))
        assert staged is not None
        return staged.epoch

    async def commit_pending_proposals(self, room_id: str) -> bool:
        """Commit the proposals others sent in this epoch (e.g. a member leaving)."""
        def build(g: Group) -> StagedCommit | None:
            refs = pending_refs(g)
            return g.stage_commit(proposal_refs=refs) if refs else None

        return await self.commit(room_id, build) is not None

    async def leave(self, room_id: str) -> None:
        """Propose our own removal (MLS forbids committing it ourselves) and forget the
        room's keys. Another member's next commit completes the removal; until then the
        hub still counts this device as a member, but it can no longer read."""
        await self.resolve_pending(room_id)
        group = self.groups.copy(self._joined(room_id))  # dropped once the proposal is sent
        msg, _ = group.propose(Proposal(Remove(int(group.own_leaf_index))), public=True, rng=self.rng)
        try:
            await self._post_retrying(room_id, SendRequest(_txn(self.rng), msg.to_bytes()))
        except StaleEpoch:
            await self.sync.catch_up(room_id)
            return await self.leave(room_id)
        room = self.store.room(room_id)
        room.group, room.status, room.pending = None, RoomStatus.LEFT, None
        self.groups.forget(room_id)
        self.store.save_room(room)

    async def add_own_devices(self) -> dict[str, list[str]]:
        """Add this user's other devices (registered, proven in the log and approved through
        a chain to the user's root, :meth:`Keys.verify_device_approved`) to every room this
        device is in and they are not; returns room -> identities added. A pending device
        is not listed by the server; one listed without a valid chain is refused by the
        claim (:attr:`Keys.refused`)."""
        acct = self.store.account()
        devices = [str(d.device_id) for d in await self.keys.user_devices(acct.user_id)
                   if str(d.device_id) != acct.device_id]
        out: dict[str, list[str]] = {}
        for room_id in self.store.room_ids():
            room = self.store.room(room_id)
            if room.status is not RoomStatus.JOINED or room.group is None:
                continue
            members = {m.identity for m in self.groups.live(room).members}
            missing = {d for d in devices if device_identity(acct.user_id, d) not in members}
            if not missing:
                continue
            claimed = [(d, kp) for d, kp in await self.keys.claim(acct.user_id) if d in missing]
            if claimed:
                out[room_id] = await self._add(room_id, claimed)
        return out

    async def join_external(self, room_id: str) -> int:
        """Join a room of which another device of this user is a member, by an external
        commit from the GroupInfo the hub serves; returns the epoch joined. The hub admits
        it only for a user that already has a member device. Raises ServerError
        (``not_member`` for other users), :class:`RetriesExhausted`."""
        acct = self.store.account()
        suite = get_suite(SUITE)
        me = device_identity(acct.user_id, acct.device_id)
        for _ in range(MAX_ATTEMPTS):
            info = await self.group_info(room_id)
            kp, priv = generate_key_package(suite, me, self.rng, signature_priv=acct.signature_seed)
            prior = _own_leaf(info, suite, me)  # a re-join replaces our old leaf
            group, commit = Group.external_join(info, kp, priv, remove_prior=prior, rng=self.rng)
            new_info = MLSMessage(group.group_info(with_ratchet_tree=True))
            body = SendRequest(_txn(self.rng), commit.to_bytes(), group_info=new_info.to_bytes())
            try:
                await self._post_retrying(room_id, body)
            except StaleEpoch:
                continue
            room = RoomState(room_id, None, joined_epoch=group.epoch)
            self.groups.put(room, group)
            self.store.save_room(room)
            await self.sync.catch_up(room_id)
            return group.epoch
        raise RetriesExhausted(f"{room_id}: the epoch kept changing during the external join")

    # -- application messages ----------------------------------------------------------------

    async def send_payload(self, room_id: str, payload: bytes, local: dict[str, Any]) -> int:
        """Protect and send ``payload``; store ``local`` (the message as shown) with its seq."""
        await self.resolve_pending(room_id)
        acct = self.store.account()
        for _ in range(MAX_ATTEMPTS):
            room = self._joined(room_id)
            with self.groups.changing(room) as group:
                msg = group.protect(payload, padding=application_padding(payload), rng=self.rng)
            self.store.save_room(room)  # the used key is gone for good, sent or not
            try:
                out = await self._post_retrying(room_id, SendRequest(_txn(self.rng), msg.to_bytes()))
            except StaleEpoch:
                await self.sync.catch_up(room_id)
                continue
            self.store.add_messages(room_id, [message_from_record({
                "room_id": room_id, "seq": out.seq, "sender_user": acct.user_id,
                "sender_device": acct.device_id, "ts": int(time.time() * 1000),
                "epoch": group.epoch, **local})])
            return out.seq
        raise RetriesExhausted(f"{room_id}: the epoch kept changing under the message")

    async def server_rooms(self) -> tuple[ServerRoom, ...]:
        return (await self.http.request("GET", "/rooms", None, RoomsResponse)).rooms

    async def group_info(self, room_id: str) -> GroupInfo:
        """The room's current GroupInfo as the hub serves it; raises :class:`TransportError`
        for an answer that is not one."""
        out = await self.http.request("GET", f"/rooms/{quote_path(room_id)}/group_info", None,
                                      GroupInfoResponse)
        try:
            body = MLSMessage.from_bytes(out.group_info).body
        except CryptoError:
            body = None
        if not isinstance(body, GroupInfo):
            raise TransportError(f"{room_id}: the served group_info is not a GroupInfo")
        return body


async def _retrying(send: Callable[[], Awaitable[T]], tries: int = 3) -> T:
    """``send()``, again after a :class:`TransportError` (a lost answer), up to ``tries`` times."""
    for attempt in range(tries):
        try:
            return await send()
        except TransportError:
            if attempt == tries - 1:
                raise
            await asyncio.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


def _own_leaf(info: GroupInfo, suite, identity: bytes) -> int | None:
    ext = find_extension(info.extensions, ExtensionType.RATCHET_TREE)
    if ext is None:
        return None
    try:
        tree = RatchetTree.from_bytes(suite, ext.extension_data)
    except CryptoError:
        return None  # external_join reports the bad tree
    leaf = tree.find_leaf(lambda node: node.credential.identity == identity)
    return None if leaf is None else int(leaf)
