"""``confide admin invite`` and ``create-user`` against a data directory, then the server uses them."""

from __future__ import annotations

import asyncio
import io
import sys
import time

from protocol.audit import AccessAction
from server.cli import main
from tests.harness import FakeClock, start


def _run(argv, capsys, stdin: str | None = None, monkeypatch=None):
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = main(argv)
    return code, capsys.readouterr()


def test_invite_then_register(tmp_path, capsys):
    data = tmp_path / "data"
    code, out = _run(["admin", "invite", "--data", str(data), "--role", "staff",
                      "--server-name", "test.example"], capsys)
    assert code == 0
    invite = out.out.strip()
    code_part, _, anchor = invite.partition("#")
    assert len(code_part) == 19 and code_part.count("-") == 3 and len(anchor) == 43

    async def go():
        hs = await start(tmp_path, FakeClock(time.time()))
        try:
            status, body = await hs.call("POST", "/register", {
                "invite": invite, "user": "sam", "password": "password1"})
            assert status == 200
            _, me = await hs.call("GET", "/account/whoami", token=body["access_token"])
            return me["role"]
        finally:
            await hs.client.close()

    assert asyncio.run(go()) == "staff"


def test_create_user_with_password_stdin_logs_in_and_is_logged(tmp_path, capsys, monkeypatch):
    data = tmp_path / "data"
    code, out = _run(["admin", "create-user", "--data", str(data), "--user", "dr.who", "--role",
                      "clinician", "--password-stdin", "--server-name", "test.example"], capsys,
                     stdin="a long password\n", monkeypatch=monkeypatch)
    assert code == 0 and out.out.strip() == "@dr.who:test.example"
    code, out = _run(["admin", "create-user", "--data", str(data), "--user", "dr.who", "--role",
                      "clinician", "--password-stdin"], capsys, stdin="a long password\n",
                     monkeypatch=monkeypatch)
    assert code == 1 and "exists" in out.err

    async def go():
        hs = await start(tmp_path, FakeClock(time.time()))
        try:
            status, body = await hs.login("dr.who", "a long password")
            assert status == 200
            entries = await hs.log_entries()
            return [e.action for e in entries]
        finally:
            await hs.client.close()

    # the queued account_created reached the log at start, before the login
    assert asyncio.run(go()) == [AccessAction.ACCOUNT_CREATED, AccessAction.LOGIN]


def test_create_user_generates_a_password(tmp_path, capsys):
    code, out = _run(["admin", "create-user", "--data", str(tmp_path / "d"), "--user", "x",
                      "--role", "admin"], capsys)
    lines = out.out.splitlines()
    assert code == 0 and lines[0] == "@x:localhost" and lines[1].startswith("password: ")


def test_create_user_refuses_bad_names(tmp_path, capsys):
    code, out = _run(["admin", "create-user", "--data", str(tmp_path / "d"), "--user", "Bad Name",
                      "--role", "client"], capsys)
    assert code == 2 and "localpart" in out.err
