"""Transcript hashes (RFC 9420 section 8.2).

::

    confirmed_transcript_hash_[n] = Hash(interim_transcript_hash_[n-1] || ConfirmedTranscriptHashInput_[n])
    interim_transcript_hash_[n]   = Hash(confirmed_transcript_hash_[n] || InterimTranscriptHashInput_[n])

``ConfirmedTranscriptHashInput`` is the commit's ``wire_format``, ``FramedContent``
and ``signature``; ``InterimTranscriptHashInput`` is its ``confirmation_tag``
as an ``opaque<V>``. Callers pass the encoded inputs, so this module needs no
framing types.
"""

from __future__ import annotations

from ..codec import encode_varint
from .ciphersuite import CipherSuite

__all__ = ["confirmed_transcript_hash", "interim_transcript_hash"]


def confirmed_transcript_hash(suite: CipherSuite, interim_before: bytes, confirmed_input: bytes) -> bytes:
    """``confirmed_input`` is the encoded ConfirmedTranscriptHashInput."""
    return suite.hash(interim_before + confirmed_input)


def interim_transcript_hash(suite: CipherSuite, confirmed: bytes, confirmation_tag: bytes) -> bytes:
    return suite.hash(confirmed + encode_varint(len(confirmation_tag)) + confirmation_tag)
