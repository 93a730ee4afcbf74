"""The client commands, run in-process through ``main([...])`` against a real server on loopback."""

from __future__ import annotations

import io
import json

import pytest
import structlog

from server.cli import main
from tests.harness import PASSWORD, LoopbackServer

pytestmark = pytest.mark.net


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
    anchor = server.invite().partition("#")[2]
    code, _, err = run(capsys, "register", "--server", server.url, "--invite", "wrong-code#" + anchor,
                       "--user", "alice", "--profile", a)
    assert code == 1 and "invite_invalid" in err
    code, _, err = run(capsys, "register", "--server", server.url, "--invite", "wrong-code",
                       "--user", "alice", "--profile", str(tmp_path / "c"))
    assert code == 5 and "no trust anchor" in err and not (tmp_path / "c").exists()
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
                       "--anchor", "A" * 43, "--profile", str(tmp_path / "p"))
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
    code, _, err = run(capsys, "login", "--server", server.url, "--user", "alice", "--profile", laptop)
    assert code == 5 and "needs the server's trust anchor" in err
    anchor = run(capsys, "anchor", "--profile", phone)[1].strip()
    code, out, _ = run(capsys, "login", "--server", server.url, "--user", "alice", "--profile", laptop,
                       "--anchor", anchor)
    assert code == 0 and "logged in @alice:test.example" in out
    device = out.splitlines()[0].split()[-1]
    shown = out.split("its code is ", 1)[1].splitlines()[0]
    assert run(capsys, "device", "add", "--profile", phone)[1] == "nothing to add\n"  # pending
    code, _, err = run(capsys, "read", "--profile", phone, room)
    assert code == 0 and f"pending device {device} (code {shown})" in err  # the alert
    code, out, _ = run(capsys, "device", "pending", "--profile", phone)
    assert (code, out) == (0, f"{device} code {shown}\n")  # the approver shows the same code
    wrong = shown.replace(shown[0], "1" if shown[0] != "1" else "2", 1)
    code, _, err = run(capsys, "device", "approve", "--profile", phone, device, "--code", wrong)
    assert code == 5 and "does not match" in err
    code, out, _ = run(capsys, "device", "approve", "--profile", phone, device, "--code", shown)
    assert code == 0 and out.startswith(f"approved {device} ") and room in out
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
