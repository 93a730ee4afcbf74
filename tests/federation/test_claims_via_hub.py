"""KeyPackage claims for a room go through the room's hub (``spec/server-server.md`` 13.1,
``spec/client-server.md`` 5.3): a follower's member claims through the hub, the hub claims at
the user's home server naming the room, refusals are typed and consume nothing, one-time
KeyPackages are handed out once.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from client.sdk import ServerError
from federation.appkeys import FEDERATION_CLIENT, FEDERATION_ROOMS
from protocol.api import ClaimRequest
from protocol.errors import ApiError
from protocol.federation import PeerRefused
from protocol.federation_rooms import FederatedClaim, FederatedRoomClaim
from protocol.ids import RoomId, UserId
from protocol.schema import decode_body, pack_body
from tests.harness import consult, eventually, joined, make_nodes, user_on


def spy(monkeypatch, rooms, name: str) -> list[tuple]:
    """Record the arguments of ``rooms.<name>`` (still called)."""
    calls: list[tuple] = []
    real = getattr(rooms, name)

    async def wrapper(*args):
        calls.append(args)
        return await real(*args)

    monkeypatch.setattr(rooms, name, wrapper)
    return calls


async def one_time(client) -> int:
    return (await client.http.call("GET", "/keys/packages/count"))["one_time"]


@pytest.fixture(name="trio")
async def trio_fixture(tmp_path):
    nodes = make_nodes(tmp_path, "a.test", "b.test", "c.test")
    for n in nodes:
        await n.start()
    clients: list = []
    yield nodes, clients
    for c in clients:
        await c.close()
    for n in nodes:
        await n.stop()


async def test_a_follower_member_claims_a_third_servers_user_through_the_hub(trio, monkeypatch):
    (a, b, c), clients = trio
    alice = await user_on(a, "alice", clients=clients)
    bob = await user_on(b, "bob", clients=clients)
    carol = await user_on(c, "carol", clients=clients)
    room = await consult(a, b, alice, bob)
    at_hub = spy(monkeypatch, a.app[FEDERATION_ROOMS], "claim_for_room")
    at_home = spy(monkeypatch, a.app[FEDERATION_ROOMS], "_claim_at_home")
    direct = spy(monkeypatch, b.app[FEDERATION_ROOMS], "claim")
    before = await one_time(carol)
    assert await bob.invite(room, carol.user_id) == [f"{carol.user_id}/{carol.device_id}"]
    assert [(origin, str(r), str(q.user_id), str(q.requester)) for origin, r, q in at_hub] == [
        ("b.test", room, carol.user_id, bob.user_id)]
    assert [(str(u), str(r)) for u, r in at_home] == [(carol.user_id, room)]
    assert direct == []  # B never asked C directly
    assert await one_time(carol) == before - 1
    await eventually(lambda: joined(carol, room))


async def test_the_hub_claims_at_the_users_home_server_naming_the_room(people, monkeypatch):
    a, b, alice, bob, clients = people
    at_home = spy(monkeypatch, a.app[FEDERATION_ROOMS], "_claim_at_home")
    room = await consult(a, b, alice, bob)
    assert [(str(u), str(r)) for u, r in at_home] == [(bob.user_id, room)]


async def test_one_time_key_packages_are_handed_out_once(people):
    """Each claim through the hub takes a distinct one-time package; past the claims one
    claimer may make of one user (``key_packages.claims_per_pair``, counted at the hub:
    finding 8) the claim is refused and takes nothing, so no last-resort one is reached."""
    a, b, alice, bob, clients = people
    room = await alice.create_room("consult")
    n = await one_time(bob)
    per_pair = a.config().key_packages.claims_per_pair
    assert n > per_pair
    seen = set()
    for _ in range(per_pair):
        out = await alice.http.call("POST", "/keys/claim", {"user": bob.user_id, "room_id": room})
        (kp,) = out["key_packages"]
        assert not kp["last_resort"]
        seen.add(kp["key_package"])
    assert len(seen) == per_pair and await one_time(bob) == n - per_pair
    with pytest.raises(ServerError) as err:
        await alice.http.call("POST", "/keys/claim", {"user": bob.user_id, "room_id": room})
    assert err.value.code == "rate_limited"
    assert await one_time(bob) == n - per_pair


async def test_client_refusals_consume_nothing(people):
    a, b, alice, bob, clients = people
    carol = await user_on(a, "carol", clients=clients)
    room = await alice.create_room("consult")
    before = await one_time(bob)
    cases = [
        (carol, room, "not_member"),  # on the hub, no member device
        (bob, room, "unknown_room"),  # the follower does not know a room without its members
        (alice, "!nosuchroom:a.test", "unknown_room"),
    ]
    for who, rid, code in cases:
        with pytest.raises(ServerError) as err:
            await who.http.call("POST", "/keys/claim", {"user": bob.user_id, "room_id": rid})
        assert err.value.code == code
    assert await one_time(bob) == before


async def refused(call) -> str:
    with pytest.raises(PeerRefused) as err:
        await call
    return err.value.remote_code


async def test_hub_refusals_consume_nothing(people):
    a, b, alice, bob, clients = people
    carol = await user_on(a, "carol", clients=clients)
    dave = await user_on(b, "dave", clients=clients)
    room = await consult(a, b, alice, bob)
    fed = b.app[FEDERATION_CLIENT]
    before = (await one_time(carol), await one_time(alice))

    def ask(server: str, rid: str, user: str, requester: str):
        body = FederatedRoomClaim(UserId.parse(user), UserId.parse(requester))
        return fed.call("POST", server, f"/_confide/federation/v1/rooms/{rid}/claim", body)

    assert await refused(ask("a.test", room, carol.user_id, dave.user_id)) == "not_member"
    assert await refused(ask("a.test", "!nosuchroom:a.test", carol.user_id, bob.user_id)) == "unknown_room"
    assert await refused(ask("a.test", room, carol.user_id, alice.user_id)) == "not_your_user"
    # a room hosted elsewhere than the server asked (B asks A about a room of B)
    assert await refused(ask("a.test", "!elsewhere:b.test", carol.user_id, bob.user_id)) == "not_hub"
    # a direct claim naming a room is only the room's hub's to make
    body = FederatedClaim(UserId.parse(alice.user_id), RoomId.parse(room))
    assert await refused(fed.call("POST", "a.test", "/_confide/federation/v1/keys/claim", body)) == "not_hub"
    assert (await one_time(carol), await one_time(alice)) == before
    # the same follower request from a member succeeds and takes one
    out = await ask("a.test", room, carol.user_id, bob.user_id)
    assert out["user_id"] == carol.user_id and await one_time(carol) == before[0] - 1


async def test_without_a_room_the_claim_goes_straight_to_the_home_server(people, monkeypatch):
    a, b, alice, bob, clients = people
    direct = spy(monkeypatch, a.app[FEDERATION_ROOMS], "claim")
    out = await alice.http.call("POST", "/keys/claim", {"user": bob.user_id})
    assert out["user_id"] == bob.user_id and len(direct) == 1


_IDS = st.sampled_from(["@a:x.test", "!r:x.test", "", "@", "!r", 1, None, b"x"])


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["user", "user_id", "room_id", "requester", "x"]), _IDS, max_size=4))
def test_claim_bodies_decode_strictly(body):
    for cls in (ClaimRequest, FederatedClaim, FederatedRoomClaim):
        try:
            msg = decode_body(pack_body(body), cls)
        except ApiError:
            continue
        assert decode_body(pack_body(msg), cls) == msg
