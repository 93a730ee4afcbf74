"""Albrecht, Celi, Dowling and Jones, "Practically-exploitable Cryptographic Vulnerabilities in
Matrix" (2022): homeserver-controlled device lists. In Matrix a malicious homeserver could add
a device of its own to a user's device list, and the user's peers encrypted to it. Against
Confide the attack fails (issue 10, finding 2).

One real ``confide serve`` process. The homeserver's operator (here: edits of its database)
adds ``@pat/FAKEDEV`` with a key only the attacker holds: a ``devices`` row whose log index
points at Pat's real registration, a ``device_trust`` row claiming an approval by Pat's
device, and a KeyPackage so that claims hand it out. Then:

- Carl, who met Pat before, and Dora, who never did (so has nothing pinned), both invite Pat:
  each claim leaves the fake device out (refused: its registration and approval are not in
  the log), the Add commits only Pat's real device, and the room never has the fake member;
- Pat's own client raises the loud alert;
- the log has no entry naming the fake device.
"""

from __future__ import annotations

import sqlite3

import pytest

from client.sdk import Client
from crypto.mls import MLSMessage, get_suite
from crypto.mls.key_package_gen import generate_key_package, key_package_ref
from crypto.primitives import ed25519_public_key
from crypto.rng import system_rng
from protocol.audit import DeviceAdded, DeviceApproved, decode_entry
from protocol.ids import DeviceId, UserId
from server.services.devices import expected_credential
from tests.harness import PeerProcess, free_port

pytestmark = [pytest.mark.net, pytest.mark.timeout(120)]

FAKE = "FAKEDEV"


def _db(server: PeerProcess) -> sqlite3.Connection:
    return sqlite3.connect(server.data / "confide.sqlite", timeout=10)


def _members(server: PeerProcess, room: str) -> set[str]:
    with _db(server) as conn:
        rows = conn.execute("SELECT user_id, device_id FROM room_members WHERE room_id = ?",
                            (room,)).fetchall()
    return {d for _, d in rows}


def _add_fake_device(server: PeerProcess, user: str, real_device: str) -> None:
    """What a malicious homeserver does: a device of its own in ``user``'s list."""
    seed = system_rng(32)
    key = ed25519_public_key(seed)
    suite = get_suite(3)
    kp, _ = generate_key_package(suite, f"{user}/{FAKE}".encode(), system_rng, last_resort=True,
                                 signature_priv=seed)
    lifetime = kp.leaf_node.lifetime
    with _db(server) as conn:
        real = conn.execute("SELECT key_log_index, created_at FROM devices WHERE user_id = ? "
                            "AND device_id = ?", (user, real_device)).fetchone()
        conn.execute(
            "INSERT INTO devices (user_id, device_id, created_at, last_seen, "
            "signature_key, credential, key_log_index) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (user, FAKE, real[1] + 1, real[1] + 1, key,
             expected_credential(UserId.parse(user), DeviceId(FAKE)), real[0]))
        conn.execute(
            "INSERT INTO device_trust (user_id, device_id, state, signature_key, added_index, "
            "approver, approval_index) VALUES (?, ?, 'approved', ?, ?, ?, ?)",
            (user, FAKE, key, real[0], real_device, real[0]))
        conn.execute(
            "INSERT INTO key_packages (user_id, device_id, ref, data, last_resort, not_before, "
            "not_after, created_at) VALUES (?, ?, ?, ?, 1, ?, ?, ?)",
            (user, FAKE, key_package_ref(suite, kp), MLSMessage(kp).to_bytes(),
             lifetime.not_before, min(lifetime.not_after, (1 << 63) - 1), real[1]))


async def test_a_device_the_homeserver_adds_is_refused_by_every_peer(tmp_path):
    server = PeerProcess(tmp_path, "a.test", free_port(), {})
    server.start()
    clients: list[Client] = []
    try:
        carl, dora = await server.user("carl"), await server.user("dora")
        pat = await server.user("pat", "client")
        clients += [carl, dora, pat]
        met = await carl.create_room("met before")
        await carl.invite(met, pat.user_id)  # Carl pins Pat's root here
        await pat.sync()

        _add_fake_device(server, pat.user_id, pat.device_id)
        listed = {str(d.device_id) for d in await pat.keys.user_devices(pat.user_id)}
        assert listed == {pat.device_id, FAKE}  # the server now lists it and hands it out

        for peer in (carl, dora):
            room = await peer.create_room("consult")
            added = await peer.invite(room, pat.user_id)
            assert added == [f"{pat.user_id}/{pat.device_id}"]
            assert [i for i, _ in peer.keys.refused] == [f"{pat.user_id}/{FAKE}"]
            assert FAKE not in _members(server, room)
            assert FAKE not in {m.split("/")[-1] for m in peer.room(room).members}

        pat.auto_add_own_devices = True
        await pat.sync()
        assert any(a.startswith(f"ALERT: device {FAKE} is active") for a in pat.alerts())
        assert FAKE not in _members(server, met)

        with _db(server) as conn:
            # the log's entries, opened (each sealed entry's opening is kept beside it)
            entries = [decode_entry(bytes(r[0])) for r in
                       conn.execute("SELECT data FROM translog_openings").fetchall()]
        assert not [e for e in entries if isinstance(e, DeviceAdded | DeviceApproved)
                    and e.device == FAKE]
    finally:
        for c in clients:
            await c.close()
        server.stop()
