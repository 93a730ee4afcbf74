"""Typed errors of the ratchet tree, its validation and TreeKEM (RFC 9420 sections 7 and 12.4.3.3).

Each rule a received tree or UpdatePath can break has its own class and stable
``code``. The validation rules derive from :class:`TreeValidationError`, the
TreeKEM rules from :class:`UpdatePathError`; both are
:class:`~crypto.errors.CryptoError`, so a caller that only wants "the peer sent
a bad tree" catches one class.
"""

from __future__ import annotations

from ..errors import CryptoError

__all__ = [
    "RatchetTreeError",
    "LeafIndexOutOfRange",
    "BlankLeafError",
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
    "UpdatePathError",
    "UpdatePathLengthMismatch",
    "UpdatePathLeafInvalid",
    "UpdatePathKeyMismatch",
    "UpdatePathKeyReused",
    "PathSecretUndecryptable",
    "PrivateKeyMismatch",
]


class RatchetTreeError(CryptoError):
    """An operation names a leaf or node the tree does not have in the needed state."""

    code = "mls_ratchet_tree"


class LeafIndexOutOfRange(RatchetTreeError):
    """A leaf index is not below the tree's number of leaves."""

    code = "mls_leaf_index_out_of_range"


class BlankLeafError(RatchetTreeError):
    """An operation needs a member at a leaf that is blank (e.g. Update or Remove of a blank leaf)."""

    code = "mls_blank_leaf"


class TreeValidationError(CryptoError):
    """A received ratchet tree breaks a rule of RFC 9420 sections 7.3, 7.9.2 or 12.4.3.3."""

    code = "mls_tree_invalid"


class TreeHashMismatch(TreeValidationError):
    """The tree's root tree hash differs from the GroupContext's ``tree_hash``."""

    code = "mls_tree_hash_mismatch"


class ParentHashMismatch(TreeValidationError):
    """A non-blank parent node is not parent-hash valid, or a leaf's parent_hash does not match."""

    code = "mls_parent_hash_mismatch"


class LeafSignatureInvalid(TreeValidationError):
    """A leaf's LeafNodeTBS signature does not verify under its signature_key."""

    code = "mls_leaf_signature_invalid"


class DuplicateEncryptionKey(TreeValidationError):
    """Two non-blank nodes of the tree carry the same HPKE encryption key."""

    code = "mls_duplicate_encryption_key"


class DuplicateSignatureKey(TreeValidationError):
    """Two leaves of the tree carry the same signature key."""

    code = "mls_duplicate_signature_key"


class UnmergedLeavesInvalid(TreeValidationError):
    """An unmerged_leaves list is unsorted, names a blank leaf or one outside the node's
    subtree, or is not repeated at every non-blank parent between the leaf and the node."""

    code = "mls_unmerged_leaves_invalid"


class UnsupportedCredential(TreeValidationError):
    """A leaf's credential type is not listed in the capabilities of some member (itself included)."""

    code = "mls_unsupported_credential"


class UnsupportedLeafExtension(TreeValidationError):
    """A leaf carries a non-default extension that its own capabilities do not list."""

    code = "mls_unsupported_leaf_extension"


class LeafLifetimeInvalid(TreeValidationError):
    """A key_package leaf's lifetime does not contain the given time."""

    code = "mls_leaf_lifetime_invalid"


class UpdatePathError(CryptoError):
    """An UpdatePath cannot be applied or processed (RFC 9420 sections 7.6 and 12.4.2)."""

    code = "mls_update_path_invalid"


class UpdatePathLengthMismatch(UpdatePathError):
    """The UpdatePath has not one node per filtered-direct-path node, or a node has not one
    ciphertext per member of the copath child's resolution."""

    code = "mls_update_path_length_mismatch"


class UpdatePathLeafInvalid(UpdatePathError):
    """The UpdatePath's leaf_node is not a validly signed commit-source leaf, or keeps the old key."""

    code = "mls_update_path_leaf_invalid"


class UpdatePathKeyMismatch(UpdatePathError):
    """A public key derived from the decrypted path secret differs from the UpdatePath's."""

    code = "mls_update_path_key_mismatch"


class UpdatePathKeyReused(UpdatePathError):
    """A public key of the UpdatePath already appears in the tree."""

    code = "mls_update_path_key_reused"


class PathSecretUndecryptable(UpdatePathError):
    """No private key of ours opens the path secret meant for us (or no ciphertext is ours)."""

    code = "mls_path_secret_undecryptable"


class PrivateKeyMismatch(UpdatePathError):
    """A private key we hold (or derived from a path secret) does not match the tree's public key."""

    code = "mls_private_key_mismatch"
