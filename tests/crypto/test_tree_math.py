"""Tree math beyond the IETF vectors (which run in test_vectors.py): index types, paths, ancestors."""

from __future__ import annotations

import pytest

from crypto.mls import tree_math as tm


def test_leaf_and_node_indexes_convert():
    assert tm.LeafIndex(3).node() == 6
    assert tm.NodeIndex(6).leaf() == 3
    with pytest.raises(tm.TreeMathError):
        tm.NodeIndex(5).leaf()


def test_direct_path_and_copath():
    # 4 leaves: nodes 0..6, root 3
    assert tm.direct_path(0, 4) == [1, 3]
    assert tm.copath(0, 4) == [2, 5]
    assert tm.direct_path(3, 4) == []


@pytest.mark.parametrize("n", [1, 2, 4, 8, 16])
def test_common_ancestor_is_lowest_shared_ancestor(n):
    for a in range(tm.node_width(n)):
        for b in range(tm.node_width(n)):
            anc_a = [a] + [int(x) for x in tm.direct_path(a, n)]
            anc_b = set([b] + [int(x) for x in tm.direct_path(b, n)])
            expected = next(x for x in anc_a if x in anc_b)
            assert tm.common_ancestor(a, b) == expected


def test_subtree_leaves():
    assert list(tm.subtree_leaves(3)) == [0, 1, 2, 3]
    assert list(tm.subtree_leaves(4)) == [2]
    assert list(tm.subtree_leaves(5)) == [2, 3]
