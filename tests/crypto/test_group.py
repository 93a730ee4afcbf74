"""The MLS group state machine (crypto/mls/group.py) driven by an in-memory harness of N members.

Every test runs for suites 1 and 3. After each Commit every member must agree on
the epoch, the epoch authenticator, an exporter value and the tree hash; each
rejection must leave the rejecting Group exactly as it was.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crypto.errors import CryptoError, DecryptError, InvalidSignature
from crypto.mls.ciphersuite import get_suite
from crypto.mls.commit import Commit
from crypto.mls.extensions import Extension, ExtensionType, find_extension
from crypto.mls.framing import ContentType, FramedContent, PrivateMessage, PublicMessage, Sender
from crypto.mls.group import Group, MessageKind, StagedCommit
from crypto.mls.group_errors import (
    ConfirmationTagMismatch,
    EpochNotRetained,
    GroupInactive,
    GroupSuspended,
    InvalidGroupState,
    InvalidProposalList,
    InvalidResumption,
    MissingExternalPub,
    MissingRatchetTree,
    MissingUpdatePath,
    NonMemberSender,
    StaleStagedCommit,
    UnexpectedMessage,
    UnknownProposalRef,
    UnknownPsk,
    WelcomeNotForUs,
)
from crypto.mls.key_package import KeyPackage
from crypto.mls.key_package_gen import (
    KeyPackageInvalid,
    default_capabilities,
    generate_key_package,
    is_last_resort,
    key_package_ref,
    validate_key_package,
)
from crypto.mls.message import MLSMessage
from crypto.mls.proposals import (
    Add,
    GroupContextExtensions,
    PreSharedKey,
    PreSharedKeyID,
    Proposal,
    PSKType,
    ReInit,
    Remove,
    ResumptionPSKUsage,
    Update,
)
from crypto.mls.protection import (
    MembershipTagMismatch,
    WrongEpoch,
    protect_private,
    protect_public,
    unprotect_private,
)
from crypto.mls.secret_tree import GenerationTooFarAhead, KeyAlreadyUsed
from crypto.mls.welcome import Welcome
from crypto.rng import SeededRng

SUITES = [1, 3]


class Harness:
    """N members of one group, in memory; the delivery service is a loop over the members."""

    def __init__(self, suite_id: int, seed: str = "h") -> None:
        self.suite = get_suite(suite_id)
        self.rng = SeededRng(f"{seed}-{suite_id}")
        self.members: dict[int, Group] = {}
        self.names: dict[int, bytes] = {}
        self._n = 0
        kp, priv = self.key_package()
        g = Group.create(self.suite, b"group-" + seed.encode(), kp, priv, rng=self.rng)
        self.members[0] = g
        self.names[0] = kp.leaf_node.credential.identity or b""

    def key_package(self, **kwargs):
        self._n += 1
        return generate_key_package(self.suite, b"member-%d" % self._n, self.rng, **kwargs)

    def deliver_commit(self, committer: int, staged: StagedCommit) -> None:
        for i, g in list(self.members.items()):
            if i == committer:
                continue
            processed = g.process_message(staged.commit)
            assert processed.kind == MessageKind.COMMIT
            g.merge_staged_commit(processed.staged_commit)
        self.members[committer].merge_staged_commit(staged)
        removed = [int(i) for i, _ in staged.removed]
        for i in removed:
            assert not self.members[i].is_active
            del self.members[i]

    def add(self, committer: int, count: int = 1, **kwargs) -> list[int]:
        kps = [self.key_package() for _ in range(count)]
        staged = self.members[committer].add_members([k for k, _ in kps], rng=self.rng, **kwargs)
        self.deliver_commit(committer, staged)
        new = []
        for kp, priv in kps:
            g = Group.join(staged.welcome, kp, priv, staged.ratchet_tree)
            self.members[int(g.own_leaf_index)] = g
            new.append(int(g.own_leaf_index))
        return new

    def remove(self, committer: int, leaves: list[int], **kwargs) -> None:
        staged = self.members[committer].remove_members(leaves, rng=self.rng, **kwargs)
        self.deliver_commit(committer, staged)

    def empty_commit(self, committer: int, **kwargs) -> None:
        staged = self.members[committer].stage_commit(rng=self.rng, **kwargs)
        self.deliver_commit(committer, staged)

    def assert_agree(self) -> None:
        groups = list(self.members.values())
        assert len({g.epoch for g in groups}) == 1
        assert len({g.epoch_authenticator for g in groups}) == 1
        assert len({g.exporter("test", b"ctx", 32) for g in groups}) == 1
        assert len({g.group_context.to_bytes() for g in groups}) == 1
        assert len({g.ratchet_tree.to_bytes() for g in groups}) == 1
        leaves = sorted(self.members)
        for g in groups:
            assert [int(m.leaf_index) for m in g.members] == leaves

    def assert_messages(self) -> None:
        for i, sender in self.members.items():
            msg = sender.protect(b"from %d at %d" % (i, sender.epoch), rng=self.rng)
            for j, g in self.members.items():
                if j != i:
                    out = g.process_message(msg)
                    assert out.kind == MessageKind.APPLICATION
                    assert out.application_data == b"from %d at %d" % (i, sender.epoch)
                    assert out.sender == i


def snapshot(g: Group) -> tuple:
    return (g.epoch, g.epoch_authenticator, g.group_context.to_bytes(), g.ratchet_tree.to_bytes(),
            g.exporter("snap", b"", 16), g.is_active)


# -- key packages -----------------------------------------------------------------


@pytest.mark.parametrize("suite_id", SUITES)
def test_key_package_generation_and_validation(suite_id):
    suite = get_suite(suite_id)
    kp, priv = generate_key_package(suite, b"alice", SeededRng(1))
    validate_key_package(suite, kp)
    assert kp.init_key != kp.leaf_node.encryption_key
    assert suite.signature_public_key(priv.signature_priv) == kp.leaf_node.signature_key
    assert not is_last_resort(kp)
    assert KeyPackage.from_bytes(kp.to_bytes()) == kp
    ref = key_package_ref(suite, kp)
    assert len(ref) == 32 and ref != key_package_ref(suite, generate_key_package(suite, b"alice", SeededRng(2))[0])


@pytest.mark.parametrize("suite_id", SUITES)
def test_last_resort_key_package(suite_id):
    suite = get_suite(suite_id)
    kp, _ = generate_key_package(suite, b"alice", SeededRng(1), last_resort=True)
    assert is_last_resort(kp)
    assert find_extension(kp.extensions, ExtensionType.LAST_RESORT) is not None
    assert ExtensionType.LAST_RESORT in kp.leaf_node.capabilities.extensions
    validate_key_package(suite, kp)


def test_key_package_rejections():
    suite = get_suite(1)
    kp, _ = generate_key_package(suite, b"alice", SeededRng(1))
    with pytest.raises(KeyPackageInvalid):
        validate_key_package(get_suite(3), kp)
    with pytest.raises(InvalidSignature):
        validate_key_package(suite, replace(kp, signature=bytes(64)))
    with pytest.raises(KeyPackageInvalid):  # init_key == encryption_key (re-signed by no one)
        validate_key_package(suite, replace(kp, init_key=kp.leaf_node.encryption_key))
    tampered_leaf = replace(kp.leaf_node, credential=replace(kp.leaf_node.credential, identity=b"mallory"))
    with pytest.raises(InvalidSignature):
        validate_key_package(suite, replace(kp, leaf_node=tampered_leaf))


# -- group life -------------------------------------------------------------------


@pytest.mark.parametrize("suite_id", SUITES)
def test_create_one_member_group(suite_id):
    h = Harness(suite_id)
    g = h.members[0]
    assert g.epoch == 0 and g.group_id == b"group-h" and int(g.own_leaf_index) == 0
    assert [int(m.leaf_index) for m in g.members] == [0]
    assert g.find_member(h.names[0]) == 0 and g.find_member(b"nobody") is None
    assert len(g.epoch_authenticator) == 32
    assert g.exporter("a", b"", 16) != g.exporter("b", b"", 16)
    h.empty_commit(0)
    assert g.epoch == 1


@pytest.mark.parametrize("suite_id", SUITES)
def test_add_several_in_one_commit_then_one_by_one(suite_id):
    h = Harness(suite_id)
    assert h.add(0, 3) == [1, 2, 3]
    h.assert_agree()
    h.assert_messages()
    for committer in (2, 4, 1):
        h.add(committer)
        h.assert_agree()
        h.assert_messages()
    assert sorted(h.members) == [0, 1, 2, 3, 4, 5, 6]
    assert h.members[0].epoch == 4


@pytest.mark.parametrize("suite_id", SUITES)
def test_add_with_path_and_private_commit_and_tree_out_of_band(suite_id):
    h = Harness(suite_id)
    h.add(0, 2)
    h.add(1, 2, force_path=True, public=False, ratchet_tree_in_welcome=False)
    h.assert_agree()
    h.assert_messages()


@pytest.mark.parametrize("suite_id", SUITES)
def test_remove_member_cannot_read_later_messages(suite_id):
    h = Harness(suite_id)
    h.add(0, 3)
    removed = h.members[2]
    late = h.members[3].protect(b"sent before the removal", rng=h.rng)
    h.remove(1, [2])
    assert not removed.is_active
    assert removed.process_message(late).application_data == b"sent before the removal"
    assert sorted(h.members) == [0, 1, 3]
    h.assert_agree()
    msg = h.members[0].protect(b"secret", rng=h.rng)
    with pytest.raises(GroupInactive):
        removed.process_message(msg)
    # even with its last epoch's keys relabelled to the new epoch, the message does not open
    keys = removed._state.epoch_keys()
    keys.context = replace(keys.context, epoch=msg.body.epoch)
    with pytest.raises(DecryptError):
        unprotect_private(keys, lambda i: b"", msg.body)
    h.assert_messages()
    h.add(3)  # the freed leaf is reused
    assert 2 in h.members
    h.assert_agree()


@pytest.mark.parametrize("suite_id", SUITES)
def test_empty_commits_rotate_keys(suite_id):
    h = Harness(suite_id)
    h.add(0, 3)
    before = h.members[0].epoch_authenticator
    for committer in (0, 1, 2, 3):
        h.empty_commit(committer)
        h.assert_agree()
    assert h.members[0].epoch == 5
    assert h.members[0].epoch_authenticator != before
    h.assert_messages()


@pytest.mark.parametrize("suite_id", SUITES)
def test_late_application_message_from_previous_epoch(suite_id):
    h = Harness(suite_id)
    h.add(0, 2)
    late = h.members[2].protect(b"late", rng=h.rng)
    h.empty_commit(0)
    out = h.members[1].process_message(late)
    assert out.application_data == b"late" and out.epoch == 1
    for _ in range(3):
        h.empty_commit(1)
    old = h.members[2]  # its copy of "late" is for epoch 1, now beyond the window of 3
    with pytest.raises(EpochNotRetained):
        h.members[0].process_message(late)
    assert old.epoch == 5


# -- rejections leave the state unchanged -------------------------------------------


@pytest.mark.parametrize("suite_id", SUITES)
def test_replayed_commit_and_old_epoch_rejected(suite_id):
    h = Harness(suite_id)
    h.add(0, 2)
    staged = h.members[0].stage_commit(rng=h.rng)
    h.deliver_commit(0, staged)
    before = snapshot(h.members[1])
    with pytest.raises(WrongEpoch):
        h.members[1].process_message(staged.commit)
    assert snapshot(h.members[1]) == before


@pytest.mark.parametrize("suite_id", SUITES)
def test_stale_staged_commit_cannot_merge(suite_id):
    h = Harness(suite_id)
    h.add(0, 1)
    first = h.members[0].stage_commit(rng=h.rng)
    second = h.members[0].stage_commit(rng=h.rng)
    h.deliver_commit(0, first)
    before = snapshot(h.members[0])
    with pytest.raises(StaleStagedCommit):
        h.members[0].merge_staged_commit(second)
    assert snapshot(h.members[0]) == before
    # the receiver's staged commit is also bound to its state
    staged = h.members[1].stage_commit(rng=h.rng)
    processed = h.members[0].process_message(staged.commit)
    h.members[0].merge_staged_commit(processed.staged_commit)
    with pytest.raises(StaleStagedCommit):
        h.members[0].merge_staged_commit(processed.staged_commit)


@pytest.mark.parametrize("suite_id", SUITES)
def test_commit_from_non_member_rejected(suite_id):
    h = Harness(suite_id)
    h.add(0, 2)
    a = h.members[0]
    s = a._state
    content = FramedContent(a.group_id, a.epoch, Sender.member(5), b"", ContentType.COMMIT, Commit())
    forged = protect_public(s.suite, s.context, s.secrets.membership_key, s.signature_priv, content,
                            bytes(32))
    before = snapshot(h.members[1])
    with pytest.raises(NonMemberSender):
        h.members[1].process_message(MLSMessage(forged))
    assert snapshot(h.members[1]) == before


@pytest.mark.parametrize("suite_id", SUITES)
def test_tampered_commit_rejected(suite_id):
    h = Harness(suite_id)
    h.add(0, 2)
    staged = h.members[0].stage_commit(rng=h.rng)
    pub: PublicMessage = staged.commit.body
    before = snapshot(h.members[1])
    bad_tag = replace(pub, auth=replace(pub.auth, confirmation_tag=bytes(32)))
    with pytest.raises(MembershipTagMismatch):  # the membership tag covers the confirmation tag
        h.members[1].process_message(MLSMessage(bad_tag))
    assert snapshot(h.members[1]) == before
    h.deliver_commit(0, staged)


@pytest.mark.parametrize("suite_id", SUITES)
def test_wrong_confirmation_tag_rejected(suite_id):
    h = Harness(suite_id)
    h.add(0, 2)
    a = h.members[0]
    s = a._state
    content = FramedContent(a.group_id, a.epoch, Sender.member(0), b"", ContentType.COMMIT,
                            Commit((), h.members[0].stage_commit(rng=h.rng).commit.body.content.content.path))
    forged = protect_public(s.suite, s.context, s.secrets.membership_key, s.signature_priv, content,
                            bytes(32))
    before = snapshot(h.members[1])
    with pytest.raises(ConfirmationTagMismatch):
        h.members[1].process_message(MLSMessage(forged))
    assert snapshot(h.members[1]) == before


@pytest.mark.parametrize("suite_id", SUITES)
def test_invalid_proposal_lists(suite_id):
    h = Harness(suite_id)
    h.add(0, 2)
    a = h.members[0]
    before = snapshot(a)
    with pytest.raises(InvalidProposalList):
        a.remove_members([0], rng=h.rng)  # remove the committer
    with pytest.raises(InvalidProposalList):
        a.remove_members([1, 1], rng=h.rng)
    with pytest.raises(InvalidProposalList):
        a.remove_members([7], rng=h.rng)
    kp, _ = h.key_package()
    with pytest.raises(InvalidProposalList):
        a.add_members([kp, kp], rng=h.rng)
    with pytest.raises(InvalidProposalList):
        a.add_members([replace(kp, signature=bytes(64))], rng=h.rng)
    assert snapshot(a) == before


@pytest.mark.parametrize("suite_id", SUITES)
def test_commit_without_required_path_rejected(suite_id):
    h = Harness(suite_id)
    h.add(0, 2)
    a = h.members[0]
    s = a._state
    content = FramedContent(a.group_id, a.epoch, Sender.member(0), b"", ContentType.COMMIT,
                            Commit((Proposal_remove(2),)))
    forged = protect_public(s.suite, s.context, s.secrets.membership_key, s.signature_priv, content,
                            bytes(32))
    before = snapshot(h.members[1])
    with pytest.raises(MissingUpdatePath):
        h.members[1].process_message(MLSMessage(forged))
    assert snapshot(h.members[1]) == before


def Proposal_remove(leaf: int):
    from crypto.mls.proposals import ProposalOrRef
    return ProposalOrRef(Proposal(Remove(leaf)))


@pytest.mark.parametrize("suite_id", SUITES)
def test_generation_too_far_ahead_and_replay(suite_id):
    h = Harness(suite_id)
    h.add(0, 1)
    a, b = h.members[0], h.members[1]
    msgs = [a.protect(b"m%d" % i, rng=h.rng) for i in range(4)]
    assert b.process_message(msgs[3]).application_data == b"m3"
    before = snapshot(b)
    with pytest.raises(KeyAlreadyUsed):
        b.process_message(msgs[3])
    assert b.process_message(msgs[0]).application_data == b"m0"  # out of order is fine
    assert snapshot(b) == before
    a._state.secret_tree.max_forward = 10**6
    for _ in range(1100):
        a._state.secret_tree.next_key(0, __import__("crypto.mls.secret_tree", fromlist=["x"]).RatchetType.APPLICATION)
    far = a.protect(b"far", rng=h.rng)
    with pytest.raises(GenerationTooFarAhead):
        b.process_message(far)
    assert b.process_message(msgs[1]).application_data == b"m1"


@pytest.mark.parametrize("suite_id", SUITES)
def test_tampered_private_message_rejected(suite_id):
    h = Harness(suite_id)
    h.add(0, 1)
    msg = h.members[0].protect(b"x", rng=h.rng)
    body: PrivateMessage = msg.body
    bad = replace(body, ciphertext=body.ciphertext[:-1] + bytes([body.ciphertext[-1] ^ 1]))
    with pytest.raises(DecryptError):
        h.members[1].process_message(MLSMessage(bad))
    assert h.members[1].process_message(msg).application_data == b"x"


@pytest.mark.parametrize("suite_id", SUITES)
def test_own_commit_echo_and_welcome_to_process_message(suite_id):
    h = Harness(suite_id)
    kp, _ = h.key_package()
    staged = h.members[0].add_members([kp], rng=h.rng)
    with pytest.raises(UnexpectedMessage):
        h.members[0].process_message(staged.commit)
    with pytest.raises(UnexpectedMessage):
        h.members[0].process_message(staged.welcome)


# -- joining --------------------------------------------------------------------------


@pytest.mark.parametrize("suite_id", SUITES)
def test_welcome_rejections(suite_id):
    h = Harness(suite_id)
    h.add(0, 1)
    kp, priv = h.key_package()
    other_kp, other_priv = h.key_package()
    staged = h.members[0].add_members([kp], rng=h.rng, ratchet_tree_in_welcome=False)
    with pytest.raises(WelcomeNotForUs):
        Group.join(staged.welcome, other_kp, other_priv, staged.ratchet_tree)
    with pytest.raises(MissingRatchetTree):
        Group.join(staged.welcome, kp, priv)
    welcome: Welcome = staged.welcome.body
    flipped = welcome.encrypted_group_info[:-1] + bytes([welcome.encrypted_group_info[-1] ^ 1])
    with pytest.raises(CryptoError):  # the HPKE context binds the encrypted GroupInfo
        Group.join(MLSMessage(replace(welcome, encrypted_group_info=flipped)), kp, priv,
                   staged.ratchet_tree)
    g = Group.join(staged.welcome, kp, priv, staged.ratchet_tree)
    assert g.epoch == 2


@pytest.mark.parametrize("suite_id", SUITES)
def test_welcome_with_bad_group_info_signature(suite_id):
    from crypto.mls.group_welcome import build_welcome
    from crypto.mls.welcome import GroupSecrets  # noqa: F401 - documents the structure re-built

    h = Harness(suite_id)
    kp, priv = h.key_package()
    staged = h.members[0].add_members([kp], rng=h.rng)
    info = staged.group_info
    bad_info = replace(info, signature=bytes(64))
    joiner = staged._new.secrets.joiner_secret
    welcome = build_welcome(h.suite, bad_info, joiner, [(kp, None)], h.rng)
    with pytest.raises(InvalidSignature):
        Group.join(welcome, kp, priv)
    good = build_welcome(h.suite, info, joiner, [(kp, None)], h.rng)
    assert Group.join(good, kp, priv).epoch == 1


# -- Add by value with an explicit Proposal list --------------------------------------------


@pytest.mark.parametrize("suite_id", SUITES)
def test_add_and_remove_in_one_commit(suite_id):
    h = Harness(suite_id)
    h.add(0, 3)
    kp, priv = h.key_package()
    staged = h.members[1].stage_commit([Proposal(Add(kp)), Proposal(Remove(3))], rng=h.rng)
    assert [int(i) for i, _ in staged.added] == [3] and [int(i) for i, _ in staged.removed] == [3]
    h.deliver_commit(1, staged)
    g = Group.join(staged.welcome, kp, priv)
    h.members[int(g.own_leaf_index)] = g
    h.assert_agree()
    h.assert_messages()


# The IETF passive-client vectors run in test_vectors.py through client.conformance.mls_group.


# -- proposals by reference, Update, PSK, GroupContextExtensions -----------------------------


def _broadcast_proposal(h: Harness, sender: int, msg: MLSMessage, ref: bytes) -> None:
    for i, g in h.members.items():
        if i != sender:
            out = g.process_message(msg)
            assert out.kind == MessageKind.PROPOSAL and out.sender == sender
            assert ref in g.pending_proposals


@pytest.mark.parametrize("suite_id", SUITES)
@pytest.mark.parametrize("public", [True, False])
def test_update_by_reference(suite_id, public):
    h = Harness(suite_id)
    h.add(0, 3)
    old_key = h.members[2].ratchet_tree.leaf(2).encryption_key
    msg, ref = h.members[2].propose_update(public=public, rng=h.rng)
    _broadcast_proposal(h, 2, msg, ref)
    staged = h.members[1].stage_commit(proposal_refs=[ref], rng=h.rng)
    assert [int(i) for i in staged.updated] == [2]
    h.deliver_commit(1, staged)
    h.assert_agree()
    assert h.members[0].ratchet_tree.leaf(2).encryption_key != old_key
    h.assert_messages()
    h.empty_commit(3)  # the updated member's new leaf key decrypts the path
    h.assert_agree()


@pytest.mark.parametrize("suite_id", SUITES)
def test_committer_cannot_commit_own_update(suite_id):
    h = Harness(suite_id)
    h.add(0, 1)
    _, ref = h.members[1].propose_update(rng=h.rng)
    before = snapshot(h.members[1])
    with pytest.raises(InvalidProposalList):
        h.members[1].stage_commit(proposal_refs=[ref], rng=h.rng)
    assert snapshot(h.members[1]) == before


@pytest.mark.parametrize("suite_id", SUITES)
def test_remove_and_add_by_reference(suite_id):
    h = Harness(suite_id)
    h.add(0, 2)
    kp, priv = h.key_package()
    m1, r1 = h.members[1].propose(Proposal(Add(kp)), rng=h.rng)
    _broadcast_proposal(h, 1, m1, r1)
    m2, r2 = h.members[2].propose(Proposal(Remove(0)), public=False, rng=h.rng)
    _broadcast_proposal(h, 2, m2, r2)
    staged = h.members[1].stage_commit(proposal_refs=[r1, r2], rng=h.rng)
    h.deliver_commit(1, staged)
    g = Group.join(staged.welcome, kp, priv)
    h.members[int(g.own_leaf_index)] = g
    assert sorted(h.members) == [0, 1, 2] and g.own_leaf_index == 0
    h.assert_agree()
    h.assert_messages()


@pytest.mark.parametrize("suite_id", SUITES)
def test_unknown_proposal_ref_rejected(suite_id):
    h = Harness(suite_id)
    h.add(0, 2)
    msg, ref = h.members[1].propose(Proposal(Remove(2)), rng=h.rng)
    h.members[0].process_message(msg)
    staged = h.members[0].stage_commit(proposal_refs=[ref], rng=h.rng)
    before = snapshot(h.members[2])
    with pytest.raises(UnknownProposalRef):  # member 2 never saw the proposal
        h.members[2].process_message(staged.commit)
    assert snapshot(h.members[2]) == before


@pytest.mark.parametrize("suite_id", SUITES)
def test_external_psk_commit_and_welcome(suite_id):
    h = Harness(suite_id)
    h.add(0, 2)
    for g in h.members.values():
        g.add_external_psk(b"psk-1", b"shared secret")
    kp, priv = h.key_package()
    staged = h.members[0].stage_commit(
        [h.members[0].psk_proposal(b"psk-1", h.rng), Proposal(Add(kp))], rng=h.rng)
    h.deliver_commit(0, staged)
    with pytest.raises(UnknownPsk):
        Group.join(staged.welcome, kp, priv)
    g = Group.join(staged.welcome, kp, priv, external_psks={b"psk-1": b"shared secret"})
    h.members[int(g.own_leaf_index)] = g
    h.assert_agree()
    # a member without the PSK cannot process such a commit, and stays as it was
    staged = h.members[1].stage_commit([h.members[1].psk_proposal(b"psk-1", h.rng)], rng=h.rng)
    h.members[2]._external_psks.clear()
    before = snapshot(h.members[2])
    with pytest.raises(UnknownPsk):
        h.members[2].process_message(staged.commit)
    assert snapshot(h.members[2]) == before


@pytest.mark.parametrize("suite_id", SUITES)
def test_resumption_psk(suite_id):
    h = Harness(suite_id)
    h.add(0, 1)
    epoch = h.members[0].epoch
    h.empty_commit(1)
    proposal = Proposal(PreSharedKey(PreSharedKeyID(
        PSKType.RESUMPTION, h.rng(32), usage=ResumptionPSKUsage.APPLICATION,
        psk_group_id=h.members[0].group_id, psk_epoch=epoch)))
    assert proposal.body.psk.psk_epoch == h.members[0].resumption_psk_proposal(epoch).body.psk.psk_epoch
    h.deliver_commit(0, h.members[0].stage_commit([proposal], rng=h.rng))
    h.assert_agree()
    h.deliver_commit(1, h.members[1].stage_commit([h.members[1].resumption_psk_proposal(epoch + 1, h.rng)],
                                                  rng=h.rng))
    h.assert_agree()
    with pytest.raises(UnknownPsk):
        h.members[1].stage_commit([h.members[1].resumption_psk_proposal(99, h.rng)], rng=h.rng)


@pytest.mark.parametrize("suite_id", SUITES)
def test_group_context_extensions(suite_id):
    h = Harness(suite_id)
    h.add(0, 2)
    ext = Extension(ExtensionType.APPLICATION_ID, b"confide-room")
    staged = h.members[2].stage_commit([Proposal(GroupContextExtensions((ext,)))], rng=h.rng)
    assert staged.has_path
    h.deliver_commit(2, staged)
    h.assert_agree()
    assert h.members[0].group_context.extensions == (ext,)
    h.add(1)
    assert h.members[3].group_context.extensions == (ext,)
    h.assert_agree()


# -- property: random operation sequences keep every member in agreement --------------------

_ops = st.lists(
    st.tuples(st.sampled_from(["add", "add2", "remove", "empty", "message", "update"]),
              st.integers(0, 7), st.integers(0, 7), st.booleans()),
    min_size=1, max_size=12)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(suite_id=st.sampled_from(SUITES), ops=_ops)
def test_random_operations_keep_members_in_agreement(suite_id, ops):
    h = Harness(suite_id, seed="prop")
    for op, a, b, flag in ops:
        leaves = sorted(h.members)
        committer = leaves[a % len(leaves)]
        if op in ("add", "add2") and len(leaves) + (2 if op == "add2" else 1) <= 8:
            h.add(committer, 2 if op == "add2" else 1, public=flag, force_path=not flag)
        elif op == "remove" and len(leaves) > 1:
            others = [i for i in leaves if i != committer]
            h.remove(committer, [others[b % len(others)]], public=flag)
        elif op == "empty":
            h.empty_commit(committer, public=flag)
        elif op == "update" and len(leaves) > 1:
            others = [i for i in leaves if i != committer]
            updater = others[b % len(others)]
            msg, ref = h.members[updater].propose_update(public=flag, rng=h.rng)
            _broadcast_proposal(h, updater, msg, ref)
            h.deliver_commit(committer, h.members[committer].stage_commit(proposal_refs=[ref], rng=h.rng))
        elif op == "message":
            h.assert_messages()
        h.assert_agree()
    h.assert_messages()


# -- external commits ---------------------------------------------------------------------------


def _external_join(h: Harness, publisher: int, **kwargs) -> int:
    info = h.members[publisher].group_info()
    kp, priv = h.key_package()
    g, commit = Group.external_join(MLSMessage(info), kp, priv, rng=h.rng, **kwargs)
    for i, m in list(h.members.items()):
        out = m.process_message(commit)
        assert out.kind == MessageKind.COMMIT and out.staged_commit.external
        m.merge_staged_commit(out.staged_commit)
        if not m.is_active:
            del h.members[i]
    h.members[int(g.own_leaf_index)] = g
    return int(g.own_leaf_index)


@pytest.mark.parametrize("suite_id", SUITES)
def test_external_join(suite_id):
    h = Harness(suite_id)
    h.add(0, 2)
    assert _external_join(h, 1) == 3
    h.assert_agree()
    h.assert_messages()
    h.remove(3, [1])
    assert _external_join(h, 0) == 1  # the leftmost blank leaf
    h.assert_agree()
    h.empty_commit(1)
    h.assert_agree()
    h.assert_messages()


@pytest.mark.parametrize("suite_id", SUITES)
def test_external_join_resync_removes_prior_leaf(suite_id):
    h = Harness(suite_id)
    h.add(0, 2)
    leaf = _external_join(h, 0, remove_prior=2)
    assert leaf == 2 and sorted(h.members) == [0, 1, 2]
    h.assert_agree()
    h.assert_messages()


@pytest.mark.parametrize("suite_id", SUITES)
def test_external_join_rejections(suite_id):
    h = Harness(suite_id)
    h.add(0, 1)
    kp, priv = h.key_package()
    with pytest.raises(MissingExternalPub):
        Group.external_join(h.members[0].group_info(with_external_pub=False), kp, priv, rng=h.rng)
    with pytest.raises(MissingRatchetTree):
        Group.external_join(h.members[0].group_info(with_ratchet_tree=False), kp, priv, rng=h.rng)
    info = h.members[0].group_info()
    with pytest.raises(InvalidSignature):
        Group.external_join(replace(info, signature=bytes(64)), kp, priv, rng=h.rng)
    # a stale GroupInfo: the group moved on, so its external commit is for an old epoch
    _, commit = Group.external_join(info, kp, priv, rng=h.rng)
    h.empty_commit(1)
    before = snapshot(h.members[0])
    with pytest.raises(WrongEpoch):
        h.members[0].process_message(commit)
    assert snapshot(h.members[0]) == before
    # a forged external commit (signature by another key) is refused
    _, commit = Group.external_join(h.members[0].group_info(), kp, priv, rng=h.rng)
    body: PublicMessage = commit.body
    forged = replace(body, auth=replace(body.auth, signature=bytes(64)))
    with pytest.raises(InvalidSignature):
        h.members[1].process_message(MLSMessage(forged))


# -- state serialization ---------------------------------------------------------------------


@pytest.mark.parametrize("suite_id", SUITES)
def test_state_round_trip_mid_conversation(suite_id):
    h = Harness(suite_id)
    h.add(0, 3)
    late = h.members[1].protect(b"late", rng=h.rng)
    h.members[2].add_external_psk(b"x", b"y")
    msg, ref = h.members[3].propose_update(rng=h.rng)
    _broadcast_proposal(h, 3, msg, ref)
    h.deliver_commit(0, h.members[0].stage_commit(proposal_refs=[ref], rng=h.rng))
    sent = h.members[1].protect(b"before save", rng=h.rng)
    for i in list(h.members):
        data = h.members[i].to_bytes()
        restored = Group.from_bytes(data)
        assert restored.to_bytes() == data
        assert snapshot(restored) == snapshot(h.members[i])
        h.members[i] = restored
    assert h.members[2].process_message(late).application_data == b"late"  # past epoch kept
    assert h.members[2].process_message(sent).application_data == b"before save"
    with pytest.raises(KeyAlreadyUsed):  # consumed keys stay consumed
        h.members[2].process_message(sent)
    again = h.members[1].protect(b"after", rng=h.rng)  # the sender's ratchet moved on
    assert again.body.encrypted_sender_data != sent.body.encrypted_sender_data
    assert h.members[0].process_message(sent).application_data == b"before save"
    assert h.members[0].process_message(again).application_data == b"after"
    h.assert_messages()
    h.empty_commit(3)
    h.assert_agree()


def test_removed_member_state_round_trip():
    h = Harness(1)
    h.add(0, 2)
    removed = h.members[2]
    h.remove(0, [2])
    restored = Group.from_bytes(removed.to_bytes())
    assert not restored.is_active


@settings(max_examples=150, deadline=None)
@given(data=st.binary(max_size=300))
def test_state_decoder_random_bytes(data):
    with pytest.raises(InvalidGroupState):
        Group.from_bytes(data)


_SAVED: dict[str, bytes] = {}


def _saved_state() -> bytes:
    if "s" not in _SAVED:
        h = Harness(3, seed="saved")
        h.add(0, 2)
        h.members[1].protect(b"x", rng=h.rng)
        _SAVED["s"] = h.members[1].to_bytes()
    return _SAVED["s"]


@settings(max_examples=150, deadline=None)
@given(pos=st.integers(0, 10**6), value=st.integers(0, 255), cut=st.booleans())
def test_state_decoder_mutations(pos, value, cut):
    data = bytearray(_saved_state())
    pos %= len(data)
    if cut:
        mutated = bytes(data[:pos])
    else:
        data[pos] = value
        mutated = bytes(data)
    try:
        Group.from_bytes(mutated)
    except InvalidGroupState:
        pass


def _required(ext_types=(), proposal_types=(), credential_types=()) -> Extension:
    from crypto.codec import Writer

    w = Writer()
    for values in (ext_types, proposal_types, credential_types):
        w.vector(values, lambda w2, v: w2.u16(v))
    return Extension(ExtensionType.REQUIRED_CAPABILITIES, w.getvalue())


@pytest.mark.parametrize("suite_id", SUITES)
def test_required_capabilities(suite_id):
    h = Harness(suite_id)
    h.add(0, 1)
    need = _required(ext_types=(0xFF00,))
    before = snapshot(h.members[0])
    with pytest.raises(InvalidProposalList):  # member 1 does not support 0xff00
        h.members[0].stage_commit([Proposal(GroupContextExtensions((need,)))], rng=h.rng)
    assert snapshot(h.members[0]) == before
    # a group created with the requirement refuses KeyPackages without it
    caps = replace(default_capabilities(h.suite), extensions=(0xFF00,))
    kp, priv = h.key_package(capabilities=caps)
    g = Group.create(h.suite, b"req", kp, priv, extensions=(need,), rng=h.rng)
    plain, _ = h.key_package()
    with pytest.raises(InvalidProposalList):
        g.add_members([plain], rng=h.rng)
    ok, ok_priv = h.key_package(capabilities=caps)
    staged = g.add_members([ok], rng=h.rng)
    g.merge_staged_commit(staged)
    joined = Group.join(staged.welcome, ok, ok_priv)
    assert joined.epoch_authenticator == g.epoch_authenticator


@pytest.mark.parametrize("suite_id", SUITES)
def test_failed_private_commit_consumes_no_key(suite_id):
    h = Harness(suite_id)
    h.add(0, 2)
    a = h.members[0]
    s = a._state
    path = a.stage_commit(rng=h.rng).commit.body.content.content.path
    content = FramedContent(a.group_id, a.epoch, Sender.member(0), b"", ContentType.COMMIT, Commit((), path))
    forged = MLSMessage(protect_private(s.epoch_keys(), s.signature_priv, content, bytes(32), rng=h.rng))
    before = snapshot(h.members[1])
    for _ in range(2):  # the same generation is still available: the failure consumed nothing
        with pytest.raises(ConfirmationTagMismatch):
            h.members[1].process_message(forged)
    assert snapshot(h.members[1]) == before
    staged = a.stage_commit(public=False, rng=h.rng)
    h.deliver_commit(0, staged)
    h.assert_agree()


@pytest.mark.parametrize("suite_id", SUITES)
def test_commit_removing_receiver_makes_it_inactive(suite_id):
    h = Harness(suite_id)
    h.add(0, 2)
    target = h.members[2]
    staged = h.members[1].remove_members([2], rng=h.rng)
    out = target.process_message(staged.commit)
    assert out.staged_commit.self_removed and [int(i) for i, _ in out.staged_commit.removed] == [2]
    assert target.is_active  # nothing changes until the merge
    h.deliver_commit(1, staged)
    assert not target.is_active
    with pytest.raises(GroupInactive):
        target.protect(b"x", rng=h.rng)
    with pytest.raises(GroupInactive):
        target.stage_commit(rng=h.rng)


# -- external proposals ------------------------------------------------------------------------


def _deliver_external_proposal(h: Harness, msg: MLSMessage) -> bytes:
    """Every member receives ``msg``; returns its ProposalRef (the same for all)."""
    new_refs = set()
    for g in h.members.values():
        before = set(g.pending_proposals)
        out = g.process_message(msg)
        assert out.kind == MessageKind.PROPOSAL and out.sender is None
        new_refs.add(frozenset(set(g.pending_proposals) - before))
    (refs,) = new_refs
    (ref,) = refs
    return ref


@pytest.mark.parametrize("suite_id", SUITES)
def test_external_sender_proposals(suite_id):
    from crypto.mls.credential import Credential
    from crypto.mls.group_external import (
        ExternalSender,
        external_proposal,
        external_senders_extension,
    )

    suite = get_suite(suite_id)
    rng = SeededRng(f"ext-{suite_id}")
    ds_priv, ds_pub = suite.generate_signature_key_pair(rng)
    ext = external_senders_extension([ExternalSender(ds_pub, Credential.basic(b"delivery-service"))])
    h = Harness(suite_id)
    kp0, priv0 = h.key_package()
    h.members = {0: Group.create(suite, b"ext-group", kp0, priv0, extensions=(ext,), rng=h.rng)}
    h.add(0, 2)
    # the delivery service removes member 1 and adds a newcomer
    m1 = external_proposal(h.members[0].group_context, 0, ds_priv, Proposal(Remove(1)))
    r1 = _deliver_external_proposal(h, m1)
    kp, priv = h.key_package()
    m2 = external_proposal(h.members[0].group_context, 0, ds_priv, Proposal(Add(kp)))
    r2 = _deliver_external_proposal(h, m2)
    staged = h.members[2].stage_commit(proposal_refs=[r1, r2], rng=h.rng)
    h.deliver_commit(2, staged)
    g = Group.join(staged.welcome, kp, priv)
    h.members[int(g.own_leaf_index)] = g
    h.assert_agree()
    h.assert_messages()
    # an unknown external sender index, or a forged signature, is refused
    before = snapshot(h.members[0])
    bad = external_proposal(h.members[0].group_context, 1, ds_priv, Proposal(Remove(2)))
    with pytest.raises(NonMemberSender):
        h.members[0].process_message(bad)
    other_priv, _ = suite.generate_signature_key_pair(rng)
    forged = external_proposal(h.members[0].group_context, 0, other_priv, Proposal(Remove(2)))
    with pytest.raises(InvalidSignature):
        h.members[0].process_message(forged)
    assert snapshot(h.members[0]) == before
    with pytest.raises(InvalidProposalList):  # Update cannot come from an external sender
        external_proposal(h.members[0].group_context, 0, ds_priv,
                          Proposal(Update(h.members[0].ratchet_tree.leaf(0))))


@pytest.mark.parametrize("suite_id", SUITES)
def test_new_member_add_proposal(suite_id):
    from crypto.mls.group_external import new_member_add_proposal

    h = Harness(suite_id)
    h.add(0, 1)
    kp, priv = h.key_package()
    msg = new_member_add_proposal(h.members[0].group_info(), kp, priv)
    ref = _deliver_external_proposal(h, msg)
    staged = h.members[1].stage_commit(proposal_refs=[ref], rng=h.rng)
    h.deliver_commit(1, staged)
    g = Group.join(staged.welcome, kp, priv)
    h.members[int(g.own_leaf_index)] = g
    h.assert_agree()
    # signed by someone else than the KeyPackage's owner: refused
    other_kp, other_priv = h.key_package()
    forged = new_member_add_proposal(h.members[0].group_info(), other_kp, priv)
    with pytest.raises(InvalidSignature):
        h.members[0].process_message(forged)
    del other_priv


@pytest.mark.parametrize("suite_id", SUITES)
def test_key_package_lifetime_checked_when_now_given(suite_id):
    from crypto.mls.leaf_node import Lifetime

    h = Harness(suite_id)
    kp, priv = h.key_package(lifetime=Lifetime(1000, 2000))
    with pytest.raises(InvalidProposalList):
        h.members[0].add_members([kp], now=3000, rng=h.rng)
    staged = h.members[0].add_members([kp], now=1500, rng=h.rng)
    h.members[0].merge_staged_commit(staged)
    from crypto.mls.tree_errors import LeafLifetimeInvalid
    with pytest.raises(LeafLifetimeInvalid):
        Group.join(staged.welcome, kp, priv, now=3000)
    assert Group.join(staged.welcome, kp, priv, now=1500).epoch == 1


_FUZZ: dict[int, tuple] = {}


def _fuzz_setup(suite_id: int):
    if suite_id not in _FUZZ:
        h = Harness(suite_id, seed="fuzz")
        h.add(0, 2)
        kp, _ = h.key_package()
        commit = h.members[0].stage_commit([Proposal(Add(kp))], force_path=True, rng=h.rng).commit
        private = h.members[1].stage_commit(public=False, rng=h.rng).commit
        app = h.members[2].protect(b"hello", rng=h.rng)
        _FUZZ[suite_id] = (h, [commit.to_bytes(), private.to_bytes(), app.to_bytes()])
    return _FUZZ[suite_id]


@settings(max_examples=120, deadline=None)
@given(suite_id=st.sampled_from(SUITES), which=st.integers(0, 2), pos=st.integers(0, 10**6),
       value=st.integers(0, 255))
def test_mutated_messages_raise_typed_errors_and_change_nothing(suite_id, which, pos, value):
    h, messages = _fuzz_setup(suite_id)
    receiver = h.members[1] if which != 1 else h.members[0]
    data = bytearray(messages[which])
    pos %= len(data)
    if data[pos] == value:
        return
    data[pos] = value
    before = snapshot(receiver)
    try:
        receiver.process_message(MLSMessage.from_bytes(bytes(data)))
    except CryptoError:
        pass
    assert snapshot(receiver) == before


@pytest.mark.parametrize("suite_id", SUITES)
def test_external_join_with_psk(suite_id):
    h = Harness(suite_id)
    h.add(0, 1)
    for g in h.members.values():
        g.add_external_psk(b"ext", b"external psk")
    kp, priv = h.key_package()
    g, commit = Group.external_join(h.members[0].group_info(), kp, priv, rng=h.rng,
                                    external_psks={b"ext": b"external psk"})
    for m in h.members.values():
        m.merge_staged_commit(m.process_message(commit).staged_commit)
    h.members[int(g.own_leaf_index)] = g
    h.assert_agree()
    # without the PSK a member cannot follow
    h2 = Harness(suite_id, seed="nopsk")
    h2.add(0, 1)
    _, commit = Group.external_join(h2.members[0].group_info(), kp, priv, rng=h2.rng,
                                    external_psks={b"ext": b"external psk"})
    with pytest.raises(UnknownPsk):
        h2.members[1].process_message(commit)


# -- branching and reinitialization ---------------------------------------------------------------


def _same_identity_kp(h: Harness, g: Group, suite_id: int | None = None):
    """A fresh KeyPackage with ``g``'s member's identity (and a fresh signature key)."""
    suite = get_suite(suite_id) if suite_id is not None else h.suite
    (ident,) = [m.identity for m in g.members if m.leaf_index == g.own_leaf_index]
    return generate_key_package(suite, ident, h.rng)


@pytest.mark.parametrize("suite_id", SUITES)
def test_branch_subgroup(suite_id):
    h = Harness(suite_id)
    h.add(0, 3)
    old = dict(h.members)
    kps = {i: _same_identity_kp(h, old[i]) for i in (0, 1, 3)}
    sub, staged = old[1].branch(b"subgroup", *kps[1], [kps[0][0], kps[3][0]], rng=h.rng)
    assert sub.epoch == 1 and sub.group_id == b"subgroup"
    joined = [Group.join(staged.welcome, *kps[i], prior=old[i]) for i in (0, 3)]
    assert {g.epoch_authenticator for g in joined} == {sub.epoch_authenticator}
    # without the prior group the resumption PSK is unknown
    with pytest.raises(UnknownPsk):
        Group.join(staged.welcome, *kps[0])
    # a branch may not contain strangers
    stranger = h.key_package()
    sub2, staged2 = old[1].branch(b"sub2", *_same_identity_kp(h, old[1]), [stranger[0]], rng=h.rng)
    with pytest.raises(InvalidResumption):
        Group.join(staged2.welcome, *stranger, prior=old[0])
    # the old group goes on
    h.empty_commit(2)
    h.assert_agree()


@pytest.mark.parametrize("suite_id", SUITES)
def test_reinit_to_other_suite(suite_id):
    other = 3 if suite_id == 1 else 1
    h = Harness(suite_id)
    h.add(0, 2)
    reinit = Proposal(ReInit(b"reinit-group", 1, other, ()))
    msg, ref = h.members[1].propose(reinit, rng=h.rng)
    _broadcast_proposal(h, 1, msg, ref)
    staged = h.members[2].stage_commit(proposal_refs=[ref], rng=h.rng)
    assert staged.reinit == reinit.body
    late = h.members[0].protect(b"late", rng=h.rng)
    h.deliver_commit(2, staged)
    h.assert_agree()
    assert h.members[1].process_message(late).application_data == b"late"
    for g in h.members.values():
        assert g.pending_reinit == reinit.body
        with pytest.raises(GroupSuspended):
            g.protect(b"x", rng=h.rng)
        with pytest.raises(GroupSuspended):
            g.stage_commit(rng=h.rng)
    kps = {i: _same_identity_kp(h, g, other) for i, g in h.members.items()}
    new, welcome_commit = h.members[0].reinit(*kps[0], [kps[1][0], kps[2][0]], rng=h.rng)
    assert new.suite.id == other and new.group_id == b"reinit-group" and new.epoch == 1
    for i in (1, 2):
        g = Group.join(welcome_commit.welcome, *kps[i], prior=h.members[i])
        assert g.epoch_authenticator == new.epoch_authenticator
    # a reinit Welcome that leaves a member out is refused
    partial, st = h.members[0].reinit(*_same_identity_kp(h, h.members[0], other), [kps[1][0]], rng=h.rng)
    with pytest.raises(InvalidResumption):
        Group.join(st.welcome, *kps[1], prior=h.members[1])
    # state round trip keeps the suspension and the prior PSKs
    restored = Group.from_bytes(h.members[1].to_bytes())
    assert restored.pending_reinit == reinit.body
    assert Group.from_bytes(new.to_bytes()).epoch_authenticator == new.epoch_authenticator


def test_reinit_must_be_alone():
    h = Harness(1)
    h.add(0, 1)
    with pytest.raises(InvalidProposalList):
        h.members[0].stage_commit([Proposal(ReInit(b"x", 1, 1, ())), Proposal(Remove(1))], rng=h.rng)
    with pytest.raises(InvalidProposalList):  # usage reinit/branch PSKs are not for ordinary commits
        h.members[0].stage_commit([Proposal(PreSharedKey(PreSharedKeyID(
            PSKType.RESUMPTION, bytes(32), usage=ResumptionPSKUsage.BRANCH,
            psk_group_id=h.members[0].group_id, psk_epoch=0)))], rng=h.rng)
