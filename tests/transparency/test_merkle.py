"""RFC 9162 Merkle proofs against a brute-force reference, every size up to 130.

The reference below implements MTH, PATH and PROOF literally as RFC 9162
sections 2.1.1, 2.1.3.1 and 2.1.4.1 define them, over actual data, with no
shared code with :mod:`crypto.merkle` beyond SHA-256. Every index and every
pair of sizes is checked, then each proof is mutated (wrong leaf, index or size
off by one, flipped bit, one hash short or long) and must be rejected.
"""

from __future__ import annotations

import hashlib
from functools import cache

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crypto import merkle
from crypto.merkle import (
    EMPTY_ROOT,
    Frontier,
    InvalidProof,
    InvalidTreeSize,
    MerkleError,
    MerkleNode,
    RootMismatch,
)

N = 130
DATA = [f"entry {i}".encode() for i in range(N + 1)]


def _h(b: bytes) -> bytes:
    return hashlib.sha256(b).digest()


@cache
def mth(lo: int, hi: int) -> bytes:
    n = hi - lo
    if n == 0:
        return _h(b"")
    if n == 1:
        return _h(b"\x00" + DATA[lo])
    k = 1
    while k * 2 < n:
        k *= 2
    return _h(b"\x01" + mth(lo, lo + k) + mth(lo + k, hi))


def ref_path(m: int, lo: int, hi: int) -> list[bytes]:
    n = hi - lo
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return ref_path(m, lo, lo + k) + [mth(lo + k, hi)]
    return ref_path(m - k, lo + k, hi) + [mth(lo, lo + k)]


