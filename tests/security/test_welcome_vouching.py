"""The pure Welcome check behind finding 11 (``protocol/welcome_vouching.py``), in memory:
the devices a commit's Welcome may go to are those whose KeyPackage the commit adds (inline,
or by reference to a proposal of its epoch) and the Welcome names; a Welcome of another
commit or another suite is ``welcome_invalid``. (The attack itself against two ``confide
serve`` processes is ``test_federation_welcome.py``; this covers the by-reference Adds that
the SDK does not make.)"""

from __future__ import annotations

import pytest

from crypto.mls.ciphersuite import get_suite
from crypto.mls.group import Group
from crypto.mls.key_package_gen import generate_key_package
from crypto.mls.proposals import Add, Proposal
from crypto.rng import SeededRng
from protocol.room_errors import WelcomeInvalid
from protocol.welcome_vouching import welcome_targets

pytestmark = pytest.mark.timeout(60)

BOB, CAROL = ("@bob:b.test", "PHONE"), ("@carol:b.test", "LAPTOP")


def _kp(suite, member, rng):
    return generate_key_package(suite, f"{member[0]}/{member[1]}".encode(), rng)[0]


def test_inline_and_by_reference_adds():
    rng = SeededRng("welcome-vouching")
    suite = get_suite(1)
    kp_a, priv_a = generate_key_package(suite, b"@alice:a.test/DESK", rng)
    alice = Group.create(suite, b"g" * 32, kp_a, priv_a, rng=rng)
    kp_bob, kp_carol = _kp(suite, BOB, rng), _kp(suite, CAROL, rng)
    proposal, ref = alice.propose(Proposal(Add(kp_carol)), rng=rng)
    staged = alice.stage_commit([Proposal(Add(kp_bob))], proposal_refs=[ref], rng=rng)
    commit, welcome = staged.commit.to_bytes(), staged.welcome.body
    assert welcome_targets(welcome, 1, commit, [proposal.to_bytes()]) == {BOB, CAROL}
    # without the proposal message, the by-reference Add is unknown: the Welcome names a
    # KeyPackage this commit is not seen to add
    with pytest.raises(WelcomeInvalid):
        welcome_targets(welcome, 1, commit)
    with pytest.raises(WelcomeInvalid):
        welcome_targets(welcome, 3, commit, [proposal.to_bytes()])
    alice.merge_staged_commit(staged)
    other = alice.add_members([_kp(suite, ("@dan:b.test", "TAB"), rng)], rng=rng)
    with pytest.raises(WelcomeInvalid):  # this Welcome with another commit
        welcome_targets(welcome, 1, other.commit.to_bytes())
