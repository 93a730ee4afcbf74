"""Validation of a ratchet tree received by a joiner (RFC 9420 sections 12.4.3.3, 7.3, 7.9.2).

:func:`validate_ratchet_tree` applies every rule in turn and raises the typed
error of the first one broken (all derive from :class:`TreeValidationError`):

==========================  =============================================================
TreeHashMismatch            root tree hash differs from the expected (GroupContext) one
ParentHashMismatch          a non-blank parent node is not parent-hash valid
LeafSignatureInvalid        a leaf's LeafNodeTBS signature does not verify (group_id and
                            leaf index are part of it for update and commit sources)
DuplicateEncryptionKey      two nodes share an HPKE encryption key
DuplicateSignatureKey       two leaves share a signature key
UnmergedLeavesInvalid       unsorted list, blank leaf, leaf outside the subtree, or not
                            listed at every non-blank parent between the leaf and the node
UnsupportedCredential       a leaf's credential type is not in every member's capabilities
UnsupportedLeafExtension    a leaf's non-default extension is not in its own capabilities
LeafLifetimeInvalid         ``now`` outside a key_package leaf's lifetime (only when ``now``
                            is given)
==========================  =============================================================

Credential *contents* (is this identity acceptable?) are the application's
call, not checked here.
"""

from __future__ import annotations

from ..errors import CryptoError
from .group_context import GroupContext
from .leaf_node import LeafNode, LeafNodeSource
from .ratchet_tree import RatchetTree
from .tree_errors import (
    DuplicateEncryptionKey,
    DuplicateSignatureKey,
    LeafLifetimeInvalid,
    LeafSignatureInvalid,
    ParentHashMismatch,
    TreeHashMismatch,
    TreeValidationError,
    UnmergedLeavesInvalid,
    UnsupportedCredential,
    UnsupportedLeafExtension,
)
from .tree_math import direct_path, subtree_leaves

__all__ = [
    "DEFAULT_EXTENSION_TYPES",
    "TreeValidationError",
    "TreeHashMismatch",
    "ParentHashMismatch",
    "LeafSignatureInvalid",
    "DuplicateEncryptionKey",
    "DuplicateSignatureKey",
    "UnmergedLeavesInvalid",
    "UnsupportedCredential",
    "UnsupportedLeafExtension",
    "LeafLifetimeInvalid",
    "verify_leaf_signature",
    "check_leaf_lifetime",
    "validate_ratchet_tree",
    "validate_tree_for_group",
]

#: Extension types that a LeafNode's capabilities need not (must not) list (7.2).
DEFAULT_EXTENSION_TYPES = frozenset({0x0001, 0x0002, 0x0003, 0x0004, 0x0005})


def verify_leaf_signature(tree: RatchetTree, leaf: LeafNode, index: int, group_id: bytes) -> None:
    """Verify ``leaf``'s signature as the leaf at ``index`` of group ``group_id``.

    Raises :class:`LeafSignatureInvalid` when it does not verify (or the key is malformed).
    """
    if leaf.leaf_node_source == LeafNodeSource.KEY_PACKAGE:
        tbs = leaf.tbs_bytes()
    else:
        tbs = leaf.tbs_bytes(group_id, index)
    try:
        tree.suite.verify_with_label(leaf.signature_key, "LeafNodeTBS", tbs, leaf.signature)
    except CryptoError as exc:
        raise LeafSignatureInvalid(f"leaf {index}: signature does not verify ({exc.code})") from None


def check_leaf_lifetime(leaf: LeafNode, index: int, now: int) -> None:
    """Raises :class:`LeafLifetimeInvalid` when ``now`` is outside a key_package leaf's lifetime."""
    life = leaf.lifetime
    if life is not None and not life.not_before <= now <= life.not_after:
        raise LeafLifetimeInvalid(
            f"leaf {index}: lifetime [{life.not_before}, {life.not_after}] does not contain {now}")


