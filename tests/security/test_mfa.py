"""Multi-factor sign-in (issue 10, threat model): attacks on a real ``confide serve`` process.

A stolen password is no longer enough for an account with MFA: ``/login`` with the right
password and no (or a wrong, or a replayed) second factor is refused with a typed error and
creates neither a device nor a token. Accounts of the roles the practice makes MFA mandatory
for (``[auth] mfa_required_roles``, by default admin, clinician, staff) get only an
enrolment-only session until they enrol. The TOTP secret is sealed at rest.

The server reads the wall clock (``confide serve`` has no injected clock); the tests compute
codes from the same clock. A code is accepted at the server's steps T-1..T+1, so a code made
for "our step + 1" is valid for the server whatever step boundary passes in between; a fresh
login after the enrolment uses that one (the enrolment used "our step").
Observed without timing: answers (bytes), rows of the server's database, transparency-log
entries, the database file's bytes, the server's ``password_work`` lines.
"""

from __future__ import annotations

import asyncio
import base64
import subprocess
import sys
import time

import msgpack
import pytest

from crypto.totp import hotp, totp, totp_step
from tests.harness import PASSWORD, Practice, ServerProcess
from tests.harness.processes import REPO, cli_env
from tests.security.conftest import (
    Attacker,
    access_events,
    code,
    count_rows,
    failed_logins,
    work_lines,
)

PER_USER = 3
CONFIG = ('[auth]\nmfa_required_roles = ["admin", "clinician", "staff"]\n'
          "[federation]\nenabled = false\n"
          f"[login]\nmax_failures_per_user = {PER_USER}\nmax_failures_per_address = 50\n")


@pytest.fixture(scope="module")
def practice(tmp_path_factory):
    root = tmp_path_factory.mktemp("mfa")
    server = ServerProcess(root, extra_config=CONFIG)
    server.start()
    yield Practice(server, root)
    server.stop()


def _key(secret: str) -> bytes:
    return base64.b32decode(secret + "=" * (-len(secret) % 8))


def _next_code(key: bytes) -> str:
    """A code for one step after ours: valid for the server at our step and the two after."""
    return hotp(key, totp_step(time.time()) + 1)


def _body(raw: bytes) -> dict:
    return msgpack.unpackb(raw)


async def _register(practice: Practice, attacker: Attacker, name: str, role: str = "client") -> dict:
    invite = practice.server.admin("invite", "--role", role).strip()
    status, raw = await attacker.call("POST", "/register", {
        "invite": invite, "user": name, "password": PASSWORD})
    assert status == 200, raw
    return _body(raw)


async def _enrol(attacker: Attacker, token: str) -> tuple[bytes, list[str]]:
    status, raw = await attacker.call("POST", "/account/mfa/totp/begin", {}, token=token)
    assert status == 200, raw
    key = _key(_body(raw)["secret"])
    status, raw = await attacker.call("POST", "/account/mfa/totp/confirm",
                                      {"code": totp(key, time.time())}, token=token)
    assert status == 200, raw
    return key, _body(raw)["recovery_codes"]


def _login(name: str, **factor) -> dict:
    return {"user": name, "password": PASSWORD, **factor}


def _rows(practice: Practice) -> tuple[int, int]:
    data = practice.server.data
    return count_rows(data, "devices"), count_rows(data, "access_tokens")


def _registered_keys(server: ServerProcess, user: str) -> int:
    import sqlite3

    conn = sqlite3.connect(f"file:{server.data / 'confide.sqlite'}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT COUNT(*) FROM devices WHERE user_id = ? AND signature_key "
                            "IS NOT NULL", (user,)).fetchone()[0]
    finally:
        conn.close()


def test_rfc6238_vectors():
    # RFC 6238 Appendix B (SHA-1 rows; the full table is tests/crypto/test_totp.py)
    key = b"12345678901234567890"
    assert [totp(key, t, digits=8) for t in (59, 1111111109, 1234567890, 20000000000)] == [
        "94287082", "07081804", "89005924", "65353130"]


async def test_stolen_password_without_the_second_factor_gets_nothing(practice):
    async with Attacker(practice.server.url, "127.0.0.21") as a:
        reg = await _register(practice, a, "alice")
        key, _ = await _enrol(a, reg["access_token"])
        rows = _rows(practice)
        failed = failed_logins(practice.server.data)
        status, raw = await a.call("POST", "/login", _login("alice"))
        assert (status, _body(raw)["error"]["code"]) == (403, "mfa_required")
        wrong = hotp(key, totp_step(time.time()) + 7)
        status, raw = await a.call("POST", "/login", _login("alice", totp=wrong))
        assert (status, _body(raw)["error"]["code"]) == (403, "mfa_invalid")
        assert _rows(practice) == rows  # no device, no token
        assert b"access_token" not in raw
        assert failed_logins(practice.server.data) == failed + 1
        # the right code: a device and a token
        status, raw = await a.call("POST", "/login", _login("alice", totp=_next_code(key)))
        assert status == 200 and _body(raw)["mfa_enrolment_required"] is False
        assert _rows(practice) == (rows[0] + 1, rows[1] + 1)
    enabled = access_events(practice.server.data, "mfa_enabled")
    assert [e.user for e in enabled].count("@alice:e2e.example") == 1


