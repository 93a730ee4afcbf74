"""KeyPackage upload, count and claim: validation, one-time semantics, expiry, concurrency."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from crypto.mls.ciphersuite import get_suite
from crypto.mls.key_package_gen import generate_key_package
from crypto.mls.leaf_node import Lifetime
from crypto.mls.message import MLSMessage
from crypto.rng import SeededRng
from tests.harness import T0, DeviceKit


async def _ready(hs, user="alice"):
    """A registered user whose device registered its keys."""
    reg = await hs.register(user)
    kit = DeviceKit(reg["user_id"], reg["device_id"])
    status, _ = await hs.call("PUT", "/keys/device", kit.registration(), token=reg["access_token"])
    assert status == 200
    return reg["access_token"], kit


async def _upload(hs, token, kit, n=2, **kw):
    return await hs.call("POST", "/keys/packages", {
        "one_time": [kit.key_package(**kw) for _ in range(n)],
        "last_resort": kit.key_package(last_resort=True, **kw)}, token=token)


async def test_upload_and_count(hs):
    token, kit = await _ready(hs)
    assert await hs.call("GET", "/keys/packages/count", token=token) == (
        200, {"one_time": 0, "last_resort": False})
    status, body = await _upload(hs, token, kit, n=3)
    assert (status, body) == (200, {"one_time": 3, "last_resort": True})
    assert await hs.call("GET", "/keys/packages/count", token=token) == (
        200, {"one_time": 3, "last_resort": True})


async def test_upload_before_device_keys_is_refused(hs):
    reg = await hs.register("alice")
    kit = DeviceKit(reg["user_id"], reg["device_id"])
    status, err = await _upload(hs, reg["access_token"], kit)
    assert (status, err["error"]["code"]) == (409, "device_keys_missing")


async def test_claim_hands_out_each_one_time_package_once_then_last_resort(hs):
    token, kit = await _ready(hs)
    bob, _ = await _ready(hs, "bob")
    one_time = [kit.key_package() for _ in range(2)]
    last = kit.key_package(last_resort=True)
    await hs.call("POST", "/keys/packages", {"one_time": one_time, "last_resort": last}, token=token)
    got = []
    for _ in range(4):
        status, body = await hs.call("POST", "/keys/claim", {"user": kit.user}, token=bob)
        assert status == 200 and body["missing"] == []
        [kp] = body["key_packages"]
        assert kp["device_id"] == kit.device
        got.append((kp["key_package"], kp["last_resort"]))
    assert sorted(g[0] for g in got[:2]) == sorted(one_time)  # each once, oldest first
    assert got[0][0] == one_time[0]
    assert got[2:] == [(last, True), (last, True)]
    assert await hs.call("GET", "/keys/packages/count", token=token) == (
        200, {"one_time": 0, "last_resort": True})


async def test_claim_returns_one_per_device_and_names_devices_without_packages(hs):
    token, kit = await _ready(hs)
    _, second = await hs.login("alice")
    kit2 = DeviceKit(kit.user, second["device_id"])
    await hs.call("PUT", "/keys/device", kit2.registration(), token=second["access_token"])
    await _upload(hs, token, kit, n=1)
    status, body = await hs.call("POST", "/keys/claim", {"user": kit.user}, token=token)
    assert status == 200 and body["missing"] == []  # the second device is pending: not listed
    status, _ = await hs.call("POST", f"/devices/{kit2.device}/approve",
                              kit.approval(kit2.device, kit2.signature_key, int(hs.clock() * 1000)),
                              token=token)
    assert status == 200
    status, body = await hs.call("POST", "/keys/claim", {"user": kit.user}, token=token)
    assert status == 200
    assert [k["device_id"] for k in body["key_packages"]] == [kit.device]
    assert body["missing"] == [kit2.device]


async def test_claim_errors(hs):
    token, kit = await _ready(hs)
    status, err = await hs.call("POST", "/keys/claim", {"user": kit.user}, token=token)
    assert (status, err["error"]["code"]) == (404, "key_package_exhausted")
    status, err = await hs.call("POST", "/keys/claim", {"user": "@nobody:test.example"}, token=token)
    assert (status, err["error"]["code"]) == (404, "not_found")
    status, err = await hs.call("POST", "/keys/claim", {"user": "nobody"}, token=token)
    assert (status, err["error"]["code"]) == (400, "invalid_identifier")
    status, err = await hs.call("POST", "/keys/claim", {"user": kit.user})
    assert (status, err["error"]["code"]) == (401, "unauthorized")


async def test_concurrent_claims_get_distinct_packages(hs):
    token, kit = await _ready(hs)
    bob, _ = await _ready(hs, "bob")
    await _upload(hs, token, kit, n=6)
    results = await asyncio.gather(*(
        hs.call("POST", "/keys/claim", {"user": kit.user}, token=bob) for _ in range(10)))
    handed = [body["key_packages"][0] for status, body in results if status == 200]
    assert len(handed) == 10
    one_time = [k["key_package"] for k in handed if not k["last_resort"]]
    assert len(one_time) == 6 and len(set(one_time)) == 6
    assert len({k["key_package"] for k in handed if k["last_resort"]}) == 1


async def test_expired_packages_are_never_handed_out(hs):
    token, kit = await _ready(hs)
    bob, _ = await _ready(hs, "bob")
    soon = Lifetime(int(T0) - 10, int(T0) + 100)
    await _upload(hs, token, kit, n=2, lifetime=soon)
    hs.clock.advance(101)
    status, err = await hs.call("POST", "/keys/claim", {"user": kit.user}, token=bob)
    assert (status, err["error"]["code"]) == (404, "key_package_exhausted")
    assert await hs.call("GET", "/keys/packages/count", token=token) == (
        200, {"one_time": 0, "last_resort": False})


async def test_not_yet_valid_or_expired_uploads_are_refused(hs):
    token, kit = await _ready(hs)
    for lifetime in (Lifetime(int(T0) + 100, int(T0) + 1000), Lifetime(0, int(T0) - 1)):
        status, err = await _upload(hs, token, kit, n=1, lifetime=lifetime)
        assert (status, err["error"]["code"]) == (400, "key_package_invalid")


async def test_new_last_resort_replaces_the_old_one(hs):
    token, kit = await _ready(hs)
    bob, _ = await _ready(hs, "bob")
    await _upload(hs, token, kit, n=0)
    newer = kit.key_package(last_resort=True)
    await hs.call("POST", "/keys/packages", {"one_time": [], "last_resort": newer}, token=token)
    _, body = await hs.call("POST", "/keys/claim", {"user": kit.user}, token=bob)
    assert body["key_packages"][0]["key_package"] == newer


def _resigned(kit: DeviceKit, suite_id: int) -> bytes:
    """A suite-3 KeyPackage relabelled as ``suite_id`` and signed again (valid signature)."""
    suite = get_suite(3)
    kp, _ = generate_key_package(suite, f"{kit.user}/{kit.device}".encode(), SeededRng(b"x"),
                                 signature_priv=kit.seed)
    kp = replace(kp, cipher_suite=suite_id)
    kp = replace(kp, signature=suite.sign_with_label(kit.seed, "KeyPackageTBS", kp.tbs_bytes()))
    return MLSMessage(kp).to_bytes()


async def test_invalid_key_packages_are_refused_and_nothing_is_stored(hs):
    token, kit = await _ready(hs)
    good_last = kit.key_package(last_resort=True)
    valid = kit.key_package()
    bad_sig = bytearray(valid)
    bad_sig[-1] ^= 1
    stranger = DeviceKit(kit.user, kit.device)  # another signature key
    cases = {
        "bad signature": bytes(bad_sig),
        "wrong suite": _resigned(kit, 2),
        "garbage": b"\x00\x01\x02",
        "trailing bytes": valid + b"\x00",
        "not a key package": b"\x00\x01\x00\x03" + valid[4:],
        "other signature key": stranger.key_package(),
        "other identity": kit.key_package(identity=b"@mallory:test.example/X"),
        "last resort as one-time": kit.key_package(last_resort=True),
    }
    for name, data in cases.items():
        status, err = await hs.call("POST", "/keys/packages", {"one_time": [valid, data],
                                                               "last_resort": good_last}, token=token)
        assert (status, err["error"]["code"]) == (400, "key_package_invalid"), name
    status, err = await hs.call("POST", "/keys/packages", {"one_time": [],
                                                           "last_resort": kit.key_package()}, token=token)
    assert (status, err["error"]["code"]) == (400, "key_package_invalid")
    assert await hs.call("GET", "/keys/packages/count", token=token) == (
        200, {"one_time": 0, "last_resort": False})


async def test_duplicate_packages_are_refused(hs):
    token, kit = await _ready(hs)
    kp = kit.key_package()
    last = kit.key_package(last_resort=True)
    status, err = await hs.call("POST", "/keys/packages", {"one_time": [kp, kp], "last_resort": last},
                                token=token)
    assert (status, err["error"]["code"]) == (400, "key_package_invalid")
    assert (await hs.call("POST", "/keys/packages", {"one_time": [kp], "last_resort": last},
                          token=token))[0] == 200
    status, err = await hs.call("POST", "/keys/packages", {"one_time": [kp], "last_resort": kit.key_package(
        last_resort=True)}, token=token)
    assert (status, err["error"]["code"]) == (400, "key_package_invalid")


async def test_per_device_limit(tmp_path):
    from server.config import KeyPackageLimits
    from tests.harness import start

    hs = await start(tmp_path, key_packages=KeyPackageLimits(max_one_time_per_device=3))
    try:
        token, kit = await _ready(hs)
        assert (await _upload(hs, token, kit, n=2))[0] == 200
        status, err = await _upload(hs, token, kit, n=2)
        assert (status, err["error"]["code"]) == (409, "key_package_limit")
        assert (await hs.call("GET", "/keys/packages/count", token=token))[1]["one_time"] == 2
    finally:
        await hs.client.close()


async def test_suite_1_packages_are_accepted(hs):
    reg = await hs.register("alice")
    kit = DeviceKit(reg["user_id"], reg["device_id"], suite_id=1)
    await hs.call("PUT", "/keys/device", kit.registration(), token=reg["access_token"])
    status, body = await _upload(hs, reg["access_token"], kit, n=1)
    assert (status, body) == (200, {"one_time": 1, "last_resort": True})
