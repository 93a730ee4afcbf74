"""Finding 9 (issue 10): no field the server can check carries text a client chose.

One real ``confide serve`` process (:class:`tests.harness.ServerProcess`, its log captured)
and SDK clients; the attacker is Alice's own device, a malicious client with her token and
her group state, crafting each channel of the finding with a marker (a made-up name and a
diagnosis) and sending it raw:

the MLS group id and a GroupContext extension of a creation GroupInfo, a GroupInfo
extension of its own, ``authenticated_data`` of a PrivateMessage and of a PublicMessage
proposal, a group-context-extensions commit, an unpadded application message, a to-device
payload, an attachment, ``device_name`` at register and login, ``txn_id``, and a KeyPackage
whose capabilities spell the marker.

Each is refused with its typed code (``spec/client-server.md`` 8.8, 9.1, 11.1), nothing is
stored (row counts, attachment files), and afterwards the marker (raw, hex, base64) appears
nowhere in the server's database file, its WAL, its data directory or its log. A control
shows the scan reads those files (a user name, stored in the clear, is found), and the
honest SDK still creates rooms, talks, and shares an attachment through the same server.

Over federation (two ``confide serve`` peers), a transaction signed with a.test's real key
carries a to-device item holding the marker to b.test: refused (``to_device_not_sealed``),
not stored; a sealed box in the same way is delivered.
"""

from __future__ import annotations

import base64
import sqlite3
import time

import msgpack
import pytest

from client.sdk.messages import AttachmentMessage
from crypto.mls import Group, MLSMessage
from crypto.mls.ciphersuite import get_suite
from crypto.mls.extensions import Extension, ExtensionType
from crypto.mls.group_welcome import sign_group_info
from crypto.mls.key_package_gen import default_capabilities, generate_key_package
from crypto.mls.proposals import GroupContextExtensions, Proposal, Remove
from crypto.rng import system_rng
from protocol.federation import FEDERATION_PREFIX, sign_request
from protocol.padding import application_padding
from protocol.room_channels import derive_group_id
from protocol.sealed import ATTACHMENT_MAGIC
from tests.harness import (
    PASSWORD,
    PeerProcess,
    ServerProcess,
    box,
    free_port,
    http_msgpack,
    register_client,
    txn,
)

from .conftest import Attacker

pytestmark = [pytest.mark.net, pytest.mark.timeout(120)]

MARKER = b"Zelda Quimby-Marsh, bipolar II"
CONTROL = "zquimbyctl"  # a user name: the server stores it in the clear
TABLES = ("rooms", "room_events", "room_members", "inbox", "txn_ids", "devices", "accounts",
          "key_packages", "attachment_uploads")
SUITE = get_suite(3)
FED = "retry_initial_ms = 50\nretry_max_ms = 500\nkey_refetch_interval = 0\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    proc = ServerProcess(tmp_path_factory.mktemp("plaintext"))
    proc.start()
    yield proc
    proc.stop()


def _invite(server: ServerProcess) -> str:
    return server.admin("invite", "--role", "clinician").strip().split()[-1]


def _counts(server: ServerProcess) -> dict[str, int]:
    conn = sqlite3.connect(f"file:{server.data / 'confide.sqlite'}?mode=ro", uri=True)
    try:
        return {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in TABLES}
    finally:
        conn.close()


def _files(server: ServerProcess) -> list:
    return sorted(p for p in server.data.rglob("*") if p.is_file())


def _found(server: ServerProcess, needle: bytes) -> list[str]:
    """Every file of the data directory, and the log, that holds ``needle`` (raw, hex or
    base64, as a client could have hidden it)."""
    forms = [needle, needle.hex().encode(), base64.b64encode(needle)[:-4],
             base64.urlsafe_b64encode(needle)[:-4]]
    return [str(p) for p in [*_files(server), server.log]
            if any(f in p.read_bytes() for f in forms)]


async def _clients(server: ServerProcess, tmp_path):
    alice = await register_client(None, server.url, tmp_path / "alice", "alice",
                                  invite=_invite(server), auto_add_own_devices=False)
    bob = await register_client(None, server.url, tmp_path / "bob", "bob",
                                invite=_invite(server), auto_add_own_devices=False)
    return alice, bob


def _kp(alice, **kw):
    acct = alice.store.account()
    identity = f"{acct.user_id}/{acct.device_id}".encode()
    return generate_key_package(SUITE, identity, system_rng, signature_priv=acct.signature_seed, **kw)


