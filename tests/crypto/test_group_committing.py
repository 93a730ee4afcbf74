"""A Group proposing and committing (crypto/mls/group_committing.py): Adds and
Removes by value, proposals by reference, Update, PSKs, GroupContextExtensions,
random operation sequences, external commits and key package lifetimes.

Every test runs for suites 1 and 3 with the in-memory harness of
:mod:`tests.crypto.group_harness`; after each Commit every member must agree.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crypto.errors import InvalidSignature
from crypto.mls.extensions import Extension, ExtensionType
from crypto.mls.framing import PublicMessage
from crypto.mls.group import Group, MessageKind
from crypto.mls.group_errors import (
    InvalidProposalList,
    MissingExternalPub,
    MissingRatchetTree,
    UnknownProposalRef,
    UnknownPsk,
)
from crypto.mls.message import MLSMessage
from crypto.mls.proposals import (
    Add,
    GroupContextExtensions,
    PreSharedKey,
    PreSharedKeyID,
    Proposal,
    PSKType,
    Remove,
    ResumptionPSKUsage,
)
from crypto.mls.protection import (
    WrongEpoch,
)
from tests.crypto.group_harness import (
    SUITES,
    Harness,
    assert_refused_by,
    broadcast_proposal,
    snapshot,
)

# -- Add by value with an explicit Proposal list --------------------------------------------


@pytest.mark.parametrize("suite_id", SUITES)
def test_add_and_remove_in_one_commit(suite_id):
    h = Harness(suite_id)
    h.add(0, 3)
    kp, priv = h.key_package()
    staged = h.members[1].stage_commit([Proposal(Add(kp)), Proposal(Remove(3))], rng=h.rng)
    assert [int(i) for i, _ in staged.added] == [3] and [int(i) for i, _ in staged.removed] == [3]
    h.deliver_commit(1, staged)
    h.join(staged, kp, priv)
    h.assert_agree()
    h.assert_messages()


# The IETF passive-client vectors run in test_vectors.py through client.conformance.mls_group.


# -- proposals by reference, Update, PSK, GroupContextExtensions -----------------------------


@pytest.mark.parametrize("suite_id", SUITES)
@pytest.mark.parametrize("public", [True, False])
def test_update_by_reference(suite_id, public):
    h = Harness(suite_id)
    h.add(0, 3)
    old_key = h.members[2].ratchet_tree.leaf(2).encryption_key
    msg, ref = h.members[2].propose_update(public=public, rng=h.rng)
    broadcast_proposal(h, 2, msg, ref)
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
    broadcast_proposal(h, 1, m1, r1)
    m2, r2 = h.members[2].propose(Proposal(Remove(0)), public=False, rng=h.rng)
    broadcast_proposal(h, 2, m2, r2)
    staged = h.members[1].stage_commit(proposal_refs=[r1, r2], rng=h.rng)
    h.deliver_commit(1, staged)
    g = h.join(staged, kp, priv)
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
    assert_refused_by(h.members[2], staged.commit, UnknownProposalRef)  # member 2 never saw the proposal


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
    h.members[2].state.external_psks.clear()
    assert_refused_by(h.members[2], staged.commit, UnknownPsk)


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
            broadcast_proposal(h, updater, msg, ref)
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
    assert_refused_by(h.members[0], commit, WrongEpoch)
    # a forged external commit (signature by another key) is refused
    _, commit = Group.external_join(h.members[0].group_info(), kp, priv, rng=h.rng)
    body: PublicMessage = commit.body
    forged = replace(body, auth=replace(body.auth, signature=bytes(64)))
    with pytest.raises(InvalidSignature):
        h.members[1].process_message(MLSMessage(forged))


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
