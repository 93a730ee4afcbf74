"""Finding 11 (issue 10): forged federation ``welcome`` items are refused, nothing reaches an inbox.

Two real ``confide serve`` processes on loopback (a.test, the hub of a real room with a
member on b.test; b.test, the follower). The attacker holds a.test's real federation
signing key (read from its data dir) and sends b.test signed transactions with forged
``welcome`` items, one per case (``spec/server-server.md`` 11.2):

- a room that does not exist (``unknown_room``);
- a room that a.test does not host: a room of b.test's own (``not_hub``);
- the real room, labelled as sent by a local user of b.test who is in no room (``not_member``);
- the real room, from a member who did not add the target device (``welcome_unvouched``);
- the real room, from its committer, to a device that a commit added, with a Welcome whose
  secrets name a KeyPackage that commit does not add (bob's real Welcome sent to eve:
  ``welcome_invalid``);
- the real room from its real committer, but bytes that are not an MLS Welcome
  (``welcome_invalid``).

Each is answered with its typed code in the transaction results, and b.test's ``inbox``
table holds exactly the rows it held before (checked in its database file)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import msgpack
import pytest

from protocol.federation import FEDERATION_PREFIX, sign_request
from tests.harness import eventually, http_msgpack, peer_pair

pytestmark = [pytest.mark.net, pytest.mark.timeout(120)]



def _signing_key(data: Path) -> tuple[str, bytes]:
    with sqlite3.connect(data / "confide.sqlite") as conn:
        (key_id,) = conn.execute(
            "SELECT key_id FROM federation_server_keys WHERE valid_until IS NULL").fetchone()
    return key_id, (data / "keys" / "federation" / (key_id.replace(":", "_") + ".key")).read_bytes()


def _inbox(data: Path) -> list[tuple]:
    with sqlite3.connect(data / "confide.sqlite") as conn:
        return conn.execute("SELECT * FROM inbox ORDER BY stream_pos").fetchall()


def _welcome(room: str, sender: tuple[str, str], target: tuple[str, str], welcome: bytes) -> dict:
    data = msgpack.packb({"room_id": room, "sender_user": sender[0], "sender_device": sender[1],
                          "welcome": welcome,
                          "targets": [{"user_id": target[0], "device_id": target[1]}]},
                         use_bin_type=True)
    return {"kind": "welcome", "data": data}


async def _stored_welcome(data: Path, user_id: str) -> bytes | None:
    with sqlite3.connect(data / "confide.sqlite") as conn:
        row = conn.execute("SELECT payload FROM inbox WHERE kind = 'welcome' AND user_id = ?",
                           (user_id,)).fetchone()
    return None if row is None else row[0]


async def _joined(client, room):
    await client.sync()
    return client.store.has_room(room)


async def test_forged_welcome_items_are_refused(tmp_path):
    a, b = peer_pair(tmp_path)
    clients = []
    try:
        alice, carol, bob, eve, dan = (await a.user("alice"), await a.user("carol"),
                                       await b.user("bob"), await b.user("eve"), await b.user("dan"))
        clients += [alice, carol, bob, eve, dan]
        room = await alice.create_room("consult")
        await alice.invite(room, carol.user_id)
        await eventually(lambda: _joined(carol, room), timeout=20)
        await alice.invite(room, bob.user_id)
        # bob's real Welcome as b.test stored it, read before bob's sync takes it
        await eventually(lambda: _stored_welcome(b.data, bob.user_id), timeout=20)
        real = await _stored_welcome(b.data, bob.user_id)
        await eventually(lambda: _joined(bob, room), timeout=20)
        await alice.invite(room, eve.user_id)
        await eventually(lambda: _joined(eve, room), timeout=20)
        bobs_room = await bob.create_room("notes")  # hosted by b.test, nobody of a.test in it
        await bob.sync()
        before = _inbox(b.data)

        bob_dev, eve_dev = (bob.user_id, bob.device_id), (eve.user_id, eve.device_id)
        alice_dev = (alice.user_id, alice.device_id)
        cases = [
            ("unknown_room", _welcome("!doesnotexist:a.test", alice_dev, bob_dev, real)),
            ("not_hub", _welcome(bobs_room, alice_dev, bob_dev, real)),
            # labelled as sent by a local user who is in no room
            ("not_member", _welcome(room, (dan.user_id, dan.device_id), bob_dev, real)),
            # a member, but not the one whose commit added bob
            ("welcome_unvouched", _welcome(room, (carol.user_id, carol.device_id), bob_dev, real)),
            # eve was added by alice's commit, but this Welcome's secrets name bob's KeyPackage,
            # which that commit does not add
            ("welcome_invalid", _welcome(room, alice_dev, eve_dev, real)),
            ("welcome_invalid", _welcome(room, alice_dev, bob_dev, b"arbitrary bytes, not MLS")),
        ]
        key_id, seed = _signing_key(a.data)
        for i, (code, item) in enumerate(cases):
            target = f"{FEDERATION_PREFIX}/send/forged-welcome-{i}"
            body = msgpack.packb({"items": [item]}, use_bin_type=True)
            auth = sign_request(seed, key_id, "PUT", target, body, "a.test", "b.test",
                                int(time.time() * 1000)).to_header()
            status, answer = http_msgpack("PUT", b.url + target, body, {"Authorization": auth})
            assert status == 200, answer
            assert answer["results"] == [{"ok": False, "code": code, "message": answer["results"][0]["message"]}]
        assert _inbox(b.data) == before
        await bob.sync()
        assert bob.store.has_room(room) and not bob.store.has_room("!doesnotexist:a.test")
    finally:
        for c in clients:
            await c.close()
        for p in (a, b):
            if p.proc is not None:
                p.stop()
