"""Confide's federation vectors (spec/vectors/federation): the committed files equal a
fresh deterministic run of generate.py, and each vector verifies on its own, with the
signed bytes rebuilt here from the layout of spec/server-server.md section 3.1."""

from __future__ import annotations

import hashlib
import json
import struct

import pytest

from crypto.primitives import ed25519_public_key, ed25519_verify
from protocol.errors import ApiError
from protocol.federation import (
    Authorization,
    ServerKeys,
    ServerKeysInvalid,
    key_id_for,
    signed_request_bytes,
    verify_request,
)
from tests.harness import FEDERATION_VECTORS, assert_vectors_current

DIR = FEDERATION_VECTORS


def load(name):
    return json.loads((DIR / name).read_text())


def _v(data: bytes) -> bytes:
    """RFC 9420 varint length prefix (lengths below 2^14 here), written independently."""
    n = len(data)
    return (bytes([n]) if n < 64 else struct.pack(">H", 0x4000 | n)) + data


def test_committed_vectors_match_generator():
    assert_vectors_current(DIR, "federation_vectors_generate")


def test_request_vectors_layout_and_signatures():
    v = load("requests.json")
    seed = bytes.fromhex(v["origin_seed"])
    pk = bytes.fromhex(v["origin_public_key"])
    assert ed25519_public_key(seed) == pk and key_id_for(pk) == v["key_id"]
    assert len(v["cases"]) == 3
    for c in v["cases"]:
        body = bytes.fromhex(c["body"])
        expected = (_v(b"confide federation request v1") + _v(c["method"].encode()) + _v(c["target"].encode())
                    + hashlib.sha256(body).digest() + _v(c["origin"].encode()) + _v(c["destination"].encode())
                    + struct.pack(">Q", c["timestamp_ms"]))
        assert expected.hex() == c["signed_bytes"]
        assert signed_request_bytes(c["method"], c["target"], body, c["origin"], c["destination"],
                                    c["timestamp_ms"]) == expected
        ed25519_verify(pk, expected, bytes.fromhex(c["signature"]))
        auth = Authorization.parse(c["authorization"])
        assert (auth.origin, auth.destination, auth.key_id, auth.timestamp_ms) == (
            c["origin"], c["destination"], c["key_id"], c["timestamp_ms"])
        assert auth.signature.hex() == c["signature"] and auth.to_header() == c["authorization"]
        verify_request(auth, pk, c["method"], c["target"], body)


@pytest.mark.parametrize("case", load("requests.json")["refusals"], ids=lambda c: c["name"])
def test_request_refusals(case):
    v = load("requests.json")
    auth = Authorization.parse(v["cases"][0]["authorization"])
    with pytest.raises(ApiError) as info:
        verify_request(auth, bytes.fromhex(v["origin_public_key"]), case["method"], case["target"],
                       bytes.fromhex(case["body"]))
    assert info.value.code == case["code"]


@pytest.mark.parametrize("case", load("requests.json")["malformed_headers"], ids=lambda c: c["name"])
def test_malformed_headers(case):
    with pytest.raises(ApiError) as info:
        Authorization.parse(case["header"])
    assert info.value.code == case["code"]


def test_server_keys_vector():
    v = load("server_keys.json")
    doc = ServerKeys.decode(bytes.fromhex(v["document"]))
    doc.verify(v["server_name"])
    (kid, sig), = doc.signatures.items()
    ed25519_verify(doc.keys[kid].public_key, bytes.fromhex(v["tbs"]), sig)
    for check in v["checks"]:
        if check["result"] == "ok":
            assert len(doc.key_at(check["key_id"], check["at"])) == 32
        else:
            with pytest.raises(ApiError) as info:
                doc.key_at(check["key_id"], check["at"])
            assert info.value.code == check["result"]
    with pytest.raises(ServerKeysInvalid):
        doc.verify("other.example")


@pytest.mark.parametrize("case", load("server_keys.json")["malformed"], ids=lambda c: c["name"])
def test_server_keys_malformed(case):
    with pytest.raises(ServerKeysInvalid):
        ServerKeys.decode(bytes.fromhex(case["document"])).verify("hub.example")