async def test_a_replayed_code_is_refused(practice):
    async with Attacker(practice.server.url, "127.0.0.22") as a:
        reg = await _register(practice, a, "bob")
        key, _ = await _enrol(a, reg["access_token"])
        # the code the enrolment used cannot log in (its step is used)
        status, raw = await a.call("POST", "/login", _login("bob", totp=totp(key, time.time() - 30)))
        assert code((status, _body(raw))) == "mfa_invalid"
        good = _next_code(key)
        assert (await a.call("POST", "/login", _login("bob", totp=good)))[0] == 200
        rows = _rows(practice)
        status, raw = await a.call("POST", "/login", _login("bob", totp=good))  # seen on the wire
        assert (status, _body(raw)["error"]["code"]) == (403, "mfa_invalid")
        assert _rows(practice) == rows


async def test_concurrent_logins_with_one_code_succeed_once(practice):
    async with Attacker(practice.server.url, "127.0.0.23") as a:
        reg = await _register(practice, a, "carl")
        key, _ = await _enrol(a, reg["access_token"])
        rows = _rows(practice)
        good = _next_code(key)
        answers = await a.many(PER_USER, "POST", "/login", lambda i: _login("carl", totp=good))
        assert [s for s, _ in answers].count(200) == 1
        assert sorted(code(x) or "ok" for x in answers) == ["mfa_invalid"] * (PER_USER - 1) + ["ok"]
        assert _rows(practice) == (rows[0] + 1, rows[1] + 1)


async def test_wrong_codes_are_counted_in_the_login_limiter(practice):
    async with Attacker(practice.server.url, "127.0.0.24") as a:
        reg = await _register(practice, a, "dora")
        key, _ = await _enrol(a, reg["access_token"])
        rows = _rows(practice)
        offset = len(practice.server.log_text())
        for i in range(PER_USER):
            status, raw = await a.call("POST", "/login", _login("dora", totp=f"{i:06d}"))
            assert _body(raw)["error"]["code"] == "mfa_invalid"
        # the limit is reached: even the right code is not checked now, nor the password
        status, raw = await a.call("POST", "/login", _login("dora", totp=_next_code(key)))
        assert (status, _body(raw)["error"]["code"]) == (429, "rate_limited")
        assert [w["op"] for w in work_lines(practice.server.log_text()[offset:])] == ["verify"] * PER_USER
        assert _rows(practice) == rows


async def test_recovery_code_works_once(practice):
    async with Attacker(practice.server.url, "127.0.0.25") as a:
        reg = await _register(practice, a, "erin")
        _, codes = await _enrol(a, reg["access_token"])
        assert len(codes) == 10
        assert (await a.call("POST", "/login", _login("erin", recovery_code=codes[0])))[0] == 200
        rows = _rows(practice)
        status, raw = await a.call("POST", "/login", _login("erin", recovery_code=codes[0]))
        assert (status, _body(raw)["error"]["code"]) == (403, "mfa_invalid")
        assert _rows(practice) == rows
    used = access_events(practice.server.data, "recovery_code_used")
    assert [e.user for e in used] == ["@erin:e2e.example"]
    # only MACs of the codes are stored
    db = (practice.server.data / "confide.sqlite").read_bytes()
    wal = practice.server.data / "confide.sqlite-wal"
    stored = db + (wal.read_bytes() if wal.exists() else b"")
    for c in codes:
        assert c.encode() not in stored and c.replace("-", "").encode() not in stored


async def test_mandatory_role_without_enrolment_gets_only_the_enrolment_path(practice):
    server = practice.server
    async with Attacker(server.url, "127.0.0.26") as a:
        reg = await _register(practice, a, "drlee", role="clinician")
        assert reg["mfa_enrolment_required"] is True
        token = reg["access_token"]
        keys = {"signature_key": b"k" * 32, "credential": b"\x00\x01\x03abc", "signature": b"s" * 64}
        for method, path, body in (("GET", "/devices", None), ("GET", "/sync", None),
                                   ("PUT", "/keys/device", keys), ("GET", "/keys/packages/count", None),
                                   ("GET", "/rooms", None)):
            status, raw = await a.call(method, path, body, token=token)
            assert (status, _body(raw)["error"]["code"]) == (403, "mfa_enrolment_required"), path
        assert _registered_keys(server, "@drlee:e2e.example") == 0  # nothing stored
        status, raw = await a.call("GET", "/account/whoami", token=token)
        assert status == 200 and _body(raw)["role"] == "clinician"
        # an admin made by `confide admin create-user` signs in to the enrolment path only
        server.admin("create-user", "--user", "boss", "--role", "admin", "--password-stdin",
                     stdin=PASSWORD + "\n")
        status, raw = await a.call("POST", "/login", _login("boss"))
        assert status == 200 and _body(raw)["mfa_enrolment_required"] is True
        status, _ = await a.call("GET", "/devices", token=_body(raw)["access_token"])
        assert status == 403
        # enrolling turns this session into a full one
        await _enrol(a, token)
        assert (await a.call("GET", "/devices", token=token))[0] == 200


