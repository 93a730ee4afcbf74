"""Confide's own transparency-log vectors (spec/vectors/audit): the committed files
equal a fresh deterministic run of generate.py, and each vector verifies on its own."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import msgpack
import pytest

from crypto import merkle, tiles
from crypto.checkpoint import open_checkpoint
from crypto.note import open_note, parse_vkey
from protocol import audit, audit_seal
from tests.harness import assert_vectors_current

DIR = Path(__file__).resolve().parents[2] / "spec" / "vectors" / "audit"


def load(name):
    return json.loads((DIR / name).read_text())


def test_committed_vectors_match_generator():
    assert_vectors_current(DIR, "audit_vectors_generate")


def test_entries():
    v = load("entries.json")
    kinds = {e["kind"] for e in v["entries"]}
    assert kinds == set(audit.ENTRY_KINDS)
    device_key = None
    key = bytes.fromhex(v["privacy_key"])
    for e in v["entries"]:
        data = bytes.fromhex(e["encoded"])
        entry = audit.decode_entry(bytes.fromhex(e["opened"]))
        assert e["kind"] == entry.KIND and list(entry.COMMITTED) == e["committed"]
        assert merkle.leaf_hash(data).hex() == e["leaf_hash"]
        # the commitment scheme, recomputed from the spec's formulas (not the module's)
        sealed = dict(msgpack.unpackb(data))
        assert sealed == dict(audit_seal.decode_sealed(data).fields, kind=e["kind"])
        for name, salt_hex in zip(e["committed"], e["salts"], strict=True):
            salt = hmac.new(key, b"confide.audit.salt.v1\x00" + msgpack.packb(
                [e["index"], e["kind"], name]), hashlib.sha256).digest()
            assert salt.hex() == salt_hex
            wire = entry.to_wire()[name]
            want = hashlib.sha256(b"confide.audit.commitment.v1\x00" + msgpack.packb(
                [e["kind"], name, salt, wire], use_bin_type=True)).digest()
            assert sealed[name] == want
        for name in set(sealed) - set(e["committed"]):
            assert sealed[name] == entry.to_wire()[name]
        opening = audit_seal.decode_opening(bytes.fromhex(e["opening"]))
        assert opening.index == e["index"] and opening.verify(data) == entry
        for name, value in e["fields"].items():
            got = getattr(entry, name)
            assert (got.hex() if isinstance(got, bytes) else got) == value
        if isinstance(entry, audit.DeviceAdded):
            entry.verify_signature()
            device_key = entry.signature_key
        if isinstance(entry, (audit.ConsentRecord, audit.DeviceApproved)):
            entry.verify_signature(device_key)
    for name, hexdata in v["malformed"].items():
        with pytest.raises(audit.MalformedEntry):
            audit.decode_entry(bytes.fromhex(hexdata))
        assert name
    for name, hexdata in v["malformed_sealed"].items():
        with pytest.raises(audit.MalformedEntry):
            audit_seal.decode_sealed(bytes.fromhex(hexdata))
        assert name


def test_checkpoint_and_cosignature():
    v = load("checkpoint.json")
    log_key, witness_key = parse_vkey(v["log_vkey"]), parse_vkey(v["witness_vkey"])
    cp, _ = open_checkpoint(v["signed_note"].encode(), [log_key], v["origin"])
    assert cp.size == v["size"] and cp.root_hash.hex() == v["root_hash"]
    opened = open_note((v["signed_note"] + v["cosignature_line"]).encode(), [witness_key])
    assert opened.verified[0].timestamp == v["cosignature_timestamp"]
    leaves = [bytes.fromhex(e["leaf_hash"]) for e in load("entries.json")["entries"]]
    assert merkle.tree_hash(leaves) == cp.root_hash


def test_proofs():
    v = load("proofs.json")
    roots = {int(k): bytes.fromhex(r) for k, r in v["roots"].items()}
    for p in v["inclusion"]:
        merkle.verify_inclusion(p["index"], p["size"], bytes.fromhex(p["leaf_hash"]),
                                [bytes.fromhex(h) for h in p["proof"]], roots[p["size"]])
    for p in v["consistency"]:
        merkle.verify_consistency(p["old_size"], p["new_size"], roots[p["old_size"]],
                                  roots[p["new_size"]], [bytes.fromhex(h) for h in p["proof"]])
    assert len(v["inclusion"]) == 36 and len(v["consistency"]) == 36


def test_tiles():
    v = load("tiles.json")
    for case in v["sizes"]:
        for path in case["tiles"] + case["bundles"]:
            assert tiles.parse_tile_path(path).path() == path
    assert v["index_paths"]["1234067"] == "x001/x234/067"
