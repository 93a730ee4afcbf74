"""The auditor against a live service in memory (no sockets): a clean log verifies;
tampering with the stored entries (byte changed, deleted, swapped) and a fork
(truncate, grow a different history) are each caught and located; client checks."""

from __future__ import annotations

import pytest

from client.audit import (
    AuditFailure,
    AuditState,
    BundleSource,
    export_bundle,
    list_device_registrations,
    verify_device_inclusion,
    verify_log,
    verify_tlog_proof,
)
from crypto.note import Signer
from protocol import audit
from server.cli import main as cli_main
from server.translog import TransparencyLog, open_connection
from server.translog.devserver import demo_entries

from .helpers import LogSource

KEY = Signer("hub.example", bytes(range(32)))
T0 = 1_700_000_000_000


async def open_log(path) -> TransparencyLog:
    conn = await open_connection(str(path / "log.sqlite"))
    return await TransparencyLog.open(conn, KEY, privacy_key=bytes(range(32)))


@pytest.fixture
async def log(tmp_path):
    lg = await open_log(tmp_path)
    await lg.append_many(demo_entries(70, T0))
    await lg.append_many(demo_entries(100, T0)[70:])
    yield lg
    await lg.storage.conn.close()


async def sql(log, stmt, params=()):
    await log.storage.conn.execute(stmt, params)


async def test_clean_log_verifies_and_summarises(log):
    report, state = await verify_log(LogSource(log), AuditState(), KEY.verifier.vkey())
    assert report.checkpoint.size == 100
    assert report.by_kind["device_added"] == 10 and report.by_kind["access/login"] == 10
    assert report.by_kind["room_event"] == 80
    assert report.first_time == T0 and report.last_time == T0 + 99_000
    # without openings the auditor sees nobody: the entries are sealed
    assert report.devices == {} and report.opened == 0
    assert "100 entries" in report.summary() and "demo.example" not in report.summary()
    src = LogSource(log)
    opened, _ = await verify_log(src, AuditState(), KEY.verifier.vkey(), src.opening)
    assert opened.opened == 100
    assert [e.device for e in opened.devices["@user0:demo.example"]] == ["D0", "D30", "D60", "D90"]
    # second run from the saved state: consistency from 100 to 110
    await log.append_many(demo_entries(110, T0)[100:])
    report2, state2 = await verify_log(LogSource(log), state)
    assert state2.size == 110 and state2.vkey == KEY.verifier.vkey()


async def test_wrong_key_rejected(log):
    with pytest.raises(AuditFailure, match="checkpoint does not verify"):
        await verify_log(LogSource(log), AuditState(), Signer("hub.example", bytes(32)).verifier.vkey())


async def flip_byte(log):
    (data,) = await log.storage.read_entries(37, 1)
    await sql(log, "UPDATE translog_entries SET data = ? WHERE idx = 37",
              (data[:20] + bytes([data[20] ^ 1]) + data[21:],))
    return 37


async def delete_one(log):
    await sql(log, "DELETE FROM translog_entries WHERE idx = 50")
    return 50


async def swap_two(log):
    a, b = await log.storage.read_entries(60, 2)
    await sql(log, "UPDATE translog_entries SET data = ? WHERE idx = 60", (b,))
    await sql(log, "UPDATE translog_entries SET data = ? WHERE idx = 61", (a,))
    return 60


@pytest.mark.parametrize("tamper", [flip_byte, delete_one, swap_two], ids=["byte", "deleted", "swapped"])
async def test_tampered_entries_are_named(log, tamper):
    where = await tamper(log)
    with pytest.raises(AuditFailure) as exc:
        await verify_log(LogSource(log), AuditState(), KEY.verifier.vkey())
    assert exc.value.index == where, str(exc.value)
    assert f"entry {where}" in str(exc.value)


