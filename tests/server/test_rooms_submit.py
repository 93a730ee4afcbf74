"""What the hub refuses and how: first commit wins, non-members, plaintext and other wire
formats, oversize messages, replayed transaction ids. A refusal stores nothing."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from crypto.mls import MLSMessage
from crypto.mls.framing import ContentType, PublicMessage
from protocol.events import EventKind, SignedEvent
from server.appkeys import AUDIT
from tests.harness import joined_pair, new_member, protect, send, send_text, sync


async def _state(hs, room):
    """What the database holds for a room: (event count, last seq, epoch, view, log size)."""
    async with hs.db.read() as conn:
        async with conn.execute("SELECT COUNT(*) FROM room_events WHERE room_id = ?", (room,)) as cur:
            (n,) = await cur.fetchone()
        async with conn.execute("SELECT last_seq, epoch, view FROM rooms WHERE room_id = ?",
                                (room,)) as cur:
            row = await cur.fetchone()
    await hs.app[AUDIT].flush()
    return n, row[0], row[1], bytes(row[2]), hs.log.size


async def test_two_concurrent_commits_exactly_one_wins_the_other_catches_up(hs):
    alice, bob, room = await joined_pair(hs)
    a_staged = alice.groups[room].stage_commit(force_path=True)
    b_staged = bob.groups[room].stage_commit(force_path=True)
    (sa, ba), (sb, bb) = await asyncio.gather(
        send(alice, room, a_staged.commit.to_bytes(), "ca"),
        send(bob, room, b_staged.commit.to_bytes(), "cb"))
    statuses = sorted([sa, sb])
    assert statuses == [200, 409], (ba, bb)
    winner, loser = (alice, bob) if sa == 200 else (bob, alice)
    w_staged, l_staged = (a_staged, b_staged) if sa == 200 else (b_staged, a_staged)
    err = (bb if sa == 200 else ba)["error"]
    assert err["code"] == "stale_epoch" and err["current_epoch"] == 2
    winner.groups[room].merge_staged_commit(w_staged)
    # The loser catches up from history, then re-commits on the new epoch.
    last = 1  # create (0) and the invite (1) were applied
    status, page = await loser.call("GET", f"/rooms/{room}/events?from={last + 1}")
    [ev] = [SignedEvent.from_wire(e) for e in page["events"]]
    assert ev.content.kind == EventKind.COMMIT and ev.content.epoch == 1
    processed = loser.groups[room].process_message(MLSMessage.from_bytes(ev.content.message))
    loser.groups[room].merge_staged_commit(processed.staged_commit)
    assert loser.groups[room].epoch == 2
    retry = loser.groups[room].stage_commit(force_path=True)
    status, body = await send(loser, room, retry.commit.to_bytes(), "retry")
    assert status == 200 and body["epoch"] == 3, body
    loser.groups[room].merge_staged_commit(retry)
    # Both converge: the winner applies the retry and they read each other.
    status, page = await winner.call("GET", f"/rooms/{room}/events?from={body['seq']}")
    ev = SignedEvent.from_wire(page["events"][0])
    processed = winner.groups[room].process_message(MLSMessage.from_bytes(ev.content.message))
    winner.groups[room].merge_staged_commit(processed.staged_commit)
    assert winner.groups[room].epoch_authenticator == loser.groups[room].epoch_authenticator
    await send_text(winner, room, "converged", "t")


async def test_an_old_commit_is_refused_with_the_current_epoch_and_nothing_stored(hs):
    alice, bob, room = await joined_pair(hs)
    stale = bob.groups[room].stage_commit(force_path=True)
    fresh = alice.groups[room].stage_commit(force_path=True)
    assert (await send(alice, room, fresh.commit.to_bytes(), "f"))[0] == 200
    before = await _state(hs, room)
    status, err = await send(bob, room, stale.commit.to_bytes(), "s")
    assert (status, err["error"]["code"], err["error"]["current_epoch"]) == (409, "stale_epoch", 2)
    assert await _state(hs, room) == before


async def test_non_member_submissions_are_refused(hs):
    alice, bob, room = await joined_pair(hs)
    carol = await new_member(hs, "carol")
    before = await _state(hs, room)
    status, err = await send(carol, room, protect(alice.groups[room], b"x"), "c1")
    assert (status, err["error"]["code"]) == (403, "not_member")
    staged = alice.groups[room].stage_commit(force_path=True)
    status, err = await send(carol, room, staged.commit.to_bytes(), "c2")
    assert (status, err["error"]["code"]) == (403, "not_member")
    # Bob may not submit Alice's commit: the MLS sender is not his device.
    status, err = await send(bob, room, staged.commit.to_bytes(), "c3")
    assert (status, err["error"]["code"]) == (403, "sender_mismatch")
    status, err = await send(alice, "!nosuchroom:test.example", b"\x00", "c4")
    assert (status, err["error"]["code"]) == (404, "unknown_room")
    status, err = await send(alice, "!elsewhere:other.example", b"\x00", "c5")
    assert (status, err["error"]["code"]) == (404, "unknown_room")
    status, err = await send(alice, "not-a-room", b"\x00", "c6")
    assert (status, err["error"]["code"]) == (400, "invalid_identifier")
    assert await _state(hs, room) == before


async def test_plaintext_and_other_wire_formats_are_refused(hs):
    alice, bob, room = await joined_pair(hs)
    group = alice.groups[room]
    before = await _state(hs, room)
    # Application data as a PublicMessage: take a real PublicMessage commit and swap in
    # application content (a plaintext body the hub must never accept).
    staged = group.stage_commit(force_path=True)
    pm: PublicMessage = staged.commit.body
    plain = PublicMessage(replace(pm.content, content_type=ContentType.APPLICATION,
                                  content=b"my secret diagnosis"),
                          replace(pm.auth, confirmation_tag=None), pm.membership_tag)
    cases = {
        "application_not_private": MLSMessage(plain).to_bytes(),
        "not_mls": b"hello, this is plaintext",
        "wrong_wire_format": staged.welcome.to_bytes() if staged.welcome else
        MLSMessage(group.group_info()).to_bytes(),
        "handshake_not_public": group.stage_commit(force_path=True, public=False).commit.to_bytes(),
    }
    for i, (code, message) in enumerate(cases.items()):
        status, err = await send(alice, room, message, f"p{i}")
        assert (status, err["error"]["code"]) == (400, code), (code, err)
    status, err = await send(alice, room, MLSMessage(group.group_info()).to_bytes(), "gi")
    assert err["error"]["code"] == "wrong_wire_format"
    status, err = await send(alice, room, b"\x00\x01\x00\x09" + b"\x00" * 20, "wf")
    assert (err["error"]["code"], err["error"]["mls_code"]) == ("not_mls", "mls_unknown_wire_format")
    assert await _state(hs, room) == before
    # Nothing of the plaintext reached the database.
    raw = hs.config.database_path.read_bytes()
    wal = hs.config.database_path.with_name(hs.config.database_path.name + "-wal")
    assert b"my secret diagnosis" not in raw + (wal.read_bytes() if wal.exists() else b"")


async def test_a_welcome_must_match_the_commits_adds(hs):
    alice, bob, room = await joined_pair(hs)
    carol = await new_member(hs, "carol")
    await carol.upload_key_packages()
    group = alice.groups[room]
    status, claim = await alice.call("POST", "/keys/claim", {"user": carol.user})
    kp = MLSMessage.from_bytes(claim["key_packages"][0]["key_package"]).body
    with_add = group.add_members([kp])
    without_add = group.stage_commit(force_path=True)
    status, err = await send(alice, room, without_add.commit.to_bytes(), "w1",
                             welcome=with_add.welcome.to_bytes())
    assert (status, err["error"]["code"]) == (400, "welcome_invalid")
    status, err = await send(alice, room, with_add.commit.to_bytes(), "w2",
                             welcome=with_add.commit.to_bytes())
    assert (status, err["error"]["code"]) == (400, "welcome_invalid")
    status, err = await send(alice, room, with_add.commit.to_bytes(), "w3",
                             group_info=MLSMessage(group.group_info()).to_bytes())
    assert (status, err["error"]["code"], err["error"]["mls_code"]) == (
        400, "group_info_invalid", "mls_group_info_mismatch")
    status, err = await send(alice, room, protect(group, b"x"), "w4",
                             welcome=with_add.welcome.to_bytes())
    assert (status, err["error"]["code"]) == (400, "bad_request")
    assert (await sync(carol))["inbox"] == []


async def test_a_replayed_txn_id_gets_the_same_answer_and_stores_once(hs):
    alice, bob, room = await joined_pair(hs)
    msg = protect(alice.groups[room], b"once")
    first = await send(alice, room, msg, "same")
    assert first[0] == 200
    before = await _state(hs, room)
    assert await send(alice, room, msg, "same") == first
    assert await send(alice, room, protect(alice.groups[room], b"again"), "same") == first
    assert await _state(hs, room) == before
    # Concurrent duplicates: one event.
    msg2 = protect(alice.groups[room], b"twice")
    answers = await asyncio.gather(*(send(alice, room, msg2, "dup") for _ in range(4)))
    assert len({a[1]["seq"] for a in answers}) == 1
    events = (await sync(bob))["events"]
    assert sum(1 for e in events if e["sender_user"] == alice.user) == 2
    # The scope is per device: Bob's "same" is his own.
    assert (await send(bob, room, protect(bob.groups[room], b"b"), "same"))[1] != first[1]


async def test_oversize_messages_are_refused(hs):
    alice, bob, room = await joined_pair(hs)
    big = b"\x00\x01\x00\x02" + b"\x00" * (512 * 1024)
    before = await _state(hs, room)
    status, err = await send(alice, room, big, "big")
    assert (status, err["error"]["code"]) == (413, "message_too_large")
    status, err = await send(alice, room, b"\x00" * (2 * 1024 * 1024), "huge")
    assert (status, err["error"]["code"]) == (413, "body_too_large")
    assert await _state(hs, room) == before


async def test_old_application_epochs_are_accepted_within_the_window(hs):
    alice, bob, room = await joined_pair(hs)
    old = protect(bob.groups[room], b"from epoch 1")
    for i in range(4):
        staged = alice.groups[room].stage_commit(force_path=True)
        alice.groups[room].merge_staged_commit(staged)
        assert (await send(alice, room, staged.commit.to_bytes(), f"c{i}"))[0] == 200
        if i == 2:  # room at epoch 4: epoch 1 is 3 back
            assert (await send(bob, room, old, "old-ok"))[0] == 200
    status, err = await send(bob, room, protect(bob.groups[room], b"too old"), "old-no")
    assert (status, err["error"]["code"], err["error"]["current_epoch"]) == (409, "stale_epoch", 5)
    events = [SignedEvent.from_wire(e) for e in (await sync(alice))["events"]]
    assert [e.content.epoch for e in events if e.content.kind == EventKind.APPLICATION] == [1]
