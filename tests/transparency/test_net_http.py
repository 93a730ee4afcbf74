"""NET: the HTTP routes on a local socket: tlog-tiles paths, proofs, witness
add-checkpoint status codes, and ``confide audit verify|export|prove`` against a URL."""

from __future__ import annotations

import asyncio
import base64
import hashlib

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from crypto.checkpoint import parse_tlog_proof
from crypto.note import Signer, open_note
from server.cli import main as cli_main
from server.translog import LOG_PREFIX, WITNESS_PREFIX, TransparencyLog, open_connection
from server.translog.devserver import create_app, demo_entries, open_log

pytestmark = pytest.mark.net

PEER = Signer("peer.example", bytes([5]) * 32)


async def run_cli(*argv: str) -> int:
    return await asyncio.get_running_loop().run_in_executor(None, cli_main, list(argv))


@pytest.fixture
async def served(tmp_path):
    log = await open_log(tmp_path, "hub.example")
    await log.append_many(demo_entries(300, 1_700_000_000_000))
    await log.storage.conn.close()
    server = TestServer(await create_app(tmp_path, "hub.example", witness_for=[PEER.verifier]))
    await server.start_server()
    async with aiohttp.ClientSession() as session:
        yield server, session
    await server.close()


async def test_routes(served):
    server, session = served
    base = str(server.make_url(LOG_PREFIX))
    async with session.get(base + "/checkpoint") as r:
        assert r.status == 200 and r.content_type == "text/plain"
        assert b"\n300\n" in await r.read()
    async with session.get(base + "/tile/0/000") as r:
        assert r.status == 200 and len(await r.read()) == 8192
        assert "immutable" in r.headers["Cache-Control"]
    async with session.get(base + "/tile/0/001.p/44") as r:
        assert r.status == 200 and len(await r.read()) == 44 * 32
    for bad, status in [("/tile/0/001.p/45", 404), ("/tile/0/1", 400), ("/tile/entries/002", 404),
                        ("/proof/inclusion?index=300", 400), ("/proof/inclusion?index=01", 400),
                        ("/proof/consistency?old=5&new=301", 400), ("/proof/inclusion?size=7&index=1", 404),
                        ("/proof/inclusion?event=00", 400)]:
        async with session.get(base + bad) as r:
            assert r.status == status, bad
            assert r.headers.get("X-Confide-Error")
    async with session.get(base + "/proof/inclusion?event=" + (5).to_bytes(32, "big").hex()) as r:
        assert r.status == 200 and parse_tlog_proof(await r.read()).index == 5


async def test_witness_over_http(served, tmp_path):
    server, session = served
    url = str(server.make_url(WITNESS_PREFIX + "/add-checkpoint"))
    conn = await open_connection(str(tmp_path / "peer.sqlite"))
    peer = await TransparencyLog.open(conn, PEER, privacy_key=bytes(range(32)))
    await peer.append_many(demo_entries(10, 1_700_000_000_000))
    note = await peer.checkpoint()
    async with session.post(url, data=b"old 0\n\n" + note) as r:
        assert r.status == 200
        line = await r.text()
    assert open_note(note + line.encode(), [Signer("hub.example/witness", (tmp_path / "witness.key").read_bytes(), 4).verifier])
    async with session.post(url, data=b"old 0\n\n" + note) as r:
        assert r.status == 409 and r.content_type == "text/x.tlog.size" and await r.text() == "10\n"
    await peer.append_many(demo_entries(20, 1_700_000_000_000)[10:])
    proof = "".join(base64.b64encode(h).decode() + "\n" for h in await peer.consistency_proof(10, 20))
    async with session.post(url, data=b"old 10\n" + proof.replace("A", "B", 1).encode() + b"\n" + await peer.checkpoint()) as r:
        assert r.status == 422
    async with session.post(url, data=b"old 10\n" + proof.encode() + b"\n" + await peer.checkpoint()) as r:
        assert r.status == 200
    async with session.post(url, data=b"garbage") as r:
        assert r.status == 400
    mon = str(server.make_url(f"{WITNESS_PREFIX}/{hashlib.sha256(b'peer.example').hexdigest()}/checkpoint"))
    async with session.get(mon) as r:
        assert r.status == 200 and b"\n20\n" in await r.read()
    await conn.close()


async def test_cli_against_url(served, tmp_path, capsys):
    server, _ = served
    url = str(server.make_url("/"))
    state = tmp_path / "state.json"
    assert await run_cli("audit", "verify", url, "--state", str(state)) == 0
    out = capsys.readouterr().out
    assert "300 entries" in out and "demo.example:" not in out.split("OK", 1)[1]  # sealed: nobody named
    assert await run_cli("audit", "export", url, str(tmp_path / "b")) == 0
    assert await run_cli("audit", "verify", str(tmp_path / "b"), "--state", str(state)) == 0
    capsys.readouterr()
    assert await run_cli("audit", "prove", url, "42") == 0
    proof = capsys.readouterr().out
    (tmp_path / "p.tlog-proof").write_text(proof)
    assert await run_cli("audit", "verify", str(tmp_path / "p.tlog-proof"), "--state", str(state)) == 0
    wrong = Signer("hub.example", bytes(32)).verifier.vkey()
    assert await run_cli("audit", "verify", url, "--key", wrong) == 1
    assert "checkpoint does not verify" in capsys.readouterr().err