async def test_rewritten_leaf_hashes_caught_by_root(log):
    # the attacker also rewrites the stored leaf hash: the root then disagrees with the checkpoint
    from crypto.merkle import leaf_hash

    (data,) = await log.storage.read_entries(42, 1)
    forged = data[:45] + bytes([data[45] ^ 1]) + data[46:]  # inside the room's commitment
    await sql(log, "UPDATE translog_entries SET data = ? WHERE idx = 42", (forged,))
    await sql(log, "UPDATE translog_hashes SET hash = ? WHERE id = 42", (leaf_hash(forged),))
    with pytest.raises(AuditFailure) as exc:
        await verify_log(LogSource(log), AuditState(), KEY.verifier.vkey())
    assert exc.value.size == 100


async def truncate(log, tmp_path, size) -> TransparencyLog:
    for stmt in (
        f"DELETE FROM translog_entries WHERE idx >= {size}",
        f"DELETE FROM translog_openings WHERE idx >= {size}",
        f"DELETE FROM translog_subjects WHERE idx >= {size}",
        f"DELETE FROM translog_hashes WHERE (((id & {(1 << 48) - 1}) + 1) << (id >> 48)) > {size}",
        f"DELETE FROM translog_checkpoints WHERE size > {size}",
        "DELETE FROM translog_events",
    ):
        await sql(log, stmt)
    await log.storage.conn.close()
    return await open_log(tmp_path)


async def test_fork_same_size_and_grown(tmp_path):
    log = await open_log(tmp_path)
    await log.append_many(demo_entries(70, T0))
    await log.append_many(demo_entries(100, T0)[70:])
    _, state = await verify_log(LogSource(log), AuditState(), KEY.verifier.vkey())
    other = demo_entries(200, T0 + 5)  # different times: a different history
    log = await truncate(log, tmp_path, 70)
    await log.append_many(other[70:100])
    # the forked log verifies on its own...
    await verify_log(LogSource(log), AuditState(), KEY.verifier.vkey())
    # ...but not against what the auditor saw before
    with pytest.raises(AuditFailure) as exc:
        await verify_log(LogSource(log), state)
    assert exc.value.size == 100 and "fork" in str(exc.value)
    await log.append_many(other[100:130])
    with pytest.raises(AuditFailure) as exc:
        await verify_log(LogSource(log), state)
    assert exc.value.size == 100 and "entries 64..95 differ" in str(exc.value)
    # rolling back below the seen size
    log = await truncate(log, tmp_path, 70)
    with pytest.raises(AuditFailure, match="shrank"):
        await verify_log(LogSource(log), state)
    await log.storage.conn.close()


async def test_bad_carried_signature_named(tmp_path):
    log = await open_log(tmp_path)
    dev = audit.sign_device_registration(bytes([3]) * 32, T0, "@ann:hub.example", "A1", b"c")
    forged = audit.DeviceAdded(T0, "@ann:hub.example", "GHOST", dev.signature_key, b"c", dev.signature)
    ok_consent = audit.sign_consent(bytes([3]) * 32, T0, "@ann:hub.example", "A1", "p", 1, bytes(32))
    await log.append_many([dev, ok_consent, forged])
    src = LogSource(log)
    await verify_log(src, AuditState(), KEY.verifier.vkey())  # sealed: signatures are committed
    with pytest.raises(AuditFailure) as exc:
        await verify_log(src, AuditState(), KEY.verifier.vkey(), src.opening)
    assert exc.value.index == 2


async def test_an_opening_that_does_not_match_is_named(log):
    src = LogSource(log)

    async def lying(index: int) -> bytes:
        if index != 30:
            return await src.opening(index)
        opening = await log.opening(30)
        other = audit.DeviceAdded(opening.entry.time, "@mallory:demo.example", opening.entry.device,
                                  opening.entry.signature_key, opening.entry.credential,
                                  opening.entry.signature)
        return type(opening)(30, other, opening.salts).to_bytes()

    with pytest.raises(AuditFailure, match="does not match") as exc:
        await verify_log(src, AuditState(), KEY.verifier.vkey(), lying)
    assert exc.value.index == 30
    await log.storage.conn.close()


