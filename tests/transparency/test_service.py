"""Log service and witness over SQLite in a temp dir (no sockets): batching,
checkpoints, proofs checked with the pure verifiers, tiles, restart, witness codes."""

from __future__ import annotations

import asyncio
import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto import merkle, tiles
from crypto.checkpoint import Checkpoint, open_checkpoint, parse_tlog_proof, sign_checkpoint
from crypto.note import SIG_COSIGNATURE_V1, Signer, open_note
from crypto.tiles import BundleId, TileId
from protocol import audit
from protocol.audit_seal import salts_for, seal
from server.translog import NotFound, TransparencyLog, Witness, WitnessError, open_connection
from server.translog.devserver import demo_entries
from server.translog.witness import parse_add_checkpoint

LOG_KEY = Signer("hub.example", bytes(range(32)))
OTHER_LOG = Signer("peer.example", bytes([5]) * 32)
WITNESS_KEY = Signer("hub.example/witness", bytes([9]) * 32, SIG_COSIGNATURE_V1)


async def open_log(path, signer=LOG_KEY):
    conn = await open_connection(str(path / "log.sqlite"))
    return await TransparencyLog.open(conn, signer, privacy_key=bytes(range(32)))


async def test_append_batches_and_proofs(tmp_path):
    log = await open_log(tmp_path)
    cp0, _ = open_checkpoint(await log.checkpoint(), [LOG_KEY.verifier], "hub.example")
    assert cp0.size == 0 and cp0.root_hash == merkle.EMPTY_ROOT
    entries = demo_entries(600, 1_700_000_000_000)
    # concurrent appends group-commit: far fewer checkpoints than entries
    indexes = await asyncio.gather(*(log.append(e) for e in entries[:300]))
    assert sorted(indexes) == list(range(300))
    async with log.storage.conn.execute("SELECT COUNT(*) FROM translog_checkpoints") as cur:
        (n_checkpoints,) = await cur.fetchone()
    assert n_checkpoints < 10
    assert await log.append_many(entries[300:]) == list(range(300, 600))
    # the log holds each entry sealed at its index (protocol/audit_seal.py)
    data = [seal(e, salts_for(bytes(range(32)), i, e)).to_bytes() for i, e in enumerate(entries)]
    assert [(await log.opening(i)).verify(data[i]) for i in (0, 1, 599)] == [entries[i] for i in (0, 1, 599)]
    cp, _ = open_checkpoint(await log.checkpoint(), [LOG_KEY.verifier])
    assert cp.size == 600
    assert cp.root_hash == merkle.tree_hash(merkle.leaf_hash(d) for d in data)
    for i in (0, 1, 255, 256, 599):
        p = await log.inclusion_proof(i)
        merkle.verify_inclusion(i, 600, merkle.leaf_hash(data[i]), p.proof, cp.root_hash)
        tp = parse_tlog_proof(p.to_tlog_proof())
        assert tp.extra == data[i] and tp.index == i and tp.checkpoint_note == p.checkpoint_note
    for old in (0, 1, 300, 599, 600):
        proof = await log.consistency_proof(old, 600)
        merkle.verify_consistency(old, 600, await log.root_at(old), cp.root_hash, proof)
    # tiles and bundles
    t0 = tiles.decode_tile(await log.read_tile(TileId(0, 0)), TileId(0, 0))
    assert t0 == [merkle.leaf_hash(d) for d in data[:256]]
    t1 = tiles.decode_tile(await log.read_tile(TileId(1, 0, 2)), TileId(1, 0, 2))
    assert t1[1] == merkle.tree_hash(merkle.leaf_hash(d) for d in data[256:512])
    assert tiles.decode_bundle(await log.read_bundle(BundleId(2, 88)), 88) == data[512:600]
    with pytest.raises(NotFound):
        await log.read_tile(TileId(0, 2, 89))
    with pytest.raises(NotFound):
        await log.read_bundle(BundleId(3, 1))
    # event lookup
    ev = entries[5]
    assert isinstance(ev, audit.RoomEvent)
    assert (await log.inclusion_proof_for_event(ev.event_hash)).index == 5
    # restart restores the frontier and continues the same tree
    await log.storage.conn.close()
    log2 = await open_log(tmp_path)
    assert log2.size == 600
    assert await log2.append(entries[0]) == 600
    await log2.storage.conn.close()


async def test_malformed_entry_rejected_before_queueing(tmp_path):
    log = await open_log(tmp_path)
    with pytest.raises(audit.MalformedEntry):
        await log.append(b"\x80")
    assert log.size == 0
    await log.storage.conn.close()


