"""The client commands, run in-process through ``main([...])`` against a real server on loopback."""

from __future__ import annotations

import asyncio
import io
import json
import threading
import time

import pytest
import structlog
from aiohttp import web

from crypto.rng import system_rng
from server.app import create_app
from server.appkeys import DATABASE
from server.cli import main
from server.services.provisioning import create_invite
from tests.server.helpers import FastHasher

from .conftest import PASSWORD, make_config

pytestmark = pytest.mark.net


class LoopbackServer:
    """The homeserver in its own thread and event loop, on 127.0.0.1 and a free port."""

    def __init__(self, tmp_path) -> None:
        self.loop = asyncio.new_event_loop()
        self.app = create_app(make_config(tmp_path), hasher=FastHasher())
        self.runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self._call(self.runner.setup())
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        self._call(site.start())
        port = self.runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"

    def _call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def invite(self) -> str:
        return self._call(create_invite(self.app[DATABASE], "client", 3600, time.time, system_rng))

    def stop(self) -> None:
        self._call(self.runner.cleanup())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def server(tmp_path, monkeypatch):
    # the server's logs go to a buffer, so stdout holds only what the commands print
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=io.StringIO()))
    monkeypatch.setenv("CONFIDE_PASSPHRASE", "profile pass")
    monkeypatch.setenv("CONFIDE_PASSWORD", PASSWORD)
    monkeypatch.setenv("CONFIDE_PROFILE_KDF", "minimum")
    s = LoopbackServer(tmp_path)
    yield s
    s.stop()
    structlog.reset_defaults()


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_register_create_invite_send_read(server, tmp_path, capsys):
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    code, out, _ = run(capsys, "register", "--server", server.url, "--invite", server.invite(),
                       "--user", "alice", "--profile", a)
    assert code == 0 and "@alice:test.example" in out
    assert run(capsys, "register", "--server", server.url, "--invite", server.invite(),
               "--user", "bob", "--profile", b)[0] == 0
    code, out, _ = run(capsys, "room", "create", "--profile", a, "--name", "session")
    room = out.strip()
    assert code == 0 and room.startswith("!")
    assert run(capsys, "room", "invite", "--profile", a, room, "@bob:test.example")[0] == 0
    assert run(capsys, "send", "--profile", a, room, "hello from the cli")[0] == 0
    code, out, _ = run(capsys, "read", "--profile", b, room)
    assert code == 0 and "hello from the cli" in out
    assert run(capsys, "send", "--profile", b, room, "answer")[0] == 0
    code, out, _ = run(capsys, "read", "--profile", a, room, "--json")
    lines = [json.loads(line) for line in out.splitlines()]
    assert [m["body"] for m in lines if m["type"] == "text"] == ["hello from the cli", "answer"]
    code, out, _ = run(capsys, "read", "--profile", b, room, "--follow", "--timeout", "0.5")
    assert code == 0 and out.count("answer") == 1
    code, out, _ = run(capsys, "room", "list", "--profile", a, "--json")
    assert json.loads(out.splitlines()[0])["name"] == "session"


def test_errors_have_codes_and_exit_statuses(server, tmp_path, capsys, monkeypatch):
    a = str(tmp_path / "a")
    code, _, err = run(capsys, "register", "--server", server.url, "--invite", "wrong-code",
                       "--user", "alice", "--profile", a)
    assert code == 1 and "invite_invalid" in err
    code, _, err = run(capsys, "room", "create", "--profile", str(tmp_path / "none"))
    assert code == 3 and "profile_missing" in err
    assert run(capsys, "register", "--server", server.url, "--invite", server.invite(),
               "--user", "alice", "--profile", a)[0] == 0
    code, _, err = run(capsys, "send", "--profile", a, "!nope:test.example", "x")
    assert code == 6 and "unknown_room" in err
    monkeypatch.setenv("CONFIDE_PASSPHRASE", "not the passphrase")
    code, _, err = run(capsys, "room", "create", "--profile", a)
    assert code == 3 and "wrong_passphrase" in err


def test_unreachable_server(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CONFIDE_PASSPHRASE", "p")
    monkeypatch.setenv("CONFIDE_PASSWORD", PASSWORD)
    monkeypatch.setenv("CONFIDE_PROFILE_KDF", "minimum")
    code, _, err = run(capsys, "login", "--server", "http://127.0.0.1:9", "--user", "x",
                       "--profile", str(tmp_path / "p"))
    assert code == 4 and "cannot reach" in err


def test_help_documents_exit_codes(capsys):
    with pytest.raises(SystemExit):
        main(["send", "--help"])
    assert "exit codes" in capsys.readouterr().out


def test_second_device_attachments_remove_and_rotate(server, tmp_path, capsys):
    phone, laptop, b = str(tmp_path / "phone"), str(tmp_path / "laptop"), str(tmp_path / "b")
    for user, prof in (("alice", phone), ("bob", b)):
        assert run(capsys, "register", "--server", server.url, "--invite", server.invite(),
                   "--user", user, "--profile", prof)[0] == 0
    room = run(capsys, "room", "create", "--profile", phone)[1].strip()
    assert run(capsys, "room", "invite", "--profile", phone, room, "@bob:test.example")[0] == 0
    code, out, _ = run(capsys, "login", "--server", server.url, "--user", "alice", "--profile", laptop)
    assert code == 0 and "logged in @alice:test.example" in out
    code, out, _ = run(capsys, "device", "add", "--profile", phone)
    assert code == 0 and room in out
    f = tmp_path / "notes.txt"
    f.write_bytes(b"session notes, private")
    code, out, _ = run(capsys, "send", "--profile", laptop, room, "--file", str(f))
    assert code == 0
    seq = out.split()[-1]
    code, out, _ = run(capsys, "read", "--profile", b, room)
    assert "attachment notes.txt" in out
    dest = tmp_path / "got.txt"
    assert run(capsys, "attachment", "get", "--profile", b, room, seq, "--out", str(dest))[0] == 0
    assert dest.read_bytes() == b"session notes, private"
    assert run(capsys, "room", "rotate", "--profile", b, room)[0] == 0
    assert run(capsys, "room", "remove", "--profile", phone, room, "@bob:test.example")[0] == 0
    assert run(capsys, "send", "--profile", laptop, room, "bob is gone")[0] == 0
    code, out, _ = run(capsys, "read", "--profile", b, room)
    assert "bob is gone" not in out
    code, _, err = run(capsys, "send", "--profile", b, room, "still here?")
    assert code == 6 and "not_a_member" in err
    code, out, _ = run(capsys, "read", "--profile", phone, room)
    assert "bob is gone" in out and "removed @bob:test.example" in out
