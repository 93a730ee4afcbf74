"""Ratchet tree, tree validation and TreeKEM beyond the IETF vectors (which run in test_vectors.py).

Typed rejections of a joiner's tree, shape changes of add/update/remove, UpdatePath
rejections, and a property test: random commits on an in-memory group keep every
member's tree, tree hash and commit secret in agreement and the tree parent-hash valid.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crypto.codec import Writer
from crypto.errors import CryptoError
from crypto.mls.ciphersuite import get_suite
from crypto.mls.credential import Credential
from crypto.mls.extensions import Extension
from crypto.mls.group_context import GroupContext
from crypto.mls.leaf_node import Capabilities, LeafNode, LeafNodeSource, Lifetime
from crypto.mls.ratchet_tree import RatchetTree
from crypto.mls.tree_errors import (
    BlankLeafError,
    DuplicateEncryptionKey,
    DuplicateSignatureKey,
    LeafIndexOutOfRange,
    LeafLifetimeInvalid,
    LeafSignatureInvalid,
    ParentHashMismatch,
    PathSecretUndecryptable,
    PrivateKeyMismatch,
    TreeHashMismatch,
    TreeValidationError,
    UnmergedLeavesInvalid,
    UnsupportedCredential,
    UnsupportedLeafExtension,
    UpdatePathKeyReused,
    UpdatePathLeafInvalid,
    UpdatePathLengthMismatch,
)
from crypto.mls.tree_math import left, right
from crypto.mls.tree_nodes import HPKECiphertext, Node, ParentNode, UpdatePath, UpdatePathNode
from crypto.mls.tree_validation import validate_ratchet_tree, validate_tree_for_group
from crypto.mls.treekem import (
    TreePrivateKeys,
    create_update_path,
    joiner_private_keys,
    merge_update_path,
    process_update_path,
)
from crypto.mls.wire_errors import BlankLastNode, NodeTypeMismatch
from crypto.rng import SeededRng

SUITE = get_suite(3)
GROUP_ID = b"confide-test-group"
CAPS = Capabilities(versions=(1,), cipher_suites=(1, 3), credentials=(1,))
FOREVER = Lifetime(0, 2**64 - 1)


def make_leaf(rng, name: str, *, capabilities: Capabilities = CAPS,
              lifetime: Lifetime = FOREVER, extensions=()) -> tuple[LeafNode, bytes, bytes]:
    """A signed key_package leaf: (leaf, signature private key, encryption private key)."""
    sig_sk, sig_pk = SUITE.generate_signature_key_pair(rng)
    enc_sk, enc_pk = SUITE.generate_hpke_key_pair(rng)
    leaf = LeafNode(enc_pk, sig_pk, Credential.basic(name.encode()), capabilities,
                    LeafNodeSource.KEY_PACKAGE, lifetime=lifetime, extensions=tuple(extensions))
    return resign(leaf, sig_sk), sig_sk, enc_sk


def resign(leaf: LeafNode, sig_sk: bytes, index: int | None = None) -> LeafNode:
    tbs = leaf.tbs_bytes() if index is None else leaf.tbs_bytes(GROUP_ID, index)
    return replace(leaf, signature=SUITE.sign_with_label(sig_sk, "LeafNodeTBS", tbs))


def context(epoch: int = 1) -> GroupContext:
    return GroupContext(SUITE.id, GROUP_ID, epoch, b"", b"\x01" * 32)


@dataclass
class Group:
    """An in-memory group: one public tree, each member's signature key and private keys."""

    rng: SeededRng
    tree: RatchetTree
    sig: dict[int, bytes] = field(default_factory=dict)
    keys: dict[int, TreePrivateKeys] = field(default_factory=dict)
    epoch: int = 0
    names: int = 0

    @classmethod
    def create(cls, seed: object) -> Group:
        rng = SeededRng(f"group-{seed}")
        leaf, sig, enc = make_leaf(rng, "m0")
        return cls(rng, RatchetTree.one_member(SUITE, leaf), {0: sig},
                   {0: TreePrivateKeys.for_leaf(0, enc)}, 0, 1)

    def commit(self, committer: int, *, adds: int = 0, removes=(), updates=()):
        """Apply proposals, commit with a path, process it at every member; return the CommitPath."""
        staged = self.tree.copy()
        keys = {i: k.copy() for i, k in self.keys.items()}
        sig = dict(self.sig)
        for u in updates:
            enc_sk, enc_pk = SUITE.generate_hpke_key_pair(self.rng)
            old = staged.leaf(u)
            leaf = replace(old, encryption_key=enc_pk, leaf_node_source=LeafNodeSource.UPDATE,
                           lifetime=None, parent_hash=None)
            staged.update_leaf(u, resign(leaf, sig[u], u))
            keys[u] = TreePrivateKeys.for_leaf(u, enc_sk)
        for r in removes:
            staged.remove_leaf(r)
            del keys[r], sig[r]
        joiners = {}
        for _ in range(adds):
            leaf, s, enc = make_leaf(self.rng, f"m{self.names}")
            self.names += 1
            j = int(staged.add_leaf(leaf))
            joiners[j] = enc
            sig[j] = s
        for k in keys.values():
            k.prune(staged)
        ctx = context(self.epoch + 1)
        cp = create_update_path(staged, committer, provisional_context=ctx, sign=sig[committer],
                                joiners=list(joiners), rng=self.rng)
        new_keys = {committer: cp.private_keys}
        for i, k in keys.items():
            if i == committer:
                continue
            pp = process_update_path(staged, committer, cp.update_path, k,
                                     provisional_context=ctx, joiners=list(joiners))
            assert pp.commit_secret == cp.commit_secret
            assert pp.tree == cp.tree
            assert pp.group_context == cp.group_context
            pp.private_keys.check_consistent(pp.tree)
            new_keys[i] = pp.private_keys
        for j, enc in joiners.items():
            new_keys[j] = joiner_private_keys(cp.tree, j, enc, committer, cp.path_secret_for(j))
        cp.private_keys.check_consistent(cp.tree)
        validate_ratchet_tree(cp.tree, group_id=GROUP_ID, tree_hash=cp.group_context.tree_hash)
        self.tree, self.keys, self.sig = cp.tree, new_keys, sig
        self.epoch += 1
        return cp


