"""One member's state of one epoch, and the small helpers the group state machine shares.

An :class:`EpochState` is replaced, never mutated, by a Commit; only its
secret tree's ratchets move within an epoch. A :class:`PastEpoch` keeps what
late application messages of an earlier epoch need.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..codec import Writer
from .ciphersuite import CipherSuite
from .credential import Credential
from .framing import FramedContent, WireFormat
from .group_context import GroupContext
from .group_errors import NonMemberSender
from .key_schedule import EpochSecrets
from .protection import EpochKeys
from .ratchet_tree import RatchetTree
from .secret_tree import SecretTree, _Ratchet
from .tree_math import LeafIndex
from .treekem import TreePrivateKeys

__all__ = [
    "DEFAULT_MAX_PAST_EPOCHS",
    "EXTERNAL_INIT_LABEL",
    "RESUMPTION_PSKS_KEPT",
    "Member",
    "EpochState",
    "PastEpoch",
    "secrets_from_epoch_secret",
    "signature_key_lookup",
    "copy_secret_tree",
    "leftmost_blank_leaf",
    "confirmed_input",
]

DEFAULT_MAX_PAST_EPOCHS = 3
EXTERNAL_INIT_LABEL = b"MLS 1.0 external init secret"
#: How many epochs' resumption PSKs are kept.
RESUMPTION_PSKS_KEPT = 16


@dataclass(frozen=True, slots=True)
class Member:
    """A member as the tree shows it."""

    leaf_index: LeafIndex
    credential: Credential
    signature_key: bytes
    encryption_key: bytes

    @property
    def identity(self) -> bytes | None:
        return self.credential.identity


@dataclass
class EpochState:
    """One epoch of one member's group state (replaced, never mutated, by a Commit; only the
    secret tree's ratchets move inside an epoch)."""

    suite: CipherSuite
    context: GroupContext
    tree: RatchetTree
    keys: TreePrivateKeys
    signature_priv: bytes
    secrets: EpochSecrets
    confirmation_tag: bytes
    interim_transcript_hash: bytes
    secret_tree: SecretTree

    @property
    def own_leaf(self) -> LeafIndex:
        return self.keys.leaf_index

    def epoch_keys(self) -> EpochKeys:
        return EpochKeys(self.suite, self.context, self.secrets.membership_key,
                         self.secrets.sender_data_secret, self.secret_tree)


@dataclass
class PastEpoch:
    keys: EpochKeys
    tree: RatchetTree


def secrets_from_epoch_secret(suite: CipherSuite, epoch: bytes) -> EpochSecrets:
    """The derived secrets of an epoch whose epoch_secret is given (group creation, 11)."""

    def d(label: str) -> bytes:
        return suite.derive_secret(epoch, label)

    return EpochSecrets(
        joiner_secret=b"", welcome_secret=b"", epoch_secret=epoch,
        sender_data_secret=d("sender data"), encryption_secret=d("encryption"),
        exporter_secret=d("exporter"), epoch_authenticator=d("authentication"),
        external_secret=d("external"), confirmation_key=d("confirm"),
        membership_key=d("membership"), resumption_psk=d("resumption"), init_secret=d("init"),
    )


def signature_key_lookup(tree: RatchetTree) -> Callable[[int], bytes]:
    def lookup(leaf: int) -> bytes:
        node = tree.leaf(leaf) if 0 <= leaf < tree.n_leaves else None
        if node is None:
            raise NonMemberSender(f"sender leaf {leaf} is not a member")
        return node.signature_key

    return lookup


def copy_secret_tree(tree: SecretTree) -> SecretTree:
    """An independent copy of ``tree`` (its ratchets move separately)."""
    out = SecretTree.__new__(SecretTree)
    out.suite, out.n_leaves = tree.suite, tree.n_leaves
    out.max_forward, out.out_of_order = tree.max_forward, tree.out_of_order
    out._nodes = dict(tree._nodes)
    out._ratchets = {k: _Ratchet(r.secret, r.generation, dict(r.skipped)) for k, r in tree._ratchets.items()}
    return out


def leftmost_blank_leaf(tree: RatchetTree) -> int:
    """The leftmost blank leaf, or ``n_leaves`` when there is none (the tree must extend)."""
    return next((i for i in range(tree.n_leaves) if tree.leaf(i) is None), tree.n_leaves)


def confirmed_input(wire_format: WireFormat, content: FramedContent, signature: bytes) -> bytes:
    w = Writer()
    w.u16(wire_format)
    content.encode(w)
    w.opaque(signature)
    return w.getvalue()

