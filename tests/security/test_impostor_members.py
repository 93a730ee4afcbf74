"""Finding 5 (issue 10): impostor members are refused by the hub and by the members' clients.

One real ``confide serve`` process and SDK clients over HTTP. The room: a clinician, Bob
and Mallory, a member who attacks with her real client's group state
(:meth:`client.sdk.groups.GroupStore.copy`) and crafted KeyPackages:

- the hub (``test_hub_refuses_impostor_devices``): a commit adding
  ``@clinician:a.test/FAKEDEVICE`` with Mallory's own key is ``unknown_device``; a commit
  adding Dana's real device name with another key is ``device_key_mismatch``; a standalone
  Add proposal of the impostor is ``unknown_device``; an external join by Mallory's own
  device under a key it never registered is ``device_key_mismatch``. Nothing is stored:
  the room's events, the inbox and the transparency log hold what they held before. The
  honest invite of Dana's real device is then accepted.
- the clients (``test_members_refuse_a_commit_the_hub_did_not_prove``): the impostor commit
  is written into the server's database as the room's next hub-signed event (the server
  stopped, bypassing the hub's check; :func:`tests.security.forged_events.inject_event`).
  The clinician's and Bob's clients refuse it: a ``refused`` item (``unproven_device``)
  at its seq, the group stays at its epoch, no FAKEDEVICE member. Bob's honest commit for
  that epoch is then applied by the clinician (the re-base), and Bob's next message read.
"""

from __future__ import annotations

import asyncio

import pytest

from client.sdk import ServerError
from client.sdk.errors import TransportError
from client.sdk.http import quote_path
from client.sdk.messages import RefusedMessage, TextMessage
from crypto.mls import Group, MLSMessage
from crypto.mls.key_package_gen import generate_key_package
from crypto.mls.proposals import Add, Proposal
from crypto.rng import system_rng
from protocol.events import EventKind
from protocol.rooms_api import SendRequest, SendResponse
from protocol.txn_ids import new_client_txn_id
from tests.harness import PeerProcess, free_port

from .conftest import count_rows
from .forged_events import inject_event, room_events

pytestmark = [pytest.mark.net, pytest.mark.timeout(150)]


async def _send(client, room: str, message: bytes, welcome: bytes | None = None,
                group_info: bytes | None = None) -> str:
    """The error code of ``POST /rooms/{room}/send`` (the test expects a refusal)."""
    with pytest.raises(ServerError) as err:
        await client.http.request("POST", f"/rooms/{quote_path(room)}/send",
                                  SendRequest(new_client_txn_id(system_rng), message, welcome, group_info),
                                  SendResponse)
    return err.value.code


def _impostor_commit(mallory, room: str, identity: bytes):
    group = mallory.groups.copy(mallory.store.room(room))
    kp, _ = generate_key_package(group.cipher_suite, identity, system_rng)  # the attacker's key
    staged = group.stage_commit([Proposal(Add(kp))], rng=system_rng)
    group.merge_staged_commit(staged)
    info = MLSMessage(group.group_info(with_ratchet_tree=True)).to_bytes()
    return group, staged, kp, info


async def _room_of_three(server):
    clinician, bob = await server.user("clinician"), await server.user("bob")
    mallory = await server.user("mallory", "client")
    room = await clinician.create_room("care")
    await clinician.invite(room, bob.user_id)
    await clinician.invite(room, mallory.user_id)
    await bob.sync()
    await mallory.sync()
    return clinician, bob, mallory, room