def grown_group(seed: object = 0) -> Group:
    """Members 0..4 added one by one, each committer the newest member; then leaf 2 updates."""
    g = Group.create(seed)
    for i in range(4):
        g.commit(i, adds=1)
    g.commit(0, updates=[2])
    return g


# -- decoding --------------------------------------------------------------------------


def test_round_trip_and_trailing_blank_nodes_are_truncated():
    g = grown_group()
    data = g.tree.to_bytes()
    again = RatchetTree.from_bytes(SUITE, data)
    assert again == g.tree
    assert again.tree_hash() == g.tree.tree_hash()
    assert g.tree.to_nodes()[-1] is not None


def test_decode_rejects_trailing_blank_node():
    leaf, _, _ = make_leaf(SeededRng(1), "a")
    w = Writer()
    w.vector([Node(leaf), None], lambda w_, n: w_.optional(n, lambda w2, x: x.encode(w2)))
    with pytest.raises(BlankLastNode):
        RatchetTree.from_bytes(SUITE, w.getvalue())


def test_decode_rejects_parent_at_leaf_position():
    w = Writer()
    w.vector([Node(ParentNode(b"k" * 32))], lambda w_, n: w_.optional(n, lambda w2, x: x.encode(w2)))
    with pytest.raises(NodeTypeMismatch):
        RatchetTree.from_bytes(SUITE, w.getvalue())