def _check_unique_keys(tree: RatchetTree) -> None:
    seen_enc: dict[bytes, int] = {}
    for x in range(tree.width):
        key = tree.encryption_key(x)
        if key is None:
            continue
        if key in seen_enc:
            raise DuplicateEncryptionKey(f"nodes {seen_enc[key]} and {x} share an encryption key")
        seen_enc[key] = x
    seen_sig: dict[bytes, int] = {}
    for i, leaf in tree.members():
        if leaf.signature_key in seen_sig:
            raise DuplicateSignatureKey(f"leaves {seen_sig[leaf.signature_key]} and {int(i)} "
                                        "share a signature key")
        seen_sig[leaf.signature_key] = int(i)


def _check_unmerged_leaves(tree: RatchetTree) -> None:
    n = tree.n_leaves
    for p, parent in tree.parents():
        unmerged = parent.unmerged_leaves
        if any(a >= b for a, b in zip(unmerged, unmerged[1:], strict=False)):
            raise UnmergedLeavesInvalid(f"node {int(p)}: unmerged_leaves not strictly increasing")
        below = subtree_leaves(p)
        for u in unmerged:
            if u not in below:
                raise UnmergedLeavesInvalid(f"node {int(p)}: unmerged leaf {u} is not below it")
            if tree.leaf(u) is None:
                raise UnmergedLeavesInvalid(f"node {int(p)}: unmerged leaf {u} is blank")
            for x in direct_path(2 * u, n):
                if x == p:
                    break
                between = tree.parent_node(x)
                if between is not None and u not in between.unmerged_leaves:
                    raise UnmergedLeavesInvalid(
                        f"leaf {u} is unmerged at node {int(p)} but not at node {int(x)} below it")


def _check_capabilities(tree: RatchetTree) -> None:
    members = tree.members()
    for i, leaf in members:
        ctype = int(leaf.credential.credential_type)
        for j, other in members:
            if ctype not in other.capabilities.credentials:
                raise UnsupportedCredential(
                    f"leaf {int(i)}: credential type {ctype} not supported by leaf {int(j)}")
        for ext in leaf.extensions:
            if (ext.extension_type not in DEFAULT_EXTENSION_TYPES
                    and ext.extension_type not in leaf.capabilities.extensions):
                raise UnsupportedLeafExtension(
                    f"leaf {int(i)}: extension {ext.extension_type:#06x} not in its capabilities")


def validate_ratchet_tree(
    tree: RatchetTree,
    *,
    group_id: bytes,
    tree_hash: bytes | None = None,
    now: int | None = None,
) -> None:
    """Check every rule of the module table; ``tree_hash`` and ``now`` checks run only when given.

    Order: tree hash, unmerged-leaves structure, parent hashes, each leaf's signature and
    lifetime, key uniqueness, capabilities.

    Raises the :class:`TreeValidationError` subclass of the first rule broken.
    """
    if tree_hash is not None and tree.tree_hash() != tree_hash:
        raise TreeHashMismatch("the ratchet tree's root hash differs from the GroupContext's")
    _check_unmerged_leaves(tree)
    tree.verify_parent_hashes()
    for i, leaf in tree.members():
        verify_leaf_signature(tree, leaf, i, group_id)
        if now is not None:
            check_leaf_lifetime(leaf, i, now)
    _check_unique_keys(tree)
    _check_capabilities(tree)


def validate_tree_for_group(tree: RatchetTree, group_context: GroupContext, *,
                            now: int | None = None) -> None:
    """:func:`validate_ratchet_tree` against a joiner's GroupContext (its group_id and tree_hash).

    Raises :class:`TreeValidationError` (the subclass of the rule broken); a cipher suite
    differing from the tree's is a :class:`TreeHashMismatch` (the tree was hashed for another suite).
    """
    if group_context.cipher_suite != tree.suite.id:
        raise TreeHashMismatch(f"GroupContext suite {group_context.cipher_suite}, "
                               f"tree suite {tree.suite.id}")
    validate_ratchet_tree(tree, group_id=group_context.group_id,
                          tree_hash=group_context.tree_hash, now=now)
