"""KeyPackage generation, validation and reference (RFC 9420 sections 10, 10.1, 5.2, 7.3).

:func:`generate_key_package` builds and signs a KeyPackage with a basic
credential and returns it with its private keys. :func:`validate_key_package`
checks one received for a group (suite, version, leaf source, signatures,
extensions in capabilities, ``init_key != encryption_key``) and raises
:class:`KeyPackageInvalid` (or :class:`~crypto.errors.InvalidSignature` for a
bad signature). :func:`key_package_ref` is
``RefHash("MLS 1.0 KeyPackage Reference", KeyPackage)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..errors import CryptoError, InvalidSignature
from ..rng import Rng, system_rng
from .ciphersuite import CipherSuite
from .credential import Credential, CredentialType
from .extensions import Extension, ExtensionType, check_unique_extensions
from .group_context import PROTOCOL_VERSION_MLS10
from .key_package import KeyPackage
from .leaf_node import Capabilities, LeafNode, LeafNodeSource, Lifetime
from .tree_validation import DEFAULT_EXTENSION_TYPES

__all__ = [
    "KeyPackagePrivate",
    "KeyPackageInvalid",
    "default_capabilities",
    "generate_key_package",
    "validate_key_package",
    "key_package_ref",
    "is_last_resort",
    "DEFAULT_LIFETIME",
]

#: A lifetime that never expires (Confide checks time at the application layer).
DEFAULT_LIFETIME = Lifetime(0, 2**64 - 1)


class KeyPackageInvalid(CryptoError):
    """A KeyPackage breaks a rule of RFC 9420 section 10.1 (suite, version, source, keys)."""

    code = "mls_key_package_invalid"


@dataclass(frozen=True, slots=True)
class KeyPackagePrivate:
    """The private halves of a KeyPackage's keys."""

    init_priv: bytes = field(repr=False)
    encryption_priv: bytes = field(repr=False)
    signature_priv: bytes = field(repr=False)


def default_capabilities(suite: CipherSuite, extensions: tuple[int, ...] = ()) -> Capabilities:
    """mls10, this suite, basic credentials, and the given non-default extension types."""
    return Capabilities(
        versions=(PROTOCOL_VERSION_MLS10,),
        cipher_suites=(suite.id,),
        extensions=tuple(extensions),
        proposals=(),
        credentials=(int(CredentialType.BASIC),),
    )


def generate_key_package(
    suite: CipherSuite,
    identity: bytes,
    rng: Rng = system_rng,
    *,
    capabilities: Capabilities | None = None,
    lifetime: Lifetime | None = None,
    last_resort: bool = False,
    signature_priv: bytes | None = None,
) -> tuple[KeyPackage, KeyPackagePrivate]:
    """A fresh signed KeyPackage for ``identity`` (basic credential) and its private keys.

    ``signature_priv`` reuses an existing signing key (a client's long-term key);
    otherwise a fresh one is drawn from ``rng``. ``last_resort`` adds the
    last_resort extension (0x000A) and lists it in the capabilities.
    """
    if signature_priv is None:
        signature_priv, signature_pub = suite.generate_signature_key_pair(rng)
    else:
        signature_pub = suite.signature_public_key(signature_priv)
    init_priv, init_pub = suite.generate_hpke_key_pair(rng)
    enc_priv, enc_pub = suite.generate_hpke_key_pair(rng)
    extensions: tuple[Extension, ...] = ()
    caps = capabilities or default_capabilities(suite)
    if last_resort:
        extensions = (Extension(ExtensionType.LAST_RESORT, b""),)
        if ExtensionType.LAST_RESORT not in caps.extensions:
            caps = replace(caps, extensions=(*caps.extensions, int(ExtensionType.LAST_RESORT)))
    leaf = LeafNode(
        encryption_key=enc_pub,
        signature_key=signature_pub,
        credential=Credential.basic(identity),
        capabilities=caps,
        leaf_node_source=LeafNodeSource.KEY_PACKAGE,
        lifetime=lifetime or DEFAULT_LIFETIME,
    )
    leaf = replace(leaf, signature=suite.sign_with_label(signature_priv, "LeafNodeTBS", leaf.tbs_bytes()))
    kp = KeyPackage(suite.id, init_pub, leaf, extensions)
    kp = replace(kp, signature=suite.sign_with_label(signature_priv, "KeyPackageTBS", kp.tbs_bytes()))
    return kp, KeyPackagePrivate(init_priv, enc_priv, signature_priv)


def is_last_resort(kp: KeyPackage) -> bool:
    return any(e.extension_type == ExtensionType.LAST_RESORT for e in kp.extensions)


def key_package_ref(suite: CipherSuite, kp: KeyPackage) -> bytes:
    """KeyPackageRef (section 5.2)."""
    return suite.ref_hash("MLS 1.0 KeyPackage Reference", kp.to_bytes())


def validate_key_package(suite: CipherSuite, kp: KeyPackage, *, now: int | None = None) -> None:
    """Check ``kp`` for a group of ``suite`` (RFC 9420 section 10.1 and the KeyPackage part of 7.3).

    Raises :class:`KeyPackageInvalid` for a rule broken, and
    :class:`~crypto.errors.InvalidSignature` when the LeafNode or KeyPackage
    signature does not verify.
    """
    if kp.version != PROTOCOL_VERSION_MLS10:
        raise KeyPackageInvalid(f"KeyPackage version {kp.version}")
    if kp.cipher_suite != suite.id:
        raise KeyPackageInvalid(f"KeyPackage suite {kp.cipher_suite}, group suite {suite.id}")
    leaf = kp.leaf_node
    if leaf.leaf_node_source != LeafNodeSource.KEY_PACKAGE:
        raise KeyPackageInvalid("KeyPackage leaf_node_source is not key_package")
    if kp.init_key == leaf.encryption_key:
        raise KeyPackageInvalid("init_key equals the leaf encryption_key")
    if len(kp.init_key) != 32 or len(leaf.encryption_key) != 32 or len(leaf.signature_key) != 32:
        raise KeyPackageInvalid("key of the wrong length for the suite")
    try:
        check_unique_extensions(kp.extensions)
        check_unique_extensions(leaf.extensions)
    except CryptoError as exc:
        raise KeyPackageInvalid(str(exc)) from None
    caps = leaf.capabilities
    if suite.id not in caps.cipher_suites or PROTOCOL_VERSION_MLS10 not in caps.versions:
        raise KeyPackageInvalid("capabilities do not list the group's suite and version")
    if int(leaf.credential.credential_type) not in caps.credentials:
        raise KeyPackageInvalid("capabilities do not list the leaf's own credential type")
    for ext in (*kp.extensions, *leaf.extensions):
        if ext.extension_type not in DEFAULT_EXTENSION_TYPES and ext.extension_type not in caps.extensions:
            raise KeyPackageInvalid(f"extension {ext.extension_type:#06x} not in capabilities")
    if now is not None and leaf.lifetime is not None and not (
            leaf.lifetime.not_before <= now <= leaf.lifetime.not_after):
        raise KeyPackageInvalid("KeyPackage lifetime does not contain now")
    try:
        suite.verify_with_label(leaf.signature_key, "LeafNodeTBS", leaf.tbs_bytes(), leaf.signature)
        suite.verify_with_label(leaf.signature_key, "KeyPackageTBS", kp.tbs_bytes(), kp.signature)
    except InvalidSignature:
        raise
    except CryptoError as exc:
        raise InvalidSignature(f"KeyPackage signature: {exc.code}") from None
