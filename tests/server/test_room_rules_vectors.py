"""``spec/vectors/rooms/sequences.json`` (``spec/client-server.md`` 8.7) run against the pure
room core :mod:`protocol.room_rules`: every hub submission is accepted or refused as the
vector says (with the same event id, room epoch, members, removals and Welcome targets), and
every follower envelope is applied, acknowledged or refused as it says. The committed file
equals a fresh run of its generator."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from crypto.mls.public_group import PublicGroup
from protocol.errors import ApiError
from protocol.events import GENESIS_PREV, EventContent, EventKind, sign_event
from protocol.federation_rooms import decode_room_event
from protocol.room_rules import (
    Membership,
    Outcome,
    Submission,
    accept,
    accept_create,
    apply,
    follow,
    next_content,
)

DIR = Path(__file__).resolve().parents[2] / "spec" / "vectors" / "rooms"
V = json.loads((DIR / "sequences.json").read_text())
HUB_SEED = bytes.fromhex(V["hub"]["seed"])
HUB_KEY = bytes.fromhex(V["hub"]["public_key"])


def _hex(value: str | None) -> bytes | None:
    return None if value is None else bytes.fromhex(value)


def _members(value) -> frozenset[tuple[str, str]]:
    return frozenset(tuple(m) for m in value)


def test_committed_vectors_match_generator():
    spec = importlib.util.spec_from_file_location("room_vectors_generate", DIR / "generate.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    assert (DIR / "sequences.json").read_text() == gen.render(gen.build()), "rerun generate.py"


def test_the_vectors_cover_every_outcome():
    steps = [s["expect"] for c in V["hub_cases"] for s in c["steps"]]
    refused = {e["refused"] for e in steps if "refused" in e}
    assert {"not_mls", "wrong_wire_format", "not_member", "sender_mismatch", "bad_request",
            "stale_epoch", "welcome_invalid", "group_info_invalid"} <= refused
    kinds = {e["accepted"]["kind"] for e in steps if "accepted" in e}
    assert kinds == {"create", "application", "proposal", "commit"}
    outcomes = {e.get("refused") or e["outcome"] for c in V["follower_cases"] for e in c["expect"]}
    assert outcomes == {"applied", "duplicate", "gap", "room_event_chain_broken", "room_event_rejected"}


def _sign(content: EventContent):
    return sign_event(HUB_SEED, content, V["hub"]["key_id"])


@pytest.mark.parametrize("case", V["hub_cases"], ids=lambda c: c["note"])
def test_hub_submissions(case):
    """Each step through accept_create / accept, next_content, apply; a refusal leaves the
    room as it was (the view is reloaded from the last accepted event's)."""
    head, view_bytes = None, None
    for step in case["steps"]:
        sub = Submission(tuple(step["sender"]), bytes.fromhex(step["message"]), _hex(step["welcome"]),
                         _hex(step["group_info"]))
        expect = step["expect"]
        try:
            if step["create"]:
                view = accept_create(sub, step["now"])
                event = _sign(EventContent(V["hub"]["room_id"], 0, GENESIS_PREV, view.epoch,
                                           EventKind.CREATE, *sub.sender, step["ts"], sub.message))
                applied = apply(None, view, event)
                welcome_to: tuple = ()
            else:
                view = PublicGroup.from_bytes(view_bytes)
                accepted = accept(head, view, sub, step["now"])
                event = _sign(next_content(head, accepted, sub, step["ts"]))
                applied = apply(head, None if accepted.kind == EventKind.APPLICATION else view, event,
                                accepted.group_info)
                welcome_to = accepted.welcome_to
        except ApiError as exc:
            assert expect == {"refused": exc.code}, step["note"]
            continue
        want = expect.get("accepted")
        assert want is not None, f"{step['note']}: accepted, the vector says {expect}"
        c = event.content
        assert (c.seq, c.kind.value, c.epoch, event.event_id.hex()) == (
            want["seq"], want["kind"], want["epoch"], want["event_id"]), step["note"]
        assert applied.head.epoch == want["room_epoch"]
        assert applied.head.members == _members(want["members"])
        assert applied.removed == _members(want["removed"])
        assert [list(m) for m in welcome_to] == want["welcome_to"]
        states = applied.memberships()
        assert all(states[m] == Membership.REMOVED for m in applied.removed)
        assert all(states[m] == Membership.JOINED for m in applied.head.members)
        head = applied.head
        view_bytes = applied.view or view_bytes


@pytest.mark.parametrize("case", V["follower_cases"], ids=lambda c: c["note"])
def test_follower_sequences(case):
    """Each envelope decoded, its hub signature verified, then through follow; a refused or
    skipped event stores nothing."""
    head, view, ids = None, None, {}
    for data, expect in zip(case["events"], case["expect"], strict=True):
        event = decode_room_event(bytes.fromhex(data))
        event.verify(HUB_KEY)
        try:
            followed = follow(head, view, event, ids.get(event.content.seq))
        except ApiError as exc:
            assert expect == {"refused": exc.code}
            continue
        assert followed.outcome.value == expect.get("outcome"), expect
        if followed.outcome != Outcome.APPLIED:
            assert followed.applied is None
            continue
        a = followed.applied
        assert (a.head.last_seq, a.head.epoch, a.head.members) == (
            expect["seq"], expect["room_epoch"], _members(expect["members"]))
        assert a.head.last_event_id == event.event_id
        head, view = a.head, a.view or view
        ids[event.content.seq] = event.event_id


def test_a_follower_reaches_the_hubs_head():
    """The hub's accepted events, followed in order, end at the head the hub's case ends at."""
    accepted = [s["expect"]["accepted"] for s in V["hub_cases"][0]["steps"] if "accepted" in s["expect"]]
    whole = V["follower_cases"][0]
    last = whole["expect"][-1]
    assert len(whole["events"]) == len(accepted)
    assert (last["seq"], last["room_epoch"], _members(last["members"])) == (
        accepted[-1]["seq"], accepted[-1]["room_epoch"], _members(accepted[-1]["members"]))
