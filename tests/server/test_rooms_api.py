"""The pure decoders of rooms and delivery (protocol.rooms_api): tokens, query parameters,
envelopes in responses, bounds. The request bodies are fuzzed with the others through
``protocol.api.REQUEST_TYPES`` (test_protocol_decoders.py)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import api, rooms_api
from protocol.channel_errors import InvalidTxnId, ToDeviceNotSealed
from protocol.errors import ApiError, InvalidIdentifier, MalformedBody
from protocol.events import GENESIS_PREV, EventContent, EventKind, sign_event
from protocol.ids import DeviceId, RoomId, UserId
from protocol.room_errors import InvalidQuery, InvalidSinceToken
from protocol.schema import decode_body, pack_body
from tests.harness import box, txn

TXN = txn("t")

SETTINGS = settings(max_examples=200, deadline=None)


def test_room_requests_are_fuzzed_with_the_others():
    for cls in rooms_api.ROOM_REQUEST_TYPES:
        assert cls in api.REQUEST_TYPES


@pytest.mark.parametrize("token,value", [("0", 0), ("17", 17), (str(2**63 - 1), 2**63 - 1)])
def test_since_tokens(token, value):
    assert rooms_api.parse_since(token) == value
    assert rooms_api.format_since(value) == token


@pytest.mark.parametrize("token", ["", "01", "-1", "+1", "1.0", " 1", "1e3", str(2**63), "٣",
                                   "9" * 20, None, 5])
def test_bad_since_tokens(token):
    with pytest.raises(InvalidSinceToken):
        rooms_api.parse_since(token)


def test_uint_params():
    assert rooms_api.parse_uint_param(None, "limit", default=7, max_value=9) == 7
    assert rooms_api.parse_uint_param("9", "limit", default=7, max_value=9) == 9
    for bad in ["10", "00", "", "x", "-0"]:
        with pytest.raises(InvalidQuery):
            rooms_api.parse_uint_param(bad, "limit", default=7, max_value=9)
    with pytest.raises(InvalidQuery):
        rooms_api.parse_uint_param("0", "limit", default=7, max_value=9, min_value=1)


@SETTINGS
@given(st.text(max_size=30))
def test_token_parsers_raise_only_their_errors(text):
    try:
        rooms_api.parse_since(text)
    except InvalidSinceToken:
        pass
    try:
        rooms_api.parse_uint_param(text, "x", default=0, max_value=1000)
    except InvalidQuery:
        pass


def _event(seq=0):
    return sign_event(bytes(32), EventContent("!r:hub.example", seq, GENESIS_PREV, 0, EventKind.COMMIT,
                                              "@a:hub.example", "D", 1, b"m"))


SAMPLES = [
    rooms_api.CreateRoomRequest(TXN, b"gi"),
    rooms_api.CreateRoomResponse(RoomId("r", "hub.example"), 0, 0, "ab" * 32),
    rooms_api.SendRequest(TXN, b"m"),
    rooms_api.SendRequest(TXN, b"m", b"w", b"g"),
    rooms_api.SendResponse(3, "cd" * 32, 1),
    rooms_api.RoomsResponse((rooms_api.RoomSummary(RoomId("r", "hub.example"), 1, 2),)),
    rooms_api.EventsResponse((rooms_api.Envelope(_event()),), 1),
    rooms_api.GroupInfoResponse(b"gi", 4),
    rooms_api.HubKeyResponse("hub.example", b"k" * 32),
    rooms_api.SendToDeviceRequest(TXN, (rooms_api.ToDeviceMessage(UserId("a", "hub.example"),
                                                                  DeviceId("D"), box(b"p")),)),
    rooms_api.SyncResponse("5", (rooms_api.Envelope(_event(1)),), (
        rooms_api.InboxItem(4, "welcome", b"w", UserId("a", "h.example"), DeviceId("D"),
                            RoomId("r", "h.example")),
        rooms_api.InboxItem(5, "to_device", b"p", UserId("a", "h.example"), DeviceId("D")))),
    rooms_api.SyncAck("12"),
    rooms_api.AttachmentResponse("ef" * 32),
]


@pytest.mark.parametrize("msg", SAMPLES, ids=lambda m: type(m).__name__)
def test_round_trip(msg):
    assert decode_body(pack_body(msg), type(msg)) == msg


def test_inbox_items_leave_out_what_does_not_apply():
    wire = rooms_api.InboxItem(5, "to_device", b"p").to_wire()
    assert set(wire) == {"id", "kind", "payload"}


@SETTINGS
@given(st.sampled_from(SAMPLES), st.integers(0, 400), st.integers(0, 255))
def test_mutated_bodies_raise_only_typed_errors(msg, pos, byte):
    data = bytearray(pack_body(msg))
    data[pos % len(data)] = byte
    try:
        decode_body(bytes(data), type(msg))
    except ApiError as exc:
        assert isinstance(exc, MalformedBody | InvalidIdentifier | InvalidTxnId | ToDeviceNotSealed)


def test_bounds():
    with pytest.raises(MalformedBody):
        rooms_api.SendRequest.from_wire({"txn_id": "t" * 129, "message": b"m"})
    with pytest.raises(MalformedBody):
        rooms_api.SendRequest.from_wire({"txn_id": TXN, "message": b""})
    with pytest.raises(MalformedBody):
        rooms_api.SendToDeviceRequest.from_wire({"txn_id": TXN, "messages": [
            {"user_id": "@a:h", "device_id": "D", "payload": box(b"p")}] * 101})
    with pytest.raises(MalformedBody):
        rooms_api.SyncAck.from_wire({"ack": "01"})
    wire = rooms_api.Envelope(_event()).to_wire()
    wire["event_id"] = "00" * 32
    with pytest.raises(MalformedBody):
        rooms_api.Envelope.from_wire(wire)
