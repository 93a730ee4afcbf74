"""(f) Two members commit in the same epoch at the same moment (two CLI processes).

Both processes stage their commit at epoch E and wait for each other just before
sending it (:mod:`tests.e2e.race_cli`). The hub accepts exactly one; the other gets
``stale_epoch``, catches up and commits again at E+1. Both commands succeed, the room's
history holds exactly one commit per epoch, and every member (the two racers and a
bystander) ends at the same epoch and reads what each of them sends afterwards.
Two rounds: rotate against rotate, then an invite against a rotate.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import pytest

from tests.harness import REPO, cli_env

pytestmark = [pytest.mark.e2e, pytest.mark.soak]


def _race(tmp_path, *commands: tuple) -> list[tuple[subprocess.CompletedProcess, str]]:
    """Run each (user, args...) through race_cli at once; returns (result, outcome) each."""
    race = tmp_path / f"race-{len(list(tmp_path.glob('race-*')))}"
    race.mkdir()
    env = cli_env(RACE_DIR=str(race), RACE_PARTIES=str(len(commands)))
    procs = []
    for user, *words in commands:
        n = 2 if words[0] == "room" else 1
        argv = [*words[:n], "--profile", str(user.profile), *words[n:]]
        procs.append(subprocess.Popen([sys.executable, "-m", "tests.e2e.race_cli", *argv],
                                      cwd=REPO, env=env, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    results = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        outcome = race / f"outcome-{p.pid}"
        results.append((subprocess.CompletedProcess(p.args, p.returncode, out, err),
                        outcome.read_text() if outcome.exists() else "none"))
    return results


def _commits_by_epoch(practice, room: str) -> dict[int, int]:
    db = sqlite3.connect(f"file:{practice.server.data / 'confide.sqlite'}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT epoch, COUNT(*) FROM room_events WHERE room_id = ? "
                          "AND kind = 'commit' GROUP BY epoch", (room,)).fetchall()
        [(hub_epoch,)] = db.execute("SELECT epoch FROM rooms WHERE room_id = ?", (room,)).fetchall()
    finally:
        db.close()
    counts = dict(rows)
    counts["hub"] = hub_epoch
    return counts


def test_same_epoch_commits_one_wins_other_retries_all_converge(practice, carl, pat, tmp_path):
    vera = practice.register("vera", "staff")
    room = carl.create_room(practice.unique("Race room"))
    carl.invite(room, pat)
    carl.invite(room, vera)
    start = carl.rooms()[room]["epoch"]

    # round 1: two rotations staged at the same epoch
    results = _race(tmp_path, (carl, "room", "rotate", room), (pat, "room", "rotate", room))
    for r, _ in results:
        assert r.returncode == 0, r.stderr
    assert sorted(o.split()[0] for _, o in results) == ["accepted", "stale_epoch"], results
    epochs = sorted(int(r.stdout.split()[-1]) for r, _ in results)
    assert epochs == [start + 1, start + 2], [r.stdout for r, _ in results]

    # round 2: an invite and a rotation staged at the same epoch
    walt = practice.register("walt", "client")
    results = _race(tmp_path, (pat, "room", "rotate", room), (carl, "room", "invite", room, walt.user_id))
    for r, _ in results:
        assert r.returncode == 0, r.stderr
    assert sorted(o.split()[0] for _, o in results) == ["accepted", "stale_epoch"], results
    assert "added 1 device(s)" in results[1][0].stdout
    final = start + 4

    counts = _commits_by_epoch(practice, room)
    assert counts.pop("hub") == final
    assert counts == {e: 1 for e in range(final)}, counts  # one commit per epoch, no gap
    members = [carl, pat, vera, walt]
    for u in members:
        summary = u.rooms()[room]
        assert (summary["status"], summary["epoch"]) == ("joined", final), (u.name, summary)
        assert len(summary["members"]) == 4

    said = []
    for u in members:
        text = practice.unique(f"{u.name} after the race")
        u.send(room, text)
        said.append(text)
    for u in members:
        assert u.texts(room)[-4:] == said, u.name
