"""Checks for the passive-client vector families (``passive-client-welcome.json``,
``passive-client-handling-commit.json``, ``passive-client-random.json``).

Steps as in the vectors' FORMATS.md, section "Passive Client Scenarios", through the
group engine's public API only (:class:`crypto.mls.group.Group`):

1. ``key_package`` is an MLSMessage holding a KeyPackage, whose public keys are those of
   ``signature_priv``, ``encryption_priv`` and ``init_priv``;
2. the client joins from ``welcome`` (with ``ratchet_tree`` out of band when it is given)
   holding the ``external_psks``; its epoch_authenticator is ``initial_epoch_authenticator``;
3. for each epoch, each proposal is processed (it must come back as a proposal), then the
   commit (it must come back as a StagedCommit for the next epoch), which is merged; the
   epoch_authenticator is then the epoch's.

A mismatch raises :class:`~client.conformance._expect.VectorMismatch`; an error of the
engine is re-raised as :class:`StepFailed` naming the step (the original is its cause).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from crypto.mls.ciphersuite import get_suite
from crypto.mls.group import Group, MessageKind
from crypto.mls.key_package import KeyPackage
from crypto.mls.key_package_gen import KeyPackagePrivate
from crypto.mls.message import MLSMessage
from crypto.mls.ratchet_tree import RatchetTree
from crypto.primitives import x25519_public_key

from ._expect import VectorMismatch, expect, expect_eq, h

__all__ = ["check_passive_client", "StepFailed"]


class StepFailed(Exception):
    """The engine raised at one step of the scenario; the message names the step and the
    error (type, code, text), which is also the ``__cause__``."""


@contextmanager
def _step(what: str) -> Iterator[None]:
    try:
        yield
    except VectorMismatch:
        raise
    except Exception as exc:
        code = getattr(exc, "code", None)
        raise StepFailed(f"{what}: {type(exc).__name__}" + (f" [{code}]" if code else "")
                         + f": {exc}") from exc


def _joiner(case: dict) -> tuple[KeyPackage, KeyPackagePrivate]:
    suite = get_suite(case["cipher_suite"])
    # FORMATS.md says "serialized KeyPackage"; the files hold it as an MLSMessage
    # (wire_format mls_key_package), like the welcome.
    message = MLSMessage.from_bytes(h(case["key_package"]))
    kp = message.body
    expect(isinstance(kp, KeyPackage), f"key_package is a {type(kp).__name__} MLSMessage")
    expect_eq(kp.cipher_suite, suite.id, "key_package cipher_suite")
    private = KeyPackagePrivate(
        init_priv=h(case["init_priv"]),
        encryption_priv=h(case["encryption_priv"]),
        signature_priv=h(case["signature_priv"]),
    )
    expect_eq(suite.signature_public_key(private.signature_priv), kp.leaf_node.signature_key,
              "signature_priv does not match the KeyPackage signature_key")
    expect_eq(x25519_public_key(private.encryption_priv), kp.leaf_node.encryption_key,
              "encryption_priv does not match the KeyPackage encryption_key")
    expect_eq(x25519_public_key(private.init_priv), kp.init_key,
              "init_priv does not match the KeyPackage init_key")
    return kp, private


def check_passive_client(case: dict) -> None:
    suite = get_suite(case["cipher_suite"])
    kp, private = _joiner(case)
    psks = {h(p["psk_id"]): h(p["psk"]) for p in case.get("external_psks") or ()}
    tree = RatchetTree.from_bytes(suite, h(case["ratchet_tree"])) if case.get("ratchet_tree") else None
    with _step("join"):
        group = Group.join(MLSMessage.from_bytes(h(case["welcome"])), kp, private, tree,
                           external_psks=psks)
    expect_eq(group.epoch_authenticator, h(case["initial_epoch_authenticator"]),
              "initial_epoch_authenticator")
    for n, epoch in enumerate(case["epochs"]):
        for i, raw in enumerate(epoch["proposals"]):
            with _step(f"epochs[{n}] proposal {i}"):
                processed = group.process_message(MLSMessage.from_bytes(h(raw)))
            expect_eq(processed.kind, MessageKind.PROPOSAL, f"epochs[{n}] proposal {i} kind")
        before = group.epoch
        with _step(f"epochs[{n}] commit"):
            processed = group.process_message(MLSMessage.from_bytes(h(epoch["commit"])))
            expect_eq(processed.kind, MessageKind.COMMIT, f"epochs[{n}] commit kind")
            staged = processed.staged_commit
            expect(staged is not None, f"epochs[{n}] commit came back without a StagedCommit")
            group.merge_staged_commit(staged)  # type: ignore[arg-type]
        expect_eq(group.epoch, before + 1, f"epochs[{n}] epoch after the commit")
        expect_eq(group.epoch_authenticator, h(epoch["epoch_authenticator"]),
                  f"epochs[{n}] epoch_authenticator")
