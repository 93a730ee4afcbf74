"""What the MLS driver keeps per state id beside the engine's objects (see :mod:`client.mls_driver`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from crypto.mls.ciphersuite import CipherSuite
from crypto.mls.group import Group, StagedCommit
from crypto.mls.group_external import ExternalSender
from crypto.mls.key_package import KeyPackage
from crypto.mls.key_package_gen import KeyPackagePrivate

__all__ = ["DriverMember", "PendingJoin", "SuspendedGroup", "ExternalSigner"]


@dataclass
class DriverMember:
    """A group state id: the group, its handshake wire format, a staged Commit not merged
    yet, and the ProposalRefs of the proposals seen in the current epoch."""

    group: Group
    encrypt: bool
    identity: bytes
    pending: StagedCommit | None = None
    known: dict[bytes, bytes] = field(default_factory=dict)  # proposal message -> ProposalRef
    known_epoch: int = -1

    @property
    def public(self) -> bool:
        return not self.encrypt


@dataclass
class PendingJoin:
    """A ``create_key_package`` transaction: the KeyPackage a Welcome will name, its
    private keys and the PSKs stored for the join."""

    key_package: KeyPackage
    private: KeyPackagePrivate
    psks: dict[bytes, bytes] = field(default_factory=dict)


@dataclass
class SuspendedGroup:
    """A group suspended by a ReInit commit, with the KeyPackage for its successor."""

    member: DriverMember  # the suspended group
    key_package: KeyPackage
    private: KeyPackagePrivate


@dataclass
class ExternalSigner:
    """An external sender's signature key (``create_external_signer``)."""

    suite: CipherSuite
    signature_priv: bytes
    external_sender: ExternalSender
