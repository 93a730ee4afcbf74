"""The server's public view of a group (crypto/mls/public_group.py), following a room of N members.

A :class:`Room` is N :class:`Group` members plus the hub's :class:`PublicGroup`; every
handshake message goes through the hub first (process, then merge), then to the
members. After every commit the hub's epoch, GroupContext (bytes), tree and members
list must equal every member's. Each refusal must leave the hub's view unchanged
(its :meth:`PublicGroup.to_bytes` is the same before and after). Suites 1 and 3.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crypto.errors import InvalidSignature
from crypto.mls.ciphersuite import get_suite
from crypto.mls.commit import Commit
from crypto.mls.credential import Credential
from crypto.mls.extensions import Extension, ExtensionType
from crypto.mls.framing import (
    ContentType,
    FramedContent,
    FramedContentAuthData,
    PublicMessage,
    Sender,
    SenderType,
)
from crypto.mls.group import Group, MessageKind, StagedCommit
from crypto.mls.group_errors import (
    EpochMismatch,
    GroupInfoMismatch,
    GroupSuspended,
    HandshakeNotPublic,
    InvalidGroupState,
    InvalidProposalList,
    MissingRatchetTree,
    MissingUpdatePath,
    NonMemberSender,
    NotHandshake,
    StaleStagedCommit,
    UnexpectedMessage,
    UnknownProposalRef,
)
from crypto.mls.group_external import (
    ExternalSender,
    external_proposal,
    external_senders_extension,
    new_member_add_proposal,
)
from crypto.mls.message import MLSMessage
from crypto.mls.proposals import (
    Add,
    ExternalInit,
    GroupContextExtensions,
    Proposal,
    ProposalOrRef,
    ReInit,
    Remove,
    Update,
)
from crypto.mls.protection import (
    ApplicationNotPrivate,
    WrongEpoch,
    WrongGroup,
    protect_public,
)
from crypto.mls.public_group import PublicGroup, PublicProcessed
from crypto.mls.tree_errors import ParentHashMismatch, TreeHashMismatch
from crypto.mls.tree_nodes import UpdatePathNode
from crypto.rng import SeededRng
from tests.crypto.group_harness import SUITES, Harness, forge


class Room(Harness):
    """N members and the hub's public view; the hub sees every handshake message first."""

    IDENTITY = b"@user%d:example.org"
    GROUP_PREFIX = b"room-"

    def __init__(self, suite_id: int, seed: str = "room", *, extensions=(), tree_out_of_band=False) -> None:
        super().__init__(suite_id, seed, extensions=extensions)
        creator = self.members[0]
        if tree_out_of_band:
            info = creator.group_info(with_ratchet_tree=False)
            self.hub = PublicGroup.from_group_info(MLSMessage(info), creator.ratchet_tree)
        else:
            self.hub = PublicGroup.from_group_info(MLSMessage(creator.group_info()))
        self.assert_agree()

    # -- the hub first, then the members --

    def hub_accepts(self, message: MLSMessage) -> PublicProcessed:
        epoch = self.hub.epoch
        processed = self.hub.process(message)
        assert processed.epoch == epoch
        processed.merge()
        if processed.kind == MessageKind.COMMIT:
            assert self.hub.epoch == epoch + 1 == processed.new_epoch
        else:
            assert processed.proposal_ref in self.hub.pending_proposals
        return processed

    def deliver_commit(self, committer: int, staged: StagedCommit, *, check: bool = True) -> PublicProcessed:
        processed = self.hub_accepts(staged.commit)
        assert processed.sender == committer and processed.sender_type == SenderType.MEMBER
        assert [int(i) for i, _ in processed.added] == [int(i) for i, _ in staged.added]
        assert [int(i) for i, _ in processed.removed] == [int(i) for i, _ in staged.removed]
        self.hub.check_group_info(staged.group_info)  # what the committer uploads for the new epoch
        super().deliver_commit(committer, staged, check=check)
        return processed

    def deliver_proposal(self, sender: int | None, message: MLSMessage) -> bytes:
        processed = self.hub_accepts(message)
        for i, g in self.members.items():
            if i != sender:
                g.process_message(message)
        return processed.proposal_ref  # type: ignore[return-value]

    def add(self, committer: int, count: int = 1, **kwargs) -> list[int]:
        new = super().add(committer, count, **kwargs)
        self.assert_agree()
        return new

    def update(self, updater: int, committer: int) -> None:
        msg, ref = self.members[updater].propose_update(rng=self.rng)
        assert self.deliver_proposal(updater, msg) == ref
        staged = self.members[committer].stage_commit(proposal_refs=[ref], rng=self.rng)
        assert [int(i) for i in self.deliver_commit(committer, staged).updated] == [updater]

    def external_join(self, publisher: int, **kwargs) -> int:
        info = self.members[publisher].group_info()
        self.hub.check_group_info(MLSMessage(info))
        kp, priv = self.key_package()
        g, commit = Group.external_join(MLSMessage(info), kp, priv, rng=self.rng, **kwargs)
        processed = self.hub_accepts(commit)
        assert processed.sender_type == SenderType.NEW_MEMBER_COMMIT
        assert processed.sender == g.own_leaf_index
        for i, m in list(self.members.items()):
            m.merge_staged_commit(m.process_message(commit).staged_commit)
            if not m.is_active:
                del self.members[i]
        self.members[int(g.own_leaf_index)] = g
        self.hub.check_group_info(g.group_info())
        self.assert_agree()
        return int(g.own_leaf_index)

    # -- agreement --

    def assert_agree(self) -> None:
        """The members agree (:meth:`Harness.assert_agree`) and the hub's view is theirs."""
        super().assert_agree()
        hub = self.hub
        members = [(int(m.leaf_index), m.identity, m.signature_key) for m in hub.members]
        for g in self.members.values():
            assert g.epoch == hub.epoch
            assert [(int(m.leaf_index), m.identity, m.signature_key) for m in g.members] == members
            # the member's own public view is the hub's, byte for byte (interim hash, proposals)
            assert g.public_group.to_bytes() == hub.to_bytes()
        assert hub.group_id == hub.group_context.group_id and hub.cipher_suite is self.suite
        assert all(g.cipher_suite is hub.cipher_suite for g in self.members.values())
        restored = PublicGroup.from_bytes(hub.to_bytes())
        assert restored.to_bytes() == hub.to_bytes()


