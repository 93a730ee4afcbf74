"""Device listing, removal and key registration (logged before it is answered)."""

from __future__ import annotations

from client.audit import verify_device_inclusion
from protocol.audit import AccessAction, AccessEvent, DeviceAdded, DeviceRemoved, RemovalReason
from tests.harness import DeviceKit


async def _device(hs, user="alice"):
    reg = await hs.register(user)
    return reg, DeviceKit(reg["user_id"], reg["device_id"])


async def test_list_devices(hs):
    reg, _ = await _device(hs)
    status, body = await hs.call("GET", "/devices", token=reg["access_token"])
    assert status == 200
    [d] = body["devices"]
    assert d["device_id"] == reg["device_id"] and "display_name" not in d
    assert d["signature_key"] is None and d["log_index"] is None


async def test_register_keys_is_in_the_log_before_the_answer(hs):
    reg, kit = await _device(hs)
    status, body = await hs.call("PUT", "/keys/device", kit.registration(), token=reg["access_token"])
    assert status == 200
    index = body["log_index"]
    assert hs.log.size > index  # already committed under a checkpoint
    entry = (await hs.log_entries())[index]
    assert isinstance(entry, DeviceAdded)
    assert (entry.user, entry.device, entry.signature_key) == (kit.user, kit.device, kit.signature_key)
    entry.verify_signature()
    proof = await hs.log.inclusion_proof(index)
    opening = (await hs.log.opening(index)).to_bytes()
    verify_device_inclusion(proof.to_tlog_proof(), hs.log.verifier, kit.user, kit.device, kit.signature_key,
                            opening)
    assert kit.user.encode() not in proof.entry and kit.signature_key not in proof.entry
    _, devs = await hs.call("GET", "/devices", token=reg["access_token"])
    assert devs["devices"][0]["signature_key"] == kit.signature_key
    assert devs["devices"][0]["log_index"] == index


async def test_register_keys_again_is_idempotent_and_other_keys_conflict(hs):
    reg, kit = await _device(hs)
    _, first = await hs.call("PUT", "/keys/device", kit.registration(), token=reg["access_token"])
    size = hs.log.size
    _, again = await hs.call("PUT", "/keys/device", kit.registration(), token=reg["access_token"])
    assert again == first and hs.log.size == size
    other = DeviceKit(kit.user, kit.device)
    status, err = await hs.call("PUT", "/keys/device", other.registration(), token=reg["access_token"])
    assert (status, err["error"]["code"]) == (409, "conflict")


async def test_same_signature_key_on_two_devices_conflicts(hs):
    reg, kit = await _device(hs)
    await hs.call("PUT", "/keys/device", kit.registration(), token=reg["access_token"])
    _, second = await hs.login("alice")
    twin = DeviceKit(kit.user, second["device_id"], seed=kit.seed)
    status, err = await hs.call("PUT", "/keys/device", twin.registration(), token=second["access_token"])
    assert (status, err["error"]["code"]) == (409, "conflict")


async def test_register_keys_refuses_bad_signature_and_foreign_credential(hs):
    reg, kit = await _device(hs)
    size = hs.log.size
    body = kit.registration()
    body["signature"] = bytes(64)
    status, err = await hs.call("PUT", "/keys/device", body, token=reg["access_token"])
    assert (status, err["error"]["code"]) == (400, "device_keys_invalid")
    wrong = DeviceKit(kit.user, "OTHERDEVICE", seed=kit.seed)  # credential names another device
    status, err = await hs.call("PUT", "/keys/device", wrong.registration(), token=reg["access_token"])
    assert (status, err["error"]["code"]) == (400, "device_keys_invalid")
    status, err = await hs.call("PUT", "/keys/device", {**kit.registration(), "signature_key": b"x"},
                                token=reg["access_token"])
    assert (status, err["error"]["code"]) == (400, "malformed_body")
    assert hs.log.size == size


