"""Group-engine bugs found by the IETF interop scripts (``confide interop``), reduced to the
engine alone. An open finding is ``xfail(strict=True)`` (the fix turns it into a failure
that asks for the marker to go); a fixed one stays as a regression test.

Source of each finding: ``confide interop --scripts <file> --assignments all-confide``.

Fixed:

- reinit.json change_ciphersuite / change_extensions: ``Group.reinit`` into a new group
  with the *same* group_id raised UnknownPsk, because ``Group._psk_lookup`` looked the
  reinit resumption PSK up in the new group's own PSKs (fixed in 9635058; the lookup is now
  ``GroupState.psk_lookup``).
"""

from __future__ import annotations

import pytest

from crypto.mls.ciphersuite import get_suite
from crypto.mls.group import Group
from crypto.mls.key_package_gen import generate_key_package
from crypto.mls.proposals import Proposal, ReInit
from crypto.rng import SeededRng


def _two_members(suite_id: int, group_id: bytes, rng: SeededRng):
    suite = get_suite(suite_id)
    kp_a, priv_a = generate_key_package(suite, b"alice", rng)
    kp_b, priv_b = generate_key_package(suite, b"bob", rng)
    alice = Group.create(suite, group_id, kp_a, priv_a, rng=rng)
    staged = alice.add_members([kp_b], rng=rng)
    alice.merge_staged_commit(staged)
    bob = Group.join(staged.welcome, kp_b, priv_b)
    return alice, bob, (priv_a.signature_priv, priv_b.signature_priv)


@pytest.mark.parametrize("suite_id", [1, 3])
def test_reinit_keeping_the_group_id(suite_id):
    """RFC 9420 11.2 lets a ReInit keep the group_id (to change suite or extensions)."""
    rng = SeededRng(f"reinit-same-id-{suite_id}")
    group_id = b"same-group-id"
    alice, bob, (sig_a, sig_b) = _two_members(suite_id, group_id, rng)
    other = 3 if suite_id == 1 else 1
    msg, ref = alice.propose(Proposal(ReInit(group_id, 1, other, ())), rng=rng)
    bob.process_message(msg)
    staged = bob.stage_commit(proposal_refs=[ref], rng=rng)
    alice.merge_staged_commit(alice.process_message(staged.commit).staged_commit)
    bob.merge_staged_commit(staged)
    new_suite = get_suite(other)
    kp_a, priv_a = generate_key_package(new_suite, b"alice", rng, signature_priv=sig_a)
    kp_b, priv_b = generate_key_package(new_suite, b"bob", rng, signature_priv=sig_b)
    new_bob, welcome_commit = bob.reinit(kp_b, priv_b, [kp_a], rng=rng)
    new_alice = Group.join(welcome_commit.welcome, kp_a, priv_a, prior=alice)
    assert new_alice.group_id == new_bob.group_id == group_id
    assert new_alice.epoch_authenticator == new_bob.epoch_authenticator