def assert_refused(room: Room, message: MLSMessage, error: type[Exception], *, members_too: bool = False):
    """The hub refuses ``message`` with ``error`` and is unchanged; with ``members_too`` every
    member but its sender refuses it with the same error."""
    before = room.hub.to_bytes()
    with pytest.raises(error) as info:
        room.hub.process(message)
    assert room.hub.to_bytes() == before
    if members_too:
        sender = message.body.content.sender.leaf_index
        for i, g in room.members.items():
            if i == sender:
                continue
            with pytest.raises(error):
                g.process_message(message)
    return info.value


# -- following a room --------------------------------------------------------------------------


@pytest.mark.parametrize("suite_id", SUITES)
def test_follows_adds_removes_updates_and_empty_commits(suite_id):
    room = Room(suite_id)
    assert room.hub.epoch == 0 and room.hub.find_member(b"@user1:example.org") == 0
    room.add(0, 2)
    room.add(1, 1, force_path=True)
    room.empty_commit(2)
    room.update(1, 0)
    room.remove(3, [1])
    assert room.hub.find_member(b"@user2:example.org") is None  # the removed member (leaf 1)
    room.add(0, 1)  # takes the blank leaf 1
    room.remove(0, [2, 3])
    room.empty_commit(1)
    assert room.hub.epoch == 8
    assert sorted(room.members) == [0, 1]


