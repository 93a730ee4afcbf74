"""Finding 4 (issue 10): the sender a client shows is the MLS sender, never the envelope's.

One real ``confide serve`` process and SDK clients over HTTP. The clinician's client talks to
the server through a malicious proxy (:class:`tests.security.forged_events.RelabelProxy`)
that holds the server's hub key, as the server itself would: it rewrites the ``sender_user``
/ ``sender_device`` of chosen events in the ``/sync`` and history answers and signs them
again, so the envelopes verify. The room: the clinician, a client (patient) and Bob.

- The patient's message is relabelled as Bob's: the clinician's client shows a refused item
  at its seq (``refused``, ``sender_mismatch``), not the text and never under Bob's name;
- the patient's next message is relabelled as the clinician's own device: before, it was
  skipped as "our own" and vanished; now it is a refused item too;
- the clinician's own message relabelled as Bob's is refused (its MLS sender leaf is this
  device) and reported in the room's warnings; the timeline keeps the clinician's own copy;
- an honest message afterwards is shown, with the patient's identity from the MLS leaf;
- ``confide read`` prints ``refused: verification failure`` for those seqs and exits 5, and
  Bob's name is nowhere a sender of them.
"""

from __future__ import annotations

import asyncio

import pytest

from client.sdk.messages import RefusedMessage, TextMessage
from tests.harness import PeerProcess, free_port
from tests.harness.inprocess import register_client
from tests.harness.processes import cli_env, confide

from .forged_events import RelabelProxy

pytestmark = [pytest.mark.net, pytest.mark.timeout(120)]

CRISIS = "I have been thinking about ending my life."


async def test_relabelled_senders_are_refused_visibly(tmp_path):
    server = PeerProcess(tmp_path, "a.test", free_port(), {})
    server.start()
    proxy = RelabelProxy(server.url, server.data)
    await proxy.start(free_port())
    clients = []
    try:
        invite = await asyncio.to_thread(server.invite, "clinician")
        clinician = await register_client(None, proxy.url, tmp_path / "clinician", "clinician",
                                          invite=invite, auto_add_own_devices=False)
        patient, bob = await server.user("patient", "client"), await server.user("bob")
        clients += [clinician, patient, bob]
        room = await clinician.create_room("care")
        await clinician.invite(room, patient.user_id)
        await clinician.invite(room, bob.user_id)
        await patient.sync()
        await bob.sync()

        as_bob = (bob.user_id, bob.device_id)
        as_reader = (clinician.user_id, clinician.device_id)
        s1 = await patient.send_text(room, CRISIS)
        proxy.relabel[(room, s1)] = as_bob
        s2 = await patient.send_text(room, "and nobody knows")
        proxy.relabel[(room, s2)] = as_reader
        s3 = await clinician.send_text(room, "thank you for telling me")
        proxy.relabel[(room, s3)] = as_bob
        s4 = await patient.send_text(room, "see you on Monday")
        await clinician.sync()
        assert proxy.rewritten == 3

        shown = {m.seq: m for m in clinician.messages(room)}
        for seq in (s1, s2):
            m = shown[seq]
            assert isinstance(m, RefusedMessage) and m.reason == "sender_mismatch", m
            assert (m.sender_user, m.sender_device) == ("", "")
        assert patient.user_id in shown[s1].detail  # the MLS sender, named in the refusal
        assert "this device" not in shown[s2].detail
        own = shown[s3]  # our own copy stays; the relabel is reported
        assert isinstance(own, TextMessage) and own.sender_user == clinician.user_id
        warnings = clinician.room(room).warnings
        assert any(f"Event {s3} " in w and "this device" in w for w in warnings), warnings
        honest = shown[s4]
        assert isinstance(honest, TextMessage) and honest.body == "see you on Monday"
        assert (honest.sender_user, honest.sender_device) == (patient.user_id, patient.device_id)
        assert not any(isinstance(m, TextMessage) and m.body in (CRISIS, "and nobody knows")
                       for m in shown.values())
        assert not any(m.sender_user == bob.user_id for m in shown.values())
        # Bob, not behind the proxy, sees the true senders.
        await bob.sync()
        truth = {m.seq: m for m in bob.messages(room)}
        assert (truth[s1].body, truth[s1].sender_user) == (CRISIS, patient.user_id)

        await clinician.close()
        clients.remove(clinician)
        out = await asyncio.to_thread(
            confide, "read", "--profile", str(tmp_path / "clinician"), room,
            env=cli_env(CONFIDE_PASSPHRASE="pp"))
        assert out.returncode == 5, (out.stdout, out.stderr)
        lines = {int(line[1:line.index("]")]): line for line in out.stdout.splitlines()
                 if line.startswith("[")}
        for seq in (s1, s2):
            assert "refused: verification failure" in lines[seq]
            assert bob.user_id not in lines[seq]
        assert CRISIS not in out.stdout
        assert f"Event {s1} of room {room} was refused: verification failure" in out.stderr
    finally:
        for c in clients:
            await c.close()
        await proxy.close()
        server.stop()
