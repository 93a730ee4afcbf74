"""MLS cipher suites 1 and 3 and the labelled operations of RFC 9420 section 5.

=====  ==============================================================
  1    MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519 (mandatory)
  3    MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519 (Confide's default)
=====  ==============================================================

Both use DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, SHA-256 and Ed25519; they
differ only in the AEAD. :func:`get_suite` raises
:class:`~crypto.errors.UnsupportedCipherSuite` for any other identifier.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .. import primitives as P
from ..codec import Writer
from ..errors import UnsupportedCipherSuite
from ..hpke import AeadId, Hpke
from ..rng import Rng, system_rng

__all__ = [
    "CipherSuite",
    "get_suite",
    "SUPPORTED_SUITES",
    "MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519",
    "MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519",
    "DEFAULT_SUITE",
]

MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519 = 1
MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519 = 3
DEFAULT_SUITE = MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519
_LABEL_PREFIX = b"MLS 1.0 "


def _label(label: str | bytes) -> bytes:
    return _LABEL_PREFIX + (label.encode() if isinstance(label, str) else label)


def _two_opaques(a: bytes, b: bytes) -> bytes:
    w = Writer()
    w.opaque(a)
    w.opaque(b)
    return w.getvalue()


@dataclass(frozen=True, slots=True)
class CipherSuite:
    """One MLS cipher suite: sizes, primitives and the labelled derivations."""

    id: int
    name: str
    aead_id: AeadId
    aead_key_len: int
    _seal: Callable[[bytes, bytes, bytes, bytes], bytes] = field(repr=False)
    _open: Callable[[bytes, bytes, bytes, bytes], bytes] = field(repr=False)
    hpke: Hpke = field(repr=False)
    hash_len: int = 32
    aead_nonce_len: int = 12
    signature_len: int = 64

    # -- hash and KDF ---------------------------------------------------------

    def hash(self, data: bytes) -> bytes:
        return P.sha256(data)

    def mac(self, key: bytes, data: bytes) -> bytes:
        return P.hmac_sha256(key, data)

    def extract(self, salt: bytes, ikm: bytes) -> bytes:
        return P.hkdf_extract(salt, ikm)

    def expand(self, prk: bytes, info: bytes, length: int) -> bytes:
        return P.hkdf_expand(prk, info, length)

    def ref_hash(self, label: str | bytes, value: bytes) -> bytes:
        """RefHash (section 5.2): the label is used as given, without the "MLS 1.0 " prefix."""
        lab = label.encode() if isinstance(label, str) else label
        return P.sha256(_two_opaques(lab, value))

    def expand_with_label(self, secret: bytes, label: str | bytes, context: bytes, length: int) -> bytes:
        w = Writer()
        w.u16(length)
        w.opaque(_label(label))
        w.opaque(context)
        return P.hkdf_expand(secret, w.getvalue(), length)

    def derive_secret(self, secret: bytes, label: str | bytes) -> bytes:
        return self.expand_with_label(secret, label, b"", self.hash_len)

    def derive_tree_secret(self, secret: bytes, label: str | bytes, generation: int, length: int) -> bytes:
        return self.expand_with_label(secret, label, generation.to_bytes(4, "big"), length)

    # -- AEAD -----------------------------------------------------------------

    def aead_seal(self, key: bytes, nonce: bytes, aad: bytes, plaintext: bytes) -> bytes:
        return self._seal(key, nonce, aad, plaintext)

    def aead_open(self, key: bytes, nonce: bytes, aad: bytes, ciphertext: bytes) -> bytes:
        """Raises :class:`~crypto.errors.DecryptError` when authentication fails."""
        return self._open(key, nonce, aad, ciphertext)

    # -- signatures -------------------------------------------------------------

    def signature_public_key(self, private_key: bytes) -> bytes:
        return P.ed25519_public_key(private_key)

    def generate_signature_key_pair(self, rng: Rng = system_rng) -> tuple[bytes, bytes]:
        sk = rng(32)
        return sk, P.ed25519_public_key(sk)

    def sign_with_label(self, private_key: bytes, label: str | bytes, content: bytes) -> bytes:
        return P.ed25519_sign(private_key, _two_opaques(_label(label), content))

    def verify_with_label(self, public_key: bytes, label: str | bytes, content: bytes, signature: bytes) -> None:
        """Raises :class:`~crypto.errors.InvalidSignature` unless the signature verifies."""
        P.ed25519_verify(public_key, _two_opaques(_label(label), content), signature)

    # -- public-key encryption ------------------------------------------------------

    def derive_hpke_key_pair(self, ikm: bytes) -> tuple[bytes, bytes]:
        return self.hpke.derive_key_pair(ikm)

    def generate_hpke_key_pair(self, rng: Rng = system_rng) -> tuple[bytes, bytes]:
        return self.hpke.derive_key_pair(rng(32))

    def encrypt_with_label(
        self, public_key: bytes, label: str | bytes, context: bytes, plaintext: bytes, rng: Rng = system_rng
    ) -> tuple[bytes, bytes]:
        """EncryptWithLabel (section 5.1.3): returns ``(kem_output, ciphertext)``."""
        info = _two_opaques(_label(label), context)
        return self.hpke.seal(public_key, info, b"", plaintext, rng=rng)

    def decrypt_with_label(
        self, private_key: bytes, label: str | bytes, context: bytes, kem_output: bytes, ciphertext: bytes
    ) -> bytes:
        """Raises :class:`~crypto.errors.DecryptError` (or InvalidKey) when the ciphertext does not open."""
        info = _two_opaques(_label(label), context)
        return self.hpke.open(kem_output, private_key, info, b"", ciphertext)


_SUITES = {
    MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519: CipherSuite(
        id=1,
        name="MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519",
        aead_id=AeadId.AES_128_GCM,
        aead_key_len=16,
        _seal=P.aes128gcm_seal,
        _open=P.aes128gcm_open,
        hpke=Hpke(AeadId.AES_128_GCM),
    ),
    MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519: CipherSuite(
        id=3,
        name="MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519",
        aead_id=AeadId.CHACHA20_POLY1305,
        aead_key_len=32,
        _seal=P.chacha20poly1305_seal,
        _open=P.chacha20poly1305_open,
        hpke=Hpke(AeadId.CHACHA20_POLY1305),
    ),
}
SUPPORTED_SUITES = tuple(_SUITES)


def get_suite(suite_id: int) -> CipherSuite:
    try:
        return _SUITES[suite_id]
    except KeyError:
        raise UnsupportedCipherSuite(f"cipher suite {suite_id} not supported") from None