@pytest.mark.parametrize("suite_id", SUITES)
def test_created_with_tree_out_of_band(suite_id):
    room = Room(suite_id, tree_out_of_band=True)
    room.add(0, 3)
    room.remove(2, [0])


@pytest.mark.parametrize("suite_id", SUITES)
def test_proposals_by_reference_and_group_context_extensions(suite_id):
    room = Room(suite_id)
    room.add(0, 3)
    kp, priv = room.key_package()
    r1 = room.deliver_proposal(1, room.members[1].propose(Proposal(Add(kp)), rng=room.rng)[0])
    r2 = room.deliver_proposal(2, room.members[2].propose(Proposal(Remove(3)), rng=room.rng)[0])
    assert set(room.hub.pending_proposals) == {r1, r2}
    assert room.hub.pending_proposals[r2].sender == Sender.member(2)
    # a member's Group names the same records as the hub's PublicGroup
    assert room.members[0].pending_proposals == room.hub.pending_proposals
    assert room.members[0].pending_proposals[r2].leaf == 2
    restored = PublicGroup.from_bytes(room.hub.to_bytes())
    assert restored.pending_proposals == room.hub.pending_proposals
    staged = room.members[0].stage_commit(proposal_refs=[r1, r2], rng=room.rng)
    room.deliver_commit(0, staged, check=False)
    assert room.hub.pending_proposals == {}
    g = Group.join(staged.welcome, kp, priv)
    room.members[int(g.own_leaf_index)] = g
    room.assert_agree()
    gce = Proposal(GroupContextExtensions((Extension(ExtensionType.EXTERNAL_SENDERS, b"\x00"),)))
    room.deliver_commit(1, room.members[1].stage_commit([gce], rng=room.rng))
    assert room.hub.group_context.extensions == gce.body.extensions


@pytest.mark.parametrize("suite_id", SUITES)
def test_external_join_followed(suite_id):
    room = Room(suite_id)
    room.add(0, 2)
    assert room.external_join(1) == 3
    room.remove(3, [1])
    assert room.external_join(0) == 1  # the leftmost blank leaf
    assert room.external_join(2, remove_prior=2) == 2  # resync: the old appearance is removed
    room.empty_commit(3)
    assert sorted(room.members) == [0, 1, 2, 3]


@pytest.mark.parametrize("suite_id", SUITES)
def test_external_and_new_member_proposals(suite_id):
    suite = get_suite(suite_id)
    ds_priv, ds_pub = suite.generate_signature_key_pair(SeededRng("ds"))
    ext = external_senders_extension([ExternalSender(ds_pub, Credential.basic(b"hub.example"))])
    room = Room(suite_id, extensions=(ext,))
    room.add(0, 2)
    msg = external_proposal(room.hub.group_context, 0, ds_priv, Proposal(Remove(2)))
    ref = room.deliver_proposal(None, msg)
    assert room.hub.pending_proposals[ref].sender == Sender.external(0)
    kp, priv = room.key_package()
    ref2 = room.deliver_proposal(None, new_member_add_proposal(room.members[0].group_info(), kp, priv))
    staged = room.members[1].stage_commit(proposal_refs=[ref, ref2], rng=room.rng)
    processed = room.deliver_commit(1, staged, check=False)
    room.members[int(processed.added[0][0])] = Group.join(staged.welcome, kp, priv)
    room.assert_agree()
    assert [int(i) for i, _ in processed.removed] == [2] and len(processed.added) == 1
    # an external sender that is not listed, or a type it may not send
    assert_refused(room, external_proposal(room.hub.group_context, 1, ds_priv, Proposal(Remove(1))),
                   NonMemberSender, members_too=True)
    other_priv, _ = suite.generate_signature_key_pair(SeededRng("not-ds"))
    assert_refused(room, external_proposal(room.hub.group_context, 0, other_priv, Proposal(Remove(1))),
                   InvalidSignature, members_too=True)


