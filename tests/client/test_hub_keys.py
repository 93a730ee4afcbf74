"""The SDK's cache of hub key documents: fetched once, fetched again for a key id it lacks."""

from __future__ import annotations

import time

from client.sdk import TextMessage
from client.sdk.envelopes import HubKeys
from crypto.rng import SeededRng
from federation import FEDERATION_KEYRING
from federation.keyring import rotate
from server.appkeys import DATABASE
from tests.harness import sdk_config as make_config


def texts(client, room: str) -> list[str]:
    return [m.body for m in client.messages(room) if isinstance(m, TextMessage)]


async def test_the_document_is_fetched_once_and_again_after_a_key_rotation(hs, monkeypatch):
    fetched: list[str] = []
    real = HubKeys.fetch

    async def counting(self, hub):
        fetched.append(hub)
        return await real(self, hub)

    monkeypatch.setattr(HubKeys, "fetch", counting)
    alice, bob = await hs.user("alice"), await hs.user("bob")
    room = await alice.create_room()
    await alice.invite(room, bob.user_id)
    for i in range(5):
        await alice.send_text(room, f"before {i}")
    await bob.sync()
    assert texts(bob, room) == [f"before {i}" for i in range(5)]
    assert fetched.count("test.example") <= 2  # alice's client and bob's: once each
    before = len(fetched)
    ring = hs.app[FEDERATION_KEYRING]
    old = ring.current().key_id
    await rotate(hs.app[DATABASE], make_config(hs.tmp).keys_dir, SeededRng("rotation"),
                 int(time.time() * 1000), 60_000)
    await ring.refresh()
    assert ring.current().key_id != old
    await alice.send_text(room, "after the rotation")
    await bob.sync()
    assert texts(bob, room)[-1] == "after the rotation"  # signed by the new key: accepted
    assert bob.room(room).refused == ()
    assert fetched[before:].count("test.example") >= 1  # the new key id made bob fetch again
    await alice.send_text(room, "and again")
    n = len(fetched)
    await bob.sync()
    assert texts(bob, room)[-1] == "and again" and len(fetched) == n  # now cached
