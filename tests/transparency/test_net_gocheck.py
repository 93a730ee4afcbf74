"""NET: independent check with Go's golang.org/x/mod/sumdb/note and sumdb/tlog.

Opens a local socket (the devserver app on aiohttp's TestServer) and starts a
process (the Go checker in gocheck/main.go, compiled into a temp dir with
``GO111MODULE=off GOPATH=/usr/share/gocode``). The checker verifies the signed
checkpoint with note.Open, reads the tree through tlog.TileHashReader, checks
every entry against its leaf, and checks Confide's inclusion and consistency
proofs with tlog.CheckRecord/CheckTree and against the proofs Go derives itself.
Installs Go with install_go.sh when missing, or skips saying why.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from crypto.note import Signer
from server.translog import LOG_PREFIX
from server.translog.devserver import create_app, demo_entries, open_log

pytestmark = pytest.mark.net

HERE = Path(__file__).parent
GOPATH = "/usr/share/gocode"


def _ensure_go() -> str | None:
    """Why Go cannot be used, or None when it can."""
    if not (shutil.which("go") and Path(GOPATH, "src/golang.org/x/mod/sumdb/tlog").is_dir()):
        try:
            subprocess.run(["bash", str(HERE / "install_go.sh")], check=True, timeout=600,
                           capture_output=True)
        except (OSError, subprocess.SubprocessError) as exc:
            return f"Go or golang-golang-x-mod-dev missing and install_go.sh failed: {exc}"
    if not shutil.which("go"):
        return "go not on PATH after install_go.sh"
    return None


@pytest.fixture(scope="module")
def gocheck(tmp_path_factory) -> Path:
    reason = _ensure_go()
    if reason:
        pytest.skip(reason)
    out = tmp_path_factory.mktemp("gocheck")
    env = {**os.environ, "GO111MODULE": "off", "GOPATH": GOPATH, "GOCACHE": str(out / "cache"),
           "GOFLAGS": ""}
    subprocess.run(["go", "build", "-o", str(out / "gocheck"), str(HERE / "gocheck" / "main.go")],
                   check=True, env=env, timeout=300, cwd=out)
    return out / "gocheck"


async def run_gocheck(gocheck: Path, directory: Path) -> tuple[int, str]:
    server = TestServer(await create_app(directory, "hub.example"))
    await server.start_server()
    try:
        vkey = Signer("hub.example", (directory / "log.key").read_bytes()).verifier.vkey()
        proc = await asyncio.create_subprocess_exec(
            str(gocheck), "-url", str(server.make_url(LOG_PREFIX)), "-vkey", vkey,
            "-origin", "hub.example", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 120)
        return proc.returncode, out.decode()
    finally:
        await server.close()


@pytest.mark.parametrize("sizes", [(1,), (7, 200), (256, 600)], ids=["1", "200", "600"])
async def test_go_verifies_confide_log(gocheck, tmp_path, sizes):
    log = await open_log(tmp_path, "hub.example")
    entries = demo_entries(sizes[-1], 1_700_000_000_000)
    prev = 0
    for s in sizes:  # several batches: several checkpoints, tiles written across batches
        await log.append_many(entries[prev:s])
        prev = s
    await log.storage.conn.close()
    rc, text = await run_gocheck(gocheck, tmp_path)
    assert rc == 0, text
    assert f"OK size={sizes[-1]} entries={sizes[-1]}" in text


async def test_go_rejects_a_tampered_entry(gocheck, tmp_path):
    log = await open_log(tmp_path, "hub.example")
    await log.append_many(demo_entries(300, 1_700_000_000_000))
    (data,) = await log.storage.read_entries(123, 1)
    await log.storage.conn.execute("UPDATE translog_entries SET data = ? WHERE idx = 123",
                                   (data[:-1] + bytes([data[-1] ^ 1]),))
    await log.storage.conn.close()
    rc, text = await run_gocheck(gocheck, tmp_path)
    assert rc == 1 and "entry 123 does not match" in text, text
