"""Finding 7 (issue 10): login limits bypassed. Attacks on a real ``confide serve`` process.

Before: the limit was read before the Argon2 check and counted after it, so 200
concurrent wrong passwords were all checked; ``/register`` hashed before looking
at the invite and had no limit. Now an attempt is counted before its password is
checked, in one step with the check of the limit; the invite is looked up before
any hashing; Argon2 runs in at most ``login.max_concurrent_hashes`` slots.

What is observed (no timing): the answers, the server's ``password_work`` log
lines (one per Argon2 run, with the number of slots running), the transparency
failed-login count (finding 1) and the database's rows.
"""

from __future__ import annotations

import pytest

from tests.harness import PASSWORD, ServerProcess
from tests.security.conftest import Attacker, code, count_rows, failed_logins, work_lines

PER_USER, PER_ADDRESS, SLOTS = 5, 20, 2


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = ServerProcess(tmp_path_factory.mktemp("limits"), extra_config=(
        "[federation]\nenabled = false\n"
        f"[login]\nmax_failures_per_user = {PER_USER}\nmax_failures_per_address = {PER_ADDRESS}\n"
        f"max_concurrent_hashes = {SLOTS}\n"))
    s.start()
    yield s
    s.stop()


def _login(user: str, password: str):
    return lambda i: {"user": user, "password": password}


def _work_since(server: ServerProcess, offset: int) -> list[dict]:
    return work_lines(server.log_text()[offset:])


async def test_a_flood_of_wrong_passwords_is_checked_at_most_the_limit(server):
    server.admin("create-user", "--user", "victim", "--role", "clinician",
                 "--password-stdin", stdin=PASSWORD + "\n")
    async with Attacker(server.url, "127.0.0.1") as owner:  # the owner logs in once: known
        status, _ = await owner.call("POST", "/login", _login("victim", PASSWORD)(0))
        assert status == 200
    before = len(server.log_text())
    async with Attacker(server.url, "127.0.0.2") as attacker:
        answers = await attacker.many(200, "POST", "/login", _login("victim", "wrong password"))
    codes = [code(a) for a in answers]
    assert codes.count("invalid_login") == PER_USER
    assert codes.count("rate_limited") == 200 - PER_USER
    assert all(a[0] == 429 and a[1]["error"]["retry_after_ms"] > 0
               for a in answers if code(a) == "rate_limited")
    # only the counted attempts were checked: one Argon2 verify each, one log entry each
    assert [w["op"] for w in _work_since(server, before)] == ["verify"] * PER_USER
    assert failed_logins(server.data) == PER_USER
    # from a new address, even the right password waits for the window, unchecked ...
    before = len(server.log_text())
    async with Attacker(server.url, "127.0.0.3") as stranger:
        answer = await stranger.many(1, "POST", "/login", _login("victim", PASSWORD))
    assert code(answer[0]) == "rate_limited"
    assert _work_since(server, before) == []
    # ... but the flood cannot lock the owner out where they logged in before
    async with Attacker(server.url, "127.0.0.1") as owner:
        status, _ = await owner.call("POST", "/login", _login("victim", PASSWORD)(1))
        assert status == 200


async def test_bogus_registrations_are_refused_before_any_hashing(server):
    accounts = count_rows(server.data, "accounts")
    before = len(server.log_text())
    async with Attacker(server.url, "127.0.0.4") as attacker:
        answers = await attacker.many(30, "POST", "/register", lambda i: {
            "invite": "AAAA-BBBB-CCCC-DDDD", "user": f"bogus{i}", "password": "x" * 12})
    codes = [code(a) for a in answers]
    # counted per address before the invite is looked up: past the limit, rate_limited
    assert codes.count("invite_invalid") == PER_ADDRESS
    assert codes.count("rate_limited") == 30 - PER_ADDRESS
    assert all(a[0] == 403 for a in answers if code(a) == "invite_invalid")
    assert _work_since(server, before) == []  # no Argon2 work at all
    assert count_rows(server.data, "accounts") == accounts  # nothing stored


async def test_concurrent_registrations_share_the_bounded_hash_slots(server):
    invites = [server.admin("invite", "--role", "client").strip() for _ in range(6)]
    before = len(server.log_text())
    async with Attacker(server.url, "127.0.0.5") as clients:
        answers = await clients.many(6, "POST", "/register", lambda i: {
            "invite": invites[i], "user": f"newcomer{i}", "password": PASSWORD})
    assert [a[0] for a in answers] == [200] * 6
    work = _work_since(server, before)
    assert [w["op"] for w in work] == ["hash"] * 6
    assert all(1 <= w["running"] <= SLOTS for w in work)
