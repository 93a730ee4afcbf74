"""Generate Confide's transparency-log test vectors, deterministically.

Run from the repository root: ``.venv/bin/python spec/vectors/audit/generate.py``.
Writes, next to this file:

- ``entries.json``: one sample of every entry kind at its log index: its opened
  fields (bytes as hex, enums as strings) and canonical msgpack encoding
  (``opened``), the salts (HMAC-SHA256 under ``privacy_key``), the sealed entry the
  log holds (``encoded``: committed fields replaced by commitments) and its RFC 9162
  leaf hash, and the encoded opening; plus ``signing_key`` (the device Ed25519 seed
  that signs the device registration and the consent), ``malformed`` opened
  encodings and ``malformed_sealed`` public encodings that must be refused;
- ``checkpoint.json``: a log key (seed, vkey), the signed checkpoint over the
  entries, a witness cosigner key and a cosignature line with its timestamp;
- ``proofs.json``: every inclusion proof and every consistency proof for trees
  of 1..8 of those entries, with the roots;
- ``tiles.json``: tile and entry-bundle paths and widths for sample tree sizes.

``tests/transparency/test_vectors.py`` checks that the committed files equal a
fresh run, and verifies each vector independently.
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import json
import sys
from pathlib import Path

import msgpack

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))

from crypto import merkle, tiles  # noqa: E402
from crypto.checkpoint import Checkpoint, sign_checkpoint  # noqa: E402
from crypto.note import SIG_COSIGNATURE_V1, Signer  # noqa: E402
from protocol import audit  # noqa: E402
from protocol import audit_seal  # noqa: E402

DEVICE_SEED = bytes(range(32))
LOG_SEED = bytes(range(32, 64))
WITNESS_SEED = bytes(range(64, 96))
PRIVACY_KEY = bytes(range(96, 128))
ORIGIN = "hub.example"
T = 1_767_225_600_000  # 2026-01-01T00:00:00Z in ms


def sample_entries() -> list[audit.Entry]:
    dev = audit.sign_device_registration(DEVICE_SEED, T, "@ann:hub.example", "ANNPHONE", b"basic:@ann:hub.example")
    return [
        dev,
        audit.AccessEvent(T + 1000, audit.AccessAction.ACCOUNT_CREATED, "@ann:hub.example"),
        audit.AccessEvent(T + 2000, audit.AccessAction.LOGIN, "@ann:hub.example", "ANNPHONE"),
        audit.PolicyRecord(T + 3000, "practice", "office-hours", 1, bytes([0xAA]) * 32),
        audit.sign_consent(DEVICE_SEED, T + 4000, "@ann:hub.example", "ANNPHONE", "office-hours", 1, bytes([0xAA]) * 32),
        audit.RoomEvent(T + 5000, "!r7x:hub.example", 0, bytes([0x11]) * 32, "@ann:hub.example", "ANNPHONE",
                        "m.mls.commit", 1, bytes([0x22]) * 32, 512),
        audit.FailedLogins(T + 6000, T, 3),
        audit.AccessEvent(T + 7000, audit.AccessAction.EXPORT_REQUESTED, "@ann:hub.example", "ANNPHONE", "!r7x:hub.example"),
        audit.AccessEvent(T + 8000, audit.AccessAction.LOGOUT, "@ann:hub.example", "ANNPHONE"),
        audit.AccessEvent(T + 9000, audit.AccessAction.SESSION_EXPIRED, "@ann:hub.example", "ANNPHONE"),
        audit.AccessEvent(T + 10000, audit.AccessAction.DEVICE_REVOKED, "@ann:hub.example", "ANNPHONE"),
        audit.DeviceRemoved(T + 10000, "@ann:hub.example", "ANNPHONE", dev.signature_key, audit.RemovalReason.ADMIN),
        audit.sign_device_approval(DEVICE_SEED, T + 11000, "@ann:hub.example", "ANNLAPTOP",
                                   bytes([0x33]) * 32, "ANNPHONE"),
        audit.AuditorRead(T + 12000, "hhs-auditor", 5),
    ]


def _json_value(v):
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, enum.Enum):
        return v.value
    return v


def _hexes(hs):
    return [h.hex() for h in hs]


def build() -> dict[str, object]:
    entries = sample_entries()
    openings = [audit_seal.Opening(i, e, audit_seal.salts_for(PRIVACY_KEY, i, e))
                for i, e in enumerate(entries)]
    opened = [e.to_bytes() for e in entries]
    data = [o.sealed().to_bytes() for o in openings]  # what the log holds
    good = opened[2]
    sealed_login = dict(audit_seal.decode_sealed(data[2]).fields)
    malformed = {
        "trailing_byte": (good + b"\x00").hex(),
        "truncated": good[:-1].hex(),
        "unknown_kind": msgpack.packb({"kind": "nope", "time": 0}).hex(),
        "extra_key": msgpack.packb({**entries[2].to_wire(), "x": 1}).hex(),
        "keys_out_of_order": msgpack.packb(dict(reversed(list(entries[2].to_wire().items())))).hex(),
        "bad_user_id": msgpack.packb({**entries[2].to_wire(), "user": "ann"}).hex(),
        "non_minimal_int": opened[3].replace(b"\xa7version\x01", b"\xa7version\xcc\x01").hex(),
        "login_failed_names_a_user": msgpack.packb(
            {"kind": "access", "time": T, "action": "login_failed", "user": "@bob:hub.example",
             "device": None, "room": None}).hex(),
    }
    malformed_sealed = {
        "cleartext_user": msgpack.packb({"kind": "access", **sealed_login,
                                         "user": "@ann:hub.example"}).hex(),
        "short_commitment": msgpack.packb({"kind": "access", **sealed_login,
                                           "user": sealed_login["user"][:31]}).hex(),
        "null_commitment": msgpack.packb({"kind": "access", **sealed_login, "device": None}).hex(),
        "trailing_byte": (data[2] + b"\x00").hex(),
    }
    entries_json = {
        "signing_key": DEVICE_SEED.hex(),
        "privacy_key": PRIVACY_KEY.hex(),
        "entries": [
            {"index": o.index, "kind": e.KIND,
             "fields": {f.name: _json_value(getattr(e, f.name)) for f in dataclasses.fields(e)},
             "opened": op.hex(), "committed": list(e.COMMITTED), "salts": _hexes(o.salts),
             "encoded": d.hex(), "leaf_hash": merkle.leaf_hash(d).hex(), "opening": o.to_bytes().hex()}
            for o, e, op, d in zip(openings, entries, opened, data, strict=True)
        ],
        "malformed": malformed,
        "malformed_sealed": malformed_sealed,
    }
    leaves = [merkle.leaf_hash(d) for d in data]
    log = Signer(ORIGIN, LOG_SEED)
    witness = Signer("witness.example/w1", WITNESS_SEED, SIG_COSIGNATURE_V1)
    cp = Checkpoint(ORIGIN, len(data), merkle.tree_hash(leaves))
    note = sign_checkpoint(cp, log)
    cosig_time = 1_767_225_700
    cosig = witness.sign(cp.to_text(), cosig_time).line()
    checkpoint_json = {
        "log_key_seed": LOG_SEED.hex(), "log_vkey": log.verifier.vkey(),
        "origin": ORIGIN, "size": cp.size, "root_hash": cp.root_hash.hex(),
        "signed_note": note.decode(),
        "witness_key_seed": WITNESS_SEED.hex(), "witness_vkey": witness.verifier.vkey(),
        "cosignature_timestamp": cosig_time, "cosignature_line": cosig,
        "cosignature_message": base64.b64encode(
            f"cosignature/v1\ntime {cosig_time}\n".encode() + cp.to_text().encode()).decode(),
    }
    store = {}
    f = merkle.Frontier()
    for h in leaves:
        store.update(dict(f.append(h)))

    class Reader:
        def read_hashes(self, nodes):
            return [store[n] for n in nodes]

    inclusion, consistency, roots = [], [], {}
    for n in range(1, 9):
        roots[n] = merkle.tree_hash(leaves[:n]).hex()
        for m in range(n):
            inclusion.append({"index": m, "size": n, "leaf_hash": leaves[m].hex(),
                              "proof": _hexes(merkle.inclusion_proof(m, n, Reader()))})
        for m in range(1, n + 1):
            consistency.append({"old_size": m, "new_size": n,
                                "proof": _hexes(merkle.consistency_proof(m, n, Reader()))})
    proofs_json = {"roots": {str(k): v for k, v in roots.items()}, "empty_root": merkle.EMPTY_ROOT.hex(),
                   "inclusion": inclusion, "consistency": consistency}
    tiles_json = {
        "sizes": [
            {"size": s, "tiles": [t.path() for t in tiles.tiles_for_size(s)],
             "bundles": [b.path() for b in tiles.bundles_for_size(s)]}
            for s in (1, 255, 256, 257, 513)
        ],
        "partial_tiles_at_70000": [t.path() for t in tiles.tiles_for_size(70000) if t.is_partial],
        "index_paths": {str(n): tiles.format_index(n) for n in (0, 999, 1000, 1234067)},
    }
    return {"entries.json": entries_json, "checkpoint.json": checkpoint_json,
            "proofs.json": proofs_json, "tiles.json": tiles_json}


def render(obj: object) -> str:
    return json.dumps(obj, indent=1, ensure_ascii=False) + "\n"


def main() -> None:
    for name, obj in build().items():
        (HERE / name).write_text(render(obj))
        print("wrote", HERE / name)


if __name__ == "__main__":
    main()
