"""Two ``confide serve`` processes on loopback with a static peer table: B verifies a
request signed with A's on-disk key by fetching A's key document over HTTP, applies a
transaction once, refuses its replay, and ``confide admin federation`` reads A while it runs."""

from __future__ import annotations

import sqlite3
import subprocess
import time

import msgpack
import pytest

from protocol.federation import FEDERATION_PREFIX, sign_request
from tests.harness import CONFIDE, REPO, PeerProcess, free_port, http_msgpack

pytestmark = [pytest.mark.net, pytest.mark.soak]

def test_two_processes(tmp_path):
    pa, pb = free_port(), free_port()
    urls = {"a.test": f"http://127.0.0.1:{pa}", "b.test": f"http://127.0.0.1:{pb}"}
    a = PeerProcess(tmp_path, "a.test", pa, {"b.test": urls["b.test"]})
    b = PeerProcess(tmp_path, "b.test", pb, {"a.test": urls["a.test"]})
    a.start()
    b.start()
    try:
        with sqlite3.connect(tmp_path / "a.test" / "confide.sqlite") as conn:
            (key_id,) = conn.execute(
                "SELECT key_id FROM federation_server_keys WHERE valid_until IS NULL").fetchone()
        seed = (tmp_path / "a.test" / "keys" / "federation" / (key_id.replace(":", "_") + ".key")).read_bytes()
        target = FEDERATION_PREFIX + "/send/proc-1"
        body = msgpack.packb({"items": [{"kind": "no.handler", "data": b"x"}]}, use_bin_type=True)
        auth = sign_request(seed, key_id, "PUT", target, body, "a.test", "b.test",
                            int(time.time() * 1000)).to_header()
        status, answer = http_msgpack("PUT", urls["b.test"] + target, body, {"Authorization": auth})
        assert status == 200 and answer["results"][0]["code"] == "unknown_item_kind"
        status, answer = http_msgpack("PUT", urls["b.test"] + target, body, {"Authorization": auth})
        assert (status, answer["error"]["code"]) == (401, "replayed")
        with sqlite3.connect(tmp_path / "b.test" / "confide.sqlite") as conn:
            assert conn.execute("SELECT origin, txn_id FROM federation_inbound_txns").fetchall() == [
                ("a.test", "proc-1")]
        out = subprocess.run([*CONFIDE, "admin", "federation", "--data", str(tmp_path / "a.test")], cwd=REPO,
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 0 and out.stdout.startswith("destination")
    finally:
        for proc in (a, b):
            proc.stop()