def _creation_infos(alice) -> dict[str, bytes]:
    """Creation GroupInfos, each with the marker in one field."""
    kp, priv = _kp(alice)
    chosen_id = Group.create(SUITE, MARKER.ljust(32, b"."), kp, priv)
    kp, priv = _kp(alice)
    context_ext = Group.create(SUITE, derive_group_id(kp.leaf_node.encryption_key), kp, priv,
                               extensions=[Extension(ExtensionType.APPLICATION_ID, MARKER)])
    kp, priv = _kp(alice)
    honest = Group.create(SUITE, derive_group_id(kp.leaf_node.encryption_key), kp, priv)
    info = honest.group_info()
    custom = sign_group_info(SUITE, alice.store.account().signature_seed, type(info)(
        info.group_context, (*info.extensions, Extension(0xF0F0, MARKER)), info.confirmation_tag,
        info.signer))
    return {"group_id_invalid": MLSMessage(chosen_id.group_info()).to_bytes(),
            "extension_not_allowed": MLSMessage(context_ext.group_info()).to_bytes(),
            "extension_not_allowed (GroupInfo)": MLSMessage(custom).to_bytes()}


def _room_messages(alice, room: str, bob_identity: bytes) -> dict[str, bytes]:
    """Messages for Alice's room, each with the marker in one field (her group state, not
    saved: the hub refuses them all, so her real state stays the room's)."""
    group = Group.from_bytes(alice.store.room(room).group)
    bob_leaf = group.find_member(bob_identity)
    out = {}
    msg = group.protect(b"hello", authenticated_data=MARKER, padding=application_padding(b"hello"))
    out["authenticated_data_not_empty"] = msg.to_bytes()
    proposal, _ = group.propose(Proposal(Remove(int(bob_leaf))), authenticated_data=MARKER)
    out["authenticated_data_not_empty (proposal)"] = proposal.to_bytes()
    group = Group.from_bytes(alice.store.room(room).group)
    gce = group.stage_commit([Proposal(GroupContextExtensions(
        (Extension(ExtensionType.APPLICATION_ID, MARKER),)))])
    out["extension_not_allowed"] = gce.commit.to_bytes()
    out["message_not_padded"] = group.protect(MARKER).to_bytes()
    return out


def _code(raw: bytes) -> str:
    return msgpack.unpackb(raw)["error"]["code"]


async def test_every_plaintext_channel_is_refused_and_the_marker_is_stored_nowhere(server, tmp_path):
    alice, bob = await _clients(server, tmp_path)
    try:
        room = await alice.create_room("consult")
        await alice.invite(room, bob.user_id)
        await bob.sync()
        token = alice.http.token
        bob_identity = f"{bob.user_id}/{bob.device_id}".encode()
        before, files = _counts(server), _files(server)
        refused: list[tuple[str, int, str]] = []
        async with Attacker(server.url) as mallory:
            for want, info in _creation_infos(alice).items():
                status, raw = await mallory.call("POST", "/rooms", {
                    "txn_id": txn(want), "group_info": info}, token)
                refused.append((want, status, _code(raw)))
            for want, message in _room_messages(alice, room, bob_identity).items():
                status, raw = await mallory.call("POST", f"/rooms/{room}/send", {
                    "txn_id": txn(want), "message": message}, token)
                refused.append((want, status, _code(raw)))
            status, raw = await mallory.call("POST", "/sendToDevice", {
                "txn_id": txn("to-device"), "messages": [
                    {"user_id": bob.user_id, "device_id": bob.device_id, "payload": MARKER}]}, token)
            refused.append(("to_device_not_sealed", status, _code(raw)))
            # a sealed box's header in front of the marker: the length is no bucket
            header = box(b"x")[:42]
            status, raw = await mallory.call("POST", "/sendToDevice", {
                "txn_id": txn("to-device 2"), "messages": [
                    {"user_id": bob.user_id, "device_id": bob.device_id,
                     "payload": header + MARKER}]}, token)
            refused.append(("to_device_not_sealed", status, _code(raw)))
            for want, blob in [("attachment_not_sealed", MARKER),
                               ("attachment_not_sealed", ATTACHMENT_MAGIC + b"\x00\x03" + bytes(12)
                                + MARKER)]:
                async with mallory.session.post(
                        mallory.url + "/attachments", data=blob,
                        headers={"Content-Type": "application/octet-stream",
                                 "Authorization": f"Bearer {token}"}) as resp:
                    refused.append((want, resp.status, _code(await resp.read())))
            status, raw = await mallory.call("POST", "/register", {
                "invite": _invite(server), "user": "mallory", "password": PASSWORD,
                "device_name": MARKER.decode()})
            refused.append(("device_name_not_accepted", status, _code(raw)))
            status, raw = await mallory.call("POST", "/login", {
                "user": "alice", "password": PASSWORD, "device_name": MARKER.decode()})
            refused.append(("device_name_not_accepted", status, _code(raw)))
            group = Group.from_bytes(alice.store.room(room).group)
            honest = group.protect(b"hi", padding=application_padding(b"hi")).to_bytes()
            status, raw = await mallory.call("POST", f"/rooms/{room}/send", {
                "txn_id": MARKER.decode(), "message": honest}, token)
            refused.append(("invalid_txn_id", status, _code(raw)))
            kp, _ = _kp(alice, capabilities=default_capabilities(SUITE, tuple(
                int.from_bytes(MARKER[i:i + 2], "big") for i in range(0, 30, 2))))
            status, raw = await mallory.call("POST", "/keys/packages", {
                "one_time": [MLSMessage(kp).to_bytes()],
                "last_resort": MLSMessage(_kp(alice, last_resort=True)[0]).to_bytes()}, token)
            refused.append(("key_package_invalid", status, _code(raw)))
        assert refused == [(w, 400, w.split()[0]) for w, _, _ in refused], refused
        assert len(refused) == 15
        assert _counts(server) == before
        assert _files(server) == files  # no attachment, no temporary file left
        assert _found(server, MARKER) == []

        # the honest client is unaffected: it talks and shares an attachment as before
        await alice.send_text(room, "see you Tuesday")
        await alice.send_attachment(room, b"%PDF a scan", "scan.pdf")
        await bob.sync()
        shown = bob.messages(room)
        assert "see you Tuesday" in [getattr(m, "body", None) for m in shown]
        scan = next(m for m in shown if isinstance(m, AttachmentMessage))
        assert await bob.download_attachment(scan) == b"%PDF a scan"

        # a txn_id of the right form still holds 16 chosen bytes: the server keeps its hash only
        txns = _counts(server)["txn_ids"]
        async with Attacker(server.url) as mallory:
            group = Group.from_bytes(alice.store.room(room).group)
            status, raw = await mallory.call("POST", f"/rooms/{room}/send", {
                "txn_id": base64.urlsafe_b64encode(MARKER[:16]).decode().rstrip("="),
                "message": group.protect(b"hi", padding=application_padding(b"hi")).to_bytes()},
                token)  # (alice's own state is not advanced: the test ends here)
        assert status == 200, msgpack.unpackb(raw)
        assert _counts(server)["txn_ids"] == txns + 1
        assert _found(server, MARKER[:16]) == []
    finally:
        await alice.close()
        await bob.close()