def test_decode_pads_to_a_full_tree():
    rng = SeededRng(2)
    nodes = [Node(make_leaf(rng, n)[0]) if i % 2 == 0 else None
             for i, n in enumerate(["a", "_", "b", "_", "c"])]
    tree = RatchetTree.from_nodes(SUITE, nodes)
    assert tree.n_leaves == 4 and tree.width == 7
    assert tree.to_nodes() == nodes


# -- shape changes ------------------------------------------------------------------------


def test_add_extends_and_fills_leftmost_blank():
    rng = SeededRng(3)
    tree = RatchetTree.one_member(SUITE, make_leaf(rng, "a")[0])
    assert tree.n_leaves == 1
    assert tree.add_leaf(make_leaf(rng, "b")[0]) == 1 and tree.n_leaves == 2
    assert tree.add_leaf(make_leaf(rng, "c")[0]) == 2 and tree.n_leaves == 4
    assert tree.add_leaf(make_leaf(rng, "d")[0]) == 3 and tree.n_leaves == 4
    tree.remove_leaf(1)
    assert tree.n_leaves == 4
    assert tree.add_leaf(make_leaf(rng, "e")[0]) == 1
    assert tree.add_leaf(make_leaf(rng, "f")[0]) == 4 and tree.n_leaves == 8


def test_remove_truncates_right_half():
    rng = SeededRng(4)
    tree = RatchetTree.one_member(SUITE, make_leaf(rng, "a")[0])
    for name in "bcde":
        tree.add_leaf(make_leaf(rng, name)[0])
    assert tree.n_leaves == 8
    tree.remove_leaf(4)
    assert tree.n_leaves == 4
    tree.remove_leaf(2)
    assert tree.n_leaves == 4  # leaf 3 remains in the right half
    tree.remove_leaf(3)
    assert tree.n_leaves == 2
    tree.remove_leaf(1)
    assert tree.n_leaves == 1 and tree.width == 1


def test_add_marks_unmerged_sorted_in_non_blank_ancestors():
    g = grown_group()
    tree = g.tree.copy()
    a = tree.add_leaf(make_leaf(g.rng, "late-a")[0])
    b = tree.add_leaf(make_leaf(g.rng, "late-b")[0])
    assert (a, b) == (5, 6)
    assert tree.parent_node(tree.root).unmerged_leaves == (5, 6)
    for index in (a, b):
        for x in tree.filtered_direct_path(index):
            parent = tree.parent_node(x)
            if parent is not None:
                assert int(index) in parent.unmerged_leaves
    assert tree.resolution(tree.root) == [tree.root, 10, 12]
    assert tree.resolution(tree.root, exclude=[5]) == [tree.root, 12]


def test_update_blanks_direct_path_and_rejects_blank_leaf():
    g = grown_group()
    tree = g.tree.copy()
    old = tree.leaf(0)
    tree.update_leaf(0, replace(old, signature=b"x"))
    assert all(tree.is_blank(x) for x in [1, 3, 7])
    tree.remove_leaf(1)
    with pytest.raises(BlankLeafError):
        tree.update_leaf(1, old)
    with pytest.raises(BlankLeafError):
        tree.remove_leaf(1)
    with pytest.raises(LeafIndexOutOfRange):
        tree.remove_leaf(99)


def test_resolution_and_filtered_direct_path():
    g = grown_group()
    tree = g.tree
    assert tree.resolution(tree.root) == [tree.root]
    for i, _ in tree.members():
        fdp = tree.filtered_direct_path(i)
        assert fdp and fdp[-1] == tree.root
    for x in range(1, tree.width, 2):
        if tree.is_blank(x):
            assert tree.resolution(x) == tree.resolution(left(x)) + tree.resolution(right(x))
    # leaf 4's sibling subtree (leaves 5-7) is empty: its first ancestors drop out
    assert tree.filtered_direct_path(4) == [tree.root]


# -- validation: typed rejections ------------------------------------------------------------


def test_grown_tree_is_valid():
    g = grown_group()
    validate_tree_for_group(g.tree, replace(context(), tree_hash=g.tree.tree_hash()))