@pytest.mark.parametrize("suite_id", SUITES)
def test_reinit_suspends_the_view(suite_id):
    room = Room(suite_id)
    room.add(0, 1)
    reinit = Proposal(ReInit(b"room-next", 1, suite_id, ()))
    room.deliver_commit(0, room.members[0].stage_commit([reinit], rng=room.rng))
    assert room.hub.pending_reinit == reinit.body
    restored = PublicGroup.from_bytes(room.hub.to_bytes())
    assert restored.pending_reinit == reinit.body
    content = FramedContent(room.hub.group_id, room.hub.epoch, Sender.member(0), b"",
                            ContentType.COMMIT, Commit())
    assert_refused(room, forge(room.members[0], content), GroupSuspended)


# -- refusals: the view is unchanged after each ------------------------------------------------


@pytest.mark.parametrize("suite_id", SUITES)
def test_commit_from_a_non_member_refused(suite_id):
    room = Room(suite_id)
    room.add(0, 2)
    old = room.members[2]
    old_key = old.state.epoch.signature_priv
    room.remove(0, [2])
    s = room.members[0].state.epoch
    commit = FramedContent(room.hub.group_id, room.hub.epoch, Sender.member(2), b"",
                           ContentType.COMMIT, Commit())
    forged = protect_public(s.suite, s.context, bytes(32), old_key, commit, bytes(s.suite.hash_len))
    assert_refused(room, MLSMessage(forged), NonMemberSender)  # leaf 2 is blank now
    as_other = replace(commit, sender=Sender.member(1))
    forged = protect_public(s.suite, s.context, bytes(32), old_key, as_other, bytes(s.suite.hash_len))
    assert_refused(room, MLSMessage(forged), InvalidSignature)  # the old key is not leaf 1's
    outside = replace(commit, sender=Sender.member(9))
    assert_refused(room, forge(room.members[0], outside), NonMemberSender)
    room.empty_commit(1)


@pytest.mark.parametrize("suite_id", SUITES)
def test_commit_with_a_bad_signature_refused(suite_id):
    room = Room(suite_id)
    room.add(0, 2)
    staged = room.members[1].stage_commit(rng=room.rng)
    pub: PublicMessage = staged.commit.body
    sig = bytearray(pub.auth.signature)
    sig[5] ^= 1
    bad = replace(pub, auth=replace(pub.auth, signature=bytes(sig)))
    assert_refused(room, MLSMessage(bad), InvalidSignature)
    content = replace(pub.content, authenticated_data=b"changed")
    assert_refused(room, MLSMessage(replace(pub, content=content)), InvalidSignature)
    room.deliver_commit(1, staged)


@pytest.mark.parametrize("suite_id", SUITES)
def test_replayed_old_and_second_commits_refused_with_the_current_epoch(suite_id):
    room = Room(suite_id)
    room.add(0, 2)
    first = room.members[1].stage_commit(rng=room.rng)
    second = room.members[2].stage_commit(rng=room.rng)  # same epoch, racing the first
    p_first, p_second = room.hub.process(first.commit), room.hub.process(second.commit)
    room.deliver_commit(1, first)
    with pytest.raises(StaleStagedCommit):  # checked in the epoch that just ended
        p_second.merge()
    with pytest.raises(StaleStagedCommit):
        p_first.merge()
    err = assert_refused(room, second.commit, EpochMismatch)
    assert isinstance(err, WrongEpoch) and err.code == "mls_wrong_epoch"
    assert err.current_epoch == room.hub.epoch == 2 and err.message_epoch == 1
    err = assert_refused(room, first.commit, EpochMismatch)  # a replay
    assert err.current_epoch == 2
    room.empty_commit(2)
    err = assert_refused(room, first.commit, EpochMismatch)  # an older epoch still
    assert err.current_epoch == 3
    future = FramedContent(room.hub.group_id, 7, Sender.member(0), b"", ContentType.COMMIT, Commit())
    assert assert_refused(room, forge(room.members[0], future), EpochMismatch).current_epoch == 3
    other = replace(future, group_id=b"another room", epoch=3)
    assert_refused(room, forge(room.members[0], other), WrongGroup)


