"""The content checks of a verified envelope (``client/sdk/event_checks.py``), in memory.

A real group's PrivateMessage passes as ``application`` at its epoch; any other label,
epoch or body is a ``kind`` refusal, and arbitrary bytes never raise (hypothesis).
Content refusals are kept once, at most ``MAX_CONTENT_REFUSALS`` per room, and do not
stop the room; envelope refusals do."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from client.sdk.envelopes import ROOM_STOPPING, Failure, Refusal
from client.sdk.event_checks import MAX_CONTENT_REFUSALS, kind_refusal, record_refusal
from client.sdk.payload import encode_text
from client.sdk.store import RoomState
from crypto.mls import Group, MLSMessage, generate_key_package, get_suite
from crypto.rng import system_rng
from protocol.events import EventContent, EventKind, SignedEvent

ROOM = "!room:hub.example"


def _event(kind: str, message: bytes, *, seq: int = 3, epoch: int = 0) -> SignedEvent:
    content = EventContent(ROOM, seq, bytes(32), epoch, EventKind(kind), "@a:hub.example", "D",
                           1, message)
    return SignedEvent(content, content.event_id(), bytes(64))


@pytest.fixture(scope="module")
def group() -> Group:
    kp, priv = generate_key_package(get_suite(3), b"@a:hub.example/D", system_rng)
    return Group.create(3, system_rng(16), kp, priv)


def test_a_private_message_is_an_application_event_of_its_epoch_only(group):
    msg = group.protect(encode_text("hi")).to_bytes()
    assert kind_refusal(_event("application", msg)) is None
    for kind in ("commit", "proposal"):
        assert kind_refusal(_event(kind, msg)).failure is Failure.KIND
    wrong_epoch = kind_refusal(_event("application", msg, epoch=1))
    assert wrong_epoch.failure is Failure.KIND and "epoch" in wrong_epoch.detail


def test_other_mls_objects_and_payloads_are_not_room_events(group):
    info = MLSMessage(group.group_info()).to_bytes()
    for body in (info, encode_text("a notice"), b""):
        assert kind_refusal(_event("application", body)).failure is Failure.KIND
    assert kind_refusal(_event("create", info, seq=0)) is None
    assert kind_refusal(_event("create", info, seq=4)).failure is Failure.KIND


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600), st.sampled_from(["application", "commit", "proposal"]))
def test_arbitrary_bytes_are_refused_without_raising(data, kind):
    refusal = kind_refusal(_event(kind, data))
    assert refusal is not None and refusal.failure is Failure.KIND and refusal.seq == 3


def test_content_refusals_are_kept_once_and_bounded_envelope_ones_stop_the_room():
    room = RoomState(ROOM, None)
    stop = Refusal(ROOM, 1, Failure.SIGNATURE)
    record_refusal(room, stop)
    for seq in range(2, 2 + MAX_CONTENT_REFUSALS + 10):
        record_refusal(room, Refusal(ROOM, seq, Failure.CONTENT, "decrypt_failed"))
        record_refusal(room, Refusal(ROOM, seq, Failure.CONTENT, "decrypt_failed"))
    kept = [Refusal.from_record(r) for r in room.refused]
    assert stop in kept
    content = [r for r in kept if not r.stops_room]
    assert len(content) == MAX_CONTENT_REFUSALS and content[-1].seq == 1 + MAX_CONTENT_REFUSALS + 10
    assert {Failure.KIND, Failure.CONTENT, Failure.WELCOME}.isdisjoint(ROOM_STOPPING)
    assert Refusal(ROOM, None, Failure.WELCOME, "x").sentence().startswith("A Welcome of room")
