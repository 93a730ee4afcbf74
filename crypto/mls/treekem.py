"""TreeKEM: creating and processing UpdatePaths (RFC 9420 sections 7.4-7.6, 12.4.1-12.4.2, 12.4.3.1).

The group state machine uses four entry points:

* :func:`create_update_path` (the committer, on the tree after its proposals):
  new leaf key, path secrets up the filtered direct path, node keys
  ``DeriveKeyPair(DeriveSecret(path_secret, "node"))``, parent hashes set root
  first, the new leaf signed (source ``commit``), then each path secret
  encrypted to the resolution of the copath child without the joiners, with
  the provisional GroupContext as context. Returns a :class:`CommitPath`:
  UpdatePath, commit secret, new tree, private keys, and the path secret each
  joiner's GroupSecrets carries (:meth:`CommitPath.path_secret_for`).
* :func:`process_update_path` (every other member): the checks of 12.4.2,
  :func:`merge_update_path`, then the one path secret meant for us is
  decrypted, the rest derived, and each derived public key compared with the
  UpdatePath's. Returns a :class:`ProcessedPath`.
* :func:`merge_update_path` (public state only, e.g. a server that follows the
  public tree): apply the path and check the leaf's parent hash.
* :func:`joiner_private_keys` (a new member, from GroupSecrets.path_secret).

``commit_secret`` is ``DeriveSecret(path_secret[n], "path")``: one derivation
past the root's path secret (12.4.1, "path_secret[n+1]").

Private keys never live in :class:`RatchetTree`: :class:`TreePrivateKeys` maps
node indexes to HPKE private keys. Errors: :class:`UpdatePathError` subclasses
(length, leaf, key mismatch, key reuse, undecryptable), :class:`ParentHashMismatch`
(a leaf parent hash that does not match), :class:`PrivateKeyMismatch`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from .. import primitives as P
from ..errors import CryptoError, InternalError
from ..rng import Rng, system_rng
from .ciphersuite import CipherSuite
from .group_context import GroupContext
from .leaf_node import LeafNode, LeafNodeSource
from .ratchet_tree import RatchetTree
from .tree_errors import (
    ParentHashMismatch,
    PathSecretUndecryptable,
    PrivateKeyMismatch,
    UpdatePathKeyMismatch,
    UpdatePathKeyReused,
    UpdatePathLeafInvalid,
    UpdatePathLengthMismatch,
)
from .tree_math import LeafIndex, NodeIndex, common_ancestor, direct_path, subtree_leaves
from .tree_nodes import HPKECiphertext, ParentNode, UpdatePath, UpdatePathNode
from .tree_validation import verify_leaf_signature

__all__ = [
    "Signer",
    "leaf_signer",
    "hpke_public_key",
    "derive_node_key_pair",
    "next_path_secret",
    "TreePrivateKeys",
    "CommitPath",
    "ProcessedPath",
    "decrypt_update_path",
    "create_update_path",
    "merge_update_path",
    "process_update_path",
    "joiner_private_keys",
]

#: Signs an encoded LeafNodeTBS: returns SignWithLabel(sk, "LeafNodeTBS", tbs).
Signer = Callable[[bytes], bytes]

UPDATE_PATH_LABEL = "UpdatePathNode"


def leaf_signer(suite: CipherSuite, signature_private_key: bytes) -> Signer:
    """A :data:`Signer` over a signature private key held in memory."""
    return lambda tbs: suite.sign_with_label(signature_private_key, "LeafNodeTBS", tbs)


def hpke_public_key(suite: CipherSuite, private_key: bytes) -> bytes:
    """The HPKE public key of ``private_key`` (suites 1 and 3: DHKEM(X25519)).

    Raises :class:`~crypto.errors.InvalidKey` for a private key of the wrong length.
    """
    del suite  # every supported suite uses X25519
    return P.x25519_public_key(private_key)


def derive_node_key_pair(suite: CipherSuite, path_secret: bytes) -> tuple[bytes, bytes]:
    """``(node_priv, node_pub) = DeriveKeyPair(DeriveSecret(path_secret, "node"))`` (7.4)."""
    return suite.derive_hpke_key_pair(suite.derive_secret(path_secret, "node"))


def next_path_secret(suite: CipherSuite, path_secret: bytes) -> bytes:
    """``path_secret[n+1] = DeriveSecret(path_secret[n], "path")`` (7.4)."""
    return suite.derive_secret(path_secret, "path")


@dataclass
class TreePrivateKeys:
    """The HPKE private keys one member holds: its leaf's and some of its ancestors', by node."""

    leaf_index: LeafIndex
    keys: dict[NodeIndex, bytes] = field(default_factory=dict)

    @classmethod
    def for_leaf(cls, leaf_index: int, leaf_private_key: bytes) -> TreePrivateKeys:
        return cls(LeafIndex(leaf_index), {NodeIndex(2 * leaf_index): leaf_private_key})

    def copy(self) -> TreePrivateKeys:
        return TreePrivateKeys(self.leaf_index, dict(self.keys))

    def get(self, node: int) -> bytes | None:
        return self.keys.get(NodeIndex(node))

    def set(self, node: int, private_key: bytes) -> None:
        self.keys[NodeIndex(node)] = private_key

    def __contains__(self, node: object) -> bool:
        return node in self.keys

    def prune(self, tree: RatchetTree) -> None:
        """Forget keys of nodes that are blank or outside ``tree`` (after proposals blanked them)."""
        self.keys = {x: k for x, k in self.keys.items()
                     if x < tree.width and not tree.is_blank(x)}

    def check_consistent(self, tree: RatchetTree) -> None:
        """Raise :class:`PrivateKeyMismatch` unless every key's node is non-blank, on our own
        path, and holds the matching public key."""
        mine = {2 * self.leaf_index, *direct_path(2 * self.leaf_index, tree.n_leaves)}
        for x, sk in self.keys.items():
            if x not in mine:
                raise PrivateKeyMismatch(f"private key for node {int(x)}, not an ancestor")
            pk = tree.encryption_key(x)
            if pk is None or hpke_public_key(tree.suite, sk) != pk:
                raise PrivateKeyMismatch(f"private key for node {int(x)} does not match the tree")


@dataclass(frozen=True)
class CommitPath:
    """What a committer gets from :func:`create_update_path`."""

    update_path: UpdatePath
    commit_secret: bytes
    tree: RatchetTree
    private_keys: TreePrivateKeys
    group_context: GroupContext  # the provisional context, with the new tree hash
    path_secrets: dict[NodeIndex, bytes]  # by filtered-direct-path node

    def path_secret_for(self, joiner: int) -> bytes:
        """GroupSecrets.path_secret for the new member at leaf ``joiner`` (12.4.3.1): the path
        secret of the lowest common ancestor of the committer and the joiner."""
        sender = self.private_keys.leaf_index
        ancestor = common_ancestor(2 * sender, 2 * joiner)
        try:
            return self.path_secrets[ancestor]
        except KeyError:
            raise InternalError(f"node {int(ancestor)} is not on the committer's filtered "
                                "direct path (is the joiner in the tree?)") from None


@dataclass(frozen=True)
class ProcessedPath:
    """What a member gets from :func:`process_update_path`."""

    commit_secret: bytes
    tree: RatchetTree
    private_keys: TreePrivateKeys
    group_context: GroupContext  # the provisional context, with the new tree hash
    path_secret: bytes  # the one decrypted
    path_secret_node: NodeIndex  # the node it belongs to (lowest common ancestor with the sender)


def _provisional(tree: RatchetTree, context: GroupContext) -> GroupContext:
    return replace(context, tree_hash=tree.tree_hash())


def _path_leaf(template: LeafNode, encryption_key: bytes, parent_hash: bytes) -> LeafNode:
    return replace(template, encryption_key=encryption_key, leaf_node_source=LeafNodeSource.COMMIT,
                   lifetime=None, parent_hash=parent_hash, signature=b"")


def create_update_path(
    tree: RatchetTree,
    sender: int,
    *,
    provisional_context: GroupContext,
    sign: Signer | bytes,
    joiners: Iterable[int] = (),
    leaf_node: LeafNode | None = None,
    rng: Rng = system_rng,
) -> CommitPath:
    """Create the committer's UpdatePath on ``tree`` (the tree after this Commit's proposals;
    it is not modified).

    ``provisional_context`` is the new epoch's GroupContext; its ``tree_hash`` is replaced
    by the hash of the new tree before it is used for encryption. ``sign`` is a
    :data:`Signer` or the signature private key. ``joiners`` are the leaves added by this
    Commit (left out of every resolution). ``leaf_node`` gives the signature key,
    credential, capabilities and extensions of the new leaf (default: the current leaf).

    Raises :class:`InternalError` when the sender leaf is blank and no ``leaf_node`` is given.
    """
    suite = tree.suite
    sender = LeafIndex(sender)
    template = leaf_node if leaf_node is not None else tree.leaf(sender)
    if template is None:
        raise InternalError(f"leaf {int(sender)} is blank and no leaf_node was given")
    signer = leaf_signer(suite, sign) if isinstance(sign, bytes) else sign
    excluded = [int(j) for j in joiners]

    new = tree.copy()
    new.blank_direct_path(sender)
    keys = TreePrivateKeys(sender)
    leaf_priv, leaf_pub = suite.generate_hpke_key_pair(rng)
    keys.set(2 * sender, leaf_priv)

    pairs = new.filtered_direct_path_pairs(sender)
    path_secrets: dict[NodeIndex, bytes] = {}
    secret = rng(suite.hash_len)
    for p, _ in pairs:
        path_secrets[p] = secret
        node_priv, node_pub = derive_node_key_pair(suite, secret)
        keys.set(p, node_priv)
        new.set_parent(p, ParentNode(node_pub))
        secret = next_path_secret(suite, secret)
    commit_secret = secret

    leaf = _path_leaf(template, leaf_pub, new.set_path_parent_hashes(sender))
    tbs = leaf.tbs_bytes(provisional_context.group_id, sender)
    leaf = replace(leaf, signature=signer(tbs))
    new.set_leaf(sender, leaf)

    context = _provisional(new, provisional_context)
    ctx = context.to_bytes()
    nodes = []
    for p, s in pairs:
        cts = []
        for r in new.resolution(s, excluded):
            pk = new.encryption_key(r)
            if pk is None:
                raise InternalError(f"resolution node {int(r)} is blank")
            kem_output, ct = suite.encrypt_with_label(pk, UPDATE_PATH_LABEL, ctx, path_secrets[p], rng)
            cts.append(HPKECiphertext(kem_output, ct))
        nodes.append(UpdatePathNode(new.encryption_key(p) or b"", tuple(cts)))
    return CommitPath(UpdatePath(leaf, tuple(nodes)), commit_secret, new, keys, context, path_secrets)


def merge_update_path(tree: RatchetTree, sender: int, update_path: UpdatePath, *,
                      group_id: bytes) -> RatchetTree:
    """The tree after merging ``update_path`` from leaf ``sender`` (7.5); ``tree`` is unchanged.

    Checks (12.4.2): the leaf has source commit and a valid signature, a new encryption key,
    no public key of the path already in the tree (or twice in the path), one path node per
    filtered-direct-path node, and the leaf's parent_hash equal to the recomputed one.

    Raises :class:`UpdatePathLeafInvalid`, :class:`UpdatePathKeyReused`,
    :class:`UpdatePathLengthMismatch` or :class:`ParentHashMismatch`.
    """
    sender = LeafIndex(sender)
    leaf = update_path.leaf_node
    if leaf.leaf_node_source != LeafNodeSource.COMMIT:
        raise UpdatePathLeafInvalid(f"UpdatePath leaf has source {leaf.leaf_node_source.name}")
    try:
        verify_leaf_signature(tree, leaf, sender, group_id)
    except CryptoError as exc:
        raise UpdatePathLeafInvalid(f"UpdatePath leaf: {exc}") from None
    old = tree.leaf(sender)
    if old is not None and old.encryption_key == leaf.encryption_key:
        raise UpdatePathLeafInvalid("UpdatePath leaf keeps the old encryption key")
    path_keys = [leaf.encryption_key] + [n.encryption_key for n in update_path.nodes]
    if len(set(path_keys)) != len(path_keys):
        raise UpdatePathKeyReused("a public key appears twice in the UpdatePath")
    in_tree = {tree.encryption_key(x) for x in range(tree.width)}
    if any(k in in_tree for k in path_keys):
        raise UpdatePathKeyReused("a public key of the UpdatePath is already in the tree")
    pairs = tree.filtered_direct_path_pairs(sender)
    if len(pairs) != len(update_path.nodes):
        raise UpdatePathLengthMismatch(
            f"{len(update_path.nodes)} path nodes for a filtered direct path of {len(pairs)}")

    new = tree.copy()
    new.blank_direct_path(sender)
    for (p, _), node in zip(pairs, update_path.nodes, strict=True):
        new.set_parent(p, ParentNode(node.encryption_key))
    if new.set_path_parent_hashes(sender) != leaf.parent_hash:
        raise ParentHashMismatch(f"UpdatePath leaf {int(sender)}: parent_hash does not match the path")
    new.set_leaf(sender, leaf)
    return new


def process_update_path(
    tree: RatchetTree,
    sender: int,
    update_path: UpdatePath,
    private_keys: TreePrivateKeys,
    *,
    provisional_context: GroupContext,
    joiners: Iterable[int] = (),
) -> ProcessedPath:
    """Process another member's UpdatePath on ``tree`` (the tree after this Commit's proposals,
    in which our keys in ``private_keys`` are current). Neither argument is modified.

    ``provisional_context``'s ``tree_hash`` is replaced by the merged tree's hash; its
    group_id is the one the leaf signature covers. ``joiners``: leaves added by this Commit.

    Raises what :func:`merge_update_path` raises, :class:`UpdatePathLengthMismatch` (a node
    without one ciphertext per resolution member), :class:`PathSecretUndecryptable` and
    :class:`UpdatePathKeyMismatch`.
    """
    if LeafIndex(sender) == private_keys.leaf_index:
        raise InternalError("the committer keeps its CommitPath; it does not process its own path")
    new = merge_update_path(tree, sender, update_path, group_id=provisional_context.group_id)
    return decrypt_update_path(new, sender, update_path, private_keys,
                               provisional_context=provisional_context, joiners=joiners)


def decrypt_update_path(
    merged: RatchetTree,
    sender: int,
    update_path: UpdatePath,
    private_keys: TreePrivateKeys,
    *,
    provisional_context: GroupContext,
    joiners: Iterable[int] = (),
) -> ProcessedPath:
    """The private part of processing another member's UpdatePath: ``merged`` is the tree
    with the path already merged (:func:`merge_update_path`, or the public checks of
    :func:`crypto.mls.group_commit.merge_path_publicly`). Decrypts our path secret, checks
    the path's public keys against the secrets derived from it and returns the new private
    keys and commit secret. Neither argument is modified.

    Raises :class:`UpdatePathLengthMismatch`, :class:`PathSecretUndecryptable` and
    :class:`UpdatePathKeyMismatch`.
    """
    suite = merged.suite
    sender = LeafIndex(sender)
    me = private_keys.leaf_index
    if me == sender:
        raise InternalError("the committer keeps its CommitPath; it does not process its own path")
    excluded = [int(j) for j in joiners]
    new = merged
    pairs = new.filtered_direct_path_pairs(sender)
    resolutions = [new.resolution(s, excluded) for _, s in pairs]
    for (p, _), res, node in zip(pairs, resolutions, update_path.nodes, strict=True):
        if len(node.encrypted_path_secret) != len(res):
            raise UpdatePathLengthMismatch(f"node {int(p)}: {len(node.encrypted_path_secret)} "
                                           f"ciphertexts for a resolution of {len(res)}")
    k = next((k for k, (_, s) in enumerate(pairs) if me in subtree_leaves(s)), None)
    if k is None:
        raise PathSecretUndecryptable(f"leaf {int(me)} is under no copath node of the path")
    position = next((i for i, r in enumerate(resolutions[k]) if r in private_keys), None)
    if position is None:
        raise PathSecretUndecryptable(f"no private key for the resolution of node {int(pairs[k][1])}")
    context = _provisional(new, provisional_context)
    holder = resolutions[k][position]
    ct = update_path.nodes[k].encrypted_path_secret[position]
    try:
        secret = suite.decrypt_with_label(private_keys.keys[holder], UPDATE_PATH_LABEL,
                                          context.to_bytes(), ct.kem_output, ct.ciphertext)
    except CryptoError as exc:
        raise PathSecretUndecryptable(f"path secret for node {int(pairs[k][0])}: {exc.code}") from None

    keys = private_keys.copy()
    on_path = set(direct_path(2 * sender, new.n_leaves))
    keys.keys = {x: v for x, v in keys.keys.items() if x not in on_path}
    decrypted, secret_node = secret, pairs[k][0]
    for (p, _), node in zip(pairs[k:], update_path.nodes[k:], strict=True):
        node_priv, node_pub = derive_node_key_pair(suite, secret)
        if node_pub != node.encryption_key:
            raise UpdatePathKeyMismatch(f"node {int(p)}: derived public key differs from the path's")
        keys.set(p, node_priv)
        secret = next_path_secret(suite, secret)
    keys.prune(new)
    return ProcessedPath(secret, new, keys, context, decrypted, secret_node)


def joiner_private_keys(tree: RatchetTree, leaf_index: int, leaf_private_key: bytes,
                        committer: int | None = None, path_secret: bytes | None = None) -> TreePrivateKeys:
    """A new member's private keys (12.4.3.1): its leaf key and, when GroupSecrets carried a
    ``path_secret``, the keys of the lowest common ancestor with ``committer`` (the
    GroupInfo signer) and of each non-blank node above it, derived one path step each.

    Raises :class:`PrivateKeyMismatch` when a key does not match the tree's public key.
    """
    keys = TreePrivateKeys.for_leaf(leaf_index, leaf_private_key)
    if path_secret is not None:
        if committer is None:
            raise InternalError("a path_secret needs the committer's leaf index")
        ancestor = common_ancestor(2 * leaf_index, 2 * committer)
        nodes = [ancestor] + direct_path(ancestor, tree.n_leaves)
        secret = path_secret
        for x in nodes:
            if tree.is_blank(x):
                continue
            keys.set(x, derive_node_key_pair(tree.suite, secret)[0])
            secret = next_path_secret(tree.suite, secret)
    keys.check_consistent(tree)
    return keys
