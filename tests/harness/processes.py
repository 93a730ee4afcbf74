"""The end-to-end harness: a real ``confide serve`` process and CLI clients as processes.

- :class:`ServerProcess`: ``confide serve --config`` on 127.0.0.1 and a fixed free port
  (fixed so that a restart keeps the URL the profiles hold), with a temp data dir and
  config (federation off unless ``extra_config`` says otherwise; MFA optional for every role,
  ``[auth] mfa_required_roles = []``, unless ``extra_config`` has an ``[auth]`` table: MFA is
  the subject of tests/security/test_mfa.py only); its stdout and stderr
  are appended to one log file across restarts. ``kill()``
  sends SIGKILL, ``stop()`` SIGTERM, ``start()`` (re)starts on the same data dir.
- :func:`confide`: one ``python -m server.cli ...`` process with the passphrase, the
  password and the minimum profile KDF in its environment.
- :class:`Practice`: the server plus the plaintexts sent in the run (for the search of
  the data dir and the logs) and user accounts made with ``confide admin``.
- :class:`PeerProcess`: ``confide serve`` of one named server with a static peer table
  (the two-process federation tests), and its SDK users; :func:`http_msgpack`, one
  blocking msgpack request to a process.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import msgpack

from client.sdk import Client

from .inprocess import PASSWORD, free_port, register_client

__all__ = ["REPO", "CONFIDE", "PASSPHRASE", "ServerProcess", "Practice", "User", "confide",
           "cli_env", "PeerProcess", "http_msgpack"]

#: ``confide`` as a command line.
CONFIDE = [sys.executable, "-m", "server.cli"]

REPO = Path(__file__).resolve().parents[2]
PASSPHRASE = "e2e profile passphrase"
SERVER_NAME = "e2e.example"
CLI_TIMEOUT = 120
#: The harness's servers make MFA optional (the default requires it of admin, clinician and
#: staff); tests/security/test_mfa.py sets ``[auth]`` itself.
NO_MFA_TOML = "[auth]\nmfa_required_roles = []\n"


def cli_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(PYTHONPATH=str(REPO), CONFIDE_PASSPHRASE=PASSPHRASE, CONFIDE_PASSWORD=PASSWORD,
               CONFIDE_PROFILE_KDF="minimum", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def confide(*args: str, stdin: str | None = None, timeout: float = CLI_TIMEOUT,
            module: str = "server.cli", env: dict[str, str] | None = None,
            check: bool = False) -> subprocess.CompletedProcess[str]:
    """Run ``confide ARGS`` as its own process; ``check`` raises with its output on failure."""
    proc = subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, input=stdin,
                          capture_output=True, text=True, timeout=timeout, env=env or cli_env())
    if check and proc.returncode != 0:
        raise AssertionError(f"confide {' '.join(args)} -> {proc.returncode}\n"
                             f"stdout: {proc.stdout}\nstderr: {proc.stderr}")
    return proc


class ServerProcess:
    """``confide serve`` as a child process (see the module docstring)."""

    def __init__(self, root: Path, extra_config: str = "[federation]\nenabled = false\n") -> None:
        self.root = root
        self.data = root / "data"
        self.config = root / "confide.toml"
        self.log = root / "serve.log"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        auth = "" if "[auth]" in extra_config else NO_MFA_TOML
        self.config.write_text(
            f'server_name = "{SERVER_NAME}"\ndata_dir = "{self.data}"\n'
            f'[listen]\nhost = "127.0.0.1"\nport = {self.port}\n' + auth + extra_config)
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self, timeout: float = 30.0) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        offset = self.log.stat().st_size if self.log.exists() else 0
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [*CONFIDE, "serve", "--config", str(self.config)],
                cwd=REPO, env=cli_env(), stdout=out, stderr=subprocess.STDOUT)
        self.starts += 1
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(self.log, "rb") as f:
                f.seek(offset)
                text = f.read().decode(errors="replace")
            if f"listening on {self.url}/" in text:
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"confide serve exited {self.proc.returncode}:\n{text}")
            time.sleep(0.05)
        self.kill()
        raise AssertionError(f"confide serve did not start in {timeout}s:\n{text}")

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush, no checkpoint."""
        if self.running:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM and wait up to ``timeout`` seconds; returns the exit status (None if it was
        not running). Still running then: SIGKILL and ``subprocess.TimeoutExpired``."""
        if not self.running:
            return None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def admin(self, *args: str, stdin: str | None = None) -> str:
        out = confide("admin", *args, "--data", str(self.data), "--server-name", SERVER_NAME,
                      stdin=stdin, check=True)
        return out.stdout

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@dataclass
class User:
    """One device of an account: its profile directory."""

    name: str
    profile: Path
    practice: Practice
    #: What ``confide device approve`` printed when another device approved this one.
    approval: str = ""

    @property
    def user_id(self) -> str:
        return f"@{self.name}:{SERVER_NAME}"

    def run(self, *args: str, check: bool = True, **kw) -> subprocess.CompletedProcess[str]:
        """``confide ARGS --profile <this device>`` (the profile flag goes after the command
        words, e.g. ``room create``)."""
        words, rest = _split_command(args)
        return confide(*words, "--profile", str(self.profile), *rest, check=check, **kw)

    def create_room(self, name: str) -> str:
        self.practice.sent(name)
        room = self.run("room", "create", "--name", name).stdout.strip()
        assert room.startswith("!") and room.endswith(f":{SERVER_NAME}"), room
        return room

    def invite(self, room: str, other: User) -> None:
        out = self.run("room", "invite", room, other.user_id).stdout
        assert out.startswith("added "), out

    def send(self, room: str, text: str) -> int:
        """Send ``text`` (recorded as a plaintext of the run); returns its seq."""
        self.practice.sent(text)
        out = self.run("send", room, text).stdout
        return _seq(out)

    def send_file(self, room: str, path: Path) -> int:
        self.practice.sent(path.read_bytes())
        return _seq(self.run("send", room, "--file", str(path)).stdout)

    def read(self, room: str) -> list[dict]:
        """Every message this device shows for ``room`` (``confide read --json``)."""
        out = self.run("read", room, "--json").stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def texts(self, room: str) -> list[str]:
        return [m["body"] for m in self.read(room) if m["type"] == "text"]

    def rooms(self) -> dict[str, dict]:
        out = self.run("room", "list", "--json").stdout
        return {r["room_id"]: r for r in map(json.loads, out.splitlines())}


_COMMAND_WORDS = {"room": 2, "device": 2, "attachment": 2, "mfa": 2}


def _split_command(args: tuple[str, ...]) -> tuple[list[str], list[str]]:
    n = _COMMAND_WORDS.get(args[0], 1)
    return list(args[:n]), list(args[n:])


def login_code(out: str) -> str | None:
    """The short code ``confide login`` printed for a pending device, if any."""
    for line in out.splitlines():
        if line.startswith("this device waits for approval; its code is "):
            return line.rsplit(" is ", 1)[1].strip()
    return None


def _seq(out: str) -> int:
    assert out.startswith("sent as event "), out
    return int(out.split()[-1])


@dataclass
class Practice:
    """The server of a run, its users and every plaintext sent."""

    server: ServerProcess
    root: Path
    plaintexts: list[bytes] = field(default_factory=list)
    tag: str = field(default_factory=lambda: secrets.token_hex(4))

    def unique(self, text: str) -> str:
        """``text`` made unique to this run (so that a find cannot be a coincidence)."""
        return f"{text} #{self.tag}-{secrets.token_hex(4)}"

    def sent(self, plaintext: str | bytes) -> None:
        self.plaintexts.append(plaintext.encode() if isinstance(plaintext, str) else plaintext)

    def register(self, name: str, role: str = "client", device: str = "phone") -> User:
        """A user from an invite (``confide admin invite`` + ``confide register``)."""
        code = self.server.admin("invite", "--role", role).strip()
        user = User(name, self.root / f"profile-{name}-{device}", self)
        out = user.run("register", "--server", self.server.url, "--invite", code, "--user", name,
                       "--device-name", device).stdout
        assert out.startswith(f"registered {user.user_id} device "), out
        return user

    def create_user(self, name: str, role: str, device: str = "laptop") -> User:
        """A user made by ``confide admin create-user``, then logged in on a first device."""
        out = self.server.admin("create-user", "--user", name, "--role", role,
                                "--password-stdin", stdin=PASSWORD + "\n")
        assert out.strip() == f"@{name}:{SERVER_NAME}", out
        return self.login(name, device)

    def login(self, name: str, device: str, approver: User | None = None) -> User:
        """Another device of an existing account (a fresh profile). A pending device (the
        account has an approved one) is approved by ``approver`` with the code it printed."""
        user = User(name, self.root / f"profile-{name}-{device}", self)
        anchor = self.server.admin("anchor").strip()
        out = user.run("login", "--server", self.server.url, "--user", name,
                       "--device-name", device, "--anchor", anchor).stdout
        assert out.startswith(f"logged in {user.user_id} device "), out
        code = login_code(out)
        if approver is not None:
            assert code is not None, out
            device_id = out.splitlines()[0].split()[-1]
            user.approval = approver.run("device", "approve", device_id, "--code", code).stdout
            assert user.approval.startswith(f"approved {device_id} "), user.approval
        return user


def http_msgpack(method: str, url: str, body: bytes, headers: dict[str, str] | None = None
                 ) -> tuple[int, dict]:
    """One blocking request with a msgpack body; (status, decoded answer), errors included."""
    req = urllib.request.Request(url, data=body, method=method, headers={
        "Content-Type": "application/msgpack", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, msgpack.unpackb(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, msgpack.unpackb(exc.read())


class PeerProcess:
    """``confide serve`` of server ``name`` on loopback ``port`` with the static peer table
    ``peers`` (name -> base URL); ``federation`` is added to the ``[federation]`` table
    (TOML lines). ``start`` waits for the listening line; ``stop`` is SIGTERM and expects 0."""

    def __init__(self, tmp: Path, name: str, port: int, peers: dict[str, str],
                 federation: str = "") -> None:
        self.tmp, self.name, self.port, self.data = tmp, name, port, tmp / name
        table = "\n".join(f'"{k}" = "{v}"' for k, v in peers.items())
        self.cfg = tmp / f"{name}.toml"
        self.cfg.write_text(
            f'server_name = "{name}"\ndata_dir = "{self.data}"\n[listen]\nport = {port}\n'
            f"{NO_MFA_TOML}[federation]\n{federation}[federation.peers]\n{table}\n")
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen([*CONFIDE, "serve", "--config", str(self.cfg)], cwd=REPO,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()
        assert line.startswith(f"Confide {self.name} listening"), line

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(timeout=20) == 0
        self.proc = None

    def invite(self, role: str) -> str:
        out = subprocess.run([*CONFIDE, "admin", "invite", "--data", str(self.data), "--role", role],
                             cwd=REPO, capture_output=True, text=True, timeout=30, check=True)
        return out.stdout.strip().split()[-1]

    def anchor(self) -> str:
        """The server's trust anchor, as ``confide admin anchor`` prints it (public: anyone
        who has seen an invite of this server knows it)."""
        out = subprocess.run([*CONFIDE, "admin", "anchor", "--data", str(self.data)],
                             cwd=REPO, capture_output=True, text=True, timeout=30, check=True)
        return out.stdout.strip()

    async def user(self, name: str, role: str = "clinician") -> Client:
        """A registered SDK user (an invite from ``confide admin invite``)."""
        invite = await asyncio.to_thread(self.invite, role)
        return await register_client(None, self.url, self.tmp / f"profile-{self.name}-{name}", name,
                                     invite=invite, auto_add_own_devices=False)
