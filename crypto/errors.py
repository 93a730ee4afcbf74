"""Typed errors of the cryptographic core.

Every error a peer can cause derives from :class:`CryptoError` and carries a
stable ``code`` string; a bug in Confide itself is an :class:`InternalError`.
"""

from __future__ import annotations

__all__ = [
    "CryptoError",
    "InternalError",
    "DecodeError",
    "Truncated",
    "TrailingBytes",
    "NonMinimalLength",
    "LengthTooLarge",
    "InvalidValue",
    "InvalidSignature",
    "DecryptError",
    "InvalidKey",
    "UnsupportedCipherSuite",
]


class CryptoError(Exception):
    """A protocol-level failure caused by the input (never a bug in Confide)."""

    code = "crypto_error"


class InternalError(Exception):
    """An invariant of Confide's own code was broken."""

    code = "internal_error"


class DecodeError(CryptoError):
    """Bytes do not decode as the expected structure."""

    code = "decode_error"


class Truncated(DecodeError):
    """The input ended before the structure did."""

    code = "truncated"


class TrailingBytes(DecodeError):
    """Bytes remain after a complete structure."""

    code = "trailing_bytes"


class NonMinimalLength(DecodeError):
    """A variable-length prefix did not use its shortest encoding."""

    code = "non_minimal_length"


class LengthTooLarge(DecodeError):
    """A length prefix is reserved, or larger than the bound for that field."""

    code = "length_too_large"


class InvalidValue(DecodeError):
    """A field holds a value its type does not allow (unknown enum, bad bool)."""

    code = "invalid_value"


class InvalidSignature(CryptoError):
    """A signature did not verify."""

    code = "invalid_signature"


class DecryptError(CryptoError):
    """An AEAD or HPKE open failed: wrong key, nonce, AAD, or a modified tag."""

    code = "decrypt_failed"


class InvalidKey(CryptoError):
    """A public or private key has the wrong length or is not a valid point."""

    code = "invalid_key"


class UnsupportedCipherSuite(CryptoError):
    """The cipher suite or algorithm identifier is not one Confide implements."""

    code = "unsupported_cipher_suite"
