"""SDK against the real homeserver: register, login, device keys, KeyPackages, claims."""

from __future__ import annotations

import pytest

from client.profile import MINIMUM, Profile
from client.sdk import Client, ServerError, VerificationFailed
from protocol.api import ClaimRequest, ClaimResponse
from protocol.ids import UserId
from tests.harness import PASSWORD


async def test_register_uploads_device_keys_and_key_packages(hs):
    alice = await hs.user("alice")
    assert alice.user_id == "@alice:test.example"
    acct = alice.store.account()
    assert acct.keys_registered and acct.log_index is not None and acct.log_vkey
    count = await alice.keys.count()
    assert (count.one_time, count.last_resort) == (20, True)
    stored = alice.store.key_packages()
    assert len(stored) == 21 and sum(v.last_resort for v in stored.values()) == 1


async def test_bad_invite_is_a_server_error_with_its_code(hs, tmp_path):
    profile = Profile.create(tmp_path / "p", "pp", MINIMUM)
    with pytest.raises(ServerError) as e:
        await Client.register(profile, hs.url, "nope-nope#" + await hs.anchor(), "bob", PASSWORD)
    assert (e.value.status, e.value.code) == (403, "invite_invalid")


async def test_login_again_keeps_the_device_and_new_profile_makes_a_new_device(hs, tmp_path):
    alice = await hs.user("alice")
    token = alice.store.account().access_token
    again = await Client.login(alice.profile, hs.url, "alice", PASSWORD)
    hs.clients.append(again)
    acct = again.store.account()
    assert acct.device_id == alice.device_id and acct.access_token != token
    laptop = await hs.device("alice", "laptop")
    assert laptop.device_id != alice.device_id
    devices = await laptop.keys.user_devices("@alice:test.example")
    assert {str(d.device_id) for d in devices} == {alice.device_id, laptop.device_id}


async def test_wrong_password(hs, tmp_path):
    await hs.user("alice")
    profile = Profile.create(tmp_path / "p", "pp", MINIMUM)
    with pytest.raises(ServerError) as e:
        await Client.login(profile, hs.url, "alice", "wrong password", anchor=await hs.anchor())
    assert e.value.code == "invalid_login"


async def test_top_up_only_below_threshold(hs):
    alice = await hs.user("alice")
    bob = await hs.user("bob")
    for _ in range(10):
        await bob.keys.http.call("POST", "/keys/claim", {"user": alice.user_id})
    assert (await alice.keys.count()).one_time == 10
    assert (await alice.ensure_key_packages()).one_time == 10  # at the threshold: nothing
    await bob.keys.http.call("POST", "/keys/claim", {"user": alice.user_id})
    assert (await alice.ensure_key_packages()).one_time == 20


async def test_claim_verifies_each_device_in_the_log(hs):
    alice = await hs.user("alice")
    await hs.device("alice", "laptop")
    bob = await hs.user("bob")
    claimed = await bob.keys.claim(alice.user_id)
    assert len(claimed) == 2
    verified = bob.store.verified()
    devices = {k for k in verified if not k.startswith("root:")}
    assert devices == {f"{alice.user_id}/{d}" for d, _ in claimed}
    assert verified[f"root:{alice.user_id}"] == alice.store.verified()[f"root:{alice.user_id}"]


async def test_verify_device_refuses_a_key_not_in_the_log(hs):
    alice = await hs.user("alice")
    bob = await hs.user("bob")
    # a claim (unverified, so nothing is cached) lets bob list alice's devices (spec/security.md)
    await bob.http.request("POST", "/keys/claim", ClaimRequest(UserId.parse(alice.user_id)),
                           ClaimResponse)
    with pytest.raises(VerificationFailed):
        await bob.keys.verify_device(alice.user_id, alice.device_id, b"\x01" * 32)
    acct = alice.store.account()
    # the right key, but the proof of another entry (bob's own registration)
    with pytest.raises(VerificationFailed):
        await bob.keys.verify_device(alice.user_id, alice.device_id,
                                     _pk(acct.signature_seed), bob.store.account().log_index)


def _pk(seed):
    from crypto.primitives import ed25519_public_key

    return ed25519_public_key(seed)
