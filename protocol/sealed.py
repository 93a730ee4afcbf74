"""Confide's two sealed formats, the only bytes the server takes as attachments and as
to-device payloads (``spec/client-server.md`` section 11.3, ``spec/security.md`` finding 9).

Both are a fixed header the server checks, then an AEAD ciphertext whose plaintext is
padded to a bucket (:mod:`protocol.padding`): ``plaintext || 0x80 || 0x00...``, so the
ciphertext is exactly ``bucket + 16`` bytes. The header is the AEAD's associated data.

Sealed attachment (:data:`ATTACHMENT_HEADER` = 18 bytes)::

    "CFA" version=1 (4) | aead u16 = 0x0003 ChaCha20-Poly1305 | nonce (12) | ciphertext

under a fresh random 32-byte key that travels only inside an MLS message.

Sealed to-device box (:data:`TO_DEVICE_HEADER` = 42 bytes)::

    "CFD" version=1 (4) | kem u16 = 0x0020 | kdf u16 = 0x0001 | aead u16 = 0x0003 | enc (32) | ciphertext

HPKE base mode (RFC 9180, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305) to
the recipient device's X25519 key, ``info`` = :data:`TO_DEVICE_INFO`.

The server checks magic, version, algorithm ids and the total length
(:func:`check_attachment`, :func:`check_to_device`): anything else is refused. What it
cannot check is whether the nonce, ``enc`` and ciphertext are what an honest client
makes (random-looking bytes can hide anything); an honest client never puts text there.
Sealing and opening (:func:`seal_attachment`, :func:`open_attachment`,
:func:`seal_to_device`, :func:`open_to_device`) take their randomness as a parameter.
Opening raises :class:`SealedInvalid` (a client-side error, never an API answer).
"""

from __future__ import annotations

from crypto.errors import CryptoError
from crypto.hpke import AeadId, Hpke, KdfId, KemId
from crypto.primitives import chacha20poly1305_open, chacha20poly1305_seal
from crypto.rng import Rng

from .channel_errors import AttachmentNotSealed, ToDeviceNotSealed
from .padding import bucket, is_bucket

__all__ = [
    "ATTACHMENT_MAGIC",
    "ATTACHMENT_HEADER",
    "TO_DEVICE_MAGIC",
    "TO_DEVICE_HEADER",
    "TO_DEVICE_INFO",
    "TAG",
    "SealedInvalid",
    "pad",
    "unpad",
    "check_attachment_header",
    "check_attachment",
    "check_to_device",
    "sealed_attachment_size",
    "seal_attachment",
    "open_attachment",
    "seal_to_device",
    "open_to_device",
]

ATTACHMENT_MAGIC = b"CFA\x01"
TO_DEVICE_MAGIC = b"CFD\x01"
_CHACHA = int(AeadId.CHACHA20_POLY1305).to_bytes(2, "big")
_HPKE_IDS = (int(KemId.DHKEM_X25519_HKDF_SHA256).to_bytes(2, "big")
             + int(KdfId.HKDF_SHA256).to_bytes(2, "big") + _CHACHA)
ATTACHMENT_HEADER = len(ATTACHMENT_MAGIC) + 2 + 12
TO_DEVICE_HEADER = len(TO_DEVICE_MAGIC) + 6 + 32
TO_DEVICE_INFO = b"confide to-device v1"
TAG = 16


class SealedInvalid(ValueError):
    """A sealed blob or box that does not open (wrong key, modified, or badly padded)."""


def pad(data: bytes) -> bytes:
    """``data || 0x80 || 0x00...`` to the smallest bucket of at least ``len(data) + 1``."""
    padded = data + b"\x80"
    return padded + bytes(bucket(len(padded)) - len(padded))


def unpad(padded: bytes) -> bytes:
    """The inverse of :func:`pad`; raises :class:`SealedInvalid`."""
    body = padded.rstrip(b"\x00")
    if not is_bucket(len(padded)) or not body.endswith(b"\x80"):
        raise SealedInvalid("the plaintext is not padded")
    return body[:-1]


