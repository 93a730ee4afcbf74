"""Finding 8 (issue 10), joining: a Welcome no longer joins the room by itself.

Before: the SDK joined every room whose Welcome it could open. Now (``spec/security.md``,
finding 8) it keeps the Welcome as a pending invitation naming the inviter from the MLS
facts (the member whose signature on the Welcome's GroupInfo verified), shows nothing of
the room until the person accepts, and a decline forgets the Welcome and its one-time
KeyPackage and proposes the device's removal. Against a real ``confide serve``; the
server's lie about the sender is made by editing its database; the CLI commands
``confide room invites|accept|decline`` run as their own processes.
"""

from __future__ import annotations

import json
import sqlite3

import pytest

from tests.harness import Practice, ServerProcess, register_client

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = ServerProcess(tmp_path_factory.mktemp("invites"))
    s.start()
    yield s
    s.stop()


def _db(server: ServerProcess, write: bool = False) -> sqlite3.Connection:
    mode = "rw" if write else "ro"
    return sqlite3.connect(f"file:{server.data / 'confide.sqlite'}?mode={mode}", uri=True, timeout=10)


def _membership(server: ServerProcess, room: str, user: str) -> list[tuple]:
    """(device, first_seq, last_seq) rows of ``user`` in ``room`` (the hub's view)."""
    conn = _db(server)
    try:
        return conn.execute("SELECT device_id, first_seq, last_seq FROM room_members "
                            "WHERE room_id = ? AND user_id = ?", (room, user)).fetchall()
    finally:
        conn.close()


async def _user(server: ServerProcess, tmp_path, name: str, role: str = "client", **kw):
    invite = server.admin("invite", "--role", role).strip().split()[-1]
    return await register_client(None, server.url, tmp_path / f"profile-{name}", name, invite=invite,
                                 auto_add_own_devices=False, **kw)


async def test_a_welcome_waits_for_accept_and_names_the_verified_inviter(server, tmp_path):
    therapist = await _user(server, tmp_path, "therapist", "clinician")
    patient = await _user(server, tmp_path, "patient", auto_join=False)
    try:
        room = await therapist.create_room("care")
        await therapist.invite(room, patient.user_id)
        await therapist.send_text(room, "welcome, this is your therapist")
        # the server lies about who sent the Welcome: its inbox row names someone else
        conn = _db(server, write=True)
        with conn:
            n = conn.execute("UPDATE inbox SET sender_user = '@mallory:e2e.example', "
                             "sender_device = 'EVIL' WHERE user_id = ? AND kind = 'welcome'",
                             (patient.user_id,)).rowcount
        conn.close()
        assert n == 1

        result = await patient.sync()
        assert result.invited == [room] and result.joined == [] and result.messages == []
        assert patient.store.has_room(room) is False and patient.messages(room) == []
        (inv,) = patient.invites()
        assert inv.room_id == room
        assert inv.inviter == f"{therapist.user_id}/{therapist.device_id}"  # MLS, not the envelope
        assert inv.members == [f"{therapist.user_id}/{therapist.device_id}",
                               f"{patient.user_id}/{patient.device_id}"]
        # more syncs do not join either, and events of the room are not shown
        await therapist.send_text(room, "second message")
        assert (await patient.sync()).messages == [] and not patient.store.has_room(room)

        accepted = await patient.accept(room)
        assert accepted.joined == [room]
        assert [m.body for m in patient.messages(room) if hasattr(m, "body")] == [
            "welcome, this is your therapist", "second message"]
        assert patient.invites() == []
    finally:
        await therapist.close()
        await patient.close()


async def test_decline_leaves_no_membership(server, tmp_path):
    therapist = await _user(server, tmp_path, "therapist2", "clinician")
    patient = await _user(server, tmp_path, "patient2", auto_join=False)
    try:
        room = await therapist.create_room("unwanted")
        await therapist.invite(room, patient.user_id)
        await patient.sync()
        (inv,) = patient.invites()
        ref = inv.key_package_ref
        assert ref in patient.store.key_packages()
        assert [r[2] for r in _membership(server, room, patient.user_id)] == [None]

        await patient.decline(room)
        assert patient.invites() == [] and ref not in patient.store.key_packages()
        assert patient.store.room(room).group is None and patient.messages(room) == []
        await therapist.send_text(room, "are you there?")
        await therapist.sync()  # commits the removal the patient proposed
        (row,) = _membership(server, room, patient.user_id)
        assert row[2] is not None  # the hub no longer counts the device
        assert (await patient.sync()).messages == [] and patient.messages(room) == []
        assert patient.invites() == []  # a redelivered Welcome is not shown again
    finally:
        await therapist.close()
        await patient.close()


async def test_the_cli_lists_accepts_and_declines(server, tmp_path, monkeypatch):
    practice = Practice(server, tmp_path)
    carol = practice.register("carol", auto_join=False)
    therapist = await _user(server, tmp_path, "therapist3", "clinician")
    try:
        room = await therapist.create_room("cli")
        other = await therapist.create_room("cli-2")
        for r in (room, other):
            await therapist.invite(r, carol.user_id)
        await therapist.send_text(room, "hello carol")
        assert carol.run("read", room, check=False).returncode == 6  # not joined: unknown room
        shown = [json.loads(x) for x in carol.run("room", "invites", "--json").stdout.splitlines()]
        assert sorted(i["room_id"] for i in shown) == sorted([room, other])
        assert {i["inviter_user"] for i in shown} == {therapist.user_id}
        assert carol.run("room", "accept", room).stdout.strip() == f"joined {room}"
        assert carol.texts(room) == ["hello carol"]
        assert carol.run("room", "decline", other).stdout.strip() == f"declined {other}"
        assert carol.run("room", "invites").stdout.strip() == "no invitations"
        out = carol.run("room", "accept", other, check=False)
        assert out.returncode == 6 and out.stderr.count("\n") == 1 and "unknown_room" in out.stderr
    finally:
        await therapist.close()
