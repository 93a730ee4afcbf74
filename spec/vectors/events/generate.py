"""Generate Confide's signed room event envelope vectors, deterministically.

Run from the repository root: ``.venv/bin/python spec/vectors/events/generate.py``.
Writes ``events.json`` next to this file:

- ``hub_seed`` / ``hub_public_key`` / ``hub_key_id``: the hub's Ed25519 federation key
  (hex) and its key id (``spec/server-server.md`` section 2), named by each envelope;
- ``events``: a chain of one room's events 0..3 (create, commit, proposal,
  application): the nine signed fields (bytes as hex), the exact ``signed``
  bytes, ``event_id`` (SHA-256 of them), ``hub_signature`` and the msgpack
  ``wire`` map that sync and history carry;
- ``malformed``: signed-byte strings that a decoder must refuse
  (``malformed_event``), each named for what is wrong;
- ``bad_signature``: an event whose signature must not verify.

``tests/server/test_rooms_envelope.py`` checks that the committed file equals
a fresh run, and verifies each vector independently.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import msgpack

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))

from crypto.primitives import ed25519_public_key  # noqa: E402
from protocol.events import (  # noqa: E402
    EVENT_LABEL,
    GENESIS_PREV,
    EventContent,
    EventKind,
    sign_event,
)
from protocol.federation import key_id_for  # noqa: E402

HUB_SEED = bytes(range(100, 132))
HUB_KEY_ID = key_id_for(ed25519_public_key(HUB_SEED))
ROOM = "!r7xQ2:hub.example"
T = 1_767_225_600_000  # 2026-01-01T00:00:00Z in ms


def chain():
    specs = [
        (0, EventKind.CREATE, "@ann:hub.example", "ANNPHONE", b"\x00\x01\x00\x04group-info"),
        (1, EventKind.COMMIT, "@ann:hub.example", "ANNPHONE", b"\x00\x01\x00\x01commit"),
        (1, EventKind.PROPOSAL, "@bob:hub.example", "BOBLAPTOP", b"\x00\x01\x00\x01proposal"),
        (1, EventKind.APPLICATION, "@bob:hub.example", "BOBLAPTOP", bytes(range(256)) * 2),
    ]
    out, prev = [], GENESIS_PREV
    for seq, (epoch, kind, user, device, message) in enumerate(specs):
        ev = sign_event(HUB_SEED, EventContent(ROOM, seq, prev, epoch, kind, user, device,
                                               T + seq * 1000, message), HUB_KEY_ID)
        out.append(ev)
        prev = ev.event_id
    return out


def _hexmap(d):
    return {k: (v.hex() if isinstance(v, bytes) else v) for k, v in d.items()}


def _pack(obj):
    return msgpack.packb(obj, use_bin_type=True)


def malformed(first) -> dict[str, str]:
    c = first.content
    good = [c.room_id, c.seq, c.prev, c.epoch, c.kind.value, c.sender_user, c.sender_device, c.ts,
            c.message]
    body = _pack(good)
    # seq 0 as uint16 (0xcd 0x00 0x00) instead of positive fixint 0x00: not canonical
    idx = body.index(b"\x00\xc4\x20")  # the seq byte sits just before prev's bin8 header
    non_canonical = body[:idx] + b"\xcd\x00\x00" + body[idx + 1:]
    return {
        "wrong_label": (b"confide.room-event.v2\x00" + body).hex(),
        "no_label": body.hex(),
        "trailing_bytes": (EVENT_LABEL + body + b"\x00").hex(),
        "non_canonical_integer": (EVENT_LABEL + non_canonical).hex(),
        "map_instead_of_array": (EVENT_LABEL + _pack(dict(zip("abcdefghi", good, strict=True)))).hex(),
        "eight_fields": (EVENT_LABEL + _pack(good[:8])).hex(),
        "ten_fields": (EVENT_LABEL + _pack([*good, 0])).hex(),
        "prev_31_bytes": (EVENT_LABEL + _pack([*good[:2], bytes(31), *good[3:]])).hex(),
        "unknown_kind": (EVENT_LABEL + _pack([*good[:4], "state", *good[5:]])).hex(),
        "room_without_sigil": (EVENT_LABEL + _pack(["r7xQ2:hub.example", *good[1:]])).hex(),
        "negative_epoch": (EVENT_LABEL + _pack([*good[:3], -1, *good[4:]])).hex(),
        "message_as_str": (EVENT_LABEL + _pack([*good[:8], "text"])).hex(),
    }


def build() -> dict[str, object]:
    events = chain()
    bad = events[1].to_wire()
    sig = bytearray(bad["hub_signature"])
    sig[0] ^= 1
    return {"events.json": {
        "hub_seed": HUB_SEED.hex(),
        "hub_public_key": ed25519_public_key(HUB_SEED).hex(),
        "hub_key_id": HUB_KEY_ID,
        "label": EVENT_LABEL.hex(),
        "events": [{
            "fields": _hexmap({k: v for k, v in e.to_wire().items()
                               if k not in ("event_id", "hub_signature", "hub_key_id")}),
            "signed": e.content.signed_bytes().hex(),
            "event_id": e.event_id.hex(),
            "hub_signature": e.hub_signature.hex(),
            "wire": _pack(e.to_wire()).hex(),
        } for e in events],
        "malformed": malformed(events[0]),
        "bad_signature": {"signed": events[1].content.signed_bytes().hex(),
                          "hub_signature": bytes(sig).hex()},
    }}


def render(obj: object) -> str:
    return json.dumps(obj, indent=1, ensure_ascii=False) + "\n"


def main() -> None:
    for name, obj in build().items():
        (HERE / name).write_text(render(obj))
        print("wrote", HERE / name)


if __name__ == "__main__":
    main()
