"""Finding 2 (issue 10): ghost devices. A password alone no longer puts a device in a user's
rooms: a device made by ``/login`` is pending until an approved device of the same user signs
its key, after the person compared the short code both show.

One real ``confide serve`` process (:class:`tests.harness.PeerProcess`) and SDK clients over
HTTP. Carl (a clinician) and Pat (a client) share a room; the attacker knows Pat's password:

- the attacker logs in on a new device; Pat's own client syncs (and would, before, have
  committed that device into every room): the device is not added, cannot join by itself,
  create a room, approve itself or remove Pat's device, and reads nothing of Carl's next
  message; Pat's client raises an alert with the device's code; Carl's claim of Pat's
  KeyPackages does not return it;
- Pat approving it with a wrong code is refused (nothing logged); with the right code it
  is approved (a ``device_approved`` entry) and joins;
- the server's database is edited to mark the pending device approved, or the root: Carl's
  client still refuses it (no approval chain in the log), and Pat's client raises the loud
  alert;
- account recovery (``confide admin reset-devices``): the next device is a new root, which
  Carl refuses as a new identity until he accepts it.
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess

import pytest

from client.profile import MINIMUM, Profile
from client.sdk import Client, ServerError, VerificationFailed
from client.sdk.device_trust import NewIdentity
from client.sdk.messages import TextMessage
from client.sdk.own_devices import CodeMismatch
from protocol.audit import DeviceApproved, decode_entry, sign_device_approval
from tests.harness import PASSWORD, PeerProcess, free_port
from tests.harness.processes import CONFIDE, REPO

pytestmark = [pytest.mark.net, pytest.mark.timeout(120)]


def _db(server: PeerProcess) -> sqlite3.Connection:
    return sqlite3.connect(server.data / "confide.sqlite", timeout=10)


def _log(server: PeerProcess) -> list:
    with _db(server) as conn:
        # opened: the public entries are sealed, their openings are kept beside them
        rows = conn.execute("SELECT data FROM translog_openings ORDER BY idx").fetchall()
    return [decode_entry(bytes(r[0])) for r in rows]


def _members(server: PeerProcess, room: str) -> set[str]:
    with _db(server) as conn:
        rows = conn.execute("SELECT user_id, device_id FROM room_members WHERE room_id = ?",
                            (room,)).fetchall()
    return {f"{u}/{d}" for u, d in rows}


def _texts(client: Client, room: str) -> list[str]:
    return [m.body for m in client.messages(room) if isinstance(m, TextMessage)]


async def _ghost(server: PeerProcess, name: str, tmp_path) -> Client:
    """The attacker: a password login on a fresh device."""
    profile = Profile.create(tmp_path / f"ghost-{name}", "pp", MINIMUM)
    anchor = await asyncio.to_thread(server.anchor)  # public: on every invite of the server
    return await Client.login(profile, server.url, name, PASSWORD, device_name="phone",
                              anchor=anchor, auto_add_own_devices=False)


async def _consult(server: PeerProcess, clients: list) -> tuple[Client, Client, str]:
    carl, pat = await server.user("carl"), await server.user("pat", "client")
    clients += [carl, pat]
    room = await carl.create_room("weekly")
    await carl.invite(room, pat.user_id)  # Carl verifies (and pins) Pat's root here
    await pat.sync()
    assert pat.store.has_room(room)
    pat.auto_add_own_devices = True  # Pat's client adds Pat's other devices at sync
    return carl, pat, room


async def test_a_password_login_is_a_pending_device_until_approved(tmp_path):
    server = PeerProcess(tmp_path, "a.test", free_port(), {})
    server.start()
    clients: list[Client] = []
    try:
        carl, pat, room = await _consult(server, clients)
        ghost = await _ghost(server, "pat", tmp_path)
        clients.append(ghost)
        me = f"{pat.user_id}/{ghost.device_id}"
        assert await ghost.is_pending()

        # Pat's own client syncs: before, it committed the new device into every room.
        await pat.sync()
        assert me not in pat.room(room).members and me not in _members(server, room)
        [alert] = [a for a in pat.alerts() if ghost.device_id in a]
        assert alert.startswith(f"pending device {ghost.device_id} (code {ghost.own_code})")

        # The device by itself: no external join, no room of its own, no self-approval,
        # no removal of Pat's real device.
        for attempt in (ghost.join_external(room), ghost.create_room("mine")):
            with pytest.raises(ServerError) as err:
                await attempt
            assert err.value.code == "device_not_approved"
        acct = ghost.store.account()
        selfie = sign_device_approval(acct.signature_seed, 0, pat.user_id, ghost.device_id,
                                      bytes(32), ghost.device_id)
        for method, path, body in (
                ("POST", f"/devices/{ghost.device_id}/approve", {"time": 0, "signature": selfie.signature}),
                ("DELETE", f"/devices/{pat.device_id}", None)):
            with pytest.raises(ServerError) as err:
                await ghost.http.call(method, path, body)
            assert (err.value.status, err.value.code) == (403, "approver_not_approved")

        # Carl's next message: the ghost reads nothing; Carl's claim does not return it.
        await carl.send_text(room, "our next session is on Thursday")
        await pat.sync()
        assert _texts(pat, room) == ["our next session is on Thursday"]
        await ghost.sync()
        assert not ghost.store.has_room(room)
        claimed = await carl.keys.claim(pat.user_id)
        assert [d for d, _ in claimed] == [pat.device_id]
        listed = await carl.keys.user_devices(pat.user_id)
        assert [str(d.device_id) for d in listed] == [pat.device_id]
        assert not any(isinstance(e, DeviceApproved) for e in _log(server))

        # A wrong code is refused on Pat's device: nothing sent, nothing logged.
        wrong = "00000 00000 00000 00000 00000 00000"
        assert wrong != ghost.own_code
        with pytest.raises(CodeMismatch):
            await pat.approve_device(ghost.device_id, wrong)
        assert await ghost.is_pending()
        assert not any(isinstance(e, DeviceApproved) for e in _log(server))

        # The right code (the person compared both screens): approved, then added.
        [pending] = await pat.pending_devices()
        assert (pending.device_id, pending.code) == (ghost.device_id, ghost.own_code)
        index = await pat.approve_device(ghost.device_id, ghost.own_code)
        entry = _log(server)[index]
        assert isinstance(entry, DeviceApproved)
        assert (entry.device, entry.approver_device) == (ghost.device_id, pat.device_id)
        assert not await ghost.is_pending()
        assert not [a for a in pat.alerts() if ghost.device_id in a]
        added = await pat.add_own_devices()
        assert added == {room: [me]}
        await ghost.sync()
        await carl.sync()
        await carl.send_text(room, "welcome, second device")
        await ghost.sync()
        assert _texts(ghost, room) == ["welcome, second device"]
        await carl.verify_room_members(room)
        assert not [w for w in carl.room(room).warnings if ghost.device_id in w]
    finally:
        for c in clients:
            await c.close()
        server.stop()


@pytest.mark.parametrize("edit", ["approved", "root"])
async def test_a_device_marked_approved_in_the_database_is_still_refused(tmp_path, edit):
    server = PeerProcess(tmp_path, "a.test", free_port(), {})
    server.start()
    clients: list[Client] = []
    try:
        carl, pat, room = await _consult(server, clients)
        ghost = await _ghost(server, "pat", tmp_path)
        clients.append(ghost)
        me = f"{pat.user_id}/{ghost.device_id}"
        before = len(_log(server))
        with _db(server) as conn:  # the attacker owns the server's disk
            added = conn.execute("SELECT added_index FROM device_trust WHERE device_id = ?",
                                 (ghost.device_id,)).fetchone()[0]
            if edit == "approved":
                conn.execute("UPDATE device_trust SET state = 'approved', approver = ?, "
                             "approval_index = ? WHERE device_id = ?",
                             (pat.device_id, added, ghost.device_id))
            else:
                conn.execute("UPDATE device_trust SET state = 'root' WHERE device_id = ?",
                             (ghost.device_id,))
        assert not await ghost.is_pending()  # the server now lists and hands it out

        # Carl's client refuses it: no claim, no Add, a typed verification failure.
        claimed = await carl.keys.claim(pat.user_id)
        assert [d for d, _ in claimed] == [pat.device_id]
        assert [i for i, _ in carl.keys.refused] == [me]
        [dk] = [d for d in await carl.keys.user_devices(pat.user_id) if str(d.device_id) == ghost.device_id]
        expected = NewIdentity if edit == "root" else VerificationFailed
        with pytest.raises(expected) as err:
            await carl.keys.verify_device_approved(pat.user_id, ghost.device_id, dk.signature_key, dk)
        if edit == "approved":  # its chain starts with its own registration, not an approval
            assert "not approved by another device" in str(err.value)
        room2 = await carl.create_room("second")
        assert await carl.invite(room2, pat.user_id) == [f"{pat.user_id}/{pat.device_id}"]
        assert me not in _members(server, room2)

        # Pat's client refuses to add it and raises the loud alert.
        await pat.sync()
        assert me not in _members(server, room)
        assert any(a.startswith(f"ALERT: device {ghost.device_id} is active") for a in pat.alerts())
        await carl.send_text(room, "still private")
        await ghost.sync()
        assert not ghost.store.has_room(room)
        assert not any(isinstance(e, DeviceApproved) for e in _log(server)[before:])
    finally:
        for c in clients:
            await c.close()
        server.stop()


async def test_a_device_the_server_hides_from_the_lists_is_found_in_the_log(tmp_path):
    """The server registers a ghost device (its ``device_added`` entry is in the log) and then
    lists it nowhere: neither in the device list nor as pending. The owner's device watches
    its own log entries and raises the alert all the same; before the edit, no alert."""
    server = PeerProcess(tmp_path, "a.test", free_port(), {})
    server.start()
    clients: list[Client] = []
    try:
        carl, pat, _room = await _consult(server, clients)
        assert not [a for a in await pat.watch_own_devices() if a.startswith("ALERT")]
        ghost = await _ghost(server, "pat", tmp_path)
        clients.append(ghost)
        assert [a for a in await pat.watch_own_devices() if a.startswith("pending device")]
        with _db(server) as conn:  # the attacker owns the server's disk: the lists forget it
            conn.execute("DELETE FROM device_trust WHERE device_id = ?", (ghost.device_id,))
            conn.execute("DELETE FROM devices WHERE device_id = ?", (ghost.device_id,))
        assert ghost.device_id not in [str(d.device_id) for d in (await pat.account_devices()).devices]
        alerts = await pat.watch_own_devices()
        assert any(a.startswith(f"ALERT: device {ghost.device_id} is active") and "log entry" in a
                   for a in alerts), alerts
        assert any(ghost.device_id in a for a in pat.alerts())
    finally:
        for c in clients:
            await c.close()
        server.stop()


async def test_account_recovery_starts_a_new_identity(tmp_path):
    """Every device lost: ``confide admin reset-devices``; the next login is a new root, which
    a peer that knew the old one refuses until the person confirms it."""
    server = PeerProcess(tmp_path, "a.test", free_port(), {})
    server.start()
    clients: list[Client] = []
    try:
        carl, pat, _ = await _consult(server, clients)
        out = subprocess.run([*CONFIDE, "admin", "reset-devices", "--data", str(server.data),
                              "--user", "pat"], cwd=REPO, capture_output=True, text=True,
                             timeout=30, check=True).stdout
        assert out.startswith("removed 1 device(s) of @pat:a.test")
        fresh = await _ghost(server, "pat", tmp_path)
        clients.append(fresh)
        assert not await fresh.is_pending()  # the new root
        room = await carl.create_room("after recovery")
        with pytest.raises(VerificationFailed) as err:
            await carl.invite(room, pat.user_id)
        assert "new identity" in str(err.value)
        assert _members(server, room) == {f"{carl.user_id}/{carl.device_id}"}
        carl.accept_new_identity(pat.user_id)  # confirmed out of band
        assert await carl.invite(room, pat.user_id) == [f"{pat.user_id}/{fresh.device_id}"]
    finally:
        for c in clients:
            await c.close()
        server.stop()