def test_tree_hash_mismatch():
    g = grown_group()
    with pytest.raises(TreeHashMismatch) as exc:
        validate_tree_for_group(g.tree, replace(context(), tree_hash=b"\x00" * 32))
    assert exc.value.code == "mls_tree_hash_mismatch"
    assert isinstance(exc.value, TreeValidationError)


@pytest.mark.parametrize("what", ["encryption_key", "parent_hash"])
def test_broken_parent_hash(what):
    g = grown_group()
    tree = g.tree.copy()
    x, parent = tree.parents()[0]
    if what == "encryption_key":
        broken = replace(parent, encryption_key=SUITE.generate_hpke_key_pair(g.rng)[1])
    else:
        broken = replace(parent, parent_hash=bytes(32))
    tree.set_parent(x, broken)
    with pytest.raises(ParentHashMismatch) as exc:
        validate_ratchet_tree(tree, group_id=GROUP_ID)
    assert exc.value.code == "mls_parent_hash_mismatch"


def test_parent_node_with_no_linking_child():
    g = grown_group()
    tree = g.tree.copy()
    tree.update_leaf(0, tree.leaf(0))  # blanks 0's direct path, breaking nothing else
    tree.set_parent(1, ParentNode(SUITE.generate_hpke_key_pair(g.rng)[1]))
    with pytest.raises(ParentHashMismatch):
        tree.verify_parent_hashes()


def _added_tree(rng, n: int = 3, **kwargs) -> tuple[RatchetTree, list]:
    members = [make_leaf(rng, f"m{i}", **kwargs) for i in range(n)]
    tree = RatchetTree.one_member(SUITE, members[0][0])
    for leaf, _, _ in members[1:]:
        tree.add_leaf(leaf)
    return tree, members


def test_flipped_leaf_signature():
    tree, _ = _added_tree(SeededRng(5))
    validate_ratchet_tree(tree, group_id=GROUP_ID)
    leaf = tree.leaf(1)
    sig = bytearray(leaf.signature)
    sig[0] ^= 1
    tree.set_leaf(1, replace(leaf, signature=bytes(sig)))
    with pytest.raises(LeafSignatureInvalid) as exc:
        validate_ratchet_tree(tree, group_id=GROUP_ID)
    assert exc.value.code == "mls_leaf_signature_invalid"


def test_commit_leaf_signature_binds_group_id():
    g = grown_group()
    with pytest.raises(LeafSignatureInvalid):
        validate_ratchet_tree(g.tree, group_id=b"another group")


def test_duplicate_encryption_key():
    tree, members = _added_tree(SeededRng(6))
    leaf, sig_sk, _ = members[2]
    tree.set_leaf(2, resign(replace(leaf, encryption_key=members[1][0].encryption_key), sig_sk))
    with pytest.raises(DuplicateEncryptionKey) as exc:
        validate_ratchet_tree(tree, group_id=GROUP_ID)
    assert exc.value.code == "mls_duplicate_encryption_key"


def test_duplicate_signature_key():
    tree, members = _added_tree(SeededRng(7))
    leaf, _, _ = members[2]
    twin = resign(replace(leaf, signature_key=members[1][0].signature_key), members[1][1])
    tree.set_leaf(2, twin)
    with pytest.raises(DuplicateSignatureKey) as exc:
        validate_ratchet_tree(tree, group_id=GROUP_ID)
    assert exc.value.code == "mls_duplicate_signature_key"


def _tree_with_unmerged(rng) -> RatchetTree:
    """4 leaves, parent 1 over leaves 0-1; leaf 2 and 3 added afterwards (unmerged at 3)."""
    g = Group.create(rng)
    g.commit(0, adds=1)
    g.commit(1, adds=1)  # root 3 set by leaf 1; leaf 2 joined in it
    tree = g.tree.copy()
    tree.add_leaf(make_leaf(g.rng, "late")[0])
    return tree


