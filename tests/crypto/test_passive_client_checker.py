"""The passive-client checker (client/conformance/mls_group.py) catches what it must.

Each test alters one IETF passive-client case and expects the checker to fail at the
right step: a wrong epoch_authenticator, a private key that is not the KeyPackage's, a
missing out-of-band tree or external PSK, a proposal the Commit references but the
client never saw. One test drives the engine directly: a Commit with a broken tag is
refused and leaves the group able to process the genuine one (RFC 9420 section 14:
processing a bad message must not change the state).
"""

from __future__ import annotations

import copy

import pytest

from client.conformance._expect import VectorMismatch
from client.conformance.mls_group import StepFailed, check_passive_client
from crypto.errors import CryptoError
from crypto.mls.group import Group
from crypto.mls.key_package_gen import KeyPackagePrivate
from crypto.mls.message import MLSMessage
from tests.conftest import load_vectors

WELCOME = load_vectors("mls/passive-client-welcome.json")
COMMIT = load_vectors("mls/passive-client-handling-commit.json")

pytestmark = pytest.mark.skipif(not WELCOME or not COMMIT, reason="passive-client vectors not found")


def _case(cases: list, pred) -> dict:
    return copy.deepcopy(next(c for c in cases if c["cipher_suite"] in (1, 3) and pred(c)))


def _flip(hex_value: str, at: int = 0) -> str:
    b = bytearray(bytes.fromhex(hex_value))
    b[at] ^= 0x01
    return b.hex()


def test_wrong_initial_epoch_authenticator_is_a_mismatch():
    case = _case(WELCOME, lambda c: True)
    case["initial_epoch_authenticator"] = _flip(case["initial_epoch_authenticator"])
    with pytest.raises(VectorMismatch, match="initial_epoch_authenticator"):
        check_passive_client(case)


def test_wrong_epoch_authenticator_is_a_mismatch():
    case = _case(COMMIT, lambda c: len(c["epochs"]) >= 2)
    case["epochs"][1]["epoch_authenticator"] = _flip(case["epochs"][1]["epoch_authenticator"], 5)
    with pytest.raises(VectorMismatch, match=r"epochs\[1\] epoch_authenticator"):
        check_passive_client(case)


@pytest.mark.parametrize("field", ["init_priv", "encryption_priv", "signature_priv"])
def test_private_key_not_of_the_key_package_is_a_mismatch(field):
    case = _case(WELCOME, lambda c: True)
    case[field] = _flip(case[field], 3)
    with pytest.raises(VectorMismatch, match=field):
        check_passive_client(case)


def test_tree_given_out_of_band_is_needed():
    case = _case(WELCOME, lambda c: c["ratchet_tree"] is not None)
    case["ratchet_tree"] = None
    with pytest.raises(StepFailed, match="join: MissingRatchetTree"):
        check_passive_client(case)


def test_external_psk_is_needed():
    case = _case(WELCOME, lambda c: c["external_psks"])
    case["external_psks"] = []
    with pytest.raises(StepFailed, match="join: UnknownPsk"):
        check_passive_client(case)


def test_unseen_proposal_fails_the_commit_step():
    case = _case(COMMIT, lambda c: any(e["proposals"] for e in c["epochs"]))
    n = next(i for i, e in enumerate(case["epochs"]) if e["proposals"])
    case["epochs"][n]["proposals"] = []
    with pytest.raises(StepFailed, match=rf"epochs\[{n}\] commit: UnknownProposalRef"):
        check_passive_client(case)


def test_refused_commit_leaves_the_group_unchanged():
    case = _case(COMMIT, lambda c: True)
    kp = MLSMessage.from_bytes(bytes.fromhex(case["key_package"])).body
    private = KeyPackagePrivate(bytes.fromhex(case["init_priv"]), bytes.fromhex(case["encryption_priv"]),
                                bytes.fromhex(case["signature_priv"]))
    psks = {bytes.fromhex(p["psk_id"]): bytes.fromhex(p["psk"]) for p in case["external_psks"]}
    group = Group.join(MLSMessage.from_bytes(bytes.fromhex(case["welcome"])), kp, private,
                       external_psks=psks)
    epoch = case["epochs"][0]
    for raw in epoch["proposals"]:
        group.process_message(MLSMessage.from_bytes(bytes.fromhex(raw)))
    commit = bytes.fromhex(epoch["commit"])
    before = (group.epoch, group.epoch_authenticator)
    for at in (len(commit) - 1, len(commit) - 40):  # membership tag, then confirmation tag / signature
        bad = bytearray(commit)
        bad[at] ^= 0x80
        with pytest.raises(CryptoError):
            group.process_message(MLSMessage.from_bytes(bytes(bad)))
        assert (group.epoch, group.epoch_authenticator) == before
    staged = group.process_message(MLSMessage.from_bytes(commit)).staged_commit
    group.merge_staged_commit(staged)
    assert group.epoch_authenticator == bytes.fromhex(epoch["epoch_authenticator"])