async def test_user_devices_lists_only_logged_keys(hs):
    reg, kit = await _device(hs)
    bob = await hs.register("bob")
    path = "/users/@alice:test.example/devices"
    status, body = await hs.call("GET", path, token=reg["access_token"])
    assert (status, body["devices"]) == (200, [])
    await hs.call("PUT", "/keys/device", kit.registration(), token=reg["access_token"])
    _, body = await hs.call("GET", path, token=reg["access_token"])
    [d] = body["devices"]
    assert d["device_id"] == kit.device and d["signature_key"] == kit.signature_key
    # bob shares no room with alice and claimed none of her KeyPackages: the answer of an
    # unknown user (finding 12)
    hidden = await hs.call("GET", path, token=bob["access_token"])
    unknown = await hs.call("GET", "/users/@nobody:test.example/devices", token=bob["access_token"])
    assert hidden == unknown and (unknown[0], unknown[1]["error"]["code"]) == (404, "not_found")
    status, _ = await hs.call("GET", path)
    assert status == 401


async def test_remove_device_revokes_tokens_and_logs(hs):
    root, _ = await _device(hs)
    _, reg = await hs.login("alice")  # a second device, with keys and KeyPackages
    kit = DeviceKit(reg["user_id"], reg["device_id"])
    await hs.call("PUT", "/keys/device", kit.registration(), token=reg["access_token"])
    await hs.call("POST", "/keys/packages", {"one_time": [kit.key_package()],
                                             "last_resort": kit.key_package(last_resort=True)},
                  token=reg["access_token"])
    status, body = await hs.call("DELETE", f"/devices/{kit.device}", token=root["access_token"])
    assert (status, body) == (200, {})
    assert (await hs.call("GET", "/devices", token=reg["access_token"]))[0] == 401
    async with hs.db.read() as conn:
        kps = await conn.execute_fetchall("SELECT COUNT(*) FROM key_packages")
    assert kps[0][0] == 0
    entries = await hs.log_entries()
    removed = [e for e in entries if isinstance(e, DeviceRemoved)]
    assert [(e.device, e.signature_key, e.reason) for e in removed] == [
        (kit.device, kit.signature_key, RemovalReason.SELF)]
    assert isinstance(entries[-1], AccessEvent) and entries[-1].action == AccessAction.DEVICE_REVOKED
    status, err = await hs.call("DELETE", f"/devices/{kit.device}", token=root["access_token"])
    assert (status, err["error"]["code"]) == (404, "not_found")


async def test_a_pending_device_may_remove_only_itself(hs):
    root, root_kit = await _device(hs)
    await hs.call("PUT", "/keys/device", root_kit.registration(), token=root["access_token"])
    _, ghost = await hs.login("alice")
    status, err = await hs.call("DELETE", f"/devices/{root['device_id']}", token=ghost["access_token"])
    assert (status, err["error"]["code"]) == (403, "approver_not_approved")
    assert (await hs.call("GET", "/devices", token=root["access_token"]))[0] == 200
    status, _ = await hs.call("DELETE", f"/devices/{ghost['device_id']}", token=ghost["access_token"])
    assert status == 200


async def test_remove_device_without_keys_logs_only_the_revocation(hs):
    reg = await hs.register("alice")
    status, _ = await hs.call("DELETE", f"/devices/{reg['device_id']}", token=reg["access_token"])
    assert status == 200
    entries = await hs.log_entries()
    assert not any(isinstance(e, DeviceRemoved) for e in entries)
    assert entries[-1].action == AccessAction.DEVICE_REVOKED


async def test_cannot_remove_another_users_device(hs):
    alice = await hs.register("alice")
    bob = await hs.register("bob")
    status, err = await hs.call("DELETE", f"/devices/{alice['device_id']}", token=bob["access_token"])
    assert (status, err["error"]["code"]) == (404, "not_found")
    assert (await hs.call("GET", "/devices", token=alice["access_token"]))[0] == 200
