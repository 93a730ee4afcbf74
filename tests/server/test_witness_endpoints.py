"""The homeserver's C2SP tlog-witness endpoints, played as a generic witness client would, byte for byte.

A tlog-witness client (c2sp.org/tlog-witness) posts ``old <N>\\n``, the
consistency proof lines, an empty line and the signed checkpoint to
``/_confide/witness/v1/add-checkpoint`` and gets cosignature lines (200), the
size last cosigned as ``text/x.tlog.size`` (409), or 400/403/404/422. The
witness follows the server's own log (origin ``test.example``).
"""

from __future__ import annotations

import base64
import hashlib

import pytest

from crypto.checkpoint import Checkpoint, parse_checkpoint, sign_checkpoint
from crypto.note import SIG_COSIGNATURE_V1, Signer, open_note, parse_note
from server.appkeys import AUDIT

pytestmark = pytest.mark.timeout(60)

ADD = "/_confide/witness/v1/add-checkpoint"
LOG = "/_confide/log/v1"


async def _post(hs, body: bytes) -> tuple[int, str, bytes]:
    resp = await hs.client.post(ADD, data=body)
    return resp.status, resp.headers.get("Content-Type", ""), await resp.read()


async def _checkpoint(hs) -> bytes:
    await hs.app[AUDIT].flush()
    resp = await hs.client.get(f"{LOG}/checkpoint")
    assert resp.status == 200
    return await resp.read()


async def _proof_lines(hs, old: int, new: int) -> bytes:
    resp = await hs.client.get(f"{LOG}/proof/consistency", params={"old": str(old), "new": str(new)})
    assert resp.status == 200
    return await resp.read()


async def test_a_witness_client_gets_cosignatures_then_a_conflict_then_cosigns_growth(hs):
    await hs.register("alice")
    first = await _checkpoint(hs)
    size = parse_checkpoint(parse_note(first).text).size
    assert size > 0

    status, ctype, body = await _post(hs, b"old 0\n\n" + first)
    assert (status, ctype.split(";")[0]) == (200, "text/plain")
    lines = body.decode().split("\n")
    assert lines[-1] == "" and all(line.startswith("\u2014 test.example/witness ") for line in lines[:-1])
    seed = (hs.config.keys_dir / "witness.key").read_bytes()  # the cosigner key file
    witness = Signer("test.example/witness", seed, SIG_COSIGNATURE_V1).verifier
    assert witness.name == "test.example/witness" and witness.sig_type == SIG_COSIGNATURE_V1
    cosigned = open_note(first + body, [witness])  # the client's check: append, verify with witness keys
    assert cosigned.text == parse_note(first).text

    status, ctype, body = await _post(hs, b"old 0\n\n" + first)  # stale old size
    assert (status, ctype, body) == (409, "text/x.tlog.size", f"{size}\n".encode())

    await hs.register("bob")
    second = await _checkpoint(hs)
    new_size = parse_checkpoint(parse_note(second).text).size
    assert new_size > size
    proof = await _proof_lines(hs, size, new_size)
    status, _, body = await _post(hs, f"old {size}\n".encode() + proof + b"\n" + second)
    assert status == 200, body
    open_note(second + body, [witness])

    origin_hash = hashlib.sha256(b"test.example").hexdigest()
    resp = await hs.client.get(f"/_confide/witness/v1/{origin_hash}/checkpoint")
    assert resp.status == 200
    latest = await resp.read()
    assert parse_note(latest).text == parse_note(second).text
    open_note(latest, [witness])


async def test_refusals_have_the_tlog_witness_statuses(hs):
    await hs.register("alice")
    good = await _checkpoint(hs)
    cp = parse_checkpoint(parse_note(good).text)

    impostor = sign_checkpoint(cp, Signer("test.example", b"\x07" * 32))  # same name, untrusted key
    status, _, body = await _post(hs, b"old 0\n\n" + impostor)
    assert status == 403 and body.startswith(b"unverified_note: ")

    other = sign_checkpoint(Checkpoint("other.example", cp.size, cp.root_hash), Signer("other.example", b"\x08" * 32))
    status, _, body = await _post(hs, b"old 0\n\n" + other)
    assert status == 404 and body.startswith(b"unknown_origin: ")

    status, _, body = await _post(hs, b"old 0\nnot base64!\n\n" + good)
    assert status == 400 and body.startswith(b"malformed: ")
    status, _, body = await _post(hs, f"old {cp.size + 1}\n\n".encode() + good)
    assert status == 400 and body.startswith(b"old_size_too_large: ")

    assert (await _post(hs, b"old 0\n\n" + good))[0] == 200
    await hs.register("bob")
    grown = await _checkpoint(hs)
    new_size = parse_checkpoint(parse_note(grown).text).size
    proof = bytearray(base64.b64decode((await _proof_lines(hs, cp.size, new_size)).split(b"\n")[0]))
    proof[0] ^= 1
    bad = base64.b64encode(bytes(proof)) + b"\n"
    status, _, body = await _post(hs, f"old {cp.size}\n".encode() + bad + b"\n" + grown)
    assert status == 422 and body.startswith(b"inconsistent: ")
    status, _, body = await _post(hs, b"old 0\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n" + good)
    assert status == 409  # the old size is checked before the proof

    unknown = hashlib.sha256(b"nobody.example").hexdigest()
    resp = await hs.client.get(f"/_confide/witness/v1/{unknown}/checkpoint")
    assert resp.status == 404