@pytest.mark.parametrize("mutation", ["blank", "outside", "unsorted", "not_at_intermediate"])
def test_bad_unmerged_leaves(mutation):
    tree = _tree_with_unmerged("unmerged")
    root = tree.root
    parent = tree.parent_node(root)
    assert parent.unmerged_leaves == (3,)
    if mutation == "blank":
        tree.set_leaf(3, None)
    elif mutation == "outside":
        tree.set_parent(1, replace(tree.parent_node(1), unmerged_leaves=(3,)))
    elif mutation == "unsorted":
        tree.set_parent(root, replace(parent, unmerged_leaves=(3, 2)))
    else:
        tree.set_parent(5, ParentNode(SUITE.generate_hpke_key_pair(SeededRng(8))[1]))
    with pytest.raises(UnmergedLeavesInvalid) as exc:
        validate_ratchet_tree(tree, group_id=GROUP_ID)
    assert exc.value.code == "mls_unmerged_leaves_invalid"


def test_unsupported_credential():
    rng = SeededRng(9)
    tree, _ = _added_tree(rng)
    tree.add_leaf(make_leaf(rng, "x509-only", capabilities=replace(CAPS, credentials=(2,)))[0])
    with pytest.raises(UnsupportedCredential) as exc:
        validate_ratchet_tree(tree, group_id=GROUP_ID)
    assert exc.value.code == "mls_unsupported_credential"


def test_unsupported_leaf_extension():
    rng = SeededRng(10)
    tree, _ = _added_tree(rng)
    tree.add_leaf(make_leaf(rng, "ext", extensions=[Extension(0xFF00, b"")])[0])
    with pytest.raises(UnsupportedLeafExtension):
        validate_ratchet_tree(tree, group_id=GROUP_ID)
    tree2, _ = _added_tree(rng)
    caps = replace(CAPS, extensions=(0xFF00,))
    tree2.add_leaf(make_leaf(rng, "ext", capabilities=caps, extensions=[Extension(0xFF00, b"")])[0])
    validate_ratchet_tree(tree2, group_id=GROUP_ID)


def test_leaf_lifetime_checked_only_with_now():
    tree, _ = _added_tree(SeededRng(11), lifetime=Lifetime(1000, 2000))
    validate_ratchet_tree(tree, group_id=GROUP_ID)
    validate_ratchet_tree(tree, group_id=GROUP_ID, now=1500)
    for now in (999, 2001):
        with pytest.raises(LeafLifetimeInvalid) as exc:
            validate_ratchet_tree(tree, group_id=GROUP_ID, now=now)
        assert exc.value.code == "mls_leaf_lifetime_invalid"


# -- TreeKEM rejections ------------------------------------------------------------------------


def _pending_commit(seed="kem"):
    g = grown_group(seed)
    ctx = context(g.epoch + 1)
    cp = create_update_path(g.tree, 1, provisional_context=ctx, sign=g.sig[1], rng=g.rng)
    return g, ctx, cp


def test_process_matches_create():
    g, ctx, cp = _pending_commit()
    for i in (0, 2, 3, 4):
        pp = process_update_path(g.tree, 1, cp.update_path, g.keys[i], provisional_context=ctx)
        assert pp.commit_secret == cp.commit_secret
        assert pp.tree.tree_hash() == cp.tree.tree_hash() == cp.group_context.tree_hash


def test_commit_secret_is_one_step_past_root_path_secret():
    g, _, cp = _pending_commit()
    root_secret = cp.path_secrets[cp.tree.root]
    assert cp.commit_secret == SUITE.derive_secret(root_secret, "path")