def ref_subproof(m: int, lo: int, hi: int, b: bool) -> list[bytes]:
    n = hi - lo
    if m == n:
        return [] if b else [mth(lo, hi)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return ref_subproof(m, lo, lo + k, b) + [mth(lo + k, hi)]
    return ref_subproof(m - k, lo + k, hi, False) + [mth(lo, lo + k)]


class DictReader:
    """Stored hashes of the full 130-leaf tree, read by node."""

    def __init__(self) -> None:
        self.store: dict[MerkleNode, bytes] = {}
        f = Frontier()
        for d in DATA[:N]:
            for node, h in f.append(merkle.leaf_hash(d)):
                self.store[node] = h
        self.reads = 0

    def read_hashes(self, nodes):
        self.reads += 1
        return [self.store[n] for n in nodes]


READER = DictReader()


def flip(b: bytes, bit: int = 0) -> bytes:
    return bytes([b[0] ^ (1 << bit)]) + b[1:]


def test_known_answers():
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert merkle.leaf_hash(b"").hex() == (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    )
    assert merkle.tree_hash([]) == EMPTY_ROOT


def test_tree_hash_every_size():
    for n in range(N + 1):
        assert merkle.tree_hash(merkle.leaf_hash(d) for d in DATA[:n]) == mth(0, n)


def test_stored_nodes_are_subtree_hashes():
    for (level, index), h in READER.store.items():
        assert h == mth(index << level, (index + 1) << level)
    # every complete subtree of the 130-leaf tree is stored: sum over levels of floor(130 / 2^l)
    assert len(READER.store) == sum(N >> lv for lv in range(8))


def test_inclusion_every_index_and_size():
    for n in range(1, N + 1):
        root = mth(0, n)
        for m in range(n):
            leaf = merkle.leaf_hash(DATA[m])
            proof = merkle.inclusion_proof(m, n, READER)
            assert proof == ref_path(m, 0, n), (m, n)
            merkle.verify_inclusion(m, n, leaf, proof, root)
            # negatives
            with pytest.raises(RootMismatch):
                merkle.verify_inclusion(m, n, merkle.leaf_hash(DATA[m] + b"x"), proof, root)
            with pytest.raises(MerkleError):
                merkle.verify_inclusion(m + 1, n, leaf, proof, root)
            if m > 0:
                with pytest.raises(MerkleError):
                    merkle.verify_inclusion(m - 1, n, leaf, proof, root)
            with pytest.raises(MerkleError):
                merkle.verify_inclusion(m, n + 1, leaf, proof, mth(0, n + 1))
            if n > m + 1:
                with pytest.raises(MerkleError):
                    merkle.verify_inclusion(m, n - 1, leaf, proof, mth(0, n - 1))
            with pytest.raises(InvalidProof):
                merkle.verify_inclusion(m, n, leaf, proof + [mth(0, 1)], root)
            if proof:
                with pytest.raises(InvalidProof):
                    merkle.verify_inclusion(m, n, leaf, proof[:-1], root)
                i = (m * 7 + n) % len(proof)
                bad = list(proof)
                bad[i] = flip(bad[i], (m + n) % 8)
                with pytest.raises(RootMismatch):
                    merkle.verify_inclusion(m, n, leaf, bad, root)
                with pytest.raises(InvalidProof):
                    merkle.verify_inclusion(m, n, leaf, proof[:-1] + [proof[-1] + b"\x00"], root)
            with pytest.raises(RootMismatch):
                merkle.verify_inclusion(m, n, leaf, proof, flip(root))


def test_consistency_every_pair():
    for n in range(1, N + 1):
        new_root = mth(0, n)
        for m in range(0, n + 1):
            old_root = mth(0, m)
            proof = merkle.consistency_proof(m, n, READER)
            expected = ref_subproof(m, 0, n, True) if 0 < m < n else []
            assert proof == expected, (m, n)
            merkle.verify_consistency(m, n, old_root, new_root, proof)
            if m == 0:
                with pytest.raises(InvalidProof):
                    merkle.verify_consistency(0, n, old_root, new_root, [new_root])
                continue
            if m == n:
                with pytest.raises(RootMismatch):
                    merkle.verify_consistency(m, n, old_root, flip(new_root), proof)
                with pytest.raises(InvalidProof):
                    merkle.verify_consistency(m, n, old_root, new_root, [old_root])
                continue
            with pytest.raises(RootMismatch):
                merkle.verify_consistency(m, n, flip(old_root), new_root, proof)
            with pytest.raises(RootMismatch):
                merkle.verify_consistency(m, n, old_root, flip(new_root), proof)
            with pytest.raises(MerkleError):
                merkle.verify_consistency(m + 1, n, mth(0, m + 1), new_root, proof)
            with pytest.raises(MerkleError):
                merkle.verify_consistency(m - 1, n, mth(0, m - 1), new_root, proof)
            with pytest.raises(MerkleError):
                merkle.verify_consistency(m, n + 1, old_root, mth(0, n + 1), proof)
            if n - 1 > m:
                with pytest.raises(MerkleError):
                    merkle.verify_consistency(m, n - 1, old_root, mth(0, n - 1), proof)
            with pytest.raises(InvalidProof):
                merkle.verify_consistency(m, n, old_root, new_root, proof + [mth(0, 1)])
            with pytest.raises(MerkleError):
                merkle.verify_consistency(m, n, old_root, new_root, proof[:-1])
            i = (m * 5 + n) % len(proof)
            bad = list(proof)
            bad[i] = flip(bad[i], (m + n) % 8)
            with pytest.raises(RootMismatch):
                merkle.verify_consistency(m, n, old_root, new_root, bad)


def test_invalid_requests_and_sizes():
    with pytest.raises(InvalidTreeSize):
        merkle.inclusion_plan(5, 5)
    with pytest.raises(InvalidTreeSize):
        merkle.inclusion_plan(-1, 5)
    with pytest.raises(InvalidTreeSize):
        merkle.consistency_plan(6, 5)
    with pytest.raises(InvalidProof):
        merkle.root_from_inclusion_proof(0, 0, EMPTY_ROOT, [])
    with pytest.raises(InvalidProof):
        merkle.verify_consistency(5, 4, mth(0, 5), mth(0, 4), [])
    with pytest.raises(InvalidProof):
        merkle.verify_consistency(3, 4, mth(0, 3), mth(0, 4), [])
    with pytest.raises(InvalidProof):
        merkle.verify_inclusion(0, 1 << 70, EMPTY_ROOT, [EMPTY_ROOT] * 65, EMPTY_ROOT)
    with pytest.raises(InvalidProof):
        merkle.ProofPlan.of_ranges([(0, 3)]).assemble([EMPTY_ROOT])


def test_plan_reads_in_one_call():
    before = READER.reads
    merkle.consistency_proof(37, 129, READER)
    assert READER.reads == before + 1


def test_frontier_restores_from_range_nodes():
    f = Frontier()
    for d in DATA[:77]:
        f.append(merkle.leaf_hash(d))
    nodes = merkle.range_nodes(0, 77)
    g = Frontier(77, [READER.store[n] for n in nodes])
    assert g.root() == f.root() == mth(0, 77)
    with pytest.raises(InvalidTreeSize):
        Frontier(77, [])


@given(
    st.integers(1, 1 << 40),
    st.data(),
    st.lists(st.binary(min_size=0, max_size=40), max_size=70),
)
def test_random_proofs_never_raise_untyped(size, data, proof):
    index = data.draw(st.integers(0, size + 2))
    old = data.draw(st.integers(0, size + 2))
    for fn in (
        lambda: merkle.verify_inclusion(index, size, EMPTY_ROOT, proof, EMPTY_ROOT),
        lambda: merkle.verify_consistency(old, size, EMPTY_ROOT, EMPTY_ROOT, proof),
    ):
        try:
            fn()
        except MerkleError:
            pass
