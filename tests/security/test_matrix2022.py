"""The attack classes of Albrecht, Celi, Dowling and Jones, "Practically-exploitable
Cryptographic Vulnerabilities in Matrix" (2022), against a real ``confide serve``
(issue 10; ``spec/security.md``, "Threat model"). Server-controlled membership and
device lists have their own modules (``test_matrix2022_membership.py``,
``test_matrix2022_device_lists.py``); this one has the other classes:

(a) semi-trusted impersonation through key sharing: Matrix clients accepted forwarded room
    keys claiming another sender. Confide has no key forwarding: a to-device message from
    another user carrying "room keys" or a Welcome, and a Welcome the server itself puts in
    the inbox for a room the reader is in, are reported and not used; the room's group is
    unchanged, and the server's message in the swapped-in group is refused;
(b) trusted impersonation: a member (who holds every epoch secret) forges a PrivateMessage
    as another member's leaf, sent through the hub as itself or relabelled by the server as
    the victim; the server alone forges a PublicMessage as the victim: all refused;
(c) protocol and message-kind confusion: what the server can send (a signed envelope whose
    body is a payload, a to-device item holding a text payload, a Welcome as a room event,
    a member's PublicMessage application message, an envelope naming the wrong kind) never
    shows as a member's message; the honest hub refuses the MLS ones itself;
(d) IND-CCA and unauthenticated IVs: every single-byte change of a real PrivateMessage
    fetched from the server, an insider's re-encrypted sender data with another reuse guard
    (the nonce), a tampered stored attachment and a changed attachment nonce: refused, never
    shown garbled.

The malicious server is played by editing its database: events are signed with the hub's
real key read from its data dir (so every envelope check passes) and inbox items inserted
at the next stream position. Each test checks the refusal (the room's refused events, the
sync result, or the hub's typed code) and that the reader's group and timeline are
unchanged. A refused event is read from either record the SDK may keep of it (a
``Refusal`` in ``room.refused``, or a refused timeline message as finding 4 shows its
refusals: :func:`refusals`), so that these tests hold whichever form carries it."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import msgpack
import pytest

from client.profile import Profile
from client.sdk import Client, ServerError
from client.sdk.envelopes import Failure
from client.sdk.errors import InvalidPayload
from client.sdk.groups import GroupStore
from client.sdk.http import quote_path
from client.sdk.payload import encode_text, open_attachment
from client.sdk.rooms import _txn
from client.sdk.store import RoomState
from client.sdk.timeline import apply_event
from crypto.mls import Group, MLSMessage, generate_key_package, get_suite
from crypto.mls.framing import (
    ContentType,
    FramedContent,
    FramedContentAuthData,
    PrivateMessage,
    PublicMessage,
    Sender,
    SenderData,
    SenderDataAAD,
    WireFormat,
)
from crypto.mls.proposals import Proposal, Remove
from crypto.mls.protection import (
    membership_tag,
    protect_private,
    protect_public,
    sign_framed_content,
)
from crypto.mls.secret_tree import sender_data_key_nonce
from crypto.rng import system_rng
from protocol.events import EventContent, EventKind, SignedEvent, sign_event
from protocol.rooms_api import SendRequest, SendResponse
from tests.harness import PeerProcess, free_port

pytestmark = [pytest.mark.net, pytest.mark.timeout(150)]

PROFILE_PASSPHRASE = "pp"  # tests.harness.register_client's


# -- the malicious server: its database and its hub key --------------------------------------


def _hub_key(data: Path) -> tuple[str, bytes]:
    with sqlite3.connect(data / "confide.sqlite") as conn:
        (key_id,) = conn.execute(
            "SELECT key_id FROM federation_server_keys WHERE valid_until IS NULL").fetchone()
    return key_id, (data / "keys" / "federation" / (key_id.replace(":", "_") + ".key")).read_bytes()


def forge_event(data: Path, room: str, kind: str, message: bytes, sender: tuple[str, str],
                epoch: int | None = None) -> int:
    """A hub-signed event at the end of ``room``, written into the server's database; its seq."""
    key_id, seed = _hub_key(data)
    conn = sqlite3.connect(data / "confide.sqlite", timeout=30)
    try:
        seq, prev, last_epoch = conn.execute(
            "SELECT seq, event_id, epoch FROM room_events WHERE room_id = ? ORDER BY seq DESC LIMIT 1",
            (room,)).fetchone()
        content = EventContent(room, seq + 1, bytes(prev), last_epoch if epoch is None else epoch,
                               EventKind(kind), sender[0], sender[1], int(time.time() * 1000), message)
        ev = sign_event(seed, content, key_id)
        with conn:
            (pos,) = conn.execute(
                "UPDATE stream_position SET pos = pos + 1 WHERE id = 1 RETURNING pos").fetchone()
            conn.execute(
                "INSERT INTO room_events (stream_pos, room_id, seq, prev, epoch, kind, sender_user, "
                "sender_device, ts, message, event_id, hub_signature, hub_key_id) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (pos, room, content.seq, content.prev, content.epoch, kind, sender[0], sender[1],
                 content.ts, message, ev.event_id, ev.hub_signature, key_id))
    finally:
        conn.close()
    return content.seq


