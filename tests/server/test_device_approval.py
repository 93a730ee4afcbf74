"""Device approval on the server (spec/client-server.md 4.6): pending login devices, the
approve endpoint and its typed errors, device lists with chains, and the hub's refusal of a
pending device (in-process server, raw requests)."""

from __future__ import annotations

from crypto.mls.group import Group
from crypto.mls.message import MLSMessage
from crypto.rng import system_rng
from protocol.audit import DeviceApproved
from protocol.txn_ids import new_client_txn_id
from tests.harness import DeviceKit
from tests.harness.members import create_room, new_member, send


def _now(hs) -> int:
    return int(hs.clock() * 1000)


async def test_pending_device_then_approved_with_a_chain(hs):
    root = await new_member(hs, "alice")
    phone = await new_member(hs, "alice", device_of=root, approve=False)
    status, body = await root.call("GET", "/devices/pending")
    assert status == 200
    assert [(d["device_id"], d["signature_key"]) for d in body["devices"]] == [
        (phone.device, phone.kit.signature_key)]
    _, listed = await root.call("GET", f"/users/{root.user}/devices")
    assert [(d["device_id"], d["chain"]) for d in listed["devices"]] == [(root.device, [])]
    _, mine = await root.call("GET", "/devices")
    assert {d["device_id"]: d["pending"] for d in mine["devices"]} == {root.device: False,
                                                                       phone.device: True}
    status, body = await root.call("POST", f"/devices/{phone.device}/approve",
                                   root.kit.approval(phone.device, phone.kit.signature_key, _now(hs)))
    assert status == 200
    entry = (await hs.log_entries())[body["log_index"]]
    assert isinstance(entry, DeviceApproved) and entry.approver_device == root.device
    entry.verify_signature(root.kit.signature_key)
    # a third device, approved by the second: a chain of two approvals to the root's entry
    tablet = await new_member(hs, "alice", device_of=phone)
    _, listed = await root.call("GET", f"/users/{root.user}/devices")
    chains = {d["device_id"]: (d["log_index"], d["chain"]) for d in listed["devices"]}
    root_added = chains[root.device][0]
    assert chains[phone.device][1] == [body["log_index"], root_added]
    assert chains[tablet.device][1][1:] == [body["log_index"], root_added]
    assert (await root.call("GET", "/devices/pending"))[1] == {"devices": []}


async def test_approve_errors(hs):
    root = await new_member(hs, "alice")
    phone = await new_member(hs, "alice", device_of=root, approve=False)
    other = await new_member(hs, "bob")
    good = root.kit.approval(phone.device, phone.kit.signature_key, _now(hs))

    async def code(m, device, body):
        status, answer = await m.call("POST", f"/devices/{device}/approve", body)
        return status, answer["error"]["code"]

    assert await code(root, "NOSUCHDEVICE", good) == (404, "not_found")
    assert await code(other, phone.device, other.kit.approval(phone.device, phone.kit.signature_key,
                                                              _now(hs))) == (404, "not_found")
    assert await code(phone, phone.device, phone.kit.approval(phone.device, phone.kit.signature_key,
                                                              _now(hs))) == (403, "approver_not_approved")
    assert await code(root, root.device, good) == (409, "device_not_pending")
    forged = DeviceKit(root.user, root.device).approval(phone.device, phone.kit.signature_key, _now(hs))
    assert await code(root, phone.device, forged) == (400, "approval_invalid")
    wrong_key = root.kit.approval(phone.device, bytes(32), _now(hs))
    assert await code(root, phone.device, wrong_key) == (400, "approval_invalid")
    stale = root.kit.approval(phone.device, phone.kit.signature_key, _now(hs) - 11 * 60 * 1000)
    assert await code(root, phone.device, stale) == (400, "approval_invalid")
    assert await code(root, phone.device, {"time": 1}) == (400, "malformed_body")
    assert not any(isinstance(e, DeviceApproved) for e in await hs.log_entries())
    assert (await root.call("POST", f"/devices/{phone.device}/approve", good))[0] == 200
    assert await code(root, phone.device, good) == (409, "device_not_pending")
    # a device that has not registered keys yet
    _, bare = await hs.login("alice")
    assert await code(root, bare["device_id"], good) == (409, "device_not_pending")


