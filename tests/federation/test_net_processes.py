"""Two ``confide serve`` processes on loopback with a static peer table: B verifies a
request signed with A's on-disk key by fetching A's key document over HTTP, applies a
transaction once, refuses its replay, and ``confide admin federation`` reads A while it runs."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import msgpack
import pytest

from protocol.federation import FEDERATION_PREFIX, sign_request
from tests.harness import free_port

pytestmark = [pytest.mark.net, pytest.mark.soak]

CONFIDE = [sys.executable, "-m", "server.cli"]
REPO = Path(__file__).resolve().parents[2]


def _start(tmp_path: Path, name: str, port: int, peers: dict[str, str]) -> subprocess.Popen:
    data = tmp_path / name
    table = "\n".join(f'"{k}" = "{v}"' for k, v in peers.items())
    cfg = tmp_path / f"{name}.toml"
    cfg.write_text(f'server_name = "{name}"\ndata_dir = "{data}"\n[listen]\nport = {port}\n'
                   f"[federation.peers]\n{table}\n")
    proc = subprocess.Popen([*CONFIDE, "serve", "--config", str(cfg)], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    assert line.startswith(f"Confide {name} listening"), line
    return proc


def _put(url: str, body: bytes, auth: str) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=body, method="PUT", headers={
        "Content-Type": "application/msgpack", "Authorization": auth})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, msgpack.unpackb(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, msgpack.unpackb(exc.read())


def test_two_processes(tmp_path):
    pa, pb = free_port(), free_port()
    urls = {"a.test": f"http://127.0.0.1:{pa}", "b.test": f"http://127.0.0.1:{pb}"}
    a = _start(tmp_path, "a.test", pa, {"b.test": urls["b.test"]})
    b = _start(tmp_path, "b.test", pb, {"a.test": urls["a.test"]})
    try:
        with sqlite3.connect(tmp_path / "a.test" / "confide.sqlite") as conn:
            (key_id,) = conn.execute(
                "SELECT key_id FROM federation_server_keys WHERE valid_until IS NULL").fetchone()
        seed = (tmp_path / "a.test" / "keys" / "federation" / (key_id.replace(":", "_") + ".key")).read_bytes()
        target = FEDERATION_PREFIX + "/send/proc-1"
        body = msgpack.packb({"items": [{"kind": "no.handler", "data": b"x"}]}, use_bin_type=True)
        auth = sign_request(seed, key_id, "PUT", target, body, "a.test", "b.test",
                            int(time.time() * 1000)).to_header()
        status, answer = _put(urls["b.test"] + target, body, auth)
        assert status == 200 and answer["results"][0]["code"] == "unknown_item_kind"
        status, answer = _put(urls["b.test"] + target, body, auth)
        assert (status, answer["error"]["code"]) == (401, "replayed")
        with sqlite3.connect(tmp_path / "b.test" / "confide.sqlite") as conn:
            assert conn.execute("SELECT origin, txn_id FROM federation_inbound_txns").fetchall() == [
                ("a.test", "proc-1")]
        out = subprocess.run([*CONFIDE, "admin", "federation", "--data", str(tmp_path / "a.test")], cwd=REPO,
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 0 and out.stdout.startswith("destination")
    finally:
        for proc in (a, b):
            proc.send_signal(signal.SIGTERM)
        for proc in (a, b):
            assert proc.wait(timeout=20) == 0