def inject_inbox(data: Path, target: tuple[str, str], kind: str, payload: bytes,
                 sender: tuple[str, str] | None, room: str | None) -> None:
    """An inbox item for ``target`` at the next stream position, written by the server."""
    conn = sqlite3.connect(data / "confide.sqlite", timeout=30)
    try:
        with conn:
            (pos,) = conn.execute(
                "UPDATE stream_position SET pos = pos + 1 WHERE id = 1 RETURNING pos").fetchone()
            conn.execute(
                "INSERT INTO inbox (stream_pos, user_id, device_id, kind, sender_user, sender_device, "
                "room_id, payload, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (pos, *target, kind, *(sender or (None, None)), room, payload,
                 int(time.time() * 1000)))
    finally:
        conn.close()


def stored_key_package(data: Path, user_device: tuple[str, str]):
    """One of the device's uploaded one-time KeyPackages, as the server holds it."""
    with sqlite3.connect(data / "confide.sqlite") as conn:
        (blob,) = conn.execute("SELECT data FROM key_packages WHERE user_id = ? AND device_id = ? "
                               "AND last_resort = 0 ORDER BY id LIMIT 1", user_device).fetchone()
    return MLSMessage.from_bytes(bytes(blob)).body


# -- the clients ---------------------------------------------------------------------------------


def me(client) -> tuple[str, str]:
    acct = client.store.account()
    return acct.user_id, acct.device_id


def identity(client) -> bytes:
    return "/".join(me(client)).encode()


def state(client, room: str) -> tuple:
    """Everything that says what the reader believes about ``room``: its group (id, epoch,
    epoch authenticator, each member's identity and signature key) and its timeline (apart
    from refused events)."""
    g = client.groups.view(client.store.room(room))
    return (g.group_id, g.epoch, g.epoch_authenticator,
            tuple((m.identity, m.signature_key) for m in g.members),
            [m.to_record() for m in client.messages(room) if m.type.value != "refused"])


def refusals(client, room: str) -> dict[int | None, str]:
    """seq -> what was refused and why ("failure: detail"), from either record the SDK keeps
    of a refused event: a :class:`Refusal` in the room's ``refused`` list, or a refused
    message in its timeline (the form of finding 4's refusals)."""
    out = {r.seq: f"{r.failure.value}: {r.detail}" for r in client.room(room).refused}
    for m in client.messages(room):
        if m.type.value == "refused":
            out.setdefault(m.seq, f"{m.reason}: {m.detail}")
    return out


def refused_in(applied) -> list[str]:
    """The refusals one :func:`apply_event` produced, in either form (see :func:`refusals`)."""
    return ([f"{r.failure.value}: {r.detail}" for r in getattr(applied, "refused", [])]
            + [f"{m.reason}: {m.detail}" for m in applied.messages if m.type.value == "refused"])


def shown(applied) -> list:
    return [m for m in applied.messages if m.type.value != "refused"]


def texts(client, room: str) -> list[tuple[str, str]]:
    return [(m.sender_user, m.body) for m in client.messages(room) if hasattr(m, "body")]


async def send_raw(client, room: str, message: bytes) -> SendResponse:
    """Submit an MLSMessage through the honest hub, as ``client``."""
    return await client.http.request("POST", f"/rooms/{quote_path(room)}/send",
                                     SendRequest(_txn(client.rng), message), SendResponse)


def live_epoch(client, room: str):
    return client.groups.live(client.store.room(room))._s.epoch


