"""Application message payloads (what goes inside MLS) and attachment encryption.

A payload is one msgpack map:

* ``{"type": "text", "body": str}``
* ``{"type": "attachment", "content_id": hex, "key": bin(32), "nonce": bin(12),
  "name": str, "size": uint}``

An attachment's bytes are padded and sealed with ChaCha20-Poly1305 under a fresh
random 32-byte key and 12-byte nonce, as a Confide sealed blob (header, then
ciphertext: :mod:`protocol.sealed`); the blob is uploaded, and the key travels only
inside the MLS message. :func:`decode_payload` raises
:class:`~client.sdk.errors.InvalidPayload` for anything else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgpack

from crypto.errors import DecryptError
from crypto.primitives import chacha20poly1305_open, sha256
from crypto.rng import Rng, system_rng
from protocol import sealed

from .errors import InvalidPayload

__all__ = ["Attachment", "encode_text", "encode_attachment", "decode_payload",
           "seal_attachment", "open_attachment", "MAX_TEXT"]

MAX_TEXT = 64 * 1024


@dataclass(frozen=True)
class Attachment:
    content_id: str
    key: bytes
    nonce: bytes
    name: str
    size: int

    def to_payload(self) -> dict[str, Any]:
        return {"type": "attachment", "content_id": self.content_id, "key": self.key,
                "nonce": self.nonce, "name": self.name, "size": self.size}


def encode_text(body: str) -> bytes:
    if len(body.encode()) > MAX_TEXT:
        raise InvalidPayload(f"text longer than {MAX_TEXT} bytes")
    return msgpack.packb({"type": "text", "body": body}, use_bin_type=True)


def encode_attachment(att: Attachment) -> bytes:
    return msgpack.packb(att.to_payload(), use_bin_type=True)


def decode_payload(data: bytes) -> dict[str, Any]:
    """The payload map, checked; raises :class:`InvalidPayload`."""
    try:
        d = msgpack.unpackb(data, raw=False, strict_map_key=True)
    except Exception:  # msgpack raises several unrelated types
        raise InvalidPayload("not msgpack") from None
    if not isinstance(d, dict):
        raise InvalidPayload("not a map")
    kind = d.get("type")
    if kind == "text":
        if set(d) != {"type", "body"} or not isinstance(d["body"], str):
            raise InvalidPayload("malformed text payload")
        return d
    if kind == "attachment":
        ok = (set(d) == {"type", "content_id", "key", "nonce", "name", "size"}
              and isinstance(d["content_id"], str) and len(d["content_id"]) == 64
              and isinstance(d["key"], bytes) and len(d["key"]) == 32
              and isinstance(d["nonce"], bytes) and len(d["nonce"]) == 12
              and isinstance(d["name"], str) and isinstance(d["size"], int) and d["size"] >= 0)
        if not ok:
            raise InvalidPayload("malformed attachment payload")
        return d
    raise InvalidPayload(f"unknown payload type {kind!r}")


def seal_attachment(data: bytes, rng: Rng = system_rng) -> tuple[bytes, bytes, bytes]:
    """``(blob, key, nonce)``: ``data`` padded and sealed under a fresh key, in Confide's
    sealed-blob format (:mod:`protocol.sealed`, the only one the server takes)."""
    return sealed.seal_attachment(data, rng)


def open_attachment(att: dict[str, Any] | Attachment, ciphertext: bytes) -> bytes:
    """The plaintext of a downloaded attachment; raises :class:`InvalidPayload` when the
    blob is not the one named or does not open."""
    a = att if isinstance(att, Attachment) else Attachment(
        att["content_id"], att["key"], att["nonce"], att["name"], att["size"])
    if sha256(ciphertext).hex() != a.content_id:
        raise InvalidPayload("the downloaded blob does not match its content id")
    if not ciphertext.startswith(sealed.ATTACHMENT_MAGIC):
        plain = _open_legacy(a, ciphertext)
    else:
        if ciphertext[6:sealed.ATTACHMENT_HEADER] != a.nonce:
            raise InvalidPayload("the attachment's nonce is not the one announced")
        try:
            plain = sealed.open_attachment(ciphertext, a.key)
        except sealed.SealedInvalid:
            raise InvalidPayload("the attachment does not decrypt") from None
    if len(plain) != a.size:
        raise InvalidPayload("the attachment has the wrong size")
    return plain


def _open_legacy(a: Attachment, ciphertext: bytes) -> bytes:
    """An attachment uploaded before sealed blobs (finding 9): bare ChaCha20-Poly1305, no
    associated data, no padding. The server takes no new ones; those stored stay readable."""
    try:
        return chacha20poly1305_open(a.key, a.nonce, b"", ciphertext)
    except DecryptError:
        raise InvalidPayload("the attachment does not decrypt") from None