async def test_admin_reset_removes_the_second_factor(practice):
    server = practice.server
    async with Attacker(server.url, "127.0.0.29") as a:
        reg = await _register(practice, a, "ivan")
        await _enrol(a, reg["access_token"])
        status, raw = await a.call("POST", "/login", _login("ivan"))
        assert _body(raw)["error"]["code"] == "mfa_required"
        out = server.admin("mfa-reset", "--user", "ivan")
        assert out.strip() == "@ivan:e2e.example: second factor removed; it enrols again at its next sign-in"
        status, raw = await a.call("POST", "/login", _login("ivan"))
        assert status == 200 and _body(raw)["mfa_enrolment_required"] is False
    assert "@ivan:e2e.example" in [e.user for e in access_events(server.data, "mfa_disabled")]


async def test_the_secret_is_not_stored_in_the_clear(practice):
    server = practice.server
    async with Attacker(server.url, "127.0.0.27") as a:
        reg = await _register(practice, a, "fay")
        status, raw = await a.call("POST", "/account/mfa/totp/begin", {}, token=reg["access_token"])
        secret = _body(raw)["secret"]
    key = _key(secret)
    for path in server.data.glob("confide.sqlite*"):
        blob = path.read_bytes()
        assert key not in blob and secret.encode() not in blob, path
    assert secret not in server.log_text()
    key_file = server.data / "keys" / "mfa.key"
    assert key_file.stat().st_mode & 0o777 == 0o600


async def test_unknown_users_get_the_same_answer_and_work(practice):
    server = practice.server
    async with Attacker(server.url, "127.0.0.28") as a:
        reg = await _register(practice, a, "gus")
        key, _ = await _enrol(a, reg["access_token"])
        seen = {}
        for user in ("gus", "nobody", "gus", "nobody"):
            offset = len(server.log_text())
            failed = failed_logins(server.data)
            answer = await a.call("POST", "/login", {"user": user, "password": "wrong password",
                                                     "totp": _next_code(key)})
            work = ([w["op"] for w in work_lines(server.log_text()[offset:])],
                    failed_logins(server.data) - failed)
            seen.setdefault(user, []).append((answer, work))
    assert seen["gus"] == seen["nobody"]
    (status, raw), work = seen["gus"][0]
    assert (status, _body(raw)["error"]["code"]) == (403, "invalid_login") and work == (["verify"], 1)


async def test_cli_enable_login_and_refusals(practice):
    user = practice.register("hana", "staff")  # staff: enrolment-only until enrolled
    out = user.run("device", "list", check=False)
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [
        f"confide: mfa_enrolment_required: your role requires multi-factor sign-in; run "
        f"`confide mfa enable --profile {user.profile}` first"]
    proc = subprocess.Popen([sys.executable, "-m", "server.cli", "mfa", "enable", "--profile",
                             str(user.profile)], cwd=REPO, env=cli_env(), text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    secret = proc.stdout.readline().strip().removeprefix("secret: ")
    key = _key(secret)
    stdout, stderr = proc.communicate(totp(key, time.time()) + "\n", timeout=60)
    assert proc.returncode == 0, stderr
    recovery = [line.strip() for line in stdout.splitlines() if line.startswith("  ")]
    assert len(recovery) == 10
    assert user.run("device", "list").returncode == 0  # this device's keys are registered now
    # a second device: the password alone is refused in one sentence, a code works
    other = practice.root / "profile-hana-tablet"
    args = ["login", "--server", practice.server.url, "--user", "hana", "--profile", str(other),
            "--anchor", practice.server.admin("anchor").strip()]
    out = await asyncio.to_thread(_confide, *args)
    assert out.returncode == 1 and out.stderr.strip().splitlines() == [
        "confide: mfa_required: this account needs a second factor; pass --totp CODE or "
        "--recovery-code CODE"]
    out = await asyncio.to_thread(_confide, *args, "--totp", _next_code(key))
    assert out.returncode == 0 and out.stdout.startswith("logged in @hana:e2e.example device ")
    out = await asyncio.to_thread(_confide, *args, "--recovery-code", recovery[1])
    assert out.returncode == 0, out.stderr


def _confide(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "server.cli", *args], cwd=REPO, env=cli_env(),
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