def leaf_of(client, room: str, victim) -> int:
    g = client.groups.view(client.store.room(room))
    return int(g.find_member(identity(victim)))


def forged_private(insider, room: str, leaf: int, text: str) -> bytes:
    """An application PrivateMessage claiming ``leaf`` as its sender, made with the insider's
    epoch secrets (any member can encrypt for any leaf) and signed with the insider's key."""
    s = live_epoch(insider, room)
    content = FramedContent(s.context.group_id, s.context.epoch, Sender.member(leaf), b"",
                            ContentType.APPLICATION, encode_text(text))
    return MLSMessage(protect_private(s.epoch_keys(), insider.store.account().signature_seed,
                                      content)).to_bytes()


def public_application(insider, room: str, leaf: int, text: str, key: bytes | None = None) -> bytes:
    """An application message as a PublicMessage (RFC 9420 6.2: MUST NOT), signed with ``key``
    (the insider's own by default) and with a valid membership tag."""
    s = live_epoch(insider, room)
    content = FramedContent(s.context.group_id, s.context.epoch, Sender.member(leaf), b"",
                            ContentType.APPLICATION, encode_text(text))
    sig = sign_framed_content(s.suite, key or insider.store.account().signature_seed,
                              WireFormat.MLS_PUBLIC_MESSAGE, content, s.context)
    auth = FramedContentAuthData(sig, None)
    tag = membership_tag(s.suite, s.secrets.membership_key, content, auth, s.context)
    return MLSMessage(PublicMessage(content, auth, tag)).to_bytes()


def fake_group_welcome(group_id: bytes, claimed: bytes, target_kp, epochs: int = 3) -> tuple[bytes, Group]:
    """A group of the attacker's making with the room's group id, one leaf claiming the
    ``claimed`` identity under the attacker's own signature key, moved ``epochs`` epochs on,
    then adding ``target_kp``: the Welcome and the attacker's group."""
    suite = get_suite(3)
    kp, priv = generate_key_package(suite, claimed, system_rng)
    group = Group.create(3, group_id, kp, priv)
    for _ in range(epochs):
        group.merge_staged_commit(group.add_members([]))
    staged = group.add_members([target_kp])
    group.merge_staged_commit(staged)
    return staged.welcome.to_bytes(), group


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    proc = PeerProcess(tmp_path_factory.mktemp("matrix2022"), "a.test", free_port(), {})
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def accounts(server) -> dict[str, Path]:
    """Alice, Bob and Mallory registered once for the module: their profile directories
    (each test opens them again and makes a room of its own)."""

    async def register() -> dict[str, Path]:
        out = {}
        for name in ("alice", "bob", "mallory"):
            client = await server.user(name)
            out[name] = client.profile.directory
            await client.close()
        return out

    return asyncio.run(register())


async def room_of(accounts, *names: str):
    """Clients of ``names`` (the first creates a room and invites the others, who join);
    they and the room id."""
    clients = [Client.open(Profile.open(accounts[n], PROFILE_PASSPHRASE), auto_add_own_devices=False)
               for n in names]
    room = await clients[0].create_room("consult")
    for other in clients[1:]:
        await clients[0].invite(room, other.user_id)
    for c in clients:
        await c.sync()
    for c in clients[1:]:
        assert c.store.has_room(room)
    return clients, room


async def close(clients) -> None:
    for c in clients:
        await c.close()


# -- (a) semi-trusted impersonation through key sharing ----------------------------------------


