"""GroupInfo signing, Welcome creation and opening (RFC 9420 sections 12.4.3, 12.4.3.1).

:func:`sign_group_info` and :func:`verify_group_info` cover ``GroupInfoTBS``.
:func:`build_welcome` encrypts the GroupInfo under the welcome key and nonce and
one GroupSecrets per new member to its KeyPackage's ``init_key``, with the
encrypted GroupInfo as HPKE context. :func:`open_welcome` is the joiner's side:
find its entry (:class:`WelcomeNotForUs`), decrypt the GroupSecrets and the
GroupInfo (:class:`~crypto.errors.DecryptError`, decode errors).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from ..errors import CryptoError, InvalidSignature
from ..rng import Rng, system_rng
from .ciphersuite import CipherSuite
from .extensions import ExtensionType, find_extension
from .group_errors import MissingRatchetTree, WelcomeNotForUs, WelcomeSuiteMismatch
from .key_package import KeyPackage
from .key_package_gen import KeyPackagePrivate, key_package_ref
from .key_schedule import psk_secret, welcome_key_nonce, welcome_secret
from .proposals import PreSharedKeyID
from .ratchet_tree import RatchetTree
from .tree_nodes import HPKECiphertext
from .welcome import EncryptedGroupSecrets, GroupInfo, GroupSecrets, PathSecret, Welcome

__all__ = ["sign_group_info", "verify_group_info", "group_info_tree", "build_welcome", "open_welcome", "PskLookup",
           "compute_psk_secret"]

#: Returns the PSK named by a PreSharedKeyID, or raises UnknownPsk.
PskLookup = Callable[[PreSharedKeyID], bytes]


def compute_psk_secret(suite: CipherSuite, psks: Sequence[PreSharedKeyID], lookup: PskLookup) -> bytes | None:
    """``psk_secret`` (8.4) of ``psks`` in order, None when there are none (all-zero)."""
    if not psks:
        return None
    return psk_secret(suite, [(p.to_bytes(), lookup(p)) for p in psks])


def sign_group_info(suite: CipherSuite, signature_priv: bytes, group_info: GroupInfo) -> GroupInfo:
    return replace(group_info, signature=suite.sign_with_label(
        signature_priv, "GroupInfoTBS", group_info.tbs_bytes()))


def verify_group_info(suite: CipherSuite, tree: RatchetTree, group_info: GroupInfo) -> None:
    """Verify the GroupInfo signature with the signer's leaf in ``tree``.

    Raises :class:`~crypto.errors.InvalidSignature` when the signer leaf is blank or
    absent, or the signature does not verify.
    """
    signer = group_info.signer
    leaf = tree.leaf(signer) if 0 <= signer < tree.n_leaves else None
    if leaf is None:
        raise InvalidSignature(f"GroupInfo signer {signer} is not a member")
    try:
        suite.verify_with_label(leaf.signature_key, "GroupInfoTBS", group_info.tbs_bytes(),
                                group_info.signature)
    except InvalidSignature:
        raise
    except CryptoError as exc:
        raise InvalidSignature(f"GroupInfo signature: {exc.code}") from None


def group_info_tree(suite: CipherSuite, group_info: GroupInfo, ratchet_tree: RatchetTree | None) -> RatchetTree:
    """The tree of ``group_info``'s ratchet_tree extension, else a copy of ``ratchet_tree``
    (given out of band); raises :class:`MissingRatchetTree` without either, and decode errors."""
    ext = find_extension(group_info.extensions, ExtensionType.RATCHET_TREE)
    if ext is not None:
        return RatchetTree.from_bytes(suite, ext.extension_data)
    if ratchet_tree is not None:
        return ratchet_tree.copy()
    raise MissingRatchetTree("no ratchet_tree extension and no tree given")


def build_welcome(
    suite: CipherSuite,
    group_info: GroupInfo,
    joiner_secret: bytes,
    new_members: Sequence[tuple[KeyPackage, bytes | None]],
    rng: Rng = system_rng,
    *,
    psks: Sequence[PreSharedKeyID] = (),
    psk: bytes | None = None,
) -> Welcome:
    """A Welcome for ``new_members``: (KeyPackage, path secret or None) pairs; ``psks`` are
    the Commit's PreSharedKeyIDs in order and ``psk`` their psk_secret."""
    key, nonce = welcome_key_nonce(suite, welcome_secret(suite, joiner_secret, psk))
    encrypted_group_info = suite.aead_seal(key, nonce, b"", group_info.to_bytes())
    entries = []
    for kp, path_secret in new_members:
        gs = GroupSecrets(joiner_secret, None if path_secret is None else PathSecret(path_secret),
                          tuple(psks))
        kem_output, ct = suite.encrypt_with_label(kp.init_key, "Welcome", encrypted_group_info,
                                                  gs.to_bytes(), rng)
        entries.append(EncryptedGroupSecrets(key_package_ref(suite, kp), HPKECiphertext(kem_output, ct)))
    return Welcome(suite.id, tuple(entries), encrypted_group_info)


def open_welcome(
    suite: CipherSuite, welcome: Welcome, key_package: KeyPackage, private: KeyPackagePrivate,
    lookup: PskLookup,
) -> tuple[GroupSecrets, GroupInfo, bytes | None]:
    """The joiner's GroupSecrets, the (not yet verified) GroupInfo and the psk_secret.

    Raises :class:`WelcomeSuiteMismatch`, :class:`WelcomeNotForUs`, what ``lookup`` raises
    (UnknownPsk), DecryptError and decode errors.
    """
    if welcome.cipher_suite != key_package.cipher_suite or suite.id != key_package.cipher_suite:
        raise WelcomeSuiteMismatch(f"Welcome suite {welcome.cipher_suite}, KeyPackage suite "
                                   f"{key_package.cipher_suite}")
    entry = welcome.secrets_for(key_package_ref(suite, key_package))
    if entry is None:
        raise WelcomeNotForUs("no EncryptedGroupSecrets for this KeyPackage")
    ct = entry.encrypted_group_secrets
    plaintext = suite.decrypt_with_label(private.init_priv, "Welcome", welcome.encrypted_group_info,
                                         ct.kem_output, ct.ciphertext)
    secrets = GroupSecrets.from_bytes(plaintext)
    psk = compute_psk_secret(suite, secrets.psks, lookup)
    key, nonce = welcome_key_nonce(suite, welcome_secret(suite, secrets.joiner_secret, psk))
    group_info = GroupInfo.from_bytes(suite.aead_open(key, nonce, b"", welcome.encrypted_group_info))
    if group_info.group_context.cipher_suite != key_package.cipher_suite:
        raise WelcomeSuiteMismatch("GroupInfo suite differs from the KeyPackage's")
    return secrets, group_info, psk