@pytest.mark.parametrize("suite_id", SUITES)
def test_private_handshake_and_application_messages_refused(suite_id):
    room = Room(suite_id)
    room.add(0, 2)
    private = room.members[1].stage_commit(public=False, rng=room.rng)
    assert assert_refused(room, private.commit, HandshakeNotPublic).code == "mls_handshake_not_public"
    msg, _ = room.members[2].propose(Proposal(Remove(1)), public=False, rng=room.rng)
    assert_refused(room, msg, HandshakeNotPublic)
    assert_refused(room, room.members[0].protect(b"hello", rng=room.rng), NotHandshake)
    a = room.members[0]
    content = FramedContent(a.group_id, a.epoch, Sender.member(0), b"", ContentType.APPLICATION, b"hi")
    plain = PublicMessage(content, FramedContentAuthData(bytes(64)), bytes(32))
    assert assert_refused(room, MLSMessage(plain), ApplicationNotPrivate).code == "mls_application_not_private"
    assert_refused(room, MLSMessage(a.group_info()), UnexpectedMessage)
    room.empty_commit(0)


@pytest.mark.parametrize("suite_id", SUITES)
def test_commit_with_a_broken_parent_hash_refused(suite_id):
    room = Room(suite_id)
    room.add(0, 3)
    a = room.members[0]
    real = a.stage_commit(rng=room.rng).commit.body.content.content
    assert real.path is not None and len(real.path.nodes) >= 1
    node = real.path.nodes[-1]
    broken_nodes = real.path.nodes[:-1] + (UpdatePathNode(room.rng(32), node.encrypted_path_secret),)
    broken = Commit(real.proposals, replace(real.path, nodes=broken_nodes))
    content = FramedContent(a.group_id, a.epoch, Sender.member(0), b"", ContentType.COMMIT, broken)
    assert_refused(room, forge(a, content), ParentHashMismatch)
    room.empty_commit(0)


@pytest.mark.parametrize("suite_id", SUITES)
def test_proposal_lists_the_members_refuse_are_refused(suite_id):
    room = Room(suite_id)
    room.add(0, 3)
    a = room.members[0]

    def commit(*proposals, path=None):
        return FramedContent(a.group_id, a.epoch, Sender.member(0), b"", ContentType.COMMIT,
                             Commit(tuple(ProposalOrRef(p) for p in proposals), path))

    path = a.stage_commit(rng=room.rng).commit.body.content.content.path
    kp, _ = room.key_package()
    bad_lists = [
        (Proposal(Remove(0)),),  # the committer
        (Proposal(Remove(1)), Proposal(Remove(1))),
        (Proposal(Remove(9)),),
        (Proposal(Add(kp)), Proposal(Add(kp))),
        (Proposal(Add(replace(kp, signature=bytes(64)))),),
        (Proposal(ReInit(b"x", 1, suite_id, ())), Proposal(Remove(1))),
    ]
    for proposals in bad_lists:
        assert_refused(room, forge(a, commit(*proposals, path=path)), InvalidProposalList, members_too=True)
    assert_refused(room, forge(a, commit(Proposal(Remove(2)))), MissingUpdatePath, members_too=True)
    unknown = FramedContent(a.group_id, a.epoch, Sender.member(0), b"", ContentType.COMMIT,
                            Commit((ProposalOrRef(bytes(room.suite.hash_len)),), path))
    assert_refused(room, forge(a, unknown), UnknownProposalRef, members_too=True)
    # proposals on their own, checked as in a Commit
    b = room.members[1]
    leaf = b.ratchet_tree.leaf(1)
    for bad in [Remove(9), ExternalInit(bytes(32)), Update(leaf),
                ReInit(b"x", 0, suite_id, ()), Add(replace(kp, signature=bytes(64)))]:
        proposal = FramedContent(a.group_id, a.epoch, Sender.member(1), b"", ContentType.PROPOSAL,
                                 Proposal(bad))
        assert_refused(room, forge(b, proposal), InvalidProposalList)
    room.empty_commit(0)


