"""Padding buckets: the only lengths a ciphertext the server stores may have.

A bucket is a length ``m * 2**k`` with ``m`` in 4..7 and at least :data:`MIN_BUCKET`
(256, 320, 384, 448, 512, 640, ...): four buckets per doubling, so padding costs at
most a quarter of the length and the server learns about two bits per doubling of
it. Application PrivateMessages (their ``ciphertext`` field, ``spec/client-server.md``
8.2), sealed to-device boxes and sealed attachments (:mod:`protocol.sealed`) are
padded to one; :func:`is_bucket` is the check the server applies, :func:`bucket`
the length a client pads to, and :func:`application_padding` the PrivateMessageContent
padding (RFC 9420 section 6.3.1) that brings an application message's ciphertext to one.
"""

from __future__ import annotations

from crypto.mls.framing import ContentType, FramedContentAuthData, PrivateMessageContent

__all__ = ["MIN_BUCKET", "bucket", "is_bucket", "application_padding"]

MIN_BUCKET = 256


def bucket(n: int) -> int:
    """The smallest bucket of at least ``n`` bytes."""
    if n <= MIN_BUCKET:
        return MIN_BUCKET
    k = max(n.bit_length() - 3, 0)
    step = 1 << k
    return -(-n // step) * step  # the multiple of 2**k at or above n: m in 4..8, 8 being 4 * 2**(k+1)


def is_bucket(n: int) -> bool:
    """Whether ``n`` is a bucket length."""
    if n < MIN_BUCKET:
        return False
    k = n.bit_length() - 3
    return n % (1 << k) == 0


#: Ed25519 signatures (every suite Confide's rooms use) and the AEAD tag.
_SIGNATURE = 64
_TAG = 16


def application_padding(data: bytes) -> int:
    """The number of zero bytes of PrivateMessageContent padding that make the ciphertext of
    an application message carrying ``data`` exactly a bucket long."""
    content = PrivateMessageContent(ContentType.APPLICATION, data,
                                    FramedContentAuthData(bytes(_SIGNATURE), None), 0)
    n = len(content.to_bytes()) + _TAG
    return bucket(n) - n