async def test_a_keys_from_to_device_or_a_second_welcome_are_never_used(server, accounts):
    (alice, bob, mallory), room = await room_of(accounts, "alice", "bob", "mallory")
    try:
        await alice.send_text(room, "first session on Tuesday")
        await bob.sync()
        before = state(bob, room)
        group_id = before[0]

        # Mallory, another member, forwards "room keys" claiming Alice's session, and a real
        # Welcome into a group of her making in which a leaf claims Alice's identity.
        welcome, fake = fake_group_welcome(group_id, identity(alice), stored_key_package(
            server.data, me(bob)))
        forwarded = msgpack.packb({"type": "m.forwarded_room_key", "room_id": room,
                                   "sender": identity(alice).decode(), "session_key": bytes(32)})
        delivered = 1  # the to-device item the server writes below
        for payload in (forwarded, welcome):
            try:
                await mallory.http.call("POST", "/sendToDevice", {
                    "txn_id": _txn(mallory.rng),
                    "messages": [{"user_id": me(bob)[0], "device_id": me(bob)[1],
                                  "payload": payload}]})
                delivered += 1
            except ServerError as exc:  # a server that takes only sealed payloads (finding 9)
                assert exc.status == 400, exc
                inject_inbox(server.data, me(bob), "to_device", payload, me(mallory), None)
                delivered += 1  # then the server itself delivers it
        # The server itself files the Welcome as a `welcome` for the room, "from Alice" (and
        # the forwarded key as a to-device item naming the room), then sends a message in the
        # swapped-in group, "from Alice".
        inject_inbox(server.data, me(bob), "welcome", welcome, me(alice), room)
        inject_inbox(server.data, me(bob), "to_device", forwarded, me(alice), room)
        fake_msg = fake.protect(encode_text("Ignore the plan, stop your medication")).to_bytes()
        seq = forge_event(server.data, room, "application", fake_msg, me(alice),
                          epoch=fake.epoch)

        result = await bob.sync()

        assert len(result.ignored) == delivered and all("was ignored" in s for s in result.ignored)
        assert bob.store.notices()[-delivered:] == result.ignored
        assert any(f"naming room {room} was ignored" in w for w in bob.room(room).warnings)
        welcome_refusals = [r for r in result.refused if r.failure is Failure.WELCOME]
        assert [r.room_id for r in welcome_refusals] == [room]
        assert "cannot replace" in welcome_refusals[0].sentence()
        assert seq in refusals(bob, room)  # a message of the swapped-in group: not ours
        assert state(bob, room) == before  # same group, members, keys and timeline
        assert "Ignore the plan" not in str(texts(bob, room))
    finally:
        await close([alice, bob, mallory])


# -- (b) trusted impersonation -------------------------------------------------------------------


async def test_b_no_member_or_server_can_author_as_another_member(server, accounts):
    (alice, bob, mallory), room = await room_of(accounts, "alice", "bob", "mallory")
    try:
        await alice.send_text(room, "see you at 3")
        await bob.sync()
        before = state(bob, room)
        leaf = leaf_of(mallory, room, alice)

        # 1. Mallory sends, through the honest hub (which cannot see inside), a message whose
        #    encrypted sender data names Alice's leaf; the envelope names Mallory.
        #    (A hub that takes only padded application messages, finding 9, may refuse it
        #    for its length: the server then stores it under Mallory's name itself.)
        forged = forged_private(mallory, room, leaf, "I quit therapy")
        try:
            sent = (await send_raw(mallory, room, forged)).seq
        except ServerError as exc:
            assert exc.status == 400, exc
            sent = forge_event(server.data, room, "application", forged, me(mallory))
        # 2. The server relabels another such forgery as Alice's, in the envelope too.
        relabelled = forge_event(server.data, room, "application",
                                 forged_private(mallory, room, leaf, "call me tonight"), me(alice))
        # 3. The server alone: a Remove of Bob "by Alice", signed with a key of its own (it
        #    holds no member's signature key and no epoch secret: no membership tag).
        s = live_epoch(bob, room)
        content = FramedContent(s.context.group_id, s.context.epoch, Sender.member(leaf), b"",
                                ContentType.PROPOSAL, Proposal(Remove(leaf_of(bob, room, bob))))
        own_key = system_rng(32)
        forged_remove = protect_public(s.suite, s.context, system_rng(32), own_key, content)
        removal = forge_event(server.data, room, "proposal", MLSMessage(forged_remove).to_bytes(),
                              me(alice))
        # 4. The server alone: a well-formed PrivateMessage of the room's group and epoch
        #    (both in the clear), sealed under keys it made up.
        guess = MLSMessage(PrivateMessage(s.context.group_id, s.context.epoch,
                                          ContentType.APPLICATION, b"", system_rng(40),
                                          system_rng(80))).to_bytes()
        guessed = forge_event(server.data, room, "application", guess, me(alice))

        await bob.sync()

        got = refusals(bob, room)
        assert {sent, relabelled, removal, guessed} <= set(got), got
        assert "signature" in got[relabelled]  # it decrypts (Mallory had the keys), as Alice
        assert state(bob, room) == before
        assert texts(bob, room) == [(alice.user_id, "see you at 3")]
        assert not bob.groups.view(bob.store.room(room)).pending_proposals
    finally:
        await close([alice, bob, mallory])


