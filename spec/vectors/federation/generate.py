"""Generate Confide's federation test vectors, deterministically.

Run from the repository root: ``.venv/bin/python spec/vectors/federation/generate.py``.
Writes, next to this file:

- ``requests.json``: the origin's Ed25519 seed, public key and key id; signed
  requests (method, target, body, origin, destination, timestamp) with the
  exact signed bytes (``spec/server-server.md`` section 3.1), the signature and
  the ``Authorization`` header; ``refusals``: a request as received with the
  header of the base case and the code a receiver must answer;
  ``malformed_headers``: header values that must be refused, with their code;
- ``server_keys.json``: a key document with a current and an old key, its
  to-be-signed bytes (section 2.1) and its msgpack encoding; ``malformed``
  documents that must be refused as ``server_keys_invalid``;
- ``rooms.json``: room federation (sections 11-14): the hub's key, a chain of two
  signed events and the ``room_event`` item data of the second, the transaction
  carrying it and its signed ``PUT``; a forwarded submission signed by the
  follower; the follower's signed GroupInfo request (section 11.5); the follower's
  signed claim for a room and the hub's signed claim naming the room (section 13.1);
  ``welcome`` and ``to_device`` item data; ``refusals``: event item data a
  follower must refuse after the first event, each with its code.

``tests/federation/test_vectors.py`` checks that the committed files equal a
fresh run, and verifies each vector independently of the generator.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import msgpack

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))

from crypto.primitives import ed25519_public_key  # noqa: E402
from protocol.federation import (  # noqa: E402
    ServerKey,
    ServerKeys,
    key_id_for,
    server_keys_tbs,
    sign_request,
    signed_request_bytes,
)

ORIGIN_SEED = bytes(range(100, 132))
OLD_SEED = bytes(range(132, 164))
OTHER_SEED = bytes(range(164, 196))
ORIGIN = "hub.example"
DESTINATION = "follower.example:8448"
T = 1_767_225_600_000  # 2026-01-01T00:00:00Z in ms


def _request(method: str, target: str, body: bytes, ts: int) -> dict[str, object]:
    public = ed25519_public_key(ORIGIN_SEED)
    kid = key_id_for(public)
    auth = sign_request(ORIGIN_SEED, kid, method, target, body, ORIGIN, DESTINATION, ts)
    return {
        "method": method, "target": target, "body": body.hex(), "origin": ORIGIN,
        "destination": DESTINATION, "timestamp_ms": ts, "key_id": kid,
        "signed_bytes": signed_request_bytes(method, target, body, ORIGIN, DESTINATION, ts).hex(),
        "signature": auth.signature.hex(), "authorization": auth.to_header(),
    }


def build_requests() -> dict[str, object]:
    txn = msgpack.packb({"items": [{"kind": "room_event", "data": b"\x01\x02\x03"}]}, use_bin_type=True)
    cases = [
        _request("PUT", "/_confide/federation/v1/send/18c2a-00ff", txn, T),
        _request("GET", "/_confide/federation/v1/ping", b"", T + 1),
        _request("POST", "/_confide/federation/v1/query/keys?user=%40ann%3Ahub.example&limit=2",
                 msgpack.packb({"users": ["@ann:hub.example"]}, use_bin_type=True), T + 2),
    ]
    base = cases[0]
    refusals = [
        {"name": "body changed", "method": "PUT", "target": base["target"], "body": (txn + b"\x00").hex(),
         "code": "bad_signature"},
        {"name": "method changed", "method": "POST", "target": base["target"], "body": base["body"],
         "code": "bad_signature"},
        {"name": "target changed", "method": "PUT", "target": "/_confide/federation/v1/send/18c2a-00fe",
         "body": base["body"], "code": "bad_signature"},
        {"name": "query appended", "method": "PUT", "target": base["target"] + "?x=1", "body": base["body"],
         "code": "bad_signature"},
    ]
    header = str(base["authorization"])
    malformed = {
        "bearer token": ("Bearer abc", "unsigned"),
        "empty": ("", "unsigned"),
        "params reordered": (header.replace('origin="hub.example",destination="follower.example:8448"',
                                            'destination="follower.example:8448",origin="hub.example"'),
                             "malformed_authorization"),
        "space after comma": (header.replace(",key=", ", key="), "malformed_authorization"),
        "ts leading zero": (header.replace(f'ts="{T}"', f'ts="0{T}"'), "malformed_authorization"),
        "sig padded": (header[:-1] + '=="', "malformed_authorization"),
        "sig short": (header[:-2] + '"', "malformed_authorization"),
        "upper-case origin": (header.replace('origin="hub.example"', 'origin="Hub.example"'),
                              "malformed_authorization"),
        "bad key id": (header.replace('key="ed25519:', 'key="rsa:'), "malformed_authorization"),
        "trailing space": (header + " ", "malformed_authorization"),
    }
    return {
        "origin_seed": ORIGIN_SEED.hex(), "origin_public_key": ed25519_public_key(ORIGIN_SEED).hex(),
        "key_id": key_id_for(ed25519_public_key(ORIGIN_SEED)), "cases": cases,
        "refusals": refusals,
        "malformed_headers": [{"name": n, "header": h, "code": c} for n, (h, c) in malformed.items()],
    }


def build_server_keys() -> dict[str, object]:
    current_pk, old_pk = ed25519_public_key(ORIGIN_SEED), ed25519_public_key(OLD_SEED)
    keys = {
        key_id_for(old_pk): ServerKey(old_pk, T - 86_400_000, T - 3_600_000),
        key_id_for(current_pk): ServerKey(current_pk, T - 3_600_000, None),
    }
    published = T
    doc = ServerKeys.build(ORIGIN, keys, {key_id_for(current_pk): ORIGIN_SEED}, published)
    encoded = msgpack.packb(doc.to_wire(), use_bin_type=True)
    wire = doc.to_wire()
    other_pk = ed25519_public_key(OTHER_SEED)
    forged = dict(wire, keys={**wire["keys"], key_id_for(other_pk): {
        "public_key": other_pk, "valid_from": T, "valid_until": None}})
    by_old = ServerKeys.build(ORIGIN, keys, {key_id_for(old_pk): OLD_SEED}, published)
    malformed = {
        "key added after signing": forged,
        "signed by a retired key": by_old.to_wire(),
        "published changed": dict(wire, published=published + 1),
        "unknown field": dict(wire, extra=1),
        "short public key": dict(wire, keys={key_id_for(current_pk): {
            "public_key": current_pk[:31], "valid_from": 0, "valid_until": None}}),
        "no signatures": dict(wire, signatures={}),
    }
    return {
        "server_name": ORIGIN,
        "tbs": server_keys_tbs(ORIGIN, keys, published).hex(),
        "document": encoded.hex(),
        "checks": [
            {"key_id": key_id_for(current_pk), "at": T, "result": "ok"},
            {"key_id": key_id_for(old_pk), "at": T - 7_200_000, "result": "ok"},
            {"key_id": key_id_for(old_pk), "at": T - 3_600_000, "result": "key_expired"},
            {"key_id": key_id_for(old_pk), "at": T - 86_400_001, "result": "key_expired"},
            {"key_id": key_id_for(current_pk), "at": T - 3_600_001, "result": "key_expired"},
            {"key_id": "ed25519:unknown", "at": T, "result": "unknown_key"},
        ],
        "malformed": [{"name": n, "document": msgpack.packb(d, use_bin_type=True).hex()}
                      for n, d in malformed.items()],
    }


def build_rooms() -> dict[str, object]:
    from dataclasses import replace

    from protocol.events import GENESIS_PREV, EventContent, EventKind, sign_event
    from protocol.federation_rooms import (
        DeviceRef,
        FederatedClaim,
        FederatedGroupInfo,
        FederatedRoomClaim,
        FederatedSend,
        ToDeviceItem,
        WelcomeItem,
        encode_room_event,
    )
    from protocol.ids import DeviceId, RoomId, UserId
    from crypto.primitives import x25519_public_key
    from crypto.rng import SeededRng
    from protocol.rooms_api import ToDeviceMessage
    from protocol.schema import pack_body
    from protocol.sealed import seal_to_device

    hub_kid = key_id_for(ed25519_public_key(ORIGIN_SEED))
    room = "!r7xQ2:hub.example"
    e0 = sign_event(ORIGIN_SEED, EventContent(room, 0, GENESIS_PREV, 0, EventKind.CREATE, "@ann:hub.example",
                                              "ANNPHONE", T, b"\x00\x01\x00\x04group-info"), hub_kid)
    e1 = sign_event(ORIGIN_SEED, EventContent(room, 1, e0.event_id, 0, EventKind.APPLICATION,
                                              "@ann:hub.example", "ANNPHONE", T + 1000,
                                              b"\x00\x01\x00\x02ciphertext"), hub_kid)
    txn = msgpack.packb({"items": [{"kind": "room_event", "data": encode_room_event(e1)}]}, use_bin_type=True)
    put = sign_request(ORIGIN_SEED, hub_kid, "PUT", "/_confide/federation/v1/send/txn-1", txn, ORIGIN,
                       DESTINATION, T + 2000)
    other_kid = key_id_for(ed25519_public_key(OTHER_SEED))
    send = pack_body(FederatedSend(UserId.parse("@bo:follower.example:8448"), DeviceId.parse("BOPHONE"),
                                   "Y29uZmlkZS12ZWN0b3IhIQ", b"\x00\x01\x00\x02ciphertext"))
    send_target = f"/_confide/federation/v1/rooms/{room}/send"
    fwd = sign_request(OTHER_SEED, other_kid, "POST", send_target, send, DESTINATION, ORIGIN, T + 3000)
    gi = pack_body(FederatedGroupInfo(UserId.parse("@bo:follower.example:8448")))
    gi_target = f"/_confide/federation/v1/rooms/{room}/group_info"
    gi_req = sign_request(OTHER_SEED, other_kid, "POST", gi_target, gi, DESTINATION, ORIGIN, T + 4000)
    rc = pack_body(FederatedRoomClaim(UserId.parse("@cy:third.example"), UserId.parse("@bo:follower.example:8448")))
    rc_target = f"/_confide/federation/v1/rooms/{room}/claim"
    rc_req = sign_request(OTHER_SEED, other_kid, "POST", rc_target, rc, DESTINATION, ORIGIN, T + 5000)
    hc = pack_body(FederatedClaim(UserId.parse("@bo:follower.example:8448"), RoomId.parse(room)))
    hc_target = "/_confide/federation/v1/keys/claim"
    hc_req = sign_request(ORIGIN_SEED, hub_kid, "POST", hc_target, hc, ORIGIN, DESTINATION, T + 6000)
    bo = DeviceRef(UserId.parse("@bo:follower.example:8448"), DeviceId.parse("BOPHONE"))
    # a sealed to-device box (protocol/sealed.py) to a fixed X25519 key, seeded
    box = seal_to_device(x25519_public_key(bytes(range(32))), b"payload",
                         SeededRng(b"confide to-device vector"))
    welcome = pack_body(WelcomeItem(RoomId.parse(room), UserId.parse("@ann:hub.example"),
                                    DeviceId.parse("ANNPHONE"), b"\x00\x01\x00\x03welcome", (bo,)))
    to_device = pack_body(ToDeviceItem(UserId.parse("@ann:hub.example"), DeviceId.parse("ANNPHONE"),
                                       (ToDeviceMessage(bo.user_id, bo.device_id, box),)))
    broken = sign_event(ORIGIN_SEED, replace(e1.content, prev=bytes(32)), hub_kid)
    bad_sig = replace(e1, hub_signature=bytes(64))
    return {
        "hub": {"seed": ORIGIN_SEED.hex(), "public_key": ed25519_public_key(ORIGIN_SEED).hex(),
                "key_id": hub_kid, "server_name": ORIGIN},
        "follower": {"seed": OTHER_SEED.hex(), "public_key": ed25519_public_key(OTHER_SEED).hex(),
                     "key_id": other_kid, "server_name": DESTINATION},
        "events": [encode_room_event(e).hex() for e in (e0, e1)],
        "room_event_item": encode_room_event(e1).hex(),
        "transaction": {"target": "/_confide/federation/v1/send/txn-1", "body": txn.hex(),
                        "timestamp_ms": T + 2000, "authorization": put.to_header()},
        "forwarded_send": {"target": send_target, "body": send.hex(), "timestamp_ms": T + 3000,
                           "authorization": fwd.to_header()},
        "group_info_request": {"target": gi_target, "body": gi.hex(), "timestamp_ms": T + 4000,
                               "authorization": gi_req.to_header()},
        "room_claim_request": {"target": rc_target, "body": rc.hex(), "timestamp_ms": T + 5000,
                               "authorization": rc_req.to_header()},
        "hub_claim_request": {"target": hc_target, "body": hc.hex(), "timestamp_ms": T + 6000,
                              "authorization": hc_req.to_header()},
        "welcome_item": welcome.hex(),
        "to_device_item": to_device.hex(),
        "refusals": [
            {"name": "broken_chain", "data": encode_room_event(broken).hex(), "code": "room_event_chain_broken"},
            {"name": "bad_signature", "data": encode_room_event(bad_sig).hex(),
             "code": "room_event_bad_signature"},
            {"name": "unknown_key", "data": encode_room_event(replace(e1, key_id="ed25519:gone")).hex(),
             "code": "room_event_bad_signature"},
            {"name": "not_an_event", "data": msgpack.packb({"seq": 1}).hex(), "code": "room_event_malformed"},
        ],
    }


def build() -> dict[str, object]:
    return {"requests.json": build_requests(), "server_keys.json": build_server_keys(),
            "rooms.json": build_rooms()}


def render(obj: object) -> str:
    return json.dumps(obj, indent=1, ensure_ascii=False) + "\n"


def main() -> None:
    for name, obj in build().items():
        (HERE / name).write_text(render(obj))
        print("wrote", HERE / name)


if __name__ == "__main__":
    main()
