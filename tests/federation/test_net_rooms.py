"""Two real ``confide serve`` processes (a.test, b.test) on loopback with a static peer
table, and SDK clients of each: a clinician on A creates a room and invites a clinician
on B; they converse both ways; a client of A is added; B is stopped (SIGTERM) while A's
members keep sending and restarted: B's member receives every message once, in order;
A (the hub) is stopped while B's member sends: ``hub_unreachable``, and the message is
delivered when sent again after A is back."""

from __future__ import annotations

import pytest

from client.sdk import ServerError
from tests.harness import eventually, peer_pair, reads

pytestmark = [pytest.mark.net, pytest.mark.soak]



async def _joined(client, room):
    await client.sync()
    return client.store.has_room(room)


async def test_two_processes_converse_and_survive_restarts(tmp_path):
    a, b = peer_pair(tmp_path)
    clients = []
    try:
        alice, bob = await a.user("alice"), await b.user("bob")
        clients += [alice, bob]
        room = await alice.create_room("consult")
        await alice.invite(room, bob.user_id)
        await eventually(lambda: _joined(bob, room), timeout=20)
        await alice.send_text(room, "from a")
        await eventually(lambda: reads(bob, room, ["from a"]), timeout=20)
        await bob.send_text(room, "from b")
        await eventually(lambda: reads(alice, room, ["from a", "from b"]), timeout=20)
        carol = await a.user("carol", role="client")
        clients.append(carol)
        await alice.invite(room, carol.user_id)
        await eventually(lambda: _joined(carol, room), timeout=20)
        await carol.send_text(room, "from carol")

        b.stop()  # the follower goes down; the hub's members keep sending
        while_down = [f"down {i}" for i in range(5)]
        for text in while_down:
            await alice.send_text(room, text)
        b.start()
        everyone = ["from a", "from b", "from carol", *while_down]
        await eventually(lambda: reads(bob, room, everyone), timeout=30)
        await eventually(lambda: reads(carol, room, ["from carol", *while_down]), timeout=20)

        a.stop()  # the hub goes down while b's member sends
        with pytest.raises(ServerError) as err:
            await bob.send_text(room, "hub was down")
        assert (err.value.status, err.value.code) == (503, "hub_unreachable")
        a.start()
        await bob.send_text(room, "hub was down")
        await eventually(lambda: reads(alice, room, [*everyone, "hub was down"]), timeout=30)
        await eventually(lambda: reads(bob, room, [*everyone, "hub was down"]), timeout=30)
    finally:
        for c in clients:
            await c.close()
        for p in (a, b):
            if p.proc is not None:
                p.stop()
