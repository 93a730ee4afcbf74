"""Finding 8 (issue 10), draining: attacks on a real ``confide serve`` process.

Before: any signed-in user could claim any user's one-time KeyPackages (30 claims took
all 19, then the last-resort one). Now (``spec/security.md``, finding 8) a claim is
counted before any work in three limits: the claimer's token bucket, the pair (claimer,
target) and, for claimers who share no room with the target, the target. A refused claim
is ``rate_limited`` (429, ``retry_after_ms``) and takes nothing. Claims naming a room (the
hub's path) count the same way.

What is observed: the answers, and the victim's packages in the server's database (read
beside the running server).
"""

from __future__ import annotations

import sqlite3

import msgpack
import pytest

from tests.harness import ServerProcess, register_client
from tests.security.conftest import Attacker, code

pytestmark = pytest.mark.timeout(120)

#: The defaults (server/config.py, [key_packages]).
PER_PAIR, PER_TARGET = 5, 10


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = ServerProcess(tmp_path_factory.mktemp("claims"))
    s.start()
    yield s
    s.stop()


def _packages(server: ServerProcess, user: str) -> tuple[int, int]:
    """(one-time, last-resort) packages stored for ``user``."""
    conn = sqlite3.connect(f"file:{server.data / 'confide.sqlite'}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT last_resort, COUNT(*) FROM key_packages WHERE user_id = ? "
                            "GROUP BY last_resort", (user,)).fetchall()
    finally:
        conn.close()
    counts = dict(rows)
    return counts.get(0, 0), counts.get(1, 0)


async def _user(server: ServerProcess, tmp_path, name: str, role: str = "client"):
    invite = server.admin("invite", "--role", role).strip().split()[-1]
    return await register_client(None, server.url, tmp_path / f"profile-{name}", name, invite=invite,
                                 auto_add_own_devices=False)


def _token(client) -> str:
    return client.store.account().access_token


async def _claims(server: ServerProcess, token: str, target: str, n: int, room: str | None = None,
                  source: str = "127.0.0.1") -> list[tuple[int, dict]]:
    body = {"user": target} if room is None else {"user": target, "room_id": room}
    out = []
    async with Attacker(server.url, source) as attacker:
        for _ in range(n):  # one after another: each is counted before the next
            status, raw = await attacker.call("POST", "/keys/claim", body, token=token)
            out.append((status, msgpack.unpackb(raw)))
    return out


async def test_a_drain_is_refused_after_the_caps_and_the_last_resort_is_never_reached(server, tmp_path):
    victim = await _user(server, tmp_path, "victim")
    therapist = await _user(server, tmp_path, "therapist", "clinician")
    mallory = await _user(server, tmp_path, "mallory")
    sybils = [await _user(server, tmp_path, f"sybil{i}") for i in range(2)]
    clients = [victim, therapist, mallory, *sybils]
    try:
        # the therapist shares a room with the victim before the attack (one stranger's
        # claim: the first invitation of someone is always one)
        room = await therapist.create_room("care")
        await therapist.invite(room, victim.user_id)
        one_time, last_resort = _packages(server, victim.user_id)
        assert last_resort == 1 and one_time > PER_PAIR + PER_TARGET

        # 1. one stranger, 30 claims: PER_PAIR handed out, the rest refused with retry_after_ms
        answers = await _claims(server, _token(mallory), victim.user_id, 30)
        assert [code(a) for a in answers] == [None] * PER_PAIR + ["rate_limited"] * (30 - PER_PAIR)
        assert all(a[0] == 429 and a[1]["error"]["retry_after_ms"] > 0 for a in answers[PER_PAIR:])
        assert not any(kp["last_resort"] for a in answers[:PER_PAIR] for kp in a[1]["key_packages"])
        assert _packages(server, victim.user_id) == (one_time - PER_PAIR, 1)

        # 2. through a room of the attacker's own (the hub's path): counted the same way
        own_room = await mallory.create_room("trap")
        answers = await _claims(server, _token(mallory), victim.user_id, 3, room=own_room)
        assert [code(a) for a in answers] == ["rate_limited"] * 3

        # 3. more strangers: together at most PER_TARGET claims of the victim per window
        # (the therapist's first one and mallory's count among them)
        first = await _claims(server, _token(sybils[0]), victim.user_id, PER_PAIR)
        second = await _claims(server, _token(sybils[1]), victim.user_id, PER_PAIR)
        codes = [code(a) for a in first + second]
        granted = PER_TARGET - 1 - PER_PAIR
        assert codes == [None] * granted + ["rate_limited"] * (2 * PER_PAIR - granted)
        left = one_time - PER_PAIR - granted
        assert _packages(server, victim.user_id) == (left, 1)

        # 4. someone the victim shares a room with still can invite them
        answers = await _claims(server, _token(therapist), victim.user_id, 1)
        assert code(answers[0]) is None and not answers[0][1]["key_packages"][0]["last_resort"]
        assert _packages(server, victim.user_id) == (left - 1, 1)
    finally:
        for c in clients:
            await c.close()
