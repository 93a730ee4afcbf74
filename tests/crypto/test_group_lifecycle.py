"""A Group's lifecycle (crypto/mls/group_lifecycle.py, group_resumption.py, group_serialization.py):
key packages, creation, adding and removing members, joining from a Welcome, state
serialization, required capabilities, branching and reinitialization.

Every test runs for suites 1 and 3 with the in-memory harness of
:mod:`tests.crypto.group_harness`; after each Commit every member must agree.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto.errors import CryptoError, DecryptError, InvalidSignature
from crypto.mls.ciphersuite import get_suite
from crypto.mls.extensions import Extension, ExtensionType, find_extension
from crypto.mls.group import Group
from crypto.mls.group_errors import (
    EpochNotRetained,
    GroupInactive,
    GroupSuspended,
    InvalidGroupState,
    InvalidProposalList,
    InvalidResumption,
    MissingRatchetTree,
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
    GroupContextExtensions,
    PreSharedKey,
    PreSharedKeyID,
    Proposal,
    PSKType,
    ReInit,
    Remove,
    ResumptionPSKUsage,
)
from crypto.mls.protection import (
    unprotect_private,
)
from crypto.mls.secret_tree import KeyAlreadyUsed
from crypto.mls.welcome import Welcome
from crypto.rng import SeededRng
from tests.crypto.group_harness import SUITES, Harness, broadcast_proposal, snapshot

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
    keys = removed.state.epoch.epoch_keys()
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



# -- state serialization ---------------------------------------------------------------------


@pytest.mark.parametrize("suite_id", SUITES)
def test_state_round_trip_mid_conversation(suite_id):
    h = Harness(suite_id)
    h.add(0, 3)
    late = h.members[1].protect(b"late", rng=h.rng)
    h.members[2].add_external_psk(b"x", b"y")
    msg, ref = h.members[3].propose_update(rng=h.rng)
    broadcast_proposal(h, 3, msg, ref)
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
    broadcast_proposal(h, 1, msg, ref)
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
    assert new.cipher_suite.id == other and new.group_id == b"reinit-group" and new.epoch == 1
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


# -- the stored format stays byte-compatible ---------------------------------------------------

_FORMAT1 = Path(__file__).parent / "data" / "group_state_format1.txt"


def test_group_state_format_is_stable():
    """The states of a deterministic conversation (past epochs, a pending Update by reference,
    an external PSK, a used application key) encode to the bytes recorded, before the split of
    group.py, in data/group_state_format1.txt; those bytes decode and re-encode unchanged."""
    recorded = dict(line.split() for line in _FORMAT1.read_text().splitlines())
    h = Harness(3, seed="compat")
    h.add(0, 2)
    msg, ref = h.members[1].propose_update(rng=h.rng)
    broadcast_proposal(h, 1, msg, ref)
    h.members[2].add_external_psk(b"psk-id", b"\x07" * 32)
    h.members[0].process_message(h.members[2].protect(b"hello", rng=h.rng))
    assert {str(i): g.to_bytes().hex() for i, g in h.members.items()} == recorded
    for data in recorded.values():
        g = Group.from_bytes(bytes.fromhex(data))
        assert g.to_bytes().hex() == data
        assert g.public_group.group_context == g.group_context
