"""A Group receiving messages (crypto/mls/group_receiving.py): rejections of bad
commits, proposals and application messages, each leaving the rejecting Group exactly
as it was, external proposals, and mutated messages.

Every test runs for suites 1 and 3 with the in-memory harness of
:mod:`tests.crypto.group_harness`.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto.errors import CryptoError, DecryptError, InvalidSignature
from crypto.mls.ciphersuite import get_suite
from crypto.mls.commit import Commit
from crypto.mls.framing import ContentType, FramedContent, PrivateMessage, PublicMessage, Sender
from crypto.mls.group import Group, MessageKind
from crypto.mls.group_errors import (
    ConfirmationTagMismatch,
    GroupInactive,
    InvalidProposalList,
    MissingUpdatePath,
    NonMemberSender,
    StaleStagedCommit,
    UnexpectedMessage,
)
from crypto.mls.message import MLSMessage
from crypto.mls.proposals import (
    Add,
    Proposal,
    Remove,
    Update,
)
from crypto.mls.protection import (
    MembershipTagMismatch,
    WrongEpoch,
    protect_private,
)
from crypto.mls.secret_tree import GenerationTooFarAhead, KeyAlreadyUsed
from crypto.rng import SeededRng
from tests.crypto.group_harness import SUITES, Harness, assert_refused_by, forge, snapshot

# -- rejections leave the state unchanged -------------------------------------------


@pytest.mark.parametrize("suite_id", SUITES)
def test_replayed_commit_and_old_epoch_rejected(suite_id):
    h = Harness(suite_id)
    h.add(0, 2)
    staged = h.members[0].stage_commit(rng=h.rng)
    h.deliver_commit(0, staged)
    assert_refused_by(h.members[1], staged.commit, WrongEpoch)


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
    content = FramedContent(a.group_id, a.epoch, Sender.member(5), b"", ContentType.COMMIT, Commit())
    assert_refused_by(h.members[1], forge(a, content), NonMemberSender)


@pytest.mark.parametrize("suite_id", SUITES)
def test_tampered_commit_rejected(suite_id):
    h = Harness(suite_id)
    h.add(0, 2)
    staged = h.members[0].stage_commit(rng=h.rng)
    pub: PublicMessage = staged.commit.body
    bad_tag = replace(pub, auth=replace(pub.auth, confirmation_tag=bytes(32)))
    # the membership tag covers the confirmation tag
    assert_refused_by(h.members[1], MLSMessage(bad_tag), MembershipTagMismatch)
    h.deliver_commit(0, staged)


@pytest.mark.parametrize("suite_id", SUITES)
def test_wrong_confirmation_tag_rejected(suite_id):
    h = Harness(suite_id)
    h.add(0, 2)
    a = h.members[0]
    content = FramedContent(a.group_id, a.epoch, Sender.member(0), b"", ContentType.COMMIT,
                            Commit((), h.members[0].stage_commit(rng=h.rng).commit.body.content.content.path))
    assert_refused_by(h.members[1], forge(a, content), ConfirmationTagMismatch)


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
    content = FramedContent(a.group_id, a.epoch, Sender.member(0), b"", ContentType.COMMIT,
                            Commit((Proposal_remove(2),)))
    assert_refused_by(h.members[1], forge(a, content), MissingUpdatePath)


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
    a.state.epoch.secret_tree.max_forward = 10**6
    for _ in range(1100):
        a.state.epoch.secret_tree.next_key(0, __import__("crypto.mls.secret_tree", fromlist=["x"]).RatchetType.APPLICATION)
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



@pytest.mark.parametrize("suite_id", SUITES)
def test_failed_private_commit_consumes_no_key(suite_id):
    h = Harness(suite_id)
    h.add(0, 2)
    a = h.members[0]
    s = a.state.epoch
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
    h.join(staged, kp, priv)
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
    h.join(staged, kp, priv)
    h.assert_agree()
    # signed by someone else than the KeyPackage's owner: refused
    other_kp, other_priv = h.key_package()
    forged = new_member_add_proposal(h.members[0].group_info(), other_kp, priv)
    with pytest.raises(InvalidSignature):
        h.members[0].process_message(forged)
    del other_priv



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
