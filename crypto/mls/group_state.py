"""The group's state records, and the small helpers the group state machine shares.

* :class:`PublicEpoch`: the public state of one epoch (GroupContext, ratchet tree,
  interim transcript hash, a committed ReInit), the one record a
  :class:`~crypto.mls.public_group.PublicGroup` holds and a member shares with it.
* :class:`EpochState`: one member's state of one epoch, its :class:`PublicEpoch` plus
  the member's secrets. Replaced, never mutated, by a Commit; only its secret tree's
  ratchets move within an epoch.
* :class:`PastEpoch`: what late application messages of an earlier epoch need.
* :class:`GroupState`: the whole of one member's state of one group, which
  :class:`~crypto.mls.group.Group` wraps and :mod:`crypto.mls.group_serialization`
  encodes.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..codec import Writer
from .ciphersuite import CipherSuite
from .credential import Credential
from .framing import FramedContent, WireFormat
from .group_context import GroupContext
from .group_errors import GroupInactive, GroupSuspended, NonMemberSender, UnknownPsk
from .key_schedule import EpochSecrets
from .proposals import PreSharedKeyID, PSKType, ReInit, ResumptionPSKUsage
from .protection import EpochKeys
from .ratchet_tree import RatchetTree
from .secret_tree import SecretTree, _Ratchet
from .transcript import interim_transcript_hash
from .tree_math import LeafIndex
from .treekem import TreePrivateKeys

if TYPE_CHECKING:
    from .public_group import PublicGroup

__all__ = [
    "DEFAULT_MAX_PAST_EPOCHS",
    "EXTERNAL_INIT_LABEL",
    "RESUMPTION_PSKS_KEPT",
    "Member",
    "PublicEpoch",
    "EpochState",
    "PastEpoch",
    "GroupState",
    "next_epoch_state",
    "first_epoch_state",
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


@dataclass(frozen=True, slots=True)
class PublicEpoch:
    """The public state of one epoch; replaced, never mutated, by a merged Commit."""

    context: GroupContext
    tree: RatchetTree
    interim_transcript_hash: bytes
    reinit: ReInit | None = None  # a merged ReInit suspends the group (11.2)


@dataclass(slots=True)
class EpochState:
    """One epoch of one member's group state: the epoch's :class:`PublicEpoch` and the
    member's secrets (replaced, never mutated, by a Commit; only the secret tree's ratchets
    move inside an epoch)."""

    suite: CipherSuite
    public: PublicEpoch
    keys: TreePrivateKeys
    signature_priv: bytes
    secrets: EpochSecrets
    confirmation_tag: bytes
    secret_tree: SecretTree

    @property
    def context(self) -> GroupContext:
        return self.public.context

    @property
    def tree(self) -> RatchetTree:
        return self.public.tree

    @property
    def interim_transcript_hash(self) -> bytes:
        return self.public.interim_transcript_hash

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


@dataclass(slots=True)
class GroupState:
    """One member's whole state of one group, the one record behind a
    :class:`~crypto.mls.group.Group`.

    ``public`` is the group's public view (the current :class:`PublicEpoch`, the same
    object as ``epoch.public``, and the proposals of the epoch); ``epoch`` adds this
    member's secrets. ``past`` keeps the keys of earlier epochs by epoch number;
    ``pending_leaf_keys`` the private keys of our Update proposals (by public key);
    ``resumption_psks`` this group's own by epoch, ``prior_resumption_psks`` those of
    groups this one resumed, by (group_id, epoch).
    """

    epoch: EpochState
    public: PublicGroup
    max_past_epochs: int = DEFAULT_MAX_PAST_EPOCHS
    active: bool = True
    past: OrderedDict[int, PastEpoch] = field(default_factory=OrderedDict)
    pending_leaf_keys: dict[bytes, bytes] = field(default_factory=dict)
    external_psks: dict[bytes, bytes] = field(default_factory=dict)
    resumption_psks: OrderedDict[int, bytes] = field(default_factory=OrderedDict)
    prior_resumption_psks: dict[tuple[bytes, int], bytes] = field(default_factory=dict)

    def remember_resumption_psk(self) -> None:
        """Keep the current epoch's resumption PSK (the last RESUMPTION_PSKS_KEPT)."""
        self.resumption_psks[self.epoch.context.epoch] = self.epoch.secrets.resumption_psk
        while len(self.resumption_psks) > RESUMPTION_PSKS_KEPT:
            self.resumption_psks.popitem(last=False)

    def require_active(self) -> None:
        """Raise :class:`GroupInactive` (removed) or :class:`GroupSuspended` (a merged ReInit)."""
        if not self.active:
            raise GroupInactive("this member was removed from the group")
        if self.epoch.public.reinit is not None:
            raise GroupSuspended("the group was reinitialized; move to the new group")

    def psk_lookup(self, psk_id: PreSharedKeyID) -> bytes:
        """The PSK ``psk_id`` names: external, this group's resumption PSK (usage application)
        or a prior group's (reinit, branch). Raises :class:`UnknownPsk`."""
        if psk_id.psktype == PSKType.EXTERNAL:
            psk = self.external_psks.get(psk_id.psk_id or b"")
        elif (psk_id.psk_group_id == self.epoch.context.group_id
              and psk_id.usage == ResumptionPSKUsage.APPLICATION):
            psk = self.resumption_psks.get(psk_id.psk_epoch or 0)
        else:
            # A reinit or branch PSK names the prior group, which may share our group_id (11.2).
            psk = self.prior_resumption_psks.get((psk_id.psk_group_id or b"", psk_id.psk_epoch or 0))
        if psk is None:
            raise UnknownPsk("PSK not available")
        return psk


def next_epoch_state(s: EpochState, public: PublicEpoch, keys: TreePrivateKeys, secrets: EpochSecrets,
                     tag: bytes) -> EpochState:
    """The member's state of the epoch a Commit starts: ``public`` with the new secrets."""
    return EpochState(s.suite, public, keys, s.signature_priv, secrets, tag,
                      SecretTree(s.suite, secrets.encryption_secret, public.tree.n_leaves))


def first_epoch_state(suite: CipherSuite, context: GroupContext, tree: RatchetTree,
                      keys: TreePrivateKeys, signature_priv: bytes, secrets: EpochSecrets,
                      tag: bytes) -> EpochState:
    """A member's first epoch: ``context`` and ``tree`` as given, the interim transcript hash
    from the confirmed one and ``tag`` (8.2)."""
    public = PublicEpoch(context, tree, interim_transcript_hash(suite, context.confirmed_transcript_hash, tag))
    return EpochState(suite, public, keys, signature_priv, secrets, tag,
                      SecretTree(suite, secrets.encryption_secret, tree.n_leaves))


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