async def test_the_scan_finds_a_name_stored_in_the_clear(server, tmp_path):
    """The marker scan can fail: a user name is stored in the clear, and the scan finds it."""
    client = await register_client(None, server.url, tmp_path / "ctl", CONTROL,
                                   invite=_invite(server), auto_add_own_devices=False)
    await client.close()
    assert _found(server, CONTROL.encode())


async def test_a_peer_cannot_deliver_an_unsealed_to_device_payload(tmp_path):
    """Over federation too (``spec/server-server.md`` 14): a transaction signed with a.test's
    real federation key carries to-device items for bob on b.test; the one holding the marker
    is refused (``to_device_not_sealed``) and nothing of it is stored; a sealed box goes in."""
    pa, pb = free_port(), free_port()
    a = PeerProcess(tmp_path, "a.test", pa, {"b.test": f"http://127.0.0.1:{pb}"}, FED)
    b = PeerProcess(tmp_path, "b.test", pb, {"a.test": f"http://127.0.0.1:{pa}"}, FED)
    a.start()
    b.start()
    clients = []
    try:
        alice, bob = await a.user("alice"), await b.user("bob")
        clients += [alice, bob]
        key_id, seed = _federation_key(a.data)
        before = _inbox(b.data)
        results = []
        for i, payload in enumerate([MARKER, box(b"a key share")]):
            data = msgpack.packb({"sender_user": alice.user_id, "sender_device": alice.device_id,
                                  "messages": [{"user_id": bob.user_id, "device_id": bob.device_id,
                                                "payload": payload}]}, use_bin_type=True)
            target = f"{FEDERATION_PREFIX}/send/to-device-{i}"
            body = msgpack.packb({"items": [{"kind": "to_device", "data": data}]}, use_bin_type=True)
            auth = sign_request(seed, key_id, "PUT", target, body, "a.test", "b.test",
                                int(time.time() * 1000)).to_header()
            status, answer = http_msgpack("PUT", b.url + target, body, {"Authorization": auth})
            assert status == 200, answer
            results.append((answer["results"][0]["ok"], answer["results"][0].get("code")))
        assert results == [(False, "to_device_not_sealed"), (True, None)]
        after = _inbox(b.data)
        assert after == [*before, ("to_device", box(b"a key share"))]
        assert not [p for p in b.data.rglob("*") if p.is_file() and MARKER in p.read_bytes()]
    finally:
        for c in clients:
            await c.close()
        a.stop()
        b.stop()


def _federation_key(data) -> tuple[str, bytes]:
    with sqlite3.connect(data / "confide.sqlite") as conn:
        (key_id,) = conn.execute(
            "SELECT key_id FROM federation_server_keys WHERE valid_until IS NULL").fetchone()
    return key_id, (data / "keys" / "federation" / (key_id.replace(":", "_") + ".key")).read_bytes()


def _inbox(data) -> list[tuple]:
    with sqlite3.connect(data / "confide.sqlite") as conn:
        return conn.execute("SELECT kind, payload FROM inbox ORDER BY stream_pos").fetchall()
