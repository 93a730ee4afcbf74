"""Sealed entries and openings (protocol/audit_seal.py): every committed field hidden, an
opening verifies only its own public entry, and fuzzing of both decoders lets nothing but
MalformedEntry escape."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import audit
from protocol.audit_seal import (
    Opening,
    OpeningMismatch,
    decode_opening,
    decode_sealed,
    salts_for,
    subjects_of,
)

from .test_audit_entries import samples

KEY = bytes(range(32))


def _all() -> list[audit.Entry]:
    return [*samples(), audit.FailedLogins(2000, 1000, 4), audit.AuditorRead(3000, "hhs", 2)]


def _opening(i: int, e: audit.Entry) -> Opening:
    return Opening(i, e, salts_for(KEY, i, e))


@pytest.mark.parametrize("entry", _all(), ids=lambda e: e.KIND)
def test_sealed_entries_hide_every_committed_field(entry):
    o = _opening(5, entry)
    public = o.sealed().to_bytes()
    assert decode_sealed(public).to_bytes() == public
    values_only = public
    for key in (*entry.VALIDATORS, "kind", entry.KIND):  # the keys are protocol words
        values_only = values_only.replace(key.encode(), b"")
    for name in entry.COMMITTED:
        value = getattr(entry, name)
        if isinstance(value, str):
            assert value.encode() not in values_only
        elif isinstance(value, bytes):
            assert value not in values_only
        assert len(decode_sealed(public)[name]) == 32
    assert decode_opening(o.to_bytes()).verify(public) == entry
    # the same entry at another index: unrelated commitments (unlinkable)
    other = _opening(6, entry).sealed()
    for name in entry.COMMITTED:
        assert other[name] != o.sealed()[name]


def test_every_identifier_field_is_committed():
    for cls in audit.ENTRY_KINDS.values():
        for name in ("user", "device", "room", "sender", "sender_device", "credential",
                     "signature_key", "auditor", "scope"):
            if name in cls.VALIDATORS:
                assert name in cls.COMMITTED, (cls.KIND, name)


def test_an_opening_verifies_only_its_own_entry():
    entries = samples()
    o = _opening(0, entries[0])
    public = o.sealed().to_bytes()
    with pytest.raises(OpeningMismatch):  # another index's salts
        Opening(0, entries[0], salts_for(KEY, 1, entries[0])).verify(public)
    with pytest.raises(OpeningMismatch):  # another key's salts
        Opening(0, entries[0], salts_for(bytes(32), 0, entries[0])).verify(public)
    ghost = audit.DeviceAdded(entries[0].time, "@ghost:hub.example", entries[0].device,
                              entries[0].signature_key, entries[0].credential, entries[0].signature)
    with pytest.raises(OpeningMismatch):
        Opening(0, ghost, o.salts).verify(public)
    assert subjects_of(entries[2]) == {"sender": "@ann:hub.example"}


def test_sealed_decoder_is_strict():
    public = _opening(3, samples()[3]).sealed().to_bytes()
    m = msgpack.unpackb(public)
    for bad in ({**m, "user": "@ann:hub.example"}, {**m, "user": m["user"][:31]},
                {**m, "device": None}, {**m, "action": "login_failed"}):
        with pytest.raises(audit.MalformedEntry):
            decode_sealed(msgpack.packb(bad))
    with pytest.raises(audit.MalformedEntry):
        decode_sealed(public + b"\x00")
    with pytest.raises(audit.MalformedEntry):  # a window that ends before it starts
        decode_sealed(msgpack.packb({"kind": "failed_logins", "time": 5, "window_start": 9, "count": 1}))


@given(st.binary(max_size=300))
def test_fuzz_sealed_and_opening_random(data):
    for decode in (decode_sealed, decode_opening):
        try:
            decode(data)
        except audit.MalformedEntry:
            pass


@given(st.data())
def test_fuzz_mutated_sealed_and_openings(data):
    entries = _all()
    i = data.draw(st.integers(0, len(entries) - 1))
    o = _opening(i, entries[i])
    for raw, decode in ((o.sealed().to_bytes(), decode_sealed), (o.to_bytes(), decode_opening)):
        raw = bytearray(raw)
        j = data.draw(st.integers(0, len(raw) - 1))
        raw[j] = data.draw(st.integers(0, 255))
        try:
            out = decode(bytes(raw))
        except audit.MalformedEntry:
            continue
        assert out.to_bytes() == bytes(raw)