def test_tampered_ciphertext_is_undecryptable():
    g, ctx, cp = _pending_commit()
    nodes = list(cp.update_path.nodes)
    ct = nodes[0].encrypted_path_secret[0]
    bad = HPKECiphertext(ct.kem_output, bytes([ct.ciphertext[0] ^ 1]) + ct.ciphertext[1:])
    nodes[0] = replace(nodes[0], encrypted_path_secret=(bad,) + nodes[0].encrypted_path_secret[1:])
    path = replace(cp.update_path, nodes=tuple(nodes))
    with pytest.raises(PathSecretUndecryptable) as exc:
        process_update_path(g.tree, 1, path, g.keys[0], provisional_context=ctx)
    assert exc.value.code == "mls_path_secret_undecryptable"


def test_wrong_context_is_undecryptable():
    g, ctx, cp = _pending_commit()
    with pytest.raises(PathSecretUndecryptable):
        process_update_path(g.tree, 1, cp.update_path, g.keys[0],
                            provisional_context=replace(ctx, epoch=ctx.epoch + 1))


def test_substituted_path_key_breaks_parent_hash():
    g, ctx, cp = _pending_commit()
    nodes = list(cp.update_path.nodes)
    nodes[-1] = replace(nodes[-1], encryption_key=SUITE.generate_hpke_key_pair(g.rng)[1])
    with pytest.raises(ParentHashMismatch):
        process_update_path(g.tree, 1, replace(cp.update_path, nodes=tuple(nodes)), g.keys[0],
                            provisional_context=ctx)


def test_path_length_mismatch():
    g, ctx, cp = _pending_commit()
    path = replace(cp.update_path, nodes=cp.update_path.nodes[:-1])
    with pytest.raises(UpdatePathLengthMismatch):
        merge_update_path(g.tree, 1, path, group_id=GROUP_ID)
    nodes = list(cp.update_path.nodes)
    nodes[0] = replace(nodes[0], encrypted_path_secret=())
    with pytest.raises(UpdatePathLengthMismatch):
        process_update_path(g.tree, 1, replace(cp.update_path, nodes=tuple(nodes)), g.keys[0],
                            provisional_context=ctx)


def test_path_leaf_checks():
    g, ctx, cp = _pending_commit()
    leaf = cp.update_path.leaf_node
    flipped = replace(leaf, signature=bytes([leaf.signature[0] ^ 1]) + leaf.signature[1:])
    with pytest.raises(UpdatePathLeafInvalid):
        merge_update_path(g.tree, 1, replace(cp.update_path, leaf_node=flipped), group_id=GROUP_ID)
    with pytest.raises(UpdatePathLeafInvalid):  # signed for leaf 1, claimed by leaf 3
        merge_update_path(g.tree, 3, cp.update_path, group_id=GROUP_ID)
    old_key = resign(replace(leaf, encryption_key=g.tree.leaf(1).encryption_key), g.sig[1], 1)
    with pytest.raises(UpdatePathLeafInvalid):
        merge_update_path(g.tree, 1, replace(cp.update_path, leaf_node=old_key), group_id=GROUP_ID)
    reused = resign(replace(leaf, encryption_key=g.tree.leaf(4).encryption_key), g.sig[1], 1)
    with pytest.raises(UpdatePathKeyReused):
        merge_update_path(g.tree, 1, replace(cp.update_path, leaf_node=reused), group_id=GROUP_ID)


def test_joiner_key_mismatch():
    g = Group.create("joiner")
    g.commit(0, adds=2)
    leaf, _, enc = make_leaf(g.rng, "j")
    staged = g.tree.copy()
    j = staged.add_leaf(leaf)
    cp = create_update_path(staged, 0, provisional_context=context(2), sign=g.sig[0],
                            joiners=[j], rng=g.rng)
    keys = joiner_private_keys(cp.tree, j, enc, 0, cp.path_secret_for(j))
    assert cp.tree.root in keys
    with pytest.raises(PrivateKeyMismatch):
        joiner_private_keys(cp.tree, j, enc, 0, bytes(32))
    # the joiner (leaf 3, node 6) is left out of the root's copath resolution [4, 6]
    assert cp.tree.resolution(5) == [4, 6]
    assert len(cp.update_path.nodes[-1].encrypted_path_secret) == 1


