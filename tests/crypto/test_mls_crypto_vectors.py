"""IETF MLS vectors for the suite operations and the key schedule.

Sources (``../shared/vectors/mls``): ``crypto-basics.json``, ``key-schedule.json``,
``psk_secret.json``, ``secret-tree.json``, ``deserialization.json``. Suites 1
and 3 run; the others are skipped as not supported.
"""

from __future__ import annotations

import pytest

from crypto.codec import Reader, Writer, decode_exact
from crypto.errors import DecryptError, InvalidSignature
from crypto.mls import key_schedule as ks
from crypto.mls.ciphersuite import get_suite
from crypto.mls.group_context import GroupContext
from crypto.mls.secret_tree import RatchetType, SecretTree, sender_data_key_nonce
from crypto.rng import SeededRng
from tests.conftest import vector_params

h = bytes.fromhex


@pytest.mark.parametrize("case", vector_params("mls/crypto-basics.json"))
def test_crypto_basics(case):
    s = get_suite(case["cipher_suite"])
    v = case["ref_hash"]
    assert s.ref_hash(v["label"], h(v["value"])) == h(v["out"])
    v = case["expand_with_label"]
    assert s.expand_with_label(h(v["secret"]), v["label"], h(v["context"]), v["length"]) == h(v["out"])
    v = case["derive_secret"]
    assert s.derive_secret(h(v["secret"]), v["label"]) == h(v["out"])
    v = case["derive_tree_secret"]
    assert s.derive_tree_secret(h(v["secret"]), v["label"], v["generation"], v["length"]) == h(v["out"])
    v = case["sign_with_label"]
    s.verify_with_label(h(v["pub"]), v["label"], h(v["content"]), h(v["signature"]))
    ours = s.sign_with_label(h(v["priv"]), v["label"], h(v["content"]))
    s.verify_with_label(h(v["pub"]), v["label"], h(v["content"]), ours)
    with pytest.raises(InvalidSignature):
        s.verify_with_label(h(v["pub"]), v["label"] + "x", h(v["content"]), h(v["signature"]))
    v = case["encrypt_with_label"]
    assert s.decrypt_with_label(h(v["priv"]), v["label"], h(v["context"]), h(v["kem_output"]), h(v["ciphertext"])) == h(v["plaintext"])
    kem, ct = s.encrypt_with_label(h(v["pub"]), v["label"], h(v["context"]), h(v["plaintext"]), rng=SeededRng(1))
    assert s.decrypt_with_label(h(v["priv"]), v["label"], h(v["context"]), kem, ct) == h(v["plaintext"])
    bad = bytearray(h(v["ciphertext"]))
    bad[-1] ^= 1
    with pytest.raises(DecryptError):
        s.decrypt_with_label(h(v["priv"]), v["label"], h(v["context"]), h(v["kem_output"]), bytes(bad))


@pytest.mark.parametrize("case", vector_params("mls/key-schedule.json"))
def test_key_schedule(case):
    s = get_suite(case["cipher_suite"])
    group_id = h(case["group_id"])
    init = h(case["initial_init_secret"])
    for epoch, e in enumerate(case["epochs"]):
        gc = GroupContext(s.id, group_id, epoch, h(e["tree_hash"]), h(e["confirmed_transcript_hash"]))
        assert gc.to_bytes() == h(e["group_context"])
        assert GroupContext.from_bytes(h(e["group_context"])) == gc
        secrets = ks.epoch_secrets(s, init, h(e["commit_secret"]), h(e["psk_secret"]), gc.to_bytes())
        for name in (
            "joiner_secret", "welcome_secret", "init_secret", "sender_data_secret", "encryption_secret",
            "exporter_secret", "epoch_authenticator", "external_secret", "confirmation_key",
            "membership_key", "resumption_psk",
        ):
            assert getattr(secrets, name) == h(e[name]), name
        assert ks.welcome_secret(s, secrets.joiner_secret, h(e["psk_secret"])) == h(e["welcome_secret"])
        assert secrets.external_key_pair(s)[1] == h(e["external_pub"])
        x = e["exporter"]
        assert ks.mls_exporter(s, secrets.exporter_secret, x["label"], h(x["context"]), x["length"]) == h(x["secret"])
        init = secrets.init_secret


def _external_psk_id(psk_id: bytes, nonce: bytes) -> bytes:
    w = Writer()
    w.u8(1)  # PSKType external
    w.opaque(psk_id)
    w.opaque(nonce)
    return w.getvalue()


@pytest.mark.parametrize("case", vector_params("mls/psk_secret.json"))
def test_psk_secret(case):
    s = get_suite(case["cipher_suite"])
    psks = [(_external_psk_id(h(p["psk_id"]), h(p["psk_nonce"])), h(p["psk"])) for p in case["psks"]]
    assert ks.psk_secret(s, psks) == h(case["psk_secret"])


@pytest.mark.parametrize("case", vector_params("mls/secret-tree.json"))
def test_secret_tree(case):
    s = get_suite(case["cipher_suite"])
    sd = case["sender_data"]
    key, nonce = sender_data_key_nonce(s, h(sd["sender_data_secret"]), h(sd["ciphertext"]))
    assert (key, nonce) == (h(sd["key"]), h(sd["nonce"]))
    tree = SecretTree(s, h(case["encryption_secret"]), len(case["leaves"]))
    for leaf, gens in enumerate(case["leaves"]):
        for g in gens:
            hs = tree.key_for(leaf, RatchetType.HANDSHAKE, g["generation"])
            app = tree.key_for(leaf, RatchetType.APPLICATION, g["generation"])
            assert (hs.key, hs.nonce) == (h(g["handshake_key"]), h(g["handshake_nonce"]))
            assert (app.key, app.nonce) == (h(g["application_key"]), h(g["application_nonce"]))


@pytest.mark.parametrize("case", vector_params("mls/deserialization.json", suites=None))
def test_varint_headers(case):
    header = h(case["vlbytes_header"])
    assert decode_exact(header, Reader.varint) == case["length"]
    w = Writer()
    w.varint(case["length"])
    assert w.getvalue() == header


def test_secret_tree_windows_and_replay():
    from crypto.mls.secret_tree import GenerationExpired, GenerationTooFarAhead, KeyAlreadyUsed

    s = get_suite(3)
    sender = SecretTree(s, bytes(32), 4)
    receiver = SecretTree(s, bytes(32), 4, max_forward=10, out_of_order=3)
    sent = [sender.next_key(1, RatchetType.APPLICATION) for _ in range(12)]
    assert receiver.key_for(1, RatchetType.APPLICATION, 5) == sent[5]
    assert receiver.key_for(1, RatchetType.APPLICATION, 3) == sent[3]  # out of order, kept
    with pytest.raises(KeyAlreadyUsed):
        receiver.key_for(1, RatchetType.APPLICATION, 5)
    with pytest.raises(GenerationTooFarAhead):
        receiver.key_for(1, RatchetType.APPLICATION, 17)
    assert receiver.key_for(1, RatchetType.APPLICATION, 9) == sent[9]
    with pytest.raises(GenerationExpired):
        receiver.key_for(1, RatchetType.APPLICATION, 2)  # dropped from the window
    # other leaves and ratchet types are independent
    assert receiver.key_for(0, RatchetType.HANDSHAKE, 0) == sender.next_key(0, RatchetType.HANDSHAKE)
