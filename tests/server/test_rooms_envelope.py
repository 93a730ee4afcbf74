"""The hub's signed event envelope (protocol.events): vectors, strict decoding, chaining.

The vectors in ``spec/vectors/events/events.json`` must equal a fresh run of its
generator; each event's signed bytes decode, re-encode identically, hash to the
event id and verify with the hub key; the chain links by ``prev``; every
malformed case is refused with ``malformed_event``. Hypothesis: random and
mutated bytes and maps raise only the typed errors.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto.errors import CryptoError
from crypto.primitives import ed25519_public_key
from protocol import events as ev
from tests.harness import assert_vectors_current

DIR = Path(__file__).resolve().parents[2] / "spec" / "vectors" / "events"
SETTINGS = settings(max_examples=200, deadline=None)


def _vectors():
    return json.loads((DIR / "events.json").read_text())


def test_committed_vectors_match_generator():
    assert_vectors_current(DIR, "event_vectors_generate")


def test_vector_events_verify_and_chain():
    v = _vectors()
    hub_key = bytes.fromhex(v["hub_public_key"])
    assert ed25519_public_key(bytes.fromhex(v["hub_seed"])) == hub_key
    signed_events = []
    for e in v["events"]:
        signed = bytes.fromhex(e["signed"])
        assert signed.startswith(bytes.fromhex(v["label"]))
        content = ev.decode_signed_bytes(signed)
        assert content.signed_bytes() == signed
        assert content.event_id().hex() == e["event_id"]
        for name, value in e["fields"].items():
            got = getattr(content, name)
            assert (got.hex() if isinstance(got, bytes) else got) == value
        wire = msgpack.unpackb(bytes.fromhex(e["wire"]), raw=False)
        s = ev.SignedEvent.from_wire(wire)
        assert s.content == content and s.hub_signature.hex() == e["hub_signature"]
        s.verify(hub_key)
        signed_events.append(s)
    ev.verify_chain(signed_events)
    assert [s.content.kind for s in signed_events] == list(ev.EventKind)


@pytest.mark.parametrize("name", sorted(_vectors()["malformed"]))
def test_malformed_vectors_are_refused(name):
    with pytest.raises(ev.MalformedEvent):
        ev.decode_signed_bytes(bytes.fromhex(_vectors()["malformed"][name]))


def test_bad_signature_vector():
    v = _vectors()
    content = ev.decode_signed_bytes(bytes.fromhex(v["bad_signature"]["signed"]))
    s = ev.SignedEvent(content, content.event_id(), bytes.fromhex(v["bad_signature"]["hub_signature"]))
    with pytest.raises(ev.InvalidEventSignature):
        s.verify(bytes.fromhex(v["hub_public_key"]))


SEED = bytes(range(32))


def _content(**kw):
    base = dict(room_id="!a:hub.example", seq=0, prev=ev.GENESIS_PREV, epoch=0,
                kind=ev.EventKind.COMMIT, sender_user="@a:hub.example", sender_device="D",
                ts=5, message=b"m")
    base.update(kw)
    return ev.EventContent(**base)


def test_another_key_or_a_changed_field_does_not_verify():
    s = ev.sign_event(SEED, _content())
    with pytest.raises(ev.InvalidEventSignature):
        s.verify(ed25519_public_key(bytes(32)))
    changed = ev.SignedEvent(replace(s.content, message=b"n"), s.event_id, s.hub_signature)
    with pytest.raises(ev.EventIdMismatch):
        changed.verify(ed25519_public_key(SEED))
    wire = s.to_wire()
    wire["event_id"] = "00" * 32
    with pytest.raises(ev.EventIdMismatch):
        ev.SignedEvent.from_wire(wire)


def test_chain_breaks_are_detected():
    a = ev.sign_event(SEED, _content())
    b = ev.sign_event(SEED, _content(seq=1, prev=a.event_id))
    ev.verify_chain([a, b])
    with pytest.raises(ev.BrokenEventChain):
        ev.verify_chain([a, ev.sign_event(SEED, _content(seq=1, prev=bytes(32)))])
    with pytest.raises(ev.BrokenEventChain):
        ev.verify_chain([a, ev.sign_event(SEED, _content(seq=2, prev=a.event_id))])
    with pytest.raises(ev.BrokenEventChain):
        ev.verify_chain([ev.sign_event(SEED, _content(prev=b"\x01" * 32))])
    ev.verify_chain([b], previous=a)


def test_bounds_at_construction():
    with pytest.raises(ev.MalformedEvent):
        _content(message=b"x" * (ev.MAX_EVENT_MESSAGE + 1))
    with pytest.raises(ev.MalformedEvent):
        _content(sender_device="x" * 65)
    with pytest.raises(ev.MalformedEvent):
        _content(kind="state")
    with pytest.raises(ev.EventTooLarge):
        ev.decode_signed_bytes(b"\x00" * (ev.MAX_SIGNED_EVENT + 1))
    big = _content(message=b"x" * ev.MAX_EVENT_MESSAGE, room_id="!" + "r" * 64 + ":" + "h" * 100)
    assert len(big.signed_bytes()) <= ev.MAX_SIGNED_EVENT
    assert ev.decode_signed_bytes(big.signed_bytes()) == big


@SETTINGS
@given(st.binary(max_size=300))
def test_random_signed_bytes_raise_only_typed_errors(data):
    for candidate in (data, ev.EVENT_LABEL + data):
        try:
            ev.decode_signed_bytes(candidate)
        except ev.MalformedEvent:
            pass


@SETTINGS
@given(st.integers(0, 400), st.integers(0, 255))
def test_mutated_signed_bytes_raise_only_typed_errors_or_change_the_id(pos, byte):
    s = ev.sign_event(SEED, _content(message=b"hello" * 10))
    data = bytearray(s.content.signed_bytes())
    data[pos % len(data)] = byte
    try:
        content = ev.decode_signed_bytes(bytes(data))
    except ev.MalformedEvent:
        return
    assert content.signed_bytes() == bytes(data)
    if bytes(data) != s.content.signed_bytes():
        with pytest.raises(CryptoError):
            ev.SignedEvent(content, s.event_id, s.hub_signature).verify(ed25519_public_key(SEED))


_scalar = st.one_of(st.none(), st.booleans(), st.integers(-2**64, 2**64), st.text(max_size=20),
                    st.binary(max_size=70))


@SETTINGS
@given(st.dictionaries(st.sampled_from(list(ev._WIRE_FIELDS) + ["x"]), _scalar, max_size=12))
def test_wire_maps_raise_only_typed_errors(obj):
    try:
        ev.SignedEvent.from_wire(obj)
    except ev.MalformedEvent:
        pass