async def test_hub_refuses_impostor_devices(tmp_path):
    server = PeerProcess(tmp_path, "a.test", free_port(), {})
    server.start()
    clients = []
    try:
        clinician, bob, mallory, room = await _room_of_three(server)
        dana = await server.user("dana")
        clients += [clinician, bob, mallory, dana]
        tables = ("room_events", "inbox", "translog_entries")
        before = {t: count_rows(server.data, t) for t in tables}
        events = room_events(server.data, room)

        fake = f"{clinician.user_id}/FAKEDEVICE".encode()
        _, staged, kp, info = _impostor_commit(mallory, room, fake)
        assert await _send(mallory, room, staged.commit.to_bytes(), staged.welcome.to_bytes(),
                           info) == "unknown_device"
        other_key = f"{dana.user_id}/{dana.device_id}".encode()
        _, staged2, _, info2 = _impostor_commit(mallory, room, other_key)
        assert await _send(mallory, room, staged2.commit.to_bytes(), staged2.welcome.to_bytes(),
                           info2) == "device_key_mismatch"
        group = mallory.groups.copy(mallory.store.room(room))
        proposal, _ = group.propose(Proposal(Add(kp)), public=True, rng=system_rng)
        assert await _send(mallory, room, proposal.to_bytes()) == "unknown_device"

        served = await mallory.rooms_engine.group_info(room)
        me = f"{mallory.user_id}/{mallory.device_id}".encode()
        own_kp, own_priv = generate_key_package(group.cipher_suite, me, system_rng)  # not her key
        prior = group.find_member(me)
        joined, external = Group.external_join(served, own_kp, own_priv, remove_prior=int(prior),
                                               rng=system_rng)
        new_info = MLSMessage(joined.group_info(with_ratchet_tree=True)).to_bytes()
        assert await _send(mallory, room, external.to_bytes(), None, new_info) == "device_key_mismatch"

        assert {t: count_rows(server.data, t) for t in tables} == before
        assert room_events(server.data, room) == events
        await clinician.sync()
        assert not any(b"FAKEDEVICE" in m.encode() for m in clinician.room(room).members)

        assert await clinician.invite(room, dana.user_id) == [f"{dana.user_id}/{dana.device_id}"]
    finally:
        for c in clients:
            await c.close()
        server.stop()


async def _sync(client) -> None:
    for attempt in range(5):  # the first request after the restart may meet a closed connection
        try:
            await client.sync()
            return
        except TransportError:
            await asyncio.sleep(0.2 * (attempt + 1))
    await client.sync()


async def test_members_refuse_a_commit_the_hub_did_not_prove(tmp_path):
    server = PeerProcess(tmp_path, "a.test", free_port(), {})
    server.start()
    clients = []
    try:
        clinician, bob, mallory, room = await _room_of_three(server)
        clients += [clinician, bob, mallory]
        await clinician.sync()
        epoch = clinician.room(room).epoch
        _, staged, _, _ = _impostor_commit(mallory, room, f"{clinician.user_id}/FAKEDEVICE".encode())

        server.stop()
        forged = inject_event(server.data, room, staged.commit.to_bytes(),
                              (mallory.user_id, mallory.device_id), EventKind.COMMIT, epoch)
        server.start()
        seq = forged.content.seq
        for member in (clinician, bob):
            await _sync(member)
            shown = {m.seq: m for m in member.messages(room)}
            refused = shown[seq]
            assert isinstance(refused, RefusedMessage), refused
            assert (refused.kind, refused.reason) == ("commit", "unproven_device")
            assert "FAKEDEVICE" in refused.detail
            summary = member.room(room)
            assert summary.epoch == epoch and summary.last_seq == seq
            assert not any("FAKEDEVICE" in m for m in summary.members)

        assert await bob.rotate_keys(room) == epoch + 1  # the hub is still at that epoch
        await clinician.sync()
        assert clinician.room(room).epoch == epoch + 1
        after = await bob.send_text(room, "after the re-base")
        await clinician.sync()
        text = {m.seq: m for m in clinician.messages(room)}[after]
        assert isinstance(text, TextMessage) and text.body == "after the re-base"
        assert text.sender_user == bob.user_id
    finally:
        for c in clients:
            await c.close()
        server.stop()


FED = "retry_initial_ms = 50\nretry_max_ms = 500\nkey_refetch_interval = 0\n"


async def test_hub_asks_a_remote_users_home_server(tmp_path):
    """A device of another server's user is added only as that server lists it: the hub
    asks b.test over federation (``unknown_device``, ``device_key_mismatch``), then adds
    Bob's real device."""
    pa, pb = free_port(), free_port()
    a = PeerProcess(tmp_path, "a.test", pa, {"b.test": f"http://127.0.0.1:{pb}"}, FED)
    b = PeerProcess(tmp_path, "b.test", pb, {"a.test": f"http://127.0.0.1:{pa}"}, FED)
    a.start()
    b.start()
    clients = []
    try:
        alice, bob = await a.user("alice"), await b.user("bob")
        clients += [alice, bob]
        room = await alice.create_room("consult")
        before = room_events(a.data, room)
        for identity, refusal in ((f"{bob.user_id}/FAKEDEVICE", "unknown_device"),
                                  (f"{bob.user_id}/{bob.device_id}", "device_key_mismatch")):
            _, staged, _, info = _impostor_commit(alice, room, identity.encode())
            assert await _send(alice, room, staged.commit.to_bytes(), staged.welcome.to_bytes(),
                               info) == refusal
        assert room_events(a.data, room) == before
        assert await alice.invite(room, bob.user_id) == [f"{bob.user_id}/{bob.device_id}"]
    finally:
        for c in clients:
            await c.close()
        a.stop()
        b.stop()
