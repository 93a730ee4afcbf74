"""Finding 12 (issue 10): enumeration of accounts. Attacks on a real ``confide serve`` process.

Before: a wrong password for an existing user wrote a log entry that an unknown
user's did not (a timing difference); ``/users/{id}/devices`` answered
``not_found`` or 200 to anyone. Now an unknown user gets the same work (one
Argon2 check of a dummy hash, one counted failure (finding 1: counted per window, no
entry naming the user)) and the
same bytes; a device list is shown only to users who may contact the user (the
user itself, a co-member of a room, or a claimer of its KeyPackages), and
everyone else gets the bytes an unknown user gets. The signal left (a valid
invite can ask whether a name is taken) is in ``spec/security.md``.

Observed without timing: the exact answer bytes, the ``password_work`` log lines,
the failed-login count.
"""

from __future__ import annotations

import msgpack
import pytest

from tests.harness import PASSWORD, Practice, ServerProcess
from tests.security.conftest import Attacker, count_rows, failed_logins, work_lines

USER = "@carol:e2e.example"


@pytest.fixture(scope="module")
def practice(tmp_path_factory):
    root = tmp_path_factory.mktemp("enum")
    server = ServerProcess(root)
    server.start()
    p = Practice(server, root)
    p.register("carol", "clinician")  # a real device: keys and KeyPackages uploaded
    yield p
    server.stop()


async def _mallory(practice: Practice, attacker: Attacker) -> str:
    """A signed-in user of the same server with no contact with carol; their token."""
    invite = practice.server.admin("invite", "--role", "client").strip()
    status, raw = await attacker.call("POST", "/register", {
        "invite": invite, "user": "mallory", "password": PASSWORD})
    assert status == 200, raw
    return msgpack.unpackb(raw)["access_token"]


def _work(practice: Practice, since: int) -> list[str]:
    return [w["op"] for w in work_lines(practice.server.log_text()[since:])]


async def test_wrong_password_and_unknown_user_do_the_same_work(practice):
    server = practice.server
    async with Attacker(server.url, "127.0.0.6") as attacker:
        await attacker.call("POST", "/login", {"user": "warmup", "password": "x"})  # makes the dummy hash
        seen = {}
        for user in ("carol", "nobody", "carol", "nobody"):
            offset, failed = len(server.log_text()), failed_logins(server.data)
            answer = await attacker.call("POST", "/login", {
                "user": user, "password": "wrong password"})
            work = (_work(practice, offset), failed_logins(server.data) - failed)
            seen.setdefault(user, []).append((answer, work))
    assert seen["carol"] == seen["nobody"]  # identical bytes, identical work
    (status, raw), (ops, entries) = seen["carol"][0]
    assert status == 403 and msgpack.unpackb(raw)["error"]["code"] == "invalid_login"
    assert (ops, entries) == (["verify"], 1)


async def test_device_lists_only_for_users_one_may_contact(practice):
    async with Attacker(practice.server.url, "127.0.0.7") as attacker:
        token = await _mallory(practice, attacker)
        hidden = await attacker.call("GET", f"/users/{USER}/devices", token=token)
        unknown = await attacker.call("GET", "/users/@nobody:e2e.example/devices", token=token)
        assert hidden == unknown  # status and body, byte for byte
        assert hidden[0] == 404 and msgpack.unpackb(hidden[1])["error"]["code"] == "not_found"
        assert b"carol" not in hidden[1]
        # the positive control: after claiming carol's KeyPackages, mallory may list them
        status, _ = await attacker.call("POST", "/keys/claim", {"user": USER}, token=token)
        assert status == 200
        status, raw = await attacker.call("GET", f"/users/{USER}/devices", token=token)
        assert status == 200 and len(msgpack.unpackb(raw)["devices"]) == 1


async def test_registration_answers_without_a_valid_invite_reveal_nothing(practice):
    server = practice.server
    async with Attacker(server.url, "127.0.0.8") as attacker:
        offset = len(server.log_text())
        taken = await attacker.call("POST", "/register", {
            "invite": "AAAA-BBBB-CCCC-DDDD", "user": "carol", "password": PASSWORD})
        free = await attacker.call("POST", "/register", {
            "invite": "AAAA-BBBB-CCCC-DDDD", "user": "nobody", "password": PASSWORD})
        assert taken == free and msgpack.unpackb(taken[1])["error"]["code"] == "invite_invalid"
        assert _work(practice, offset) == []
        # the documented signal: a valid invite learns that a name is taken; the invite is
        # not used up, and the check costs no hashing either
        invite = server.admin("invite", "--role", "client").strip()
        accounts = count_rows(server.data, "accounts")
        offset = len(server.log_text())
        status, raw = await attacker.call("POST", "/register", {
            "invite": invite, "user": "carol", "password": PASSWORD})
        assert (status, msgpack.unpackb(raw)["error"]["code"]) == (409, "user_exists")
        assert _work(practice, offset) == []
        assert count_rows(server.data, "accounts") == accounts
        status, _ = await attacker.call("POST", "/register", {
            "invite": invite, "user": "dave", "password": PASSWORD})
        assert status == 200
