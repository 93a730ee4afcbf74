"""``protocol.trust``: the trust document's strict decoder (Hypothesis), its anchor, the
invite format, the witness quorum check, and the ``[log]`` configuration that feeds it."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto.checkpoint import Checkpoint, parse_checkpoint, sign_checkpoint
from crypto.note import SIG_COSIGNATURE_V1, MalformedNote, Signer, parse_note
from protocol.trust import (
    TrustDocument,
    TrustDocumentInvalid,
    check_witnesses,
    format_invite,
    parse_peer_log_key,
    parse_trust_document,
    peer_log_key_text,
    split_invite,
)
from server.config import ConfigError, config_from_dict

LOG = Signer("a.example", bytes(range(32)))
W1 = Signer("w1.example/witness", bytes([1] * 32), SIG_COSIGNATURE_V1)
W2 = Signer("w2.example/witness", bytes([2] * 32), SIG_COSIGNATURE_V1)
PEER = Signer("b.example", bytes([3] * 32))


def _doc(quorum: int = 0) -> TrustDocument:
    return TrustDocument.of("a.example", LOG.verifier.vkey(), quorum,
                            [W2.verifier.vkey(), W1.verifier.vkey()],
                            {"b.example": PEER.verifier.vkey()})


def test_round_trip_and_canonical_form():
    doc = _doc(1)
    data = doc.encode()
    assert data.startswith(b"confide.trust/v1\nserver a.example\nlog a.example+")
    assert parse_trust_document(data) == doc
    assert doc.peer_log_key("b.example") == PEER.verifier.vkey()
    for bad in (data.replace(b"witness-quorum 1", b"witness-quorum 01"), data[:-1], data + b"\n",
                data.replace(b"server a.example", b"server b.example"),
                data.replace(b"witness-quorum 1", b"witness-quorum 3")):
        with pytest.raises(TrustDocumentInvalid):
            parse_trust_document(bad)
    lines = data.decode().splitlines(keepends=True)
    swapped = "".join(lines[:4] + [lines[5], lines[4]] + lines[6:]).encode()  # witnesses unsorted
    with pytest.raises(TrustDocumentInvalid):
        parse_trust_document(swapped)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_decoder_refuses_or_round_trips_any_bytes(data):
    try:
        doc = parse_trust_document(data)
    except TrustDocumentInvalid:
        return
    assert doc.encode() == data


@settings(max_examples=200, deadline=None)
@given(st.integers(0, len(_doc().encode()) - 1), st.integers(0, 255))
def test_any_changed_byte_is_refused_or_changes_the_anchor(pos, value):
    data = bytearray(_doc(1).encode())
    if data[pos] == value:
        return
    data[pos] = value
    try:
        doc = parse_trust_document(bytes(data))
    except TrustDocumentInvalid:
        return
    assert doc.anchor != _doc(1).anchor


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_statement_and_invite_decoders_refuse_or_round_trip(text):
    try:
        origin, peer, key = parse_peer_log_key(text)
    except TrustDocumentInvalid:
        pass
    else:
        assert peer_log_key_text(origin, peer, key) == text
    try:
        code, anchor = split_invite(text)
    except TrustDocumentInvalid:
        return
    assert anchor is None or format_invite(code, anchor) == text.strip()


def test_peer_log_key_statement():
    text = peer_log_key_text("a.example", "b.example", PEER.verifier.vkey())
    assert parse_peer_log_key(text) == ("a.example", "b.example", PEER.verifier.vkey())
    for bad in (text.replace("peer b.example", "peer c.example"), text + "\n",
                text.replace("origin", "Origin"), text.replace("b.example", "a.example")):
        with pytest.raises(TrustDocumentInvalid):
            parse_peer_log_key(bad)
    with pytest.raises(MalformedNote):  # a statement can never pass as a checkpoint
        parse_checkpoint(text)


def test_invite_carries_the_anchor():
    anchor = _doc().anchor
    assert len(anchor) == 43
    assert split_invite(format_invite("ABCD-EFGH-JKLM-NPQR", anchor)) == ("ABCD-EFGH-JKLM-NPQR", anchor)
    assert split_invite("ABCD-EFGH-JKLM-NPQR") == ("ABCD-EFGH-JKLM-NPQR", None)
    for bad in ("X#short", "X#" + "!" * 43, "X#" + anchor + "A"):
        with pytest.raises(TrustDocumentInvalid):
            split_invite(bad)


def test_witness_quorum():
    note = sign_checkpoint(Checkpoint("a.example", 5, bytes(32)), LOG)
    text = parse_note(note).text
    now = int(time.time())
    one = note + W1.sign(text, now).line().encode()
    both = one + W2.sign(text, now).line().encode()
    assert check_witnesses(note, _doc(0)) == 0
    with pytest.raises(TrustDocumentInvalid, match="0 of the 1"):
        check_witnesses(note, _doc(1))
    assert check_witnesses(one, _doc(1)) == 1
    with pytest.raises(TrustDocumentInvalid, match="1 of the 2"):
        check_witnesses(one, _doc(2))
    assert check_witnesses(both, _doc(2)) == 2
    forged = bytearray(one)
    forged[-10] ^= 1  # a listed witness's cosignature that does not verify
    with pytest.raises(TrustDocumentInvalid):
        check_witnesses(bytes(forged), _doc(1))


def test_log_section_of_the_configuration():
    cfg = config_from_dict({"server_name": "a.example", "log": {
        "witnesses": [W1.verifier.vkey()], "witness_quorum": 1,
        "peer_log_keys": {"b.example": PEER.verifier.vkey()}}})
    assert cfg.log.witness_quorum == 1 and cfg.log.peer_log_keys == (("b.example", PEER.verifier.vkey()),)
    for bad in ({"witness_quorum": 1}, {"witnesses": [LOG.verifier.vkey()]},
                {"peer_log_keys": {"b.example": LOG.verifier.vkey()}}, {"unknown": 1}):
        with pytest.raises(ConfigError):
            config_from_dict({"server_name": "a.example", "log": bad})


def test_audit_verify_takes_the_log_key_from_the_anchor(tmp_path, capsys):
    from server.cli import main as cli_main
    from tests.harness import LoopbackServer

    server = LoopbackServer(tmp_path)
    try:
        anchor = server.invite().partition("#")[2]
        assert cli_main(["audit", "verify", server.url, "--anchor", anchor]) == 0
        assert "OK" in capsys.readouterr().out
        assert cli_main(["audit", "verify", server.url, "--anchor", "A" * 43]) == 1
        assert "does not match the anchor" in capsys.readouterr().err
        other = Signer("test.example", bytes(32)).verifier.vkey()
        assert cli_main(["audit", "verify", server.url, "--anchor", anchor, "--key", other]) == 1
        assert "not the log key of the anchored" in capsys.readouterr().err
    finally:
        server.stop()
