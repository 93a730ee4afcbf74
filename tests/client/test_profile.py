"""The encrypted profile: passphrase, tamper detection, atomic records, no plaintext on disk."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from client.profile import (
    MINIMUM,
    Profile,
    ProfileCorrupt,
    ProfileExists,
    ProfileMissing,
    WrongPassphrase,
)

SECRET = b"\x8a" * 7 + b"very-secret-seed-material-123"
TOKEN = "tok_ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefg"


def _files(d):
    return [p for p in d.rglob("*") if p.is_file()]


def test_round_trip_and_reopen(tmp_path):
    p = Profile.create(tmp_path / "prof", "pass phrase", MINIMUM)
    p.put("account", {"token": TOKEN, "seed": SECRET})
    p.put("room/!abc:example.org", {"seq": 3})
    q = Profile.open(tmp_path / "prof", "pass phrase")
    assert q.get("account") == {"token": TOKEN, "seed": SECRET}
    assert q.names("room/") == ["room/!abc:example.org"]
    assert q.get("nothing", 7) == 7
    q.delete("account")
    assert q.get("account") is None


def test_wrong_passphrase_is_a_typed_error(tmp_path):
    Profile.create(tmp_path, "right", MINIMUM)
    with pytest.raises(WrongPassphrase) as e:
        Profile.open(tmp_path, "wrong")
    assert e.value.code == "wrong_passphrase"


def test_missing_and_existing(tmp_path):
    with pytest.raises(ProfileMissing):
        Profile.open(tmp_path / "none", "x")
    Profile.create(tmp_path, "x", MINIMUM)
    with pytest.raises(ProfileExists):
        Profile.create(tmp_path, "x", MINIMUM)


def test_no_plaintext_on_disk(tmp_path):
    p = Profile.create(tmp_path, "pw", MINIMUM)
    p.put("account", {"token": TOKEN, "seed": SECRET, "server": "http://hidden.example"})
    p.put("room/!roomname:hidden.example", {"group": SECRET * 3})
    for f in _files(tmp_path):
        data = f.read_bytes()
        for needle in (SECRET, TOKEN.encode(), b"hidden.example", b"roomname", b"account"):
            assert needle not in data, (f, needle)


def test_tampered_record_is_detected(tmp_path):
    p = Profile.create(tmp_path, "pw", MINIMUM)
    p.put("account", {"token": TOKEN})
    [rec] = list(tmp_path.glob("r-*.rec"))
    data = bytearray(rec.read_bytes())
    data[-1] ^= 1
    rec.write_bytes(bytes(data))
    with pytest.raises(ProfileCorrupt):
        p.get("account")


def test_record_moved_to_another_name_is_detected(tmp_path):
    p = Profile.create(tmp_path, "pw", MINIMUM)
    p.put("a", 1)
    p.put("b", 2)
    pa, pb = p._path("a"), p._path("b")
    pb.write_bytes(pa.read_bytes())
    with pytest.raises(ProfileCorrupt):
        p.get("b")


def test_tampered_header_is_detected(tmp_path):
    Profile.create(tmp_path, "pw", MINIMUM)
    hdr = tmp_path / "profile.hdr"
    h = json.loads(hdr.read_text())
    h["salt"] = "00" * 16
    hdr.write_text(json.dumps(h))
    with pytest.raises(WrongPassphrase):
        Profile.open(tmp_path, "pw")
    hdr.write_text("{not json")
    with pytest.raises(ProfileCorrupt):
        Profile.open(tmp_path, "pw")
    h["memlimit"] = 1
    hdr.write_text(json.dumps(h))
    with pytest.raises(ProfileCorrupt):
        Profile.open(tmp_path, "pw")


def test_no_temporary_files_left(tmp_path):
    p = Profile.create(tmp_path, "pw", MINIMUM)
    for i in range(5):
        p.put("x", i)
    assert sorted(f.name.split("-")[0] for f in _files(tmp_path)) == ["profile.hdr", "r"]


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=300))
def test_random_record_bytes_give_only_typed_errors(tmp_path_factory, data):
    d = tmp_path_factory.mktemp("p")
    p = Profile.create(d, "pw", MINIMUM)
    p._path("x").write_bytes(data)
    with pytest.raises(ProfileCorrupt):
        p.get("x")


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=200))
def test_random_sealed_plaintexts_give_only_typed_errors(tmp_path_factory, plain):
    d = tmp_path_factory.mktemp("p")
    p = Profile.create(d, "pw", MINIMUM)
    p._path("x").write_bytes(bytes(p._box.encrypt(plain)))
    try:
        p.get("x")
    except ProfileCorrupt:
        pass