def test_update_path_is_a_wire_round_trip():
    _, _, cp = _pending_commit()
    assert UpdatePath.from_bytes(cp.update_path.to_bytes()) == cp.update_path
    assert isinstance(cp.update_path.nodes[0], UpdatePathNode)


def test_unmerged_leaf_under_an_untouched_parent_gets_later_paths():
    """Leaf 5 joins below node 11, which the committer's path does not reset: it must be listed
    as unmerged there, so that a later path encrypted to node 11 also reaches it."""
    g = Group.create("unmerged-path")
    g.commit(0, adds=7)
    g.commit(4, removes=[5])  # blanks 9, 11, 7; leaf 4's path then sets 11 and 7 (9 is filtered)
    assert g.tree.filtered_direct_path(4) == [11, 7]
    g.commit(0, adds=1)
    assert g.tree.leaf(5).credential.identity == b"m8"
    assert g.tree.parent_node(11).unmerged_leaves == (5,)
    cp = g.commit(1)
    assert cp.tree.resolution(11) == [11, 10]  # node 11 untouched by leaf 1's path
    assert cp.tree.root in g.keys[5]


# -- property: random commits keep every member in agreement ------------------------------------


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_random_commits_keep_members_in_agreement(data):
    g = Group.create(data.draw(st.integers(0, 2**32), label="seed"))
    for _ in range(data.draw(st.integers(1, 8), label="commits")):
        members = sorted(g.keys)
        committer = data.draw(st.sampled_from(members), label="committer")
        others = [m for m in members if m != committer]
        removes = data.draw(st.lists(st.sampled_from(others), unique=True, max_size=3), label="removes") \
            if others else []
        rest = [m for m in others if m not in removes]
        updates = data.draw(st.lists(st.sampled_from(rest), unique=True, max_size=2), label="updates") \
            if rest else []
        adds = data.draw(st.integers(0, 4), label="adds")
        cp = g.commit(committer, adds=adds, removes=removes, updates=updates)
        assert cp.tree.tree_hash() == cp.group_context.tree_hash
        cp.tree.verify_parent_hashes()
        assert RatchetTree.from_bytes(SUITE, cp.tree.to_bytes()) == cp.tree
        assert sorted(g.keys) == [int(i) for i, _ in cp.tree.members()]


# -- decoders and processors on hostile bytes: nothing but typed errors ---------------------------

_GROWN = grown_group("hostile")
_GROWN_BYTES = _GROWN.tree.to_bytes()
_CTX = context(_GROWN.epoch + 1)
_PATH_BYTES = create_update_path(_GROWN.tree, 1, provisional_context=_CTX, sign=_GROWN.sig[1],
                                 rng=SeededRng("hostile-path")).update_path.to_bytes()


def _mutate(data: bytes, edits: list[tuple[int, int]]) -> bytes:
    out = bytearray(data)
    for pos, value in edits:
        out[pos % len(out)] = value
    return bytes(out)


_EDITS = st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=4)


@settings(max_examples=150, deadline=None)
@given(st.one_of(st.binary(max_size=300), _EDITS.map(lambda e: _mutate(_GROWN_BYTES, e))))
def test_tree_decoder_raises_only_typed_errors(data):
    try:
        tree = RatchetTree.from_bytes(SUITE, data)
    except CryptoError:
        return
    tree.tree_hash()
    try:
        validate_ratchet_tree(tree, group_id=GROUP_ID)
    except CryptoError:
        pass


@settings(max_examples=100, deadline=None)
@given(_EDITS.map(lambda e: _mutate(_PATH_BYTES, e)))
def test_update_path_processing_raises_only_typed_errors(data):
    try:
        path = UpdatePath.from_bytes(data)
        process_update_path(_GROWN.tree, 1, path, _GROWN.keys[0], provisional_context=_CTX)
    except CryptoError:
        pass
