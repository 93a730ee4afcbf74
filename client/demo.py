"""``confide demo``: a throwaway server, a clinician and a client, and what each side sees.

1. Makes a temporary directory with a config (loopback, a free port) and starts
   ``confide serve`` on it as a child process (its log goes to a file there).
2. Makes two invite codes with ``confide admin invite`` (roles clinician and client);
   a clinician and a client register from them with the SDK, each with a throwaway
   profile (minimum Argon2id limits: the profiles are deleted at the end).
3. The clinician creates a room (its name is local only), invites the client, and the
   two exchange a few messages.
4. Prints, one row per room event: what the clinician's device read, what the client's
   device read, and what the server stored (epoch, kind, size, and for application
   messages the first bytes of the MLS ciphertext), read from the server's database
   (opened read-only); then the server's transparency-log checkpoint, and the result of
   a search of the server's data directory and log for the message texts.
5. Stops the server (SIGTERM) and removes the temporary directory, also on failure.

Exit status 0, or 1 with the reason when a step fails.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from client.sdk.messages import RoomMessage

__all__ = ["register", "run", "MESSAGES"]

#: (who, text) exchanged by the demo's clinician ("clinician") and client ("client").
MESSAGES = (
    ("clinician", "Hello Pat, welcome to Confide."),
    ("client", "Hi! Can we move Thursday to 3pm?"),
    ("clinician", "Yes, Thursday 3pm works for me."),
    ("client", "Thank you, see you then."),
)

SERVER_NAME = "localhost"
_ROOT = Path(__file__).resolve().parents[1]  # where the server and client packages live
_W = 38  # width of a client column


class DemoError(Exception):
    """A step of the demo failed (the server did not start, a command failed)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo", help="a throwaway server, a clinician and a client: what each side sees",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="confide-demo-"))
    server: _Server | None = None
    try:
        server = _Server.start(tmp)
        print(f"Confide demo: a throwaway server at {server.url}/ (data in {tmp})\n")
        result = asyncio.run(_conversation(server, tmp))
        _show(result, server, tmp)
        return 0
    except DemoError as exc:
        print(f"confide demo: {exc}", file=sys.stderr)
        return 1
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
        print(f"\nserver stopped; removed {tmp}")


# -- the server --------------------------------------------------------------------------------


@dataclass
class _Server:
    proc: subprocess.Popen
    url: str
    data: Path
    log: Path

    @staticmethod
    def _confide(*args: str) -> list[str]:
        return [sys.executable, "-m", "server.cli", *args]

    @classmethod
    def start(cls, tmp: Path) -> _Server:
        data, log, config = tmp / "data", tmp / "serve.log", tmp / "confide.toml"
        config.write_text(f'server_name = "{SERVER_NAME}"\ndata_dir = "{data}"\n'
                          '[listen]\nhost = "127.0.0.1"\nport = 0\n'
                          '[auth]\nmfa_required_roles = []\n'  # the demo's accounts skip MFA
                          '[federation]\nenabled = false\n')
        with open(log, "wb") as err:
            proc = subprocess.Popen(cls._confide("serve", "--config", str(config)), cwd=_ROOT,
                                    env=_env(), stdout=subprocess.PIPE, stderr=err, text=True)
        line = proc.stdout.readline() if proc.stdout else ""
        if " listening on " not in line:
            proc.kill()
            proc.wait()
            raise DemoError(f"confide serve did not start: {line}{log.read_text(errors='replace')}")
        return cls(proc, line.split(" on ", 1)[1].strip().rstrip("/"), data, log)

    def invite(self, role: str) -> str:
        out = subprocess.run(self._confide("admin", "invite", "--data", str(self.data), "--role", role),
                             cwd=_ROOT, env=_env(), capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            raise DemoError(f"confide admin invite: {out.stderr.strip()}")
        return out.stdout.strip()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_ROOT), env.get("PYTHONPATH")) if p)
    return env


# -- the conversation ---------------------------------------------------------------------------


@dataclass
class _Result:
    room: str
    users: dict[str, str]                  # role -> user id
    read: dict[str, list[dict[str, Any]]]  # role -> messages shown on that device
    checkpoint: str


async def _drain(client) -> None:
    for _ in range(100):
        r = await client.sync(0)
        if not (r.messages or r.joined or r.raw_count):
            return


