"""How a member's group state starts (RFC 9420 sections 11, 12.4.3.1): the bodies of
:meth:`~crypto.mls.group.Group.create` and :meth:`~crypto.mls.group.Group.join`, and
:func:`start_state`, which wraps a first :class:`EpochState` in the
:class:`GroupState` record (with its :class:`~crypto.mls.public_group.PublicGroup`).

An external join (12.4.3.2) is in :mod:`crypto.mls.group_external`; branching and
reinitialization in :mod:`crypto.mls.group_resumption`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from ..primitives import constant_time_equal
from ..rng import Rng
from .ciphersuite import CipherSuite
from .extensions import Extension
from .group_context import GroupContext
from .group_errors import (
    ConfirmationTagMismatch,
    OwnLeafNotFound,
    UnexpectedMessage,
)
from .group_proposals import validate_leaf_for_group
from .group_resumption import check_resumption
from .group_state import EpochState, GroupState, first_epoch_state, secrets_from_epoch_secret
from .group_welcome import group_info_tree, open_welcome, verify_group_info
from .key_package import KeyPackage
from .key_package_gen import KeyPackagePrivate
from .key_schedule import confirmation_tag, epoch_secrets_from_joiner
from .message import MLSMessage
from .proposals import PreSharedKeyID
from .public_group import PublicGroup
from .ratchet_tree import RatchetTree
from .tree_validation import validate_tree_for_group
from .treekem import TreePrivateKeys, joiner_private_keys
from .welcome import Welcome

__all__ = ["start_state", "create_state", "join_state"]


def start_state(epoch: EpochState, *, max_past_epochs: int,
                external_psks: Mapping[bytes, bytes] | None = None) -> GroupState:
    """The record of a group whose first epoch (for this member) is ``epoch``."""
    st = GroupState(epoch, PublicGroup(epoch.suite, epoch.public), max_past_epochs=max_past_epochs,
                    external_psks=dict(external_psks or {}))
    st.remember_resumption_psk()
    return st


def create_state(suite: CipherSuite, group_id: bytes, key_package: KeyPackage, private: KeyPackagePrivate,
                 extensions: Sequence[Extension], rng: Rng) -> EpochState:
    """See :meth:`crypto.mls.group.Group.create`."""
    tree = RatchetTree.one_member(suite, key_package.leaf_node)
    validate_leaf_for_group(tree, 0, key_package.leaf_node, tuple(extensions), "creator leaf")
    context = GroupContext(suite.id, group_id, 0, tree.tree_hash(), b"", tuple(extensions))
    secrets = secrets_from_epoch_secret(suite, rng(suite.hash_len))
    tag = confirmation_tag(suite, secrets.confirmation_key, b"")
    return first_epoch_state(suite, context, tree, TreePrivateKeys.for_leaf(0, private.encryption_priv),
                             private.signature_priv, secrets, tag)


def join_state(
    suite: CipherSuite,
    welcome: MLSMessage | Welcome,
    key_package: KeyPackage,
    private: KeyPackagePrivate,
    ratchet_tree: RatchetTree | None,
    lookup: Callable[[PreSharedKeyID], bytes],
    prior,
    now: int | None,
) -> EpochState:
    """See :meth:`crypto.mls.group.Group.join` (what it raises); ``lookup`` finds the PSKs
    the Welcome names, ``prior`` is the Group a branch or reinit resumes (or None)."""
    if isinstance(welcome, MLSMessage):
        if not isinstance(welcome.body, Welcome):
            raise UnexpectedMessage("join needs a Welcome")
        welcome = welcome.body
    secrets_in, info, psk = open_welcome(suite, welcome, key_package, private, lookup)
    context = info.group_context
    tree = group_info_tree(suite, info, ratchet_tree)
    verify_group_info(suite, tree, info)
    validate_tree_for_group(tree, context, now=now)
    own = tree.find_leaf(lambda leaf: leaf == key_package.leaf_node)
    if own is None:
        raise OwnLeafNotFound("the KeyPackage's leaf is not in the tree")
    validate_leaf_for_group(tree, own, key_package.leaf_node, context.extensions, "own leaf")
    check_resumption(secrets_in.psks, context, tree, prior)
    path_secret = secrets_in.path_secret.path_secret if secrets_in.path_secret else None
    keys = joiner_private_keys(tree, own, private.encryption_priv,
                               info.signer if path_secret is not None else None, path_secret)
    secrets = epoch_secrets_from_joiner(suite, secrets_in.joiner_secret, psk, context.to_bytes())
    want = confirmation_tag(suite, secrets.confirmation_key, context.confirmed_transcript_hash)
    if not constant_time_equal(want, info.confirmation_tag):
        raise ConfirmationTagMismatch("GroupInfo confirmation tag does not verify")
    return first_epoch_state(suite, context, tree, keys, private.signature_priv, secrets,
                             info.confirmation_tag)