async def test_witness_status_codes_and_cosignature_storage(tmp_path):
    peer = await open_log(tmp_path / "peer", OTHER_LOG) if (tmp_path / "peer").mkdir() is None else None
    hub = await open_log(tmp_path)
    clock = iter(range(1_700_000_000, 1_800_000_000)).__next__
    w = Witness(hub.storage, WITNESS_KEY, {"peer.example": [OTHER_LOG.verifier]}, clock)
    entries = demo_entries(40, 1_700_000_000_000)

    async def request(old, log, size=None):
        size = log.size if size is None else size
        proof = await log.consistency_proof(old, size) if old else []
        note = (await log.storage.checkpoint_note(size))[1]
        body = f"old {old}\n" + "".join(base64.b64encode(h).decode() + "\n" for h in proof)
        return (body + "\n").encode() + note

    await peer.append_many(entries[:10])
    line = await w.add_checkpoint(await request(0, peer))
    opened = open_note((await peer.checkpoint()) + line.encode(), [WITNESS_KEY.verifier])
    assert opened.verified[0].timestamp == 1_700_000_000
    # the peer stores the cosignature it received and serves it with its checkpoint
    assert await peer.add_cosignatures(10, line, [WITNESS_KEY.verifier]) == 1
    assert (await peer.checkpoint()).endswith(line.encode())
    await peer.append_many(entries[10:25])
    # the newest checkpoint (25) has no cosignature; the latest cosigned one (10) is served
    witnessed = await peer.witnessed_checkpoint(1)
    assert witnessed.endswith(line.encode()) and b"\n10\n" in witnessed
    with pytest.raises(NotFound):
        await peer.witnessed_checkpoint(2)
    # stale old size -> 409 with the current size
    with pytest.raises(WitnessError) as exc:
        await w.add_checkpoint(await request(0, peer))
    assert exc.value.status == 409 and exc.value.current_size == 10
    good = await request(10, peer)
    # a wrong proof -> 422
    bad = good.replace(good.split(b"\n")[1][:4], b"AAAA", 1)
    with pytest.raises(WitnessError) as exc:
        await w.add_checkpoint(bad)
    assert exc.value.status == 422
    await w.add_checkpoint(good)
    # a forked log with the same key and origin: inconsistent with what was cosigned -> 422
    fork = await open_log(tmp_path / "fork", OTHER_LOG) if (tmp_path / "fork").mkdir() is None else None
    await fork.append_many(entries[:24] + [entries[30]])
    await fork.append_many(entries[25:30])
    with pytest.raises(WitnessError) as exc:
        await w.add_checkpoint(await request(25, fork, 30))
    assert exc.value.status == 422
    # same size, different root -> 422
    with pytest.raises(WitnessError) as exc:
        await w.add_checkpoint(b"old 25\n\n" + (await fork.storage.checkpoint_note(25))[1])
    assert exc.value.status == 422
    # unknown origin 404, untrusted signature 403, old > size 400, size 0 bad root 422
    with pytest.raises(WitnessError) as exc:
        await w.add_checkpoint(await request(0, hub))
    assert exc.value.status == 404
    forged = sign_checkpoint(Checkpoint("peer.example", 25, bytes(32)), Signer("peer.example", bytes(32)))
    with pytest.raises(WitnessError) as exc:
        await w.add_checkpoint(b"old 25\n\n" + forged)
    assert exc.value.status == 403
    with pytest.raises(WitnessError) as exc:
        await w.add_checkpoint(b"old 26\n\n" + (await peer.storage.checkpoint_note(25))[1])
    assert exc.value.status == 400
    zero = sign_checkpoint(Checkpoint("peer.example", 0, bytes(32)), OTHER_LOG)
    with pytest.raises(WitnessError) as exc:
        await w.add_checkpoint(b"old 0\n\n" + zero)
    assert exc.value.status in (409, 422)
    for body in (b"", b"old 01\n\n", b"new 0\n\nx", b"old 0\nAAAA\n\n"):
        with pytest.raises(WitnessError) as exc:
            await w.add_checkpoint(body)
        assert exc.value.status == 400
    # the witness still holds size 25 and serves it with its cosignature
    latest = await w.latest("peer.example")
    assert b"\n25\n" in latest and open_note(latest, [WITNESS_KEY.verifier])
    for lg in (peer, hub, fork):
        await lg.storage.conn.close()


@given(st.binary(max_size=300))
@settings(max_examples=200)
def test_fuzz_add_checkpoint_body(body):
    try:
        parse_add_checkpoint(body)
    except WitnessError as exc:
        assert exc.status == 400
