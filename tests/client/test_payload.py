"""Application payloads and attachment encryption."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from client.sdk import InvalidPayload
from client.sdk.payload import (
    Attachment,
    decode_payload,
    encode_attachment,
    encode_text,
    open_attachment,
    seal_attachment,
)
from crypto.primitives import chacha20poly1305_seal, sha256
from protocol.sealed import ATTACHMENT_MAGIC


def test_text_round_trip():
    assert decode_payload(encode_text("héllo")) == {"type": "text", "body": "héllo"}


def test_attachment_round_trip_and_checks():
    data = b"x" * 1000
    blob, key, nonce = seal_attachment(data)
    assert data not in blob
    att = Attachment(sha256(blob).hex(), key, nonce, "a.txt", len(data))
    d = decode_payload(encode_attachment(att))
    assert open_attachment(d, blob) == data
    with pytest.raises(InvalidPayload):
        open_attachment(d, blob[:-1] + bytes([blob[-1] ^ 1]))  # content id no longer matches
    wrong_key = Attachment(att.content_id, bytes(32), nonce, "a.txt", len(data))
    with pytest.raises(InvalidPayload):
        open_attachment(wrong_key, blob)


def test_attachments_are_sealed_blobs_and_old_ones_still_open():
    blob, key, nonce = seal_attachment(b"scan")
    assert blob.startswith(ATTACHMENT_MAGIC) and blob[6:18] == nonce  # protocol/sealed.py
    att = Attachment(sha256(blob).hex(), key, bytes(12), "a.txt", 4)
    with pytest.raises(InvalidPayload):  # the announced nonce is not the blob's
        open_attachment(att, blob)
    old = chacha20poly1305_seal(key, nonce, b"", b"scan")  # uploaded before finding 9
    assert open_attachment(Attachment(sha256(old).hex(), key, nonce, "a.txt", 4), old) == b"scan"


@pytest.mark.parametrize("obj", [
    [], {"type": "text"}, {"type": "text", "body": 3}, {"type": "text", "body": "x", "extra": 1},
    {"type": "video"}, {"type": "attachment", "content_id": "00", "key": b"", "nonce": b"",
                         "name": "n", "size": 1},
])
def test_malformed_payloads(obj):
    with pytest.raises(InvalidPayload):
        decode_payload(msgpack.packb(obj, use_bin_type=True))


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_random_bytes_give_only_invalid_payload(data):
    try:
        decode_payload(data)
    except InvalidPayload:
        pass


def test_oversize_text_refused():
    with pytest.raises(InvalidPayload):
        encode_text("x" * (64 * 1024 + 1))
