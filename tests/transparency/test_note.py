"""Signed notes, verifier keys, cosignatures and checkpoints (c2sp.org/signed-note,
tlog-checkpoint, tlog-cosignature): the spec's own example, round trips, strict
parsing, and fuzzing that lets nothing but typed errors escape."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crypto import checkpoint as cp
from crypto import note
from crypto.errors import CryptoError
from crypto.merkle import EMPTY_ROOT
from crypto.note import MalformedNote, NoteSignatureInvalid, Signer, UnverifiedNote

# c2sp.org/signed-note, "Verifier keys" example
SPEC_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
SPEC_NOTE = (
    "This is an example message.\n\n"
    "\u2014 example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n"
).encode()

LOG = Signer("log.example", bytes(range(32)))
WITNESS = Signer("witness.example/w1", bytes(range(1, 33)), note.SIG_COSIGNATURE_V1)
CHECKPOINT = cp.Checkpoint("log.example", 5, bytes(range(32)))


def test_spec_example_verifies():
    v = note.parse_vkey(SPEC_VKEY)
    assert v.name == "example.com/foo" and v.key_id == 0x530D903A and v.vkey() == SPEC_VKEY
    opened = note.open_note(SPEC_NOTE, [v])
    assert opened.text == "This is an example message.\n"
    tampered = SPEC_NOTE.replace(b"example message", b"exemple message")
    with pytest.raises(NoteSignatureInvalid):
        note.open_note(tampered, [v])


def test_key_id_definition():
    pk = LOG.verifier.public_key
    import hashlib

    expected = hashlib.sha256(b"log.example\n\x01" + pk).digest()[:4]
    assert LOG.verifier.key_id == int.from_bytes(expected, "big")
    assert WITNESS.verifier.key_id != note.key_id("witness.example/w1", 1, WITNESS.verifier.public_key)


def test_sign_open_roundtrip_and_unknown_keys_ignored():
    text = CHECKPOINT.to_text()
    other = Signer("other.example", bytes(32))
    data = note.sign_note(text, [other, LOG])
    opened = note.open_note(data, [LOG.verifier])
    assert [s.name for s in opened.verified] == ["log.example"]
    with pytest.raises(UnverifiedNote):
        note.open_note(data, [Signer("third.example", bytes([9]) * 32).verifier])
    # same name, different key: ID differs, so it is ignored, and nothing else verifies
    with pytest.raises(UnverifiedNote):
        note.open_note(note.sign_note(text, [Signer("log.example", bytes([7]) * 32)]), [LOG.verifier])


def test_cosignature_roundtrip():
    text = CHECKPOINT.to_text()
    sig = WITNESS.sign(text, 1679315147)
    data = note.sign_note(text, [LOG]) + sig.line().encode()
    opened = note.open_note(data, [LOG.verifier, WITNESS.verifier])
    cos = [s for s in opened.verified if s.sig_type == note.SIG_COSIGNATURE_V1]
    assert cos and cos[0].timestamp == 1679315147
    assert note.cosignature_message(text, 7).startswith(b"cosignature/v1\ntime 7\nlog.example\n")
    # changing the timestamp breaks the signature
    bad = note.NoteSignature(sig.name, sig.key_id, (1679315148).to_bytes(8, "big") + sig.signature[8:])
    with pytest.raises(NoteSignatureInvalid):
        note.open_note(text.encode() + b"\n" + bad.line().encode(), [WITNESS.verifier])
    with pytest.raises(MalformedNote):
        WITNESS.sign(text, 0)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"text\n",
        b"text\n\n",
        b"text\n\n\xe2\x80\x94 name AAAAAAA=",  # no final newline
        b"text\n\n- name AAAAAAAA\n",
        b"text\n\n\xe2\x80\x94 name\n",
        b"text\n\n\xe2\x80\x94 na+me AAAAAAAA\n",
        b"text\n\n\xe2\x80\x94  AAAAAAAA\n",
        b"text\n\n\xe2\x80\x94 name AAAA\n",  # shorter than id + 1 byte
        b"text\n\n\xe2\x80\x94 name AAAAAAA\n",  # bad padding
        b"text\n\n\xe2\x80\x94 name AAAAAAB=\n",  # non-canonical
        b"te\x01xt\n\n\xe2\x80\x94 name AAAAAAAA\n",
        b"text\xff\n\n\xe2\x80\x94 name AAAAAAAA\n",
        b"text\n\n\xe2\x80\x94 name AAAAAAAA\n\n",
        b"x" * (note.MAX_NOTE_SIZE + 1),
    ],
)
def test_malformed_notes(data):
    with pytest.raises(MalformedNote) as exc:
        note.parse_note(data)
    assert exc.value.code == "malformed"


def test_too_many_signatures():
    text = "t\n"
    line = note.NoteSignature("n", 1, b"x").line()
    assert note.parse_note((text + "\n" + line * note.MAX_SIGNATURES).encode())
    with pytest.raises(MalformedNote):
        note.parse_note((text + "\n" + line * (note.MAX_SIGNATURES + 1)).encode())


@pytest.mark.parametrize(
    "vkey",
    [
        "",
        "example.com/foo",
        "example.com/foo+530d903a",
        "example.com/foo+530D903A+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
        "example.com/foo+530d903b+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
        "example.com/bar+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
        "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2",
        "example.com/foo+530d903a+BekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
        "example com+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
    ],
)
def test_malformed_vkeys(vkey):
    with pytest.raises(MalformedNote):
        note.parse_vkey(vkey)


def test_checkpoint_roundtrip_and_open():
    data = cp.sign_checkpoint(CHECKPOINT, LOG)
    parsed, _ = cp.open_checkpoint(data, [LOG.verifier], origin="log.example")
    assert parsed == CHECKPOINT
    with pytest.raises(MalformedNote):
        cp.open_checkpoint(data, [LOG.verifier], origin="other.example")
    ext = cp.Checkpoint("o", 0, EMPTY_ROOT, ("ext line",))
    assert cp.parse_checkpoint(ext.to_text()) == ext


@pytest.mark.parametrize(
    "text",
    [
        "o\n5\n",
        "o\n5\nAAAA\n",
        "o\n05\n" + base64.b64encode(bytes(32)).decode() + "\n",
        "o\n-5\n" + base64.b64encode(bytes(32)).decode() + "\n",
        "o\n+5\n" + base64.b64encode(bytes(32)).decode() + "\n",
        "o\n9223372036854775808\n" + base64.b64encode(bytes(32)).decode() + "\n",
        "\n5\n" + base64.b64encode(bytes(32)).decode() + "\n",
        "o\n5\n" + base64.b64encode(bytes(32)).decode(),
        "o\n5\n" + base64.b64encode(bytes(32)).decode() + "\n\n",
        "o\n5\n" + base64.b64encode(bytes(33)).decode() + "\n",
        "o\n\u0665\n" + base64.b64encode(bytes(32)).decode() + "\n",
    ],
)
def test_malformed_checkpoints(text):
    with pytest.raises(MalformedNote):
        cp.parse_checkpoint(text)


@given(st.binary(max_size=400))
def test_fuzz_parse_note(data):
    try:
        note.parse_note(data)
    except MalformedNote:
        pass


@given(st.data())
def test_fuzz_mutated_signed_checkpoint(data):
    good = bytearray(cp.sign_checkpoint(CHECKPOINT, LOG))
    i = data.draw(st.integers(0, len(good) - 1))
    good[i] = data.draw(st.integers(0, 255))
    try:
        c, _ = cp.open_checkpoint(bytes(good), [LOG.verifier])
    except CryptoError:
        return
    assert c == CHECKPOINT  # only an unchanged byte can verify


@given(st.text(max_size=120))
def test_fuzz_vkey_and_checkpoint_text(s):
    for fn in (note.parse_vkey, cp.parse_checkpoint):
        try:
            fn(s)
        except MalformedNote:
            pass


PROOF = cp.format_tlog_proof(cp.TlogProof(3, (bytes(32), bytes([1]) * 32), cp.sign_checkpoint(CHECKPOINT, LOG), b"entry"))


def test_tlog_proof_roundtrip_and_strictness():
    p = cp.parse_tlog_proof(PROOF)
    assert (p.index, p.extra, len(p.proof)) == (3, b"entry", 2)
    assert cp.open_checkpoint(p.checkpoint_note, [LOG.verifier])[0] == CHECKPOINT
    assert cp.format_tlog_proof(p) == PROOF
    for bad in (
        PROOF.replace(b"tlog-proof@v1", b"tlog-proof@v2"),
        PROOF.replace(b"index 3", b"index 03"),
        PROOF.replace(b"index 3\n", b""),
        PROOF.replace(b"extra ZW50cnk=", b"extra ZW50cnk"),
        PROOF.replace(b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", b"AAAA"),
        PROOF.split(b"\n\n")[0],
        b"\xff" + PROOF,
    ):
        with pytest.raises(MalformedNote):
            cp.parse_tlog_proof(bad)


@given(st.data())
def test_fuzz_tlog_proof(data):
    raw = bytearray(PROOF)
    for _ in range(data.draw(st.integers(1, 3))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    try:
        cp.parse_tlog_proof(bytes(raw))
    except MalformedNote:
        pass
    try:
        cp.parse_tlog_proof(data.draw(st.binary(max_size=200)))
    except MalformedNote:
        pass
