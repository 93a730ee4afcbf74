"""The SDK's group store: one live group per room, decoded again only when the profile changed."""

from __future__ import annotations

from client.profile import Profile
from client.sdk import Client, TextMessage
from crypto.mls import Group


def texts(client: Client, room: str) -> list[str]:
    return [m.body for m in client.messages(room) if isinstance(m, TextMessage)]


async def test_a_batch_of_events_decodes_the_group_once(hs, monkeypatch):
    alice, bob = await hs.user("alice"), await hs.user("bob")
    room = await alice.create_room()
    await alice.invite(room, bob.user_id)
    await bob.sync()
    for i in range(12):
        await alice.send_text(room, f"m{i}")
    decoded = []
    real = Group.from_bytes

    def counting(data: bytes) -> Group:
        decoded.append(len(data))
        return real(data)

    monkeypatch.setattr(Group, "from_bytes", staticmethod(counting))
    await bob.sync()
    assert texts(bob, room) == [f"m{i}" for i in range(12)]
    assert len(decoded) <= 1  # at most once (none if the join left it live)
    live = bob.groups.live(bob.store.room(room))
    assert live is bob.groups.live(bob.store.room(room))
    assert live.to_bytes() == bob.store.room(room).group  # what is live is what is stored


async def test_a_change_by_another_process_is_decoded_before_use(hs):
    alice, bob = await hs.user("alice"), await hs.user("bob")
    room = await alice.create_room()
    await alice.invite(room, bob.user_id)
    await bob.sync()
    await bob.send_text(room, "from the first process")
    # another process on the same profile sends: the stored group state moves on
    other = Client.open(Profile.open(hs.tmp / "profile-bob-phone", "pp"))
    try:
        await other.send_text(room, "from the second process")
    finally:
        await other.close()
    await bob.send_text(room, "from the first process again")  # no key used twice
    await alice.sync()
    assert texts(alice, room) == ["from the first process", "from the second process",
                                  "from the first process again"]
    assert alice.room(room).warnings == ()
