"""HPKE (RFC 9180): negative and property tests.

The official vectors run through ``client/conformance/hpke.py`` in
``tests/crypto/test_vectors.py``; what that checker covers:

Vectors: ``hpke/test-vectors-x25519-sha256.json``, the RFC 9180 final set
(cfrg/draft-irtf-cfrg-hpke ``test-vectors.json``) restricted to
DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 with AES-128-GCM, ChaCha20-Poly1305
and export-only, one entry per AEAD and mode (12). For each entry the runner
checks DeriveKeyPair for every key, the sender's KEM output and key schedule
(enc, shared_secret, key_schedule_context, secret, key, base_nonce,
exporter_secret) with ``ikmE`` injected through the rng, the receiver's
matching context, all encryptions in sequence order (seal gives ``ct``, open
gives ``pt`` back) and all exports on both sides.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto.errors import CryptoError, DecryptError, InvalidKey, UnsupportedCipherSuite
from crypto.hpke import (
    AeadId,
    ExportOnly,
    ExportTooLong,
    Hpke,
    HpkeError,
    InconsistentPskInputs,
    KemId,
    MessageLimitReached,
    MissingPsk,
    MissingSenderKey,
    Mode,
    PskNotNeeded,
    SenderKeyNotNeeded,
    WrongRole,
)
from crypto.rng import FixedRng, SeededRng

VECTORS = "hpke/test-vectors-x25519-sha256.json"

h = bytes.fromhex


# -- negative tests ------------------------------------------------------------

CHACHA = Hpke(AeadId.CHACHA20_POLY1305)
PSK, PSK_ID = b"p" * 32, b"psk-id"
SK_R, PK_R = CHACHA.derive_key_pair(b"r" * 32)
SK_S, PK_S = CHACHA.derive_key_pair(b"s" * 32)
RNG = SeededRng("hpke-tests")

# RFC 7748 section 6.1 / libsodium's blocklist: points of small order on Curve25519.
LOW_ORDER_POINTS = [
    bytes(32),
    (1).to_bytes(32, "little"),
    h("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
    h("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
    h("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
]


def _sealed(mode: Mode = Mode.BASE) -> tuple[bytes, bytes, dict]:
    kw: dict = {}
    if mode in (Mode.PSK, Mode.AUTH_PSK):
        kw.update(psk=PSK, psk_id=PSK_ID)
    sender_kw = dict(kw, sk_s=SK_S) if mode in (Mode.AUTH, Mode.AUTH_PSK) else kw
    receiver_kw = dict(kw, pk_s=PK_S) if mode in (Mode.AUTH, Mode.AUTH_PSK) else kw
    enc, ct = CHACHA.seal(PK_R, b"info", b"aad", b"hello", rng=RNG, mode=mode, **sender_kw)
    return enc, ct, receiver_kw


@pytest.mark.parametrize("aead", [AeadId.AES_128_GCM, AeadId.CHACHA20_POLY1305])
@pytest.mark.parametrize("index", [0, 5, -1])
def test_flipped_byte_fails_to_open(aead: AeadId, index: int) -> None:
    suite = Hpke(aead)
    enc, ct = suite.seal(PK_R, b"info", b"aad", b"hello", rng=RNG)
    flipped = bytearray(ct)
    flipped[index] ^= 0x01  # -1 is in the tag
    with pytest.raises(DecryptError):
        suite.open(enc, SK_R, b"info", b"aad", bytes(flipped))
    assert suite.open(enc, SK_R, b"info", b"aad", ct) == b"hello"


def test_wrong_aad_or_info_fails_to_open() -> None:
    enc, ct, _ = _sealed()
    with pytest.raises(DecryptError):
        CHACHA.open(enc, SK_R, b"info", b"other aad", ct)
    with pytest.raises(DecryptError):
        CHACHA.open(enc, SK_R, b"other info", b"aad", ct)


def test_wrong_psk_or_psk_id_fails_to_open() -> None:
    enc, ct, kw = _sealed(Mode.PSK)
    assert CHACHA.open(enc, SK_R, b"info", b"aad", ct, mode=Mode.PSK, **kw) == b"hello"
    with pytest.raises(DecryptError):
        CHACHA.open(enc, SK_R, b"info", b"aad", ct, mode=Mode.PSK, psk=b"q" * 32, psk_id=PSK_ID)
    with pytest.raises(DecryptError):
        CHACHA.open(enc, SK_R, b"info", b"aad", ct, mode=Mode.PSK, psk=PSK, psk_id=b"other")


def test_wrong_sender_key_fails_to_open() -> None:
    enc, ct, _ = _sealed(Mode.AUTH)
    _, other_pk = CHACHA.derive_key_pair(b"o" * 32)
    with pytest.raises(DecryptError):
        CHACHA.open(enc, SK_R, b"info", b"aad", ct, mode=Mode.AUTH, pk_s=other_pk)


def test_wrong_mode_fails_to_open() -> None:
    enc, ct, _ = _sealed(Mode.AUTH)
    with pytest.raises(DecryptError):  # same shared secret shape, but not the same KEM context
        CHACHA.open(enc, SK_R, b"info", b"aad", ct)


@pytest.mark.parametrize(
    ("mode", "kw", "error"),
    [
        (Mode.BASE, {"psk": PSK, "psk_id": PSK_ID}, PskNotNeeded),
        (Mode.AUTH, {"psk": PSK, "psk_id": PSK_ID}, PskNotNeeded),
        (Mode.PSK, {}, MissingPsk),
        (Mode.AUTH_PSK, {}, MissingPsk),
        (Mode.PSK, {"psk": PSK}, InconsistentPskInputs),
        (Mode.PSK, {"psk_id": PSK_ID}, InconsistentPskInputs),
        (Mode.BASE, {"psk": PSK}, InconsistentPskInputs),
    ],
)
def test_verify_psk_inputs(mode: Mode, kw: dict, error: type[HpkeError]) -> None:
    """VerifyPSKInputs (RFC 9180 section 5.1), on both sides, before any key is used."""
    auth = mode in (Mode.AUTH, Mode.AUTH_PSK)
    sender_kw = dict(kw, sk_s=SK_S) if auth else kw
    receiver_kw = dict(kw, pk_s=PK_S) if auth else kw
    with pytest.raises(error) as info:
        CHACHA.setup_sender(PK_R, b"", rng=FixedRng(), mode=mode, **sender_kw)
    assert isinstance(info.value, HpkeError) and info.value.code.startswith("hpke_")
    with pytest.raises(error):
        CHACHA.setup_receiver(PK_R, SK_R, b"", mode=mode, **receiver_kw)


def test_sender_key_must_match_mode() -> None:
    with pytest.raises(MissingSenderKey):
        CHACHA.setup_sender(PK_R, rng=RNG, mode=Mode.AUTH)
    with pytest.raises(MissingSenderKey):
        CHACHA.setup_receiver(PK_R, SK_R, mode=Mode.AUTH_PSK, psk=PSK, psk_id=PSK_ID)
    with pytest.raises(SenderKeyNotNeeded):
        CHACHA.setup_sender(PK_R, rng=RNG, sk_s=SK_S)
    with pytest.raises(SenderKeyNotNeeded):
        CHACHA.setup_receiver(PK_R, SK_R, mode=Mode.PSK, psk=PSK, psk_id=PSK_ID, pk_s=PK_S)
    with pytest.raises(HpkeError):
        CHACHA.setup_sender(PK_R, rng=RNG, mode=7)


@pytest.mark.parametrize("point", LOW_ORDER_POINTS, ids=lambda p: p.hex()[:8])
def test_low_order_public_keys_are_rejected(point: bytes) -> None:
    with pytest.raises(InvalidKey):
        CHACHA.setup_sender(point, rng=RNG)
    with pytest.raises(InvalidKey):
        CHACHA.setup_receiver(point, SK_R)
    enc, _, _ = _sealed(Mode.AUTH)
    with pytest.raises(InvalidKey):
        CHACHA.setup_receiver(enc, SK_R, mode=Mode.AUTH, pk_s=point)


@pytest.mark.parametrize("bad", [b"", bytes(31), bytes(33), PK_R + b"\x00"])
def test_malformed_keys_are_rejected(bad: bytes) -> None:
    with pytest.raises(InvalidKey):
        CHACHA.setup_sender(bad, rng=RNG)
    with pytest.raises(InvalidKey):
        CHACHA.setup_receiver(bad, SK_R)
    with pytest.raises(InvalidKey):
        CHACHA.setup_sender(PK_R, rng=RNG, mode=Mode.AUTH, sk_s=bad)
    enc, _, _ = _sealed()
    with pytest.raises(InvalidKey):
        CHACHA.setup_receiver(enc, bad)


def test_export_only_context_cannot_seal_or_open() -> None:
    suite = Hpke(AeadId.EXPORT_ONLY)
    enc, sender = suite.setup_sender(PK_R, b"info", rng=RNG)
    receiver = suite.setup_receiver(enc, SK_R, b"info")
    assert sender.key == sender.base_nonce == b""
    with pytest.raises(ExportOnly) as info:
        sender.seal(b"", b"pt")
    assert isinstance(info.value, HpkeError)
    with pytest.raises(ExportOnly):
        receiver.open(b"", bytes(16))
    with pytest.raises(ExportOnly):
        suite.seal(PK_R, b"", b"", b"pt", rng=RNG)
    assert sender.export(b"ctx", 42) == receiver.export(b"ctx", 42)
    assert len(sender.export(b"ctx", 42)) == 42


def test_single_shot_export() -> None:
    suite = Hpke(AeadId.EXPORT_ONLY)
    enc, secret = suite.send_export(PK_R, b"info", b"ctx", 32, rng=RNG, mode=Mode.AUTH, sk_s=SK_S)
    assert suite.receive_export(enc, SK_R, b"info", b"ctx", 32, mode=Mode.AUTH, pk_s=PK_S) == secret
    assert suite.receive_export(enc, SK_R, b"info", b"other", 32, mode=Mode.AUTH, pk_s=PK_S) != secret


def test_export_length_bounds() -> None:
    _, ctx = CHACHA.setup_sender(PK_R, rng=RNG)
    assert len(ctx.export(b"", 255 * 32)) == 255 * 32
    assert ctx.export(b"", 0) == b""
    for bad in (255 * 32 + 1, -1):
        with pytest.raises(ExportTooLong):
            ctx.export(b"", bad)


def test_contexts_keep_their_role() -> None:
    enc, sender = CHACHA.setup_sender(PK_R, rng=RNG)
    receiver = CHACHA.setup_receiver(enc, SK_R)
    ct = sender.seal(b"", b"x")
    with pytest.raises(WrongRole):
        sender.open(b"", ct)
    with pytest.raises(WrongRole):
        receiver.seal(b"", b"x")
    assert receiver.open(b"", ct) == b"x"


def test_failed_open_does_not_advance_sequence() -> None:
    enc, sender = CHACHA.setup_sender(PK_R, rng=RNG)
    receiver = CHACHA.setup_receiver(enc, SK_R)
    ct0, ct1 = sender.seal(b"", b"zero"), sender.seal(b"", b"one")
    with pytest.raises(DecryptError):
        receiver.open(b"", ct1)  # out of order: nonce of seq 0
    assert receiver.seq == 0
    assert receiver.open(b"", ct0) == b"zero"
    assert receiver.open(b"", ct1) == b"one"
    assert receiver.seq == 2


def test_sequence_overflow_raises() -> None:
    enc, sender = CHACHA.setup_sender(PK_R, rng=RNG)
    receiver = CHACHA.setup_receiver(enc, SK_R)
    last = (1 << 96) - 2
    sender.seq = receiver.seq = last
    ct = sender.seal(b"", b"last")
    assert receiver.open(b"", ct) == b"last"
    assert sender.seq == receiver.seq == last + 1
    with pytest.raises(MessageLimitReached) as info:
        sender.seal(b"", b"one too many")
    assert isinstance(info.value, HpkeError)
    with pytest.raises(MessageLimitReached):
        receiver.open(b"", ct)
    assert sender.seq == last + 1


def test_unsupported_suite() -> None:
    for args in [(0x0002,), (AeadId.AES_128_GCM, 0x0010), (AeadId.AES_128_GCM, KemId(0x20), 0x0003)]:
        with pytest.raises(UnsupportedCipherSuite):
            Hpke(*args)


def test_generate_key_pair_uses_rng() -> None:
    ikm = b"k" * 32
    assert CHACHA.generate_key_pair(FixedRng(ikm)) == CHACHA.derive_key_pair(ikm)


# -- property tests ----------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    aead=st.sampled_from([AeadId.AES_128_GCM, AeadId.CHACHA20_POLY1305, AeadId.EXPORT_ONLY]),
    mode=st.sampled_from(list(Mode)),
    pt=st.binary(max_size=300),
    aad=st.binary(max_size=64),
    info=st.binary(max_size=64),
    psk=st.binary(min_size=32, max_size=64),
    psk_id=st.binary(min_size=1, max_size=32),
    ikm_e=st.binary(min_size=32, max_size=32),
)
def test_round_trip(aead, mode, pt, aad, info, psk, psk_id, ikm_e) -> None:
    suite = Hpke(aead)
    kw = {"psk": psk, "psk_id": psk_id} if mode in (Mode.PSK, Mode.AUTH_PSK) else {}
    auth = mode in (Mode.AUTH, Mode.AUTH_PSK)
    sender_kw = dict(kw, sk_s=SK_S) if auth else kw
    receiver_kw = dict(kw, pk_s=PK_S) if auth else kw
    if aead == AeadId.EXPORT_ONLY:
        enc, secret = suite.send_export(PK_R, info, aad, 48, rng=FixedRng(ikm_e), mode=mode, **sender_kw)
        assert suite.receive_export(enc, SK_R, info, aad, 48, mode=mode, **receiver_kw) == secret
        return
    enc, ct = suite.seal(PK_R, info, aad, pt, rng=FixedRng(ikm_e), mode=mode, **sender_kw)
    assert len(ct) == len(pt) + 16
    assert suite.open(enc, SK_R, info, aad, ct, mode=mode, **receiver_kw) == pt


@settings(max_examples=60, deadline=None)
@given(enc=st.binary(max_size=40), ct=st.binary(max_size=64), aad=st.binary(max_size=8))
def test_open_of_random_bytes_raises_only_typed_errors(enc: bytes, ct: bytes, aad: bytes) -> None:
    with pytest.raises(CryptoError):
        CHACHA.open(enc, SK_R, b"", aad, ct)
