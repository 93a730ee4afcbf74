"""(e) SIGKILL in the middle of a burst: every acknowledged message survives, in order, once.

Two sender processes (the clinician and the client, each a loop of ``confide send``,
see :mod:`tests.e2e.send_loop`) run at once; after a number of acknowledged sends the
server gets SIGKILL (no shutdown, no flush) while requests are in flight. Each loop ends
at its first failure. The server is restarted on the same data dir and port; then each
side reads: every message of the other that got ``sent as event N`` is there, with that
seq, in send order, exactly once. A message whose answer was lost may or may not be
there, but never twice. The transparency log verifies against the state pinned before
the crash (it only grew), and both sides carry on.
"""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from tests.harness import REPO, cli_env, confide

pytestmark = [pytest.mark.e2e, pytest.mark.soak]

KILL_AFTER = 24      # acknowledged sends (both loops together) before the SIGKILL
MAX_PER_SENDER = 60  # a bound, in case the kill never lands


class SenderLoop:
    def __init__(self, user, room: str, prefix: str) -> None:
        self.user, self.prefix = user, prefix
        self.tried: list[int] = []
        self.acked: list[tuple[str, int]] = []  # (text, seq)
        self.failed: list[tuple[str, str]] = []  # (text, "status error")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.e2e.send_loop", "--profile", str(user.profile), room,
             prefix, str(MAX_PER_SENDER)], cwd=REPO, env=cli_env(), text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.thread = threading.Thread(target=self._follow, daemon=True)
        self.thread.start()

    def text(self, i: int) -> str:
        return f"{self.prefix} {i:03d}"

    def _follow(self) -> None:
        for line in self.proc.stdout:
            word, i, *rest = line.split(" ", 2)
            if word == "TRY":
                self.tried.append(int(i))
            elif word == "ACK":
                self.acked.append((self.text(int(i)), int(rest[0])))
            elif word == "FAIL":
                self.failed.append((self.text(int(i)), rest[0].strip()))

    def wait(self) -> None:
        self.proc.wait(120)
        self.thread.join(10)
        for i in self.tried:  # everything that may have reached the server
            self.user.practice.sent(self.text(i))


def test_sigkill_mid_burst_loses_no_acknowledged_message(practice, carl, pat, tmp_path):
    server = practice.server
    room = carl.create_room(practice.unique("Crash test room"))
    carl.invite(room, pat)
    carl.send(room, practice.unique("Before the burst"))
    audit_state = tmp_path / "audit-state"
    before = confide("audit", "verify", server.url, "--state", str(audit_state), check=True)

    senders = {carl.name: carl, pat.name: pat}
    loops = {name: SenderLoop(u, room, practice.unique(f"Burst from {name}"))
             for name, u in senders.items()}
    deadline = time.monotonic() + 120
    while sum(len(lp.acked) for lp in loops.values()) < KILL_AFTER and time.monotonic() < deadline:
        time.sleep(0.005)
    server.kill()
    acked_at_kill = sum(len(lp.acked) for lp in loops.values())
    for lp in loops.values():
        lp.wait()
    assert acked_at_kill >= KILL_AFTER
    for name, lp in loops.items():
        # each loop ran into the dead server: "cannot reach the server" (exit status 4)
        assert len(lp.failed) == 1 and lp.failed[0][1].startswith("4 "), (name, lp.failed)

    server.start()
    views = {name: u.read(room) for name, u in senders.items()}
    lost_answers = 0
    for reader, sender in ((pat.name, carl.name), (carl.name, pat.name)):
        lp = loops[sender]
        from_sender = [(m["body"], m["seq"]) for m in views[reader]
                       if m["type"] == "text" and m["body"].startswith(lp.prefix)]
        assert all(m["sender_user"] == senders[sender].user_id for m in views[reader]
                   if m.get("body", "").startswith(lp.prefix))
        bodies = [b for b, _ in from_sender]
        assert len(bodies) == len(set(bodies)), f"{reader} read a message of {sender} twice"
        acked = {b for b, _ in lp.acked}
        assert [x for x in from_sender if x[0] in acked] == lp.acked, (reader, sender)
        unacked = set(bodies) - acked
        assert unacked <= {t for t, _ in lp.failed}  # at most the one in flight at the kill
        lost_answers += len(unacked)
        assert [s for _, s in from_sender] == sorted(s for _, s in from_sender)
    print(f"acknowledged {[len(lp.acked) for lp in loops.values()]}, "
          f"delivered without an answer {lost_answers}")

    # the transparency log grew append-only across the crash (consistent with the pinned state)
    audit = confide("audit", "verify", server.url, "--state", str(audit_state))
    assert audit.returncode == 0, audit.stdout + audit.stderr
    logged = int(re.search(r"^\s*room_event\s+(\d+)$", audit.stdout, re.M).group(1))
    db = sqlite3.connect(f"file:{server.data / 'confide.sqlite'}?mode=ro", uri=True)
    try:
        [(stored,)] = db.execute("SELECT COUNT(*) FROM room_events").fetchall()
    finally:
        db.close()
    assert logged == stored, "every stored room event is in the transparency log, and no more"
    print(before.stdout.splitlines()[0], "->", audit.stdout.splitlines()[0])

    after = practice.unique("After the restart, all is well")
    carl.send(room, after)
    reply = practice.unique("Pat confirms after the restart")
    pat.send(room, reply)
    assert pat.texts(room)[-2:] == [after, reply]
    assert carl.texts(room)[-2:] == [after, reply]
