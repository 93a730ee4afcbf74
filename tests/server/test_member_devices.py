"""The pure half of finding 5 (``protocol/member_devices.py``): which devices a handshake adds,
as the hub's public view sees them, and the one verdict on each against its registration."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crypto.mls import Group, MLSMessage
from crypto.mls.ciphersuite import get_suite
from crypto.mls.credential import Credential
from crypto.mls.framing import PublicMessage
from crypto.mls.key_package_gen import generate_key_package
from crypto.mls.proposals import Add, Proposal
from crypto.mls.public_group import PublicGroup
from crypto.rng import SeededRng
from protocol.api import DeviceKeys
from protocol.ids import DeviceId
from protocol.member_devices import AddedDevice, added_devices, check_registered
from protocol.room_errors import DeviceKeyMismatch, MemberIdentityInvalid, UnknownDevice

SUITE = get_suite(3)


def _start(seed: str):
    rng = SeededRng(seed)
    kp, priv = generate_key_package(SUITE, b"@alice:a.test/DESK", rng)
    alice = Group.create(SUITE, b"g" * 32, kp, priv, rng=rng)
    view = PublicGroup.from_group_info(MLSMessage(alice.group_info(with_ratchet_tree=True)))
    return rng, alice, view


def _added(view: PublicGroup, msg: MLSMessage):
    processed = view.process(msg)
    assert isinstance(msg.body, PublicMessage)
    return processed, added_devices(processed, msg.body)


def test_proposals_commits_and_external_joins():
    rng, alice, view = _start("member-devices")
    bob, _ = generate_key_package(SUITE, b"@bob:b.test/PHONE", rng)
    carol, _ = generate_key_package(SUITE, b"@carol:a.test/LAPTOP", rng)
    proposal, ref = alice.propose(Proposal(Add(bob)), public=True, rng=rng)
    processed, found = _added(view, proposal)
    assert [(str(d.user), str(d.device), d.signature_key) for d in found] == [
        ("@bob:b.test", "PHONE", bob.leaf_node.signature_key)]
    processed.merge()
    staged = alice.stage_commit([Proposal(Add(carol))], proposal_refs=[ref], rng=rng)
    processed, found = _added(view, staged.commit)
    assert {d.identity for d in found} == {"@bob:b.test/PHONE", "@carol:a.test/LAPTOP"}
    assert all(d.credential == Credential.basic(d.identity.encode()).to_bytes() for d in found)
    processed.merge()
    alice.merge_staged_commit(staged)
    info = alice.group_info(with_ratchet_tree=True)
    kp, priv = generate_key_package(SUITE, b"@alice:a.test/TABLET", rng)
    _, external = Group.external_join(info, kp, priv, rng=rng)
    _, found = _added(view, external)
    assert [d.identity for d in found] == ["@alice:a.test/TABLET"]
    assert found[0].signature_key == kp.leaf_node.signature_key
    empty = alice.stage_commit(force_path=True, rng=rng)
    assert _added(view, empty.commit)[1] == ()


def _device(key: bytes = b"k" * 32, device: str = "PHONE") -> AddedDevice:
    from protocol.ids import UserId

    return AddedDevice(UserId.parse("@bob:b.test"), DeviceId.parse(device), key,
                       Credential.basic(f"@bob:b.test/{device}".encode()).to_bytes())


def test_check_registered():
    d = _device()
    reg = DeviceKeys(DeviceId.parse("PHONE"), d.signature_key, d.credential, 4)
    check_registered(d, reg)
    with pytest.raises(UnknownDevice):
        check_registered(d, None)
    with pytest.raises(UnknownDevice):
        check_registered(_device(device="OTHER"), reg)
    with pytest.raises(DeviceKeyMismatch):
        check_registered(_device(key=b"x" * 32), reg)
    with pytest.raises(DeviceKeyMismatch):
        check_registered(d, DeviceKeys(DeviceId.parse("PHONE"), d.signature_key,
                                       Credential.basic(b"@bob:b.test/PHONE2").to_bytes(), 4))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(identity=st.binary(min_size=1, max_size=40))
def test_any_identity_is_a_device_or_member_identity_invalid(identity):
    rng, alice, view = _start("member-devices-fuzz")
    kp, _ = generate_key_package(SUITE, identity, rng)
    proposal, _ = alice.propose(Proposal(Add(kp)), public=True, rng=rng)
    try:
        _, found = _added(view, proposal)
    except MemberIdentityInvalid:
        return
    assert [d.identity.encode() for d in found] == [identity]