# -- (c) protocol and message-kind confusion ------------------------------------------------------


async def test_c_nothing_the_server_sends_passes_as_a_members_message(server, accounts):
    (alice, bob, mallory), room = await room_of(accounts, "alice", "bob", "mallory")
    try:
        await alice.send_text(room, "hello")
        await bob.sync()
        alice_leaf = leaf_of(mallory, room, alice)

        # The honest hub refuses the MLS confusions itself, with typed codes.
        public_app = public_application(mallory, room, alice_leaf, "public words")
        welcome, _ = fake_group_welcome(live_epoch(bob, room).context.group_id, identity(alice),
                                        stored_key_package(server.data, me(bob)))
        rooms_before = {r.room_id for r in bob.rooms()}
        for message, code in ((public_app, "application_not_private"),
                              (welcome, "wrong_wire_format"),
                              (encode_text("a bare payload"), "not_mls")):
            with pytest.raises(ServerError) as err:
                await send_raw(mallory, room, message)
            assert err.value.code == code
        before = state(bob, room)

        # The malicious server signs them anyway, as Alice's events.
        history = await bob.http.call("GET", f"/rooms/{quote_path(room)}/events",
                                      params={"from": 0, "limit": 100})
        real = next(SignedEvent.from_wire(e) for e in history["events"] if e["kind"] == "application")
        seqs = {
            "payload": forge_event(server.data, room, "application", encode_text("server notice"),
                                   me(alice)),
            "public application": forge_event(server.data, room, "application", public_app, me(alice)),
            "welcome": forge_event(server.data, room, "application", welcome, me(alice)),
            "application as proposal": forge_event(server.data, room, "proposal",
                                                   real.content.message, me(alice)),
        }
        # ...and a to-device item whose payload is a text payload "from Alice".
        inject_inbox(server.data, me(bob), "to_device", encode_text("server says: session moved"),
                     me(alice), None)

        result = await bob.sync()

        got = refusals(bob, room)
        assert {name for name, seq in seqs.items() if seq not in got} == set(), got
        assert any("to_device" in s for s in result.ignored)
        assert state(bob, room) == before
        assert texts(bob, room) == [(alice.user_id, "hello")]
        assert {r.room_id for r in bob.rooms()} == rooms_before  # the Welcome joined nothing
    finally:
        await close([alice, bob, mallory])


# -- (d) IND-CCA and unauthenticated IVs ----------------------------------------------------------


async def test_d_every_byte_of_a_private_message_is_authenticated(server, accounts):
    (alice, bob), room = await room_of(accounts, "alice", "bob")
    try:
        await bob.sync()
        room_before = bob.store.room(room).to_record()
        seq = await alice.send_text(room, "my diagnosis is confidential")
        page = await bob.http.call("GET", f"/rooms/{quote_path(room)}/events",
                                   params={"from": seq, "limit": 1})
        real = SignedEvent.from_wire(page["events"][0])
        acct = bob.store.account()

        def apply(message: bytes):
            room_state = RoomState.from_record(room_before)
            c = real.content
            ev = SignedEvent(EventContent(c.room_id, c.seq, c.prev, c.epoch, c.kind, c.sender_user,
                                          c.sender_device, c.ts, message), real.event_id,
                             real.hub_signature, real.key_id)
            return room_state, apply_event(room_state, ev, acct.device_id, acct.user_id, GroupStore())

        _, honest = apply(real.content.message)
        assert [m.body for m in honest.messages] == ["my diagnosis is confidential"]

        wire = real.content.message
        for i in range(len(wire)):
            for flip in (0x01, 0x80):
                tampered = wire[:i] + bytes([wire[i] ^ flip]) + wire[i + 1:]
                room_state, out = apply(tampered)
                assert shown(out) == [], (i, flip)
                assert len(refused_in(out)) == 1, (i, flip, room_state.warnings)
                assert room_state.group == room_before["group"], (i, flip)  # nothing consumed

        # End to end: the server stores a copy with one ciphertext byte changed, as Alice's.
        body = MLSMessage.from_bytes(wire).body
        assert isinstance(body, PrivateMessage)
        flipped = bytes([body.ciphertext[0] ^ 1]) + body.ciphertext[1:]
        bad = forge_event(server.data, room, "application", MLSMessage(PrivateMessage(
            body.group_id, body.epoch, body.content_type, body.authenticated_data,
            body.encrypted_sender_data, flipped)).to_bytes(), me(alice))
        # ...and the very message again, as a new event (a replay: its ratchet key is used).
        replay = forge_event(server.data, room, "application", wire, me(alice))
        await bob.sync()
        got = refusals(bob, room)
        assert "decrypt_failed" in got[bad]
        assert "key_already_used" in got[replay]
        assert texts(bob, room) == [(alice.user_id, "my diagnosis is confidential")]
    finally:
        await close([alice, bob])


