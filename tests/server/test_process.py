"""``confide serve`` as a real process on a free loopback port: first start, register, login, SIGTERM."""

from __future__ import annotations

import signal
import stat
import subprocess

import msgpack
import pytest

from tests.harness import CONFIDE, REPO, http_msgpack

pytestmark = pytest.mark.net

def _post(url: str, body: dict) -> tuple[int, dict]:
    return http_msgpack("POST", url, msgpack.packb(body))


def test_serve_register_login_and_sigterm(tmp_path):
    data = tmp_path / "data"
    config = tmp_path / "confide.toml"
    config.write_text(f'server_name = "proc.example"\ndata_dir = "{data}"\n[listen]\nport = 0\n')
    proc = subprocess.Popen([*CONFIDE, "serve", "--config", str(config)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("Confide proc.example listening on http://127.0.0.1:"), (
            line, proc.stderr.read() if proc.poll() is not None else "")
        base = line.split(" on ", 1)[1].strip().rstrip("/")
        for name in ("log.key", "witness.key"):
            assert stat.S_IMODE((data / "keys" / name).stat().st_mode) == 0o600
        invite = subprocess.run([*CONFIDE, "admin", "invite", "--data", str(data), "--role", "client"],
                                cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
        status, reg = _post(base + "/_confide/client/v1/register", {
            "invite": invite, "user": "patq7", "password": "password1"})
        assert status == 200 and reg["user_id"] == "@patq7:proc.example"
        status, login = _post(base + "/_confide/client/v1/login", {
            "user": "patq7", "password": "password1"})
        assert status == 200 and login["device_id"] != reg["device_id"]
        status, err = _post(base + "/_confide/client/v1/login", {
            "user": "patq7", "password": "nope"})
        assert (status, err["error"]["code"]) == (403, "invalid_login")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        logs = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # JSON log lines, with route templates and no user ids, passwords or tokens
    assert '"event": "request"' in logs
    for secret in ("patq7", "password1", reg["access_token"], invite):
        assert secret not in logs
    assert (data / "confide.sqlite").exists()


def test_bad_config_exits_2(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text("nonsense = 1\n")
    result = subprocess.run([*CONFIDE, "serve", "--config", str(config)], cwd=REPO,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "nonsense" in result.stderr
