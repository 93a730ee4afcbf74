"""Property tests of every request decoder, identifiers and the error registry (pure layer)."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import api, device_approval, log_openings
from protocol.channel_errors import DeviceNameNotAccepted, InvalidTxnId, ToDeviceNotSealed
from protocol.errors import REGISTRY, ApiError, InvalidIdentifier, MalformedBody, status_for_code
from protocol.ids import DeviceId, RoomId, UserId, parse_server_name
from protocol.names import InvalidName
from protocol.schema import decode_body, pack_body

SETTINGS = settings(max_examples=150, deadline=None)

_scalar = st.one_of(st.none(), st.booleans(), st.integers(-2**64, 2**64), st.floats(allow_nan=False),
                    st.text(max_size=40), st.binary(max_size=40))
_values = st.recursive(_scalar, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)), max_leaves=12)

#: What a decoder may raise: the schema's and identifiers' errors, and finding 9's and 14's
#: typed refusals of fields in a form Confide never sends.
TYPED = (MalformedBody, InvalidIdentifier, InvalidName, InvalidTxnId, ToDeviceNotSealed,
         DeviceNameNotAccepted)


def _field_names(cls):
    return list(cls.SCHEMA)


@st.composite
def _near_valid(draw, cls):
    """Maps using the right field names (and sometimes extra ones) with arbitrary values."""
    names = _field_names(cls)
    chosen = draw(st.lists(st.sampled_from(names), unique=True)) if names else []
    obj = {n: draw(_values) for n in chosen}
    if draw(st.booleans()):
        obj.update(draw(st.dictionaries(st.text(max_size=8), _values, max_size=2)))
    return obj


@pytest.mark.parametrize("cls", api.REQUEST_TYPES, ids=lambda c: c.__name__)
@SETTINGS
@given(data=st.data())
def test_request_decoders_raise_only_typed_errors(cls, data):
    obj = data.draw(st.one_of(_values, _near_valid(cls)))
    try:
        msg = cls.from_wire(obj)
    except ApiError as exc:
        assert isinstance(exc, TYPED)
        return
    assert cls.from_wire(msg.to_wire()) == msg


@pytest.mark.parametrize("cls", api.REQUEST_TYPES, ids=lambda c: c.__name__)
@SETTINGS
@given(raw=st.binary(max_size=200))
def test_request_decoders_on_random_bytes(cls, raw):
    try:
        decode_body(raw, cls)
    except ApiError as exc:
        assert isinstance(exc, TYPED)


SAMPLES = [
    api.RegisterRequest("INV-1", "alice", "password1"),
    api.LoginRequest("@alice:x.example", "pw", DeviceId("ABC")),
    api.LoginRequest("alice", "pw"),
    api.Empty(),
    api.DeviceKeysRequest(b"k" * 32, b"\x00\x01\x03abc", b"s" * 64),
    api.KeyPackageUploadRequest((b"a", b"b"), b"c"),
    api.ClaimRequest(UserId("alice", "x.example")),
    api.SessionResponse(UserId("a", "b.c"), DeviceId("D"), "t" * 43),
    api.DevicesResponse((api.DeviceInfo(DeviceId("D"), 1, 2, None, None, None),)),
    api.UserDevicesResponse(UserId("a", "b"), (api.DeviceKeys(DeviceId("D"), b"k" * 32, b"c", 7, b"o"),)),
    api.UserDevicesResponse(UserId("a", "b"), (api.DeviceKeys(DeviceId("D"), b"k" * 32, b"c", 7, b"o",
                                                              (9, 3), (b"p", b"q")),)),
    api.DevicesResponse((api.DeviceInfo(DeviceId("D"), 1, 2, b"k" * 32, b"c", 4, True),)),
    device_approval.PendingDevicesResponse((device_approval.PendingDevice(DeviceId("D"), b"k" * 32,
                                                                          4, 5),)),
    device_approval.ApproveDeviceRequest(5, b"s" * 64),
    device_approval.ApproveDeviceResponse(11),
    api.ClaimResponse(UserId("a", "b"), (api.ClaimedKeyPackage(DeviceId("D"), b"kp", True),), (DeviceId("E"),)),
    api.KeyPackageCountResponse(3, True),
    api.ErrorResponse(api.ErrorDetail("rate_limited", "wait", 100)),
    api.ErrorResponse(api.ErrorDetail("not_found", "no")),
    log_openings.OpeningResponse(b"opening"),
    log_openings.OwnEntriesResponse((1, 5, 9), 10),
    log_openings.OwnEntriesResponse((), None),
]


@pytest.mark.parametrize("msg", SAMPLES, ids=lambda m: type(m).__name__)
def test_round_trip_through_msgpack(msg):
    assert decode_body(pack_body(msg), type(msg)) == msg


@SETTINGS
@given(st.sampled_from(SAMPLES), st.integers(0, 200), st.integers(0, 255))
def test_mutated_bodies_raise_only_typed_errors(msg, pos, byte):
    data = bytearray(pack_body(msg))
    data[pos % len(data)] = byte
    try:
        decode_body(bytes(data), type(msg))
    except ApiError as exc:
        assert isinstance(exc, TYPED)


def test_bounds_are_enforced():
    with pytest.raises(MalformedBody):
        api.KeyPackageUploadRequest.from_wire({"one_time": [b"x"] * 101, "last_resort": b"x"})
    with pytest.raises(MalformedBody):
        api.KeyPackageUploadRequest.from_wire({"one_time": [], "last_resort": b"x" * (16 * 1024 + 1)})
    with pytest.raises(MalformedBody):
        api.RegisterRequest.from_wire({"invite": "i", "user": "a", "password": "p" * 1025})
    with pytest.raises(MalformedBody):
        api.RegisterRequest.from_wire({"invite": "i", "user": "a", "password": "password",
                                       "device_name": "d\n"})
    with pytest.raises(DeviceNameNotAccepted):  # finding 9: the server keeps no device name
        api.RegisterRequest.from_wire({"invite": "i", "user": "a", "password": "password",
                                       "device_name": "d"})
    with pytest.raises(MalformedBody):
        api.KeyPackageCountResponse.from_wire({"one_time": True, "last_resort": True})


def test_error_body_decodes_with_retry_after():
    body = msgpack.packb({"error": {"code": "rate_limited", "message": "m", "retry_after_ms": 5}})
    assert decode_body(body, api.ErrorResponse).error.retry_after_ms == 5


# -- identifiers ------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["@alice:example.org", "@a.b_c=d-e:x.y:8448", "@0:10.0.0.1",
                                  "@x:localhost"])
def test_valid_user_ids(text):
    assert str(UserId.parse(text)) == text


@pytest.mark.parametrize("text", ["alice", "@:x", "@alice:", "@Alice:x", "@al ice:x", "@a:x:0",
                                  "@a:x:65536", "@a:-x", "@a:x..y", "@a:1.2.3", "@a:1.2.3.256",
                                  "@a:X.org", "@" + "a" * 65 + ":x", "@a:" + "x" * 240, "@é:x", 5, None])
def test_invalid_user_ids(text):
    with pytest.raises(InvalidIdentifier):
        UserId.parse(text)


def test_room_and_device_ids():
    assert str(RoomId.parse("!Ab_3-x:hub.example")) == "!Ab_3-x:hub.example"
    for bad in ["!:x", "Ab:x", "!a b:x", "!a:"]:
        with pytest.raises(InvalidIdentifier):
            RoomId.parse(bad)
    assert str(DeviceId.parse("ABC_def-1")) == "ABC_def-1"
    for bad in ["", "a/b", "x" * 65, "é"]:
        with pytest.raises(InvalidIdentifier):
            DeviceId.parse(bad)
    assert parse_server_name("[::1]" if False else "localhost:8480") == "localhost:8480"


@SETTINGS
@given(st.text(max_size=300))
def test_identifier_parsers_raise_only_invalid_identifier(text):
    for parse in (UserId.parse, RoomId.parse, DeviceId.parse, parse_server_name):
        try:
            parse(text)
        except InvalidIdentifier:
            pass


# -- the error registry -------------------------------------------------------------------


def test_registry_is_unique_and_statuses_are_errors():
    assert REGISTRY["malformed_body"].status == 400
    assert status_for_code("rate_limited") == 429
    assert status_for_code("no_such_code") == 500
    assert all(400 <= cls.status <= 599 for cls in REGISTRY.values())


def test_a_later_module_can_add_codes_but_not_reuse_one():
    class RoomGone(ApiError):
        code = "test_room_gone"
        status = 410

    assert REGISTRY["test_room_gone"] is RoomGone
    with pytest.raises(TypeError):
        class Dup(ApiError):
            code = "malformed_body"
            status = 400
