"""The primitives every other part of the core is built on.

Ed25519, X25519 and ChaCha20-Poly1305 come from libsodium through PyNaCl;
SHA-256, HMAC and HKDF (RFC 5869) from the standard library; AES-128-GCM from
``cryptography`` (libsodium's AES-GCM needs hardware support, so it is not
portable), imported on first use: a process that never seals or opens with
AES-GCM (the homeserver only verifies) does not load its OpenSSL bindings,
about 6 MB of resident memory. Every function here is pure and raises a typed error from
:mod:`crypto.errors` on bad input.
"""

from __future__ import annotations

import hashlib
import hmac as _hmac

import nacl.bindings as _sodium
import nacl.exceptions as _nacl_exc

from .errors import DecryptError, InvalidKey, InvalidSignature

__all__ = [
    "sha256",
    "hmac_sha256",
    "hkdf_extract",
    "hkdf_expand",
    "constant_time_equal",
    "ed25519_public_key",
    "ed25519_sign",
    "ed25519_verify",
    "x25519_public_key",
    "x25519",
    "chacha20poly1305_seal",
    "chacha20poly1305_open",
    "aes128gcm_seal",
    "aes128gcm_open",
    "HASH_LEN",
]

HASH_LEN = 32


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def hmac_sha256(key: bytes, data: bytes) -> bytes:
    return _hmac.digest(key, data, "sha256")


def hkdf_extract(salt: bytes, ikm: bytes) -> bytes:
    """HKDF-Extract (RFC 5869 section 2.2) with SHA-256; an empty salt means 32 zero bytes."""
    return _hmac.digest(salt or bytes(HASH_LEN), ikm, "sha256")


def hkdf_expand(prk: bytes, info: bytes, length: int) -> bytes:
    """HKDF-Expand (RFC 5869 section 2.3) with SHA-256."""
    if length > 255 * HASH_LEN:
        raise InvalidKey("HKDF-Expand: output longer than 255 hash lengths")
    out = b""
    block = b""
    counter = 1
    while len(out) < length:
        block = _hmac.digest(prk, block + info + bytes([counter]), "sha256")
        out += block
        counter += 1
    return out[:length]


def constant_time_equal(a: bytes, b: bytes) -> bool:
    return _hmac.compare_digest(a, b)


# -- Ed25519 -----------------------------------------------------------------


def _check_len(name: str, value: bytes, length: int) -> None:
    if not isinstance(value, (bytes, bytearray)) or len(value) != length:
        raise InvalidKey(f"{name} must be {length} bytes")


def ed25519_public_key(seed: bytes) -> bytes:
    """The public key of a 32-byte Ed25519 private key (the RFC 8032 seed)."""
    _check_len("Ed25519 private key", seed, 32)
    pk, _ = _sodium.crypto_sign_seed_keypair(bytes(seed))
    return pk


def ed25519_sign(seed: bytes, message: bytes) -> bytes:
    _check_len("Ed25519 private key", seed, 32)
    _, sk = _sodium.crypto_sign_seed_keypair(bytes(seed))
    return _sodium.crypto_sign(bytes(message), sk)[:64]


def ed25519_verify(public_key: bytes, message: bytes, signature: bytes) -> None:
    """Raise :class:`InvalidSignature` unless ``signature`` is valid (or the key is malformed)."""
    if len(public_key) != 32 or len(signature) != 64:
        raise InvalidSignature("malformed Ed25519 key or signature")
    try:
        _sodium.crypto_sign_open(bytes(signature) + bytes(message), bytes(public_key))
    except (_nacl_exc.BadSignatureError, _nacl_exc.ValueError, _nacl_exc.TypeError) as exc:
        raise InvalidSignature("Ed25519 signature does not verify") from exc


# -- X25519 ------------------------------------------------------------------


def x25519_public_key(private_key: bytes) -> bytes:
    _check_len("X25519 private key", private_key, 32)
    return _sodium.crypto_scalarmult_base(bytes(private_key))


def x25519(private_key: bytes, public_key: bytes) -> bytes:
    """Diffie-Hellman; raises :class:`InvalidKey` when the result is all zero (RFC 7748 section 6.1)."""
    _check_len("X25519 private key", private_key, 32)
    _check_len("X25519 public key", public_key, 32)
    try:
        shared = _sodium.crypto_scalarmult(bytes(private_key), bytes(public_key))
    except _nacl_exc.RuntimeError as exc:  # libsodium refuses low-order points
        raise InvalidKey("X25519 with a low-order point") from exc
    if shared == bytes(32):
        raise InvalidKey("X25519 shared secret is zero")
    return shared


# -- AEADs -------------------------------------------------------------------


def chacha20poly1305_seal(key: bytes, nonce: bytes, aad: bytes, plaintext: bytes) -> bytes:
    _check_len("ChaCha20-Poly1305 key", key, 32)
    _check_len("ChaCha20-Poly1305 nonce", nonce, 12)
    return _sodium.crypto_aead_chacha20poly1305_ietf_encrypt(
        bytes(plaintext), bytes(aad), bytes(nonce), bytes(key)
    )


def chacha20poly1305_open(key: bytes, nonce: bytes, aad: bytes, ciphertext: bytes) -> bytes:
    _check_len("ChaCha20-Poly1305 key", key, 32)
    _check_len("ChaCha20-Poly1305 nonce", nonce, 12)
    if len(ciphertext) < 16:
        raise DecryptError("ciphertext shorter than the tag")
    try:
        return _sodium.crypto_aead_chacha20poly1305_ietf_decrypt(
            bytes(ciphertext), bytes(aad), bytes(nonce), bytes(key)
        )
    except _nacl_exc.CryptoError as exc:
        raise DecryptError("ChaCha20-Poly1305 authentication failed") from exc


def _aes_gcm():
    """``cryptography``'s AESGCM class and its InvalidTag (imported on first use)."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM, InvalidTag


def aes128gcm_seal(key: bytes, nonce: bytes, aad: bytes, plaintext: bytes) -> bytes:
    _check_len("AES-128-GCM key", key, 16)
    _check_len("AES-128-GCM nonce", nonce, 12)
    aesgcm, _ = _aes_gcm()
    return aesgcm(bytes(key)).encrypt(bytes(nonce), bytes(plaintext), bytes(aad))


def aes128gcm_open(key: bytes, nonce: bytes, aad: bytes, ciphertext: bytes) -> bytes:
    _check_len("AES-128-GCM key", key, 16)
    _check_len("AES-128-GCM nonce", nonce, 12)
    if len(ciphertext) < 16:
        raise DecryptError("ciphertext shorter than the tag")
    aesgcm, invalid_tag = _aes_gcm()
    try:
        return aesgcm(bytes(key)).decrypt(bytes(nonce), bytes(ciphertext), bytes(aad))
    except invalid_tag as exc:
        raise DecryptError("AES-128-GCM authentication failed") from exc