async def test_hub_refuses_a_pending_device(hs):
    root = await new_member(hs, "alice")
    room = await create_room(root)
    phone = await new_member(hs, "alice", device_of=root, approve=False)
    await phone.upload_key_packages()
    await root.upload_key_packages()
    status, claim = await root.call("POST", "/keys/claim", {"user": root.user})
    assert status == 200 and [k["device_id"] for k in claim["key_packages"]] == [root.device]
    # An Add of the pending device with a KeyPackage it handed over out of band.
    kp, _ = phone.key_package()
    staged = root.groups[room].add_members([kp])
    status, body = await send(root, room, staged.commit.to_bytes(), "add-pending",
                              welcome=staged.welcome.to_bytes())
    assert (status, body["error"]["code"]) == (403, "device_not_approved")
    # Nor may it fetch the room's GroupInfo, or join by an external commit from one it got.
    status, body = await phone.call("GET", f"/rooms/{room}/group_info")
    assert (status, body["error"]["code"]) == (403, "device_not_approved")
    _, gi = await root.call("GET", f"/rooms/{room}/group_info")
    jkp, jpriv = phone.key_package()
    joined, commit = Group.external_join(MLSMessage.from_bytes(gi["group_info"]), jkp, jpriv)
    status, body = await send(phone, room, commit.to_bytes(), "ghost-join",
                              group_info=MLSMessage(joined.group_info()).to_bytes())
    assert (status, body["error"]["code"]) == (403, "device_not_approved")
    status, body = await phone.call("POST", "/rooms", {
        "txn_id": new_client_txn_id(system_rng), "group_info": MLSMessage(root.groups[room].group_info()).to_bytes()})
    assert (status, body["error"]["code"]) == (403, "device_not_approved")
    async with hs.db.read() as conn:
        rows = await conn.execute_fetchall("SELECT device_id FROM room_members WHERE room_id = ?",
                                           (room,))
    assert [r[0] for r in rows] == [root.device]
    # approved, the same Add goes through
    approval = root.kit.approval(phone.device, phone.kit.signature_key, _now(hs))
    assert (await root.call("POST", f"/devices/{phone.device}/approve", approval))[0] == 200
    status, body = await send(root, room, staged.commit.to_bytes(), "add-approved",
                              welcome=staged.welcome.to_bytes())
    assert status == 200, body


async def test_migration_makes_each_users_first_device_its_root(tmp_path):
    import aiosqlite

    from server.storage import device_trust
    from server.storage.migrations import MIGRATIONS, migrate

    conn = await aiosqlite.connect(tmp_path / "old.sqlite", isolation_level=None)
    try:
        # a database from before the device_trust step, whatever its number
        n = next(i for i, step in enumerate(MIGRATIONS) if any("TABLE device_trust" in s for s in step))
        await conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        for stmt in (s for step in MIGRATIONS[:n] for s in step):
            await conn.execute(stmt)
        await conn.execute("INSERT INTO schema_version (version) VALUES (?)", (n,))
        await conn.execute("INSERT INTO accounts VALUES ('@a:x', 'client', 'h', 1)")
        for device, created in (("FIRST", 10), ("LATER", 20)):
            await conn.execute("INSERT INTO devices (user_id, device_id, created_at, last_seen) "
                               "VALUES ('@a:x', ?, ?, ?)", (device, created, created))
        await migrate(conn)
        rows = await device_trust.for_user(conn, "@a:x")
    finally:
        await conn.close()
    assert {d: t.state.value for d, t in rows.items()} == {"FIRST": "root", "LATER": "pending"}
