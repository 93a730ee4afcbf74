"""``confide serve`` on a data directory whose stored log does not match its signed checkpoint.

A homeserver runs in process first (registrations fill its log), then the
test tampers with the database the way a damaged disk or an attacker with file
access would, and starts a real ``confide serve`` on it: one line on stderr
(what, where, what to do), exit status 3, no traceback, nothing served.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys

import pytest

from crypto.checkpoint import Checkpoint, sign_checkpoint
from crypto.note import Signer
from server.appkeys import AUDIT
from tests.harness import start

pytestmark = [pytest.mark.net, pytest.mark.timeout(120)]

CONFIDE = [sys.executable, "-m", "server.cli"]
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _forge_checkpoint(db: sqlite3.Connection) -> None:
    size, = db.execute("SELECT MAX(size) FROM translog_checkpoints").fetchone()
    note = sign_checkpoint(Checkpoint("test.example", size, b"\x00" * 32), Signer("test.example", b"\x05" * 32))
    db.execute("UPDATE translog_checkpoints SET note = ? WHERE size = ?", (note, size))


TAMPERING = {
    "entry": ("UPDATE translog_entries SET data = CAST(data || x'00' AS BLOB) WHERE idx = 0", "entry 0"),
    "hash": ("UPDATE translog_hashes SET hash = zeroblob(32) WHERE id = (SELECT MAX(id) FROM translog_hashes "
             "WHERE id < 281474976710656)", "does not match"),
    "checkpoint": (_forge_checkpoint, "not signed by this server's log key"),
}


@pytest.mark.parametrize("what", sorted(TAMPERING))
async def test_serve_on_a_tampered_log_prints_one_line_and_exits_3(tmp_path, what):
    hs = await start(tmp_path)
    for user in ("alice", "bob", "carol"):
        await hs.register(user)
    await hs.app[AUDIT].flush()
    assert hs.log.size >= 3
    config = hs.config
    await hs.client.close()

    tamper, expected = TAMPERING[what]
    db = sqlite3.connect(str(config.database_path), isolation_level=None)
    try:
        tamper(db) if callable(tamper) else db.execute(tamper)
        assert db.total_changes >= 1
    finally:
        db.close()

    toml = tmp_path / "confide.toml"
    toml.write_text(f'server_name = "test.example"\ndata_dir = "{config.data_dir}"\n[listen]\nport = 0\n')
    result = subprocess.run([*CONFIDE, "serve", "--config", str(toml)], cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 3, result.stderr
    assert result.stdout == ""  # never listened
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("confide serve: the transparency log in ") and str(config.database_path) in line
    assert expected in line and "restore the data directory from a backup" in line
    assert "Traceback" not in result.stderr


async def _serve_once(tmp_path, config) -> subprocess.CompletedProcess:
    toml = tmp_path / "confide.toml"
    toml.write_text(f'server_name = "test.example"\ndata_dir = "{config.data_dir}"\n[listen]\nport = 0\n')
    return subprocess.run([*CONFIDE, "serve", "--config", str(toml)], cwd=REPO,
                          capture_output=True, text=True, timeout=60)


async def test_a_log_written_before_sealing_refuses_to_start(tmp_path):
    """Issue 10 finding 1: a schema-1 log holds entries in clear; Confide does not rewrite a
    signed log, so the server refuses to start with one sentence (spec/audit-log.md 7.7)."""
    hs = await start(tmp_path)
    await hs.register("alice")
    await hs.app[AUDIT].flush()
    config = hs.config
    await hs.client.close()
    db = sqlite3.connect(str(config.database_path), isolation_level=None)
    try:
        db.execute("UPDATE translog_schema SET version = 1")
    finally:
        db.close()
    result = await _serve_once(tmp_path, config)
    assert result.returncode == 3 and result.stdout == "", result.stderr
    [line] = result.stderr.splitlines()
    assert "written before log entries were sealed" in line and "new data directory" in line


async def test_the_log_privacy_key_is_checked_at_start(tmp_path):
    hs = await start(tmp_path)
    config = hs.config
    await hs.client.close()
    key = config.keys_dir / "log_privacy.key"
    assert len(key.read_bytes()) == 32 and key.stat().st_mode & 0o777 == 0o600
    key.chmod(0o644)
    result = await _serve_once(tmp_path, config)
    assert result.returncode != 0 and "log_privacy.key" in result.stderr and "chmod 600" in result.stderr
    assert "Traceback" not in result.stderr
