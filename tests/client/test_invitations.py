"""Invitations in the SDK (finding 8), in process: Welcomes from one's own devices join at
once, ``auto_join`` joins every Welcome, and the hub's Welcome allowance past a full inbox
(finding 10: a Welcome may use a tenth more than the to-device quota; beyond it the
Welcome is dropped and the room event still accepted).

(The attacks against a real ``confide serve`` are ``tests/security/test_invite_acceptance.py``.)
"""

from __future__ import annotations

import pytest

from crypto.mls import Group, get_suite
from crypto.mls.key_package_gen import generate_key_package
from crypto.rng import SeededRng
from server.appkeys import DATABASE
from server.delivery import inbox
from server.delivery.inbox import DEFAULT_QUOTA
from server.rooms.storage import next_stream_position

pytestmark = pytest.mark.timeout(60)


async def _usage(hs, client, items: int) -> None:
    async with hs.app[DATABASE].transaction() as tx:
        await tx.execute("INSERT OR REPLACE INTO inbox_usage (user_id, device_id, items, bytes) "
                         "VALUES (?, ?, ?, 0)", (client.user_id, client.device_id, items))


async def _welcomes(hs, client) -> int:
    async with hs.app[DATABASE].read() as conn:
        rows = await conn.execute_fetchall(
            "SELECT COUNT(*) FROM inbox WHERE user_id = ? AND kind = 'welcome'", (client.user_id,))
    return rows[0][0]


async def test_own_devices_join_at_once_and_auto_join_joins_everything(hs):
    alice = await hs.user("alice", auto_join=False, auto_add_own_devices=False)
    laptop = await hs.device("alice", "laptop", auto_join=False, auto_add_own_devices=False)
    bob = await hs.user("bob", auto_join=False)
    room = await alice.create_room("own")
    await alice.add_own_devices()
    result = await laptop.sync()
    assert result.joined == [room] and result.invited == [] and laptop.invites() == []
    bob.set_auto_join(True)  # kept in the profile
    await alice.invite(room, bob.user_id)
    result = await bob.sync()
    assert result.joined == [room] and bob.invites() == []


async def test_a_welcome_may_pass_the_full_inbox_by_its_allowance_only(hs):
    alice = await hs.user("alice")
    bob = await hs.user("bob", auto_join=False)
    carol = await hs.user("carol", auto_join=False)
    extra_items, _ = DEFAULT_QUOTA.welcome_reserve
    await _usage(hs, bob, DEFAULT_QUOTA.max_items)  # full for to-device, within the allowance
    await _usage(hs, carol, DEFAULT_QUOTA.max_items + extra_items)  # past the allowance
    room = await alice.create_room("full")
    await alice.invite(room, bob.user_id)
    await alice.invite(room, carol.user_id)  # accepted by the hub all the same
    assert await _welcomes(hs, bob) == 1 and await _welcomes(hs, carol) == 0
    members = {m.split("/")[0] for m in alice.room(room).members}
    assert members == {alice.user_id, bob.user_id, carol.user_id}
    await bob.sync()
    assert [i.room_id for i in bob.invites()] == [room]


async def test_a_member_naming_itself_our_device_does_not_get_an_automatic_join(hs):
    """A Welcome whose GroupInfo signer's leaf claims to be another device of the victim
    (``@victim:.../GHOST``, a key no log proves) stays an invitation; written straight into
    the victim's inbox, as a server or a peer could."""
    victim = await hs.user("victim", auto_join=False)
    mallory = await hs.user("mallory")
    ((_, victim_kp),) = await mallory.keys.claim(victim.user_id)
    rng = SeededRng("ghost")
    suite = get_suite(victim_kp.cipher_suite)
    ghost_kp, ghost_priv = generate_key_package(suite, f"{victim.user_id}/GHOST".encode(), rng)
    fake = Group.create(suite, rng(32), ghost_kp, ghost_priv, rng=rng)
    welcome = fake.add_members([victim_kp], rng=rng).welcome
    room = "!ghostroom:test.example"
    async with hs.app[DATABASE].transaction() as tx:
        await inbox.push(tx, await next_stream_position(tx), victim.user_id, victim.device_id,
                         "welcome", welcome.to_bytes(), sender=(victim.user_id, "GHOST"),
                         room_id=room, now_ms=0)
    result = await victim.sync()
    assert result.joined == [] and result.invited == [room]
    assert [i.inviter for i in victim.invites()] == [f"{victim.user_id}/GHOST"]
    assert not victim.store.has_room(room)