def _ciphertext_ok(n: int) -> bool:
    return n >= TAG and is_bucket(n - TAG)


def check_attachment_header(head: bytes) -> None:
    """The first :data:`ATTACHMENT_HEADER` bytes of an upload (or fewer, when the upload is
    shorter); raises :class:`AttachmentNotSealed`."""
    if len(head) < ATTACHMENT_HEADER:
        raise AttachmentNotSealed("an attachment starts with the sealed-blob header")
    if head[:4] != ATTACHMENT_MAGIC or head[4:6] != _CHACHA:
        raise AttachmentNotSealed("an attachment is a Confide sealed blob (CFA, version 1, "
                                  "ChaCha20-Poly1305)")


def check_attachment(head: bytes, size: int) -> None:
    """A whole upload: its header and its total ``size``; raises :class:`AttachmentNotSealed`."""
    check_attachment_header(head)
    if not _ciphertext_ok(size - ATTACHMENT_HEADER):
        raise AttachmentNotSealed("a sealed attachment's ciphertext is a padding bucket plus the tag")


def check_to_device(payload: bytes) -> None:
    """A to-device payload; raises :class:`ToDeviceNotSealed`."""
    if payload[:4] != TO_DEVICE_MAGIC or payload[4:10] != _HPKE_IDS:
        raise ToDeviceNotSealed("a to-device payload is a Confide sealed box (CFD, version 1, "
                                "HPKE X25519/HKDF-SHA256/ChaCha20-Poly1305)")
    if not _ciphertext_ok(len(payload) - TO_DEVICE_HEADER):
        raise ToDeviceNotSealed("a sealed box's ciphertext is a padding bucket plus the tag")


def sealed_attachment_size(plain_len: int) -> int:
    """The size of the sealed blob of ``plain_len`` bytes."""
    return ATTACHMENT_HEADER + bucket(plain_len + 1) + TAG


def seal_attachment(data: bytes, rng: Rng) -> tuple[bytes, bytes, bytes]:
    """``(blob, key, nonce)``: ``data`` padded and sealed under a fresh key."""
    key, nonce = rng(32), rng(12)
    header = ATTACHMENT_MAGIC + _CHACHA + nonce
    return header + chacha20poly1305_seal(key, nonce, header, pad(data)), key, nonce


def open_attachment(blob: bytes, key: bytes) -> bytes:
    """The plaintext of a sealed blob; raises :class:`SealedInvalid`."""
    try:
        check_attachment(blob[:ATTACHMENT_HEADER], len(blob))
    except AttachmentNotSealed as exc:
        raise SealedInvalid(exc.message) from None
    header = blob[:ATTACHMENT_HEADER]
    try:
        padded = chacha20poly1305_open(key, header[6:], header, blob[ATTACHMENT_HEADER:])
    except CryptoError:
        raise SealedInvalid("the attachment does not decrypt") from None
    return unpad(padded)


def seal_to_device(recipient_pub: bytes, data: bytes, rng: Rng) -> bytes:
    """A sealed to-device box of ``data`` for the holder of ``recipient_pub`` (X25519)."""
    hpke = Hpke(AeadId.CHACHA20_POLY1305)
    enc, ctx = hpke.setup_sender(recipient_pub, TO_DEVICE_INFO, rng=rng)
    header = TO_DEVICE_MAGIC + _HPKE_IDS + enc
    return header + ctx.seal(header, pad(data))


def open_to_device(recipient_priv: bytes, box: bytes) -> bytes:
    """The plaintext of a sealed box; raises :class:`SealedInvalid`."""
    try:
        check_to_device(box)
    except ToDeviceNotSealed as exc:
        raise SealedInvalid(exc.message) from None
    header = box[:TO_DEVICE_HEADER]
    try:
        padded = Hpke(AeadId.CHACHA20_POLY1305).open(header[10:], recipient_priv, TO_DEVICE_INFO,
                                                     header, box[TO_DEVICE_HEADER:])
    except CryptoError:
        raise SealedInvalid("the box does not open") from None
    return unpad(padded)
