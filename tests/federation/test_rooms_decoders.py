"""Hypothesis: room federation's decoders let nothing but their typed errors escape.

``decode_room_event`` (item ``room_event``), the ``welcome`` and ``to_device`` items and
the forwarded-submission, claim and GroupInfo-request bodies, on random bytes and on mutations of valid
encodings; valid encodings round-trip.
"""

from __future__ import annotations

import msgpack
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.errors import ApiError
from protocol.events import EventContent, EventKind, sign_event
from protocol.federation_rooms import (
    DeviceRef,
    FederatedClaim,
    FederatedGroupInfo,
    FederatedSend,
    RoomEventMalformed,
    ToDeviceItem,
    WelcomeItem,
    decode_room_event,
    encode_room_event,
)
from protocol.ids import DeviceId, RoomId, UserId
from protocol.rooms_api import ToDeviceMessage
from protocol.schema import decode_body, pack_body
from tests.harness import box, txn

EVENT = sign_event(bytes(32), EventContent("!r:a.test", 3, bytes(32), 1, EventKind.APPLICATION,
                                           "@al:a.test", "PHONE", 1_700_000_000_000, b"\x00\x01ct"),
                   "ed25519:abc")
U, D = UserId.parse("@bob:b.test"), DeviceId.parse("PHONE")
SAMPLES = {
    WelcomeItem: WelcomeItem(RoomId.parse("!r:a.test"), UserId.parse("@al:a.test"), D, b"w",
                             (DeviceRef(U, D),)),
    ToDeviceItem: ToDeviceItem(U, D, (ToDeviceMessage(UserId.parse("@al:a.test"), D, box(b"p")),)),
    FederatedSend: FederatedSend(U, D, txn("txn"), b"m", None, b"gi"),
    FederatedClaim: FederatedClaim(U),
    FederatedGroupInfo: FederatedGroupInfo(U),
}


def test_valid_encodings_round_trip():
    assert decode_room_event(encode_room_event(EVENT)) == EVENT
    for cls, sample in SAMPLES.items():
        assert decode_body(pack_body(sample), cls) == sample


def _mutate(data: bytes, flips: list[tuple[int, int]]) -> bytes:
    out = bytearray(data)
    for pos, val in flips:
        out[pos % len(out)] = val
    return bytes(out)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=4))
def test_room_event_decoder_raises_only_typed_errors(data, flips):
    for candidate in (data, _mutate(encode_room_event(EVENT), flips)):
        try:
            decoded = decode_room_event(candidate)
        except RoomEventMalformed:
            continue
        assert encode_room_event(decoded) == msgpack.packb(msgpack.unpackb(candidate), use_bin_type=True)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(SAMPLES, key=lambda c: c.__name__)), st.binary(max_size=200),
       st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=4))
def test_item_and_body_decoders_raise_only_typed_errors(cls, data, flips):
    for candidate in (data, _mutate(pack_body(SAMPLES[cls]), flips)):
        try:
            decode_body(candidate, cls)
        except ApiError:
            pass