async def test_device_inclusion_and_registrations(log, tmp_path):
    proof = (await log.inclusion_proof(30)).to_tlog_proof()
    opening = (await log.opening(30)).to_bytes()
    entry = audit.decode_entry((await log.storage.read_opened_range(30, 1))[0])
    assert isinstance(entry, audit.DeviceAdded)
    got = verify_device_inclusion(proof, KEY.verifier, entry.user, entry.device, entry.signature_key,
                                  opening, entry.credential)
    assert got == entry
    with pytest.raises(AuditFailure):
        verify_device_inclusion(proof, KEY.verifier, entry.user, entry.device, bytes(32), opening)
    with pytest.raises(AuditFailure):
        verify_device_inclusion(proof, KEY.verifier, entry.user, entry.device, entry.signature_key,
                                opening, b"another credential")
    with pytest.raises(AuditFailure):  # the opening of another registration
        verify_device_inclusion(proof, KEY.verifier, entry.user, entry.device, entry.signature_key,
                                (await log.opening(0)).to_bytes())
    with pytest.raises(AuditFailure):
        verify_device_inclusion(proof.replace(b"index 30", b"index 31"), KEY.verifier,
                                entry.user, entry.device, entry.signature_key, opening)
    with pytest.raises(AuditFailure):  # a room event is not a registration
        verify_device_inclusion((await log.inclusion_proof(32)).to_tlog_proof(), KEY.verifier,
                                entry.user, entry.device, entry.signature_key, opening)
    src = LogSource(log)
    regs = await list_device_registrations(src, "@user0:demo.example", vkey=KEY.verifier.vkey(),
                                           openings=src.opening)
    assert [(r.index, r.action) for r in regs] == [(0, "added"), (30, "added"), (60, "added"), (90, "added")]
    # a tlog-proof also checks against a pinned state
    _, state = await verify_log(LogSource(log), AuditState(), KEY.verifier.vkey())
    cp, index, _ = verify_tlog_proof(proof, KEY.verifier, state)
    assert index == 30 and cp.size == 100


async def test_cli_bundle_roundtrip(log, tmp_path, capsys):
    out = tmp_path / "bundle"
    await export_bundle(LogSource(log), out)
    assert (out / "tile/entries/000.p/100").is_file() and (out / "tile/0/000.p/100").is_file()
    state = tmp_path / "state.json"
    # run in a thread-free way: the CLI calls asyncio.run, so hand it off to an executor
    import asyncio

    loop = asyncio.get_running_loop()
    rc = await loop.run_in_executor(None, cli_main, ["audit", "verify", str(out), "--state", str(state)])
    assert rc == 0 and "100 entries" in capsys.readouterr().out
    assert AuditState.load(state).vkey == KEY.verifier.vkey()
    report, _ = await verify_log(BundleSource(out), AuditState.load(state))
    assert report.checkpoint.size == 100
    # tamper with the bundle: the CLI exits 1 naming the entry
    p = out / "tile/entries/000.p/100"
    data = bytearray(p.read_bytes())
    data[40] ^= 1
    p.write_bytes(bytes(data))
    rc = await loop.run_in_executor(None, cli_main, ["audit", "verify", str(out), "--state", str(state)])
    assert rc == 1
    err = capsys.readouterr().err
    assert "FAILED: entry" in err
    proof_file = tmp_path / "p.tlog-proof"
    proof_file.write_bytes((await log.inclusion_proof(5)).to_tlog_proof())
    rc = await loop.run_in_executor(None, cli_main, ["audit", "verify", str(proof_file), "--state", str(state)])
    assert rc == 0 and "entry 5 is in log hub.example" in capsys.readouterr().out
