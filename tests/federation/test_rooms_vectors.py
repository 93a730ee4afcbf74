"""``spec/vectors/federation/rooms.json`` checked independently of its generator
(the committed file equals a fresh run: ``test_vectors.test_committed_vectors_match_generator``)."""

from __future__ import annotations

import json

import pytest

from crypto.errors import CryptoError
from protocol.events import verify_chain
from protocol.federation import Authorization, BadSignature, verify_request
from protocol.federation_rooms import (
    FederatedClaim,
    FederatedGroupInfo,
    FederatedRoomClaim,
    FederatedSend,
    RoomEventMalformed,
    ToDeviceItem,
    WelcomeItem,
    decode_room_event,
)
from protocol.schema import decode_body, unpack_body
from protocol.sealed import open_to_device
from tests.harness import FEDERATION_VECTORS as DIR

V = json.loads((DIR / "rooms.json").read_text())


def test_events_chain_and_verify_with_the_hub_key():
    events = [decode_room_event(bytes.fromhex(e)) for e in V["events"]]
    verify_chain(events)
    for e in events:
        assert e.key_id == V["hub"]["key_id"]
        e.verify(bytes.fromhex(V["hub"]["public_key"]))
    assert decode_room_event(bytes.fromhex(V["room_event_item"])) == events[1]


def test_signed_transaction_and_forwarded_send():
    txn = V["transaction"]
    auth = Authorization.parse(txn["authorization"])
    assert (auth.origin, auth.key_id) == (V["hub"]["server_name"], V["hub"]["key_id"])
    verify_request(auth, bytes.fromhex(V["hub"]["public_key"]), "PUT", txn["target"], bytes.fromhex(txn["body"]))
    item = unpack_body(bytes.fromhex(txn["body"]))["items"][0]
    assert item["kind"] == "room_event" and item["data"].hex() == V["room_event_item"]
    fwd = V["forwarded_send"]
    auth = Authorization.parse(fwd["authorization"])
    verify_request(auth, bytes.fromhex(V["follower"]["public_key"]), "POST", fwd["target"],
                   bytes.fromhex(fwd["body"]))
    send = decode_body(bytes.fromhex(fwd["body"]), FederatedSend)
    assert send.user_id.server == auth.origin


def test_signed_group_info_request():
    req = V["group_info_request"]
    auth = Authorization.parse(req["authorization"])
    assert (auth.origin, auth.destination) == (V["follower"]["server_name"], V["hub"]["server_name"])
    verify_request(auth, bytes.fromhex(V["follower"]["public_key"]), "POST", req["target"],
                   bytes.fromhex(req["body"]))
    body = decode_body(bytes.fromhex(req["body"]), FederatedGroupInfo)
    assert body.user_id.server == auth.origin
    assert req["target"].endswith("/group_info") and ":" + V["hub"]["server_name"] in req["target"]
    with pytest.raises(BadSignature):
        verify_request(auth, bytes.fromhex(V["follower"]["public_key"]), "POST", req["target"],
                       bytes.fromhex(req["body"]) + b"\x00")


def test_signed_claims_for_a_room():
    req = V["room_claim_request"]
    auth = Authorization.parse(req["authorization"])
    assert (auth.origin, auth.destination) == (V["follower"]["server_name"], V["hub"]["server_name"])
    verify_request(auth, bytes.fromhex(V["follower"]["public_key"]), "POST", req["target"],
                   bytes.fromhex(req["body"]))
    body = decode_body(bytes.fromhex(req["body"]), FederatedRoomClaim)
    assert body.requester.server == auth.origin and body.user_id.server != auth.destination
    assert unpack_body(bytes.fromhex(req["body"])) == {"user_id": str(body.user_id),
                                                        "requester": str(body.requester)}
    assert req["target"].endswith("/claim") and ":" + V["hub"]["server_name"] in req["target"]
    hub = V["hub_claim_request"]
    auth = Authorization.parse(hub["authorization"])
    assert (auth.origin, auth.destination) == (V["hub"]["server_name"], V["follower"]["server_name"])
    verify_request(auth, bytes.fromhex(V["hub"]["public_key"]), "POST", hub["target"],
                   bytes.fromhex(hub["body"]))
    claim = decode_body(bytes.fromhex(hub["body"]), FederatedClaim)
    assert claim.room_id is not None and claim.room_id.server == auth.origin  # only the hub names it
    assert claim.user_id.server == auth.destination
    assert hub["target"] == "/_confide/federation/v1/keys/claim"
    with pytest.raises(BadSignature):
        verify_request(auth, bytes.fromhex(V["hub"]["public_key"]), "POST", hub["target"],
                       bytes.fromhex(req["body"]))


def test_welcome_and_to_device_items_decode():
    w = decode_body(bytes.fromhex(V["welcome_item"]), WelcomeItem)
    assert str(w.room_id).endswith(":" + V["hub"]["server_name"])
    assert all(t.user_id.server == V["follower"]["server_name"] for t in w.targets)
    t = decode_body(bytes.fromhex(V["to_device_item"]), ToDeviceItem)
    # a sealed to-device box (protocol/sealed.py) to the X25519 key of 32 bytes 00..1f
    assert open_to_device(bytes(range(32)), t.messages[0].payload) == b"payload"


@pytest.mark.parametrize("case", V["refusals"], ids=lambda c: c["name"])
def test_refusals_fail_where_their_code_says(case):
    first = decode_room_event(bytes.fromhex(V["events"][0]))
    hub_key = bytes.fromhex(V["hub"]["public_key"])
    data = bytes.fromhex(case["data"])
    if case["code"] == "room_event_malformed":
        with pytest.raises(RoomEventMalformed):
            decode_room_event(data)
        return
    event = decode_room_event(data)
    if case["code"] == "room_event_chain_broken":
        event.verify(hub_key)
        with pytest.raises(CryptoError):
            verify_chain([event], first)
    else:
        assert case["code"] == "room_event_bad_signature"
        bad = event.key_id != V["hub"]["key_id"]
        if not bad:
            with pytest.raises(CryptoError):
                event.verify(hub_key)