@pytest.mark.parametrize("suite_id", SUITES)
def test_external_commit_refusals(suite_id):
    room = Room(suite_id)
    room.add(0, 1)
    info = room.members[0].group_info()
    kp, priv = room.key_package()
    _, commit = Group.external_join(MLSMessage(info), kp, priv, rng=room.rng)
    pub: PublicMessage = commit.body
    sig = bytearray(pub.auth.signature)
    sig[0] ^= 1
    assert_refused(room, MLSMessage(replace(pub, auth=replace(pub.auth, signature=bytes(sig)))),
                   InvalidSignature)
    no_path = replace(pub, content=replace(pub.content, content=Commit(pub.content.content.proposals)))
    assert_refused(room, MLSMessage(no_path), MissingUpdatePath)
    room.empty_commit(1)
    assert_refused(room, commit, EpochMismatch)  # the GroupInfo's epoch has passed


# -- GroupInfo --------------------------------------------------------------------------------


@pytest.mark.parametrize("suite_id", SUITES)
def test_check_group_info(suite_id):
    room = Room(suite_id)
    room.add(0, 2)
    old_info = room.members[1].group_info(with_ratchet_tree=False)
    room.hub.check_group_info(old_info)
    room.empty_commit(2)
    info = room.members[1].group_info()
    room.hub.check_group_info(MLSMessage(info))
    room.hub.check_group_info(room.members[0].group_info(with_external_pub=False, with_ratchet_tree=False))
    with pytest.raises(GroupInfoMismatch):
        room.hub.check_group_info(old_info)
    s = room.members[1].state.epoch
    suite = room.suite
    from crypto.mls.group_welcome import sign_group_info
    other_tag = sign_group_info(suite, s.signature_priv, replace(info, confirmation_tag=bytes(suite.hash_len)))
    with pytest.raises(GroupInfoMismatch):
        room.hub.check_group_info(other_tag)
    with pytest.raises(InvalidSignature):
        room.hub.check_group_info(replace(info, signature=bytes(64)))
    with pytest.raises(InvalidSignature):
        room.hub.check_group_info(replace(info, signer=7))
    stale_tree = Extension(ExtensionType.RATCHET_TREE, room.members[1].ratchet_tree.to_bytes()[:-1] + b"\x00")
    exts = tuple(e for e in info.extensions if e.extension_type != ExtensionType.RATCHET_TREE)
    for bad in [exts + (stale_tree,), exts + exts[:1],
                (Extension(ExtensionType.EXTERNAL_PUB, b"\x03abc"),)]:
        with pytest.raises(GroupInfoMismatch):
            room.hub.check_group_info(sign_group_info(suite, s.signature_priv, replace(info, extensions=bad)))
    with pytest.raises(UnexpectedMessage):
        room.hub.check_group_info(room.members[0].protect(b"x", rng=room.rng))


@pytest.mark.parametrize("suite_id", SUITES)
def test_from_group_info_refusals(suite_id):
    room = Room(suite_id)
    room.add(0, 2)
    g = room.members[0]
    info = g.group_info(with_ratchet_tree=False)
    with pytest.raises(MissingRatchetTree):
        PublicGroup.from_group_info(info)
    with pytest.raises(InvalidSignature):
        PublicGroup.from_group_info(replace(info, signature=bytes(64)), g.ratchet_tree)
    with pytest.raises(InvalidSignature):
        PublicGroup.from_group_info(replace(info, signer=3), g.ratchet_tree)
    tree = g.ratchet_tree
    tree.remove_leaf(2)
    with pytest.raises(TreeHashMismatch):
        PublicGroup.from_group_info(info, tree)
    view = PublicGroup.from_group_info(info, g.ratchet_tree.to_bytes())
    assert view.to_bytes() == room.hub.to_bytes()


