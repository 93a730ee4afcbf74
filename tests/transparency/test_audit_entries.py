"""Audit log entries (protocol/audit.py): round trips, carried signatures,
strict decoding, and fuzzing that lets nothing but MalformedEntry escape."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import audit
from protocol.audit import (
    AccessAction,
    AccessEvent,
    InvalidEntrySignature,
    MalformedEntry,
    RemovalReason,
)

SEED = bytes(range(32))
T = 1_700_000_000_000


def samples():
    dev = audit.sign_device_registration(SEED, T, "@ann:hub.example", "DEV1", b"cred")
    return [
        dev,
        audit.DeviceRemoved(T + 1, "@ann:hub.example", "DEV1", dev.signature_key, RemovalReason.ADMIN),
        audit.RoomEvent(T + 2, "!r1:hub.example", 7, bytes(32), "@ann:hub.example", "DEV1",
                        "m.mls.application", 3, bytes([1]) * 32, 1234),
        AccessEvent(T + 3, AccessAction.LOGIN, "@ann:hub.example", "DEV1"),
        AccessEvent(T + 4, AccessAction.EXPORT_REQUESTED, "@ann:hub.example", "DEV1", "!r1:hub.example"),
        audit.PolicyRecord(T + 5, "practice", "hours", 2, bytes([2]) * 32),
        audit.sign_consent(SEED, T + 6, "@ann:hub.example", "DEV1", "hours", 2, bytes([2]) * 32),
        audit.sign_device_approval(SEED, T + 7, "@ann:hub.example", "DEV2", bytes([3]) * 32, "DEV1"),
    ]


@pytest.mark.parametrize("entry", samples(), ids=lambda e: e.KIND)
def test_roundtrip(entry):
    data = entry.to_bytes()
    assert audit.decode_entry(data) == entry
    assert msgpack.unpackb(data)["kind"] == entry.KIND


def test_carried_signatures():
    dev, *_, consent, approval = samples()
    approval.verify_signature(dev.signature_key)
    for forged_approval in (
            audit.DeviceApproved(approval.time, approval.user, "DEV3", approval.signature_key,
                                 approval.approver_device, approval.signature),
            audit.DeviceApproved(approval.time, approval.user, approval.device, bytes(32),
                                 approval.approver_device, approval.signature),
            audit.DeviceApproved(approval.time + 1, approval.user, approval.device,
                                 approval.signature_key, approval.approver_device, approval.signature),
            audit.DeviceApproved(approval.time, approval.user, approval.device,
                                 approval.signature_key, "DEV9", approval.signature)):
        with pytest.raises(InvalidEntrySignature):
            forged_approval.verify_signature(dev.signature_key)
    dev.verify_signature()
    consent.verify_signature(dev.signature_key)
    forged = audit.DeviceAdded(dev.time, "@eve:hub.example", dev.device, dev.signature_key,
                               dev.credential, dev.signature)
    with pytest.raises(InvalidEntrySignature):
        forged.verify_signature()
    with pytest.raises(InvalidEntrySignature):
        consent.verify_signature(bytes(32))


def _pack(d):
    return msgpack.packb(d, use_bin_type=True)


def test_strictness():
    good = samples()[3].to_wire()
    bad_maps = [
        {**good, "extra": 1},
        {k: v for k, v in good.items() if k != "room"},
        {**good, "kind": "nope"},
        {**good, "action": "sudo"},
        {**good, "user": "ann"},
        {**good, "user": "@ann"},
        {**good, "time": -1},
        {**good, "time": True},
        {**good, "time": 1.5},
        {**good, "device": ""},
        {**good, "device": "a\nb"},
        {**good, "device": "x" * 65},
        dict(reversed(list(good.items()))),
    ]
    for m in bad_maps:
        with pytest.raises(MalformedEntry):
            audit.decode_entry(_pack(m))
    data = _pack(good)
    for bad in [data + b"\x00", data[:-1], b"", b"\xc1", _pack([1, 2]),
                msgpack.packb({**good, "device": b"DEV1"}, use_bin_type=True)]:
        with pytest.raises(MalformedEntry):
            audit.decode_entry(bad)
    policy = samples()[5].to_bytes()
    wide = policy.replace(_pack("version") + b"\x02", _pack("version") + b"\xcc\x02")
    assert wide != policy and msgpack.unpackb(wide) == msgpack.unpackb(policy)
    with pytest.raises(MalformedEntry):
        audit.decode_entry(wide)
    with pytest.raises(MalformedEntry):
        audit.decode_entry(b"\x00" * (audit.MAX_ENTRY_SIZE + 1))
    with pytest.raises(MalformedEntry):
        audit.DeviceAdded(T, "@a:b", "D", bytes(31), b"", bytes(64))


@given(st.binary(max_size=200))
def test_fuzz_random(data):
    try:
        audit.decode_entry(data)
    except MalformedEntry:
        pass


@given(st.data())
def test_fuzz_mutated(data):
    entries = samples()
    e = entries[data.draw(st.integers(0, len(entries) - 1))]
    raw = bytearray(e.to_bytes())
    i = data.draw(st.integers(0, len(raw) - 1))
    raw[i] = data.draw(st.integers(0, 255))
    try:
        out = audit.decode_entry(bytes(raw))
    except MalformedEntry:
        return
    assert out.to_bytes() == bytes(raw)
