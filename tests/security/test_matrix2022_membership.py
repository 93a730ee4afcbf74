"""Matrix 2022, "server-controlled group membership" (Albrecht, Celi, Dowling and Jones,
"Practically-exploitable Cryptographic Vulnerabilities in Matrix", attack class 1): the
homeserver adds a member of its choosing to a group, and the members' clients encrypt to it.

Against Confide the server has everything a server has: the room's latest GroupInfo (with
its ratchet tree and ``external_pub``, as the hub stores it), its own hub key to sign
events, and write access to its database. One real ``confide serve`` process; the server,
stopped, writes three hub-signed events into the room
(:func:`tests.security.forged_events.inject_event`), each an attempt to bring in a device
of its own making under the clinician's name:

1. an external commit (``new_member_commit``) of ``@clinician:a.test/GHOST`` built from the
   stored GroupInfo: valid MLS, but the device is not proven in the log (``unproven_device``);
2. a ``new_member_proposal`` Add of that device: no member sent it (``uncheckable_sender``);
3. an ``external`` sender's Add, signed with a key of the server's: the group names no
   external senders and no member sent it (``uncheckable_sender``).

Both members' clients show each as a refused item at its seq, their groups stay at the
epoch and with the members they had (no GHOST), and they go on talking: a message sent
after the attempts is read by the other member. The server's own membership table is not
what clients encrypt to: the MLS tree is.
"""

from __future__ import annotations

import sqlite3

import pytest

from client.sdk.messages import RefusedMessage, TextMessage
from crypto.mls import Group, MLSMessage
from crypto.mls.ciphersuite import get_suite
from crypto.mls.group_external import external_proposal, new_member_add_proposal
from crypto.mls.key_package_gen import generate_key_package
from crypto.mls.proposals import Add, Proposal
from crypto.rng import system_rng
from protocol.events import EventKind
from tests.harness import PeerProcess, free_port

from .forged_events import inject_event
from .test_impostor_members import _sync

pytestmark = [pytest.mark.net, pytest.mark.timeout(150)]


def _stored_group_info(data, room: str):
    with sqlite3.connect(data / "confide.sqlite") as conn:
        (info,) = conn.execute("SELECT group_info FROM rooms WHERE room_id = ?", (room,)).fetchone()
    return MLSMessage.from_bytes(bytes(info)).body


async def test_the_server_cannot_add_a_member(tmp_path):
    server = PeerProcess(tmp_path, "a.test", free_port(), {})
    server.start()
    clients = []
    try:
        clinician, patient = await server.user("clinician"), await server.user("patient", "client")
        clients += [clinician, patient]
        room = await clinician.create_room("care")
        await clinician.invite(room, patient.user_id)
        await patient.sync()
        await clinician.sync()
        epoch = clinician.room(room).epoch
        members = clinician.room(room).members

        server.stop()
        info = _stored_group_info(server.data, room)
        ghost = (clinician.user_id, "GHOST")
        identity = f"{ghost[0]}/{ghost[1]}".encode()
        kp, priv = generate_key_package(get_suite(info.group_context.cipher_suite), identity,
                                        system_rng)
        _, external_commit = Group.external_join(info, kp, priv, rng=system_rng)
        proposal = new_member_add_proposal(info, kp, priv)
        server_seed = system_rng(32)  # a signing key of the server's own
        by_external = external_proposal(info.group_context, 0, server_seed, Proposal(Add(kp)))
        seqs = []
        for message, kind in ((external_commit, EventKind.COMMIT), (proposal, EventKind.PROPOSAL),
                              (by_external, EventKind.PROPOSAL)):
            seqs.append(inject_event(server.data, room, message.to_bytes(), ghost, kind,
                                     epoch).content.seq)
        server.start()

        expected = ["unproven_device", "uncheckable_sender", "uncheckable_sender"]
        for member in (clinician, patient):
            await _sync(member)
            shown = {m.seq: m for m in member.messages(room)}
            got = [shown[s] for s in seqs]
            assert all(isinstance(m, RefusedMessage) for m in got), got
            assert [m.reason for m in got] == expected
            assert all(m.sender_user == "" for m in got)
            summary = member.room(room)
            assert summary.epoch == epoch and summary.members == members
            assert not any("GHOST" in m for m in summary.members)

        seq = await patient.send_text(room, "are we still private?")
        await clinician.sync()
        text = {m.seq: m for m in clinician.messages(room)}[seq]
        assert isinstance(text, TextMessage) and text.sender_user == patient.user_id
    finally:
        for c in clients:
            await c.close()
        server.stop()