async def _conversation(server: _Server, tmp: Path) -> _Result:
    from client.profile import MINIMUM, Profile
    from client.sdk import Client, SdkError

    clients: dict[str, Any] = {}
    try:
        for role, name in (("clinician", "carl"), ("client", "pat")):
            profile = Profile.create(tmp / f"profile-{name}", secrets.token_urlsafe(12), MINIMUM)
            clients[role] = await Client.register(profile, server.url, server.invite(role), name,
                                                  secrets.token_urlsafe(16), device_name="demo")
        carl, pat = clients["clinician"], clients["client"]
        room = await carl.create_room("Weekly session (a local name)")
        await carl.invite(room, pat.user_id)
        await _drain(pat)
        for who, text in MESSAGES:
            sender = clients[who]
            await _drain(sender)
            await sender.send_text(room, text)
        for c in clients.values():
            await _drain(c)
        checkpoint = (await carl.http.get_raw("/_confide/log/v1/checkpoint")).decode()
        return _Result(room, {r: c.user_id for r, c in clients.items()},
                       {r: c.messages(room) for r, c in clients.items()}, checkpoint)
    except SdkError as exc:
        raise DemoError(f"{type(exc).__name__}: {exc}") from None
    finally:
        for c in clients.values():
            await c.close()


# -- what is shown ---------------------------------------------------------------------------------


def _stored(data: Path, room: str) -> list[tuple[int, int, str, str, bytes]]:
    """(seq, epoch, kind, sender device, message) of the room's events, as the server stored them."""
    db = sqlite3.connect(f"file:{data / 'confide.sqlite'}?mode=ro", uri=True)
    try:
        return db.execute("SELECT seq, epoch, kind, sender_device, message FROM room_events "
                          "WHERE room_id = ? ORDER BY seq", (room,)).fetchall()
    finally:
        db.close()


def _describe(kind: str, message: bytes) -> str:
    from crypto.errors import CryptoError
    from crypto.mls import MLSMessage
    from crypto.mls.framing import PrivateMessage

    try:
        body = MLSMessage.from_bytes(message).body
    except CryptoError:
        return f"{len(message)} B {message[:12].hex()}…"
    if isinstance(body, PrivateMessage):
        return f"{len(message)} B ciphertext {body.ciphertext[:12].hex()}…"
    return f"{len(message)} B {type(body).__name__} (public handshake)"


def _cell(m: RoomMessage | None, users: dict[str, str]) -> str:
    from client.sdk.messages import MembershipMessage, TextMessage

    if m is None:
        return ""
    who = m.sender_user.split(":", 1)[0].lstrip("@")
    if isinstance(m, TextMessage):
        text = f"{who}: {m.body}"
    elif isinstance(m, MembershipMessage):
        text = f"* {who} added {len(m.added)} device(s)" if m.added else f"* {who} changed members"
    else:
        text = f"[{m.type.value}]"
    return text if len(text) <= _W else text[:_W - 1] + "…"


def _show(result: _Result, server: _Server, tmp: Path) -> None:
    users = result.users
    print(f"clinician {users['clinician']}, client {users['client']}, room {result.room}\n")
    by_seq = {role: {m.seq: m for m in msgs} for role, msgs in result.read.items()}
    header = (f"{'seq':>3} | {'clinician device read':<{_W}} | {'client device read':<{_W}} | "
              "server stored: epoch kind sender-device, MLS message")
    print(header)
    print("-" * len(header))
    for seq, epoch, kind, device, message in _stored(server.data, result.room):
        left = _cell(by_seq["clinician"].get(seq), users)
        right = _cell(by_seq["client"].get(seq), users)
        print(f"{seq:>3} | {left:<{_W}} | {right:<{_W}} | "
              f"e{epoch} {kind} {device}, {_describe(kind, message)}")
    print("\ntransparency log checkpoint (signed note; check it with `confide audit verify`):")
    print(textwrap.indent(result.checkpoint.rstrip("\n"), "    "))
    texts = [t.encode() for _, t in MESSAGES]
    files = [p for p in [*server.data.rglob("*"), server.log] if p.is_file()]
    hits = [p.name for p in files if any(t in p.read_bytes() for t in texts)]
    size = sum(p.stat().st_size for p in files)
    print(f"\nsearched the server's data and log ({len(files)} files, {size} bytes) "
          f"for the {len(texts)} message texts: {'FOUND in ' + ', '.join(hits) if hits else 'none found'}")
