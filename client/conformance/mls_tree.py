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
from crypto.mls.group_context import GroupContext
from crypto.mls.proposals import Add, Proposal, Remove, Update
from crypto.mls.ratchet_tree import RatchetTree
from crypto.mls.tree_nodes import UpdatePath
from crypto.mls.tree_validation import validate_ratchet_tree
from crypto.mls.treekem import (
    TreePrivateKeys,
    create_update_path,
    derive_node_key_pair,
    merge_update_path,
    process_update_path,
)
from crypto.rng import SeededRng

from ._expect import CaseUnsupported, expect_eq, h

__all__ = ["check_tree_operations", "check_tree_validation", "check_treekem"]


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
        raise CaseUnsupported(f"proposal type {type(body).__name__} changes no tree")
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


def _private_states(tree: RatchetTree, case: dict) -> dict[int, TreePrivateKeys]:
    states = {}
    for entry in case["leaves_private"]:
        keys = TreePrivateKeys.for_leaf(entry["index"], h(entry["encryption_priv"]))
        for ps in entry["path_secrets"]:
            keys.set(ps["node"], derive_node_key_pair(tree.suite, h(ps["path_secret"]))[0])
        keys.check_consistent(tree)
        states[entry["index"]] = keys
    return states


def check_treekem(case: dict) -> None:
    suite = get_suite(case["cipher_suite"])
    tree = RatchetTree.from_bytes(suite, h(case["ratchet_tree"]))
    states = _private_states(tree, case)
    signature_keys = {e["index"]: h(e["signature_priv"]) for e in case["leaves_private"]}
    context = GroupContext(cipher_suite=suite.id, group_id=h(case["group_id"]), epoch=case["epoch"],
                           tree_hash=tree.tree_hash(),
                           confirmed_transcript_hash=h(case["confirmed_transcript_hash"]))
    for n, up in enumerate(case["update_paths"]):
        sender = up["sender"]
        path = UpdatePath.from_bytes(h(up["update_path"]))
        merged = merge_update_path(tree, sender, path, group_id=context.group_id)
        merged.verify_parent_hashes()
        expect_eq(merged.tree_hash(), h(up["tree_hash_after"]), f"update_paths[{n}].tree_hash_after")
        for j, keys in states.items():
            if j == sender or tree.leaf(j) is None:
                continue
            got = process_update_path(tree, sender, path, keys, provisional_context=context)
            expect_eq(got.path_secret, h(up["path_secrets"][j]), f"update_paths[{n}] path_secret[{j}]")
            expect_eq(got.commit_secret, h(up["commit_secret"]), f"update_paths[{n}] commit_secret[{j}]")
            expect_eq(got.tree, merged, f"update_paths[{n}] tree after processing at leaf {j}")

        ours = create_update_path(tree, sender, provisional_context=context,
                                  sign=signature_keys[sender], rng=SeededRng(f"treekem-{n}"))
        ours.tree.verify_parent_hashes()
        for j, keys in states.items():
            if j == sender or tree.leaf(j) is None:
                continue
            got = process_update_path(tree, sender, ours.update_path, keys, provisional_context=context)
            expect_eq(got.commit_secret, ours.commit_secret, f"new path {n}: commit_secret at leaf {j}")
            expect_eq(got.tree, ours.tree, f"new path {n}: tree at leaf {j}")