async def test_d_a_changed_reuse_guard_or_attachment_nonce_does_not_decrypt(server, accounts):
    (alice, bob, mallory), room = await room_of(accounts, "alice", "bob", "mallory")
    try:
        # Attachments: the server swaps one byte of the stored blob; and a nonce that is not
        # the one sent does not open the real blob. (First: the forged event below is unknown
        # to the running hub, which would then give a later send the forged event's seq.)
        await alice.send_attachment(room, b"intake form: PHQ-9 = 14", "form.pdf")
        await bob.sync()
        att = next(m for m in bob.messages(room) if m.type.value == "attachment")
        assert await bob.download_attachment(att) == b"intake form: PHQ-9 = 14"
        path = server.data / "attachments" / att.content_id[:2] / att.content_id
        blob = path.read_bytes()
        for i in (0, len(blob) // 2, len(blob) - 1):
            path.write_bytes(blob[:i] + bytes([blob[i] ^ 1]) + blob[i + 1:])
            with pytest.raises(InvalidPayload):
                await bob.download_attachment(att)
        path.write_bytes(blob)
        for i in range(len(att.nonce)):
            nonce = att.nonce[:i] + bytes([att.nonce[i] ^ 1]) + att.nonce[i + 1:]
            with pytest.raises(InvalidPayload):
                open_attachment({**att.attachment.to_payload(), "nonce": nonce}, blob)
        assert await bob.download_attachment(att) == b"intake form: PHQ-9 = 14"

        # An insider (Mallory holds the sender-data secret) re-encrypts the sender data of
        # Alice's real message with another reuse guard: the content's nonce changes.
        await bob.sync()
        room_before = bob.store.room(room).to_record()
        seq = await alice.send_text(room, "the real words")
        page = await mallory.http.call("GET", f"/rooms/{quote_path(room)}/events",
                                       params={"from": seq, "limit": 1})
        body = MLSMessage.from_bytes(SignedEvent.from_wire(page["events"][0]).content.message).body
        s = live_epoch(mallory, room)
        key, nonce = sender_data_key_nonce(s.suite, s.epoch_keys().sender_data_secret, body.ciphertext)
        aad = SenderDataAAD(body.group_id, body.epoch, body.content_type).to_bytes()
        sd = SenderData.from_bytes(s.suite.aead_open(key, nonce, aad, body.encrypted_sender_data))
        guard = bytes(b ^ 0xFF for b in sd.reuse_guard)
        resealed = s.suite.aead_seal(key, nonce, aad, SenderData(sd.leaf_index, sd.generation,
                                                                 guard).to_bytes())
        other_guard = MLSMessage(PrivateMessage(body.group_id, body.epoch, body.content_type,
                                                body.authenticated_data, resealed,
                                                body.ciphertext)).to_bytes()
        # Bob's decrypt path, as if it came first: the AEAD of the content fails.
        real = SignedEvent.from_wire(page["events"][0])
        c = real.content
        acct = bob.store.account()
        ev = SignedEvent(EventContent(c.room_id, c.seq, c.prev, c.epoch, c.kind, c.sender_user,
                                      c.sender_device, c.ts, other_guard), real.event_id,
                         real.hub_signature, real.key_id)
        out = apply_event(RoomState.from_record(room_before), ev, acct.device_id, acct.user_id,
                          GroupStore())
        assert shown(out) == []
        assert len(refused_in(out)) == 1 and "decrypt_failed" in refused_in(out)[0]
        # And from the server, after the real one.
        other_iv = forge_event(server.data, room, "application", other_guard, me(alice))
        await bob.sync()
        assert other_iv in refusals(bob, room)
        assert texts(bob, room) == [(alice.user_id, "the real words")]  # attachments have no body
    finally:
        await close([alice, bob, mallory])