# -- persistence ------------------------------------------------------------------------------


@pytest.mark.parametrize("suite_id", SUITES)
def test_persisted_view_keeps_following(suite_id):
    room = Room(suite_id)
    room.add(0, 2)
    ref = room.deliver_proposal(1, room.members[1].propose(Proposal(Remove(2)), rng=room.rng)[0])
    room.hub = PublicGroup.from_bytes(room.hub.to_bytes())
    room.deliver_commit(0, room.members[0].stage_commit(proposal_refs=[ref], rng=room.rng))
    data = room.hub.to_bytes()
    for bad in [b"", b"\x02" + data[1:], data + b"\x00", data[:-1]]:
        with pytest.raises(InvalidGroupState):
            PublicGroup.from_bytes(bad)


def _sample_state() -> bytes:
    room = Room(1, seed="sample")
    room.add(0, 1)
    room.deliver_proposal(1, room.members[1].propose(Proposal(Remove(0)), rng=room.rng)[0])
    return room.hub.to_bytes()


_SAMPLE = _sample_state()


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=400))
def test_from_bytes_random_bytes_raise_only_invalid_group_state(data):
    try:
        PublicGroup.from_bytes(data)
    except InvalidGroupState:
        pass


@settings(max_examples=300, deadline=None)
@given(pos=st.integers(0, len(_SAMPLE) - 1), value=st.integers(0, 255), cut=st.booleans())
def test_from_bytes_mutated_state_raises_only_invalid_group_state(pos, value, cut):
    data = _SAMPLE[:pos] if cut else _SAMPLE[:pos] + bytes([value]) + _SAMPLE[pos + 1:]
    try:
        view = PublicGroup.from_bytes(data)
    except InvalidGroupState:
        return
    assert view.to_bytes() == data  # what decodes, re-encodes to the same bytes


# -- property: random operations, the view always agrees with the members -----------------------

_ops = st.lists(
    st.tuples(st.sampled_from(["add", "add2", "remove", "empty", "update", "external", "race",
                               "propose"]),
              st.integers(0, 5), st.integers(0, 5)),
    min_size=1, max_size=14)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(suite_id=st.sampled_from(SUITES), ops=_ops)
def test_random_operations_the_view_agrees_with_the_members(suite_id, ops):
    room = Room(suite_id, seed="prop")
    for op, a, b in ops:
        leaves = sorted(room.members)
        committer = leaves[a % len(leaves)]
        others = [i for i in leaves if i != committer]
        if op in ("add", "add2") and len(leaves) + (2 if op == "add2" else 1) <= 6:
            room.add(committer, 2 if op == "add2" else 1)
        elif op == "remove" and others:
            room.remove(committer, [others[b % len(others)]])
        elif op == "update" and others:
            room.update(others[b % len(others)], committer)
        elif op == "external" and len(leaves) < 6:
            room.external_join(committer)
        elif op == "propose" and len(others) >= 2:
            proposer, target = others[b % len(others)], others[(b + 1) % len(others)]
            msg, ref = room.members[proposer].propose(Proposal(Remove(target)), rng=room.rng)
            assert room.deliver_proposal(proposer, msg) == ref
            room.deliver_commit(committer, room.members[committer].stage_commit(proposal_refs=[ref],
                                                                                rng=room.rng))
        elif op == "race" and others:
            loser = room.members[others[b % len(others)]].stage_commit(rng=room.rng)
            room.empty_commit(committer)
            assert assert_refused(room, loser.commit, EpochMismatch).current_epoch == room.hub.epoch
        else:
            room.empty_commit(committer)
