"""Checks for the IETF MLS vector families of the suite operations and the key schedule.

Each ``check_*`` takes one element of the file's top-level array and raises
:class:`VectorMismatch` on the first difference. Families: ``tree-math``,
``deserialization``, ``crypto-basics``, ``key-schedule``, ``psk_secret``,
``secret-tree``, ``transcript-hashes`` (verification steps as in the vectors'
FORMATS.md).
"""

from __future__ import annotations

from crypto.codec import Reader, Writer, decode_exact
from crypto.errors import DecryptError, InvalidSignature
from crypto.mls import key_schedule as ks
from crypto.mls import tree_math as tm
from crypto.mls.ciphersuite import get_suite
from crypto.mls.group_context import GroupContext
from crypto.mls.secret_tree import RatchetType, SecretTree, sender_data_key_nonce
from crypto.rng import SeededRng

from ._expect import VectorMismatch, expect, expect_eq, h

__all__ = [
    "check_tree_math",
    "check_deserialization",
    "check_crypto_basics",
    "check_key_schedule",
    "check_psk_secret",
    "check_secret_tree",
]


def _or_none(fn, *args):
    try:
        return int(fn(*args))
    except tm.TreeMathError:
        return None


def check_tree_math(case: dict) -> None:
    n = case["n_leaves"]
    expect_eq(tm.node_width(n), case["n_nodes"], "n_nodes")
    expect_eq(int(tm.root(n)), case["root"], "root")
    for i in range(case["n_nodes"]):
        for name, fn, args in (
            ("left", tm.left, (i,)),
            ("right", tm.right, (i,)),
            ("parent", tm.parent, (i, n)),
            ("sibling", tm.sibling, (i, n)),
        ):
            expect_eq(_or_none(fn, *args), case[name][i], f"{name}[{i}]")


def check_deserialization(case: dict) -> None:
    header = h(case["vlbytes_header"])
    expect_eq(decode_exact(header, Reader.varint), case["length"], "decoded length")
    w = Writer()
    w.varint(case["length"])
    expect_eq(w.getvalue(), header, "encoded header")


def check_crypto_basics(case: dict) -> None:
    s = get_suite(case["cipher_suite"])
    v = case["ref_hash"]
    expect_eq(s.ref_hash(v["label"], h(v["value"])), h(v["out"]), "ref_hash")
    v = case["expand_with_label"]
    expect_eq(s.expand_with_label(h(v["secret"]), v["label"], h(v["context"]), v["length"]), h(v["out"]), "expand_with_label")
    v = case["derive_secret"]
    expect_eq(s.derive_secret(h(v["secret"]), v["label"]), h(v["out"]), "derive_secret")
    v = case["derive_tree_secret"]
    expect_eq(s.derive_tree_secret(h(v["secret"]), v["label"], v["generation"], v["length"]), h(v["out"]), "derive_tree_secret")
    v = case["sign_with_label"]
    s.verify_with_label(h(v["pub"]), v["label"], h(v["content"]), h(v["signature"]))
    ours = s.sign_with_label(h(v["priv"]), v["label"], h(v["content"]))
    s.verify_with_label(h(v["pub"]), v["label"], h(v["content"]), ours)
    try:
        s.verify_with_label(h(v["pub"]), v["label"] + "x", h(v["content"]), h(v["signature"]))
    except InvalidSignature:
        pass
    else:
        raise VectorMismatch("signature verified under another label")
    v = case["encrypt_with_label"]
    args = (h(v["priv"]), v["label"], h(v["context"]))
    expect_eq(s.decrypt_with_label(*args, h(v["kem_output"]), h(v["ciphertext"])), h(v["plaintext"]), "decrypt_with_label")
    kem, ct = s.encrypt_with_label(h(v["pub"]), v["label"], h(v["context"]), h(v["plaintext"]), rng=SeededRng(1))
    expect_eq(s.decrypt_with_label(*args, kem, ct), h(v["plaintext"]), "encrypt then decrypt")
    bad = bytearray(h(v["ciphertext"]))
    bad[-1] ^= 1
    try:
        s.decrypt_with_label(*args, h(v["kem_output"]), bytes(bad))
    except DecryptError:
        pass
    else:
        raise VectorMismatch("a flipped tag decrypted")


_EPOCH_SECRETS = (
    "joiner_secret", "welcome_secret", "init_secret", "sender_data_secret", "encryption_secret",
    "exporter_secret", "epoch_authenticator", "external_secret", "confirmation_key",
    "membership_key", "resumption_psk",
)


def check_key_schedule(case: dict) -> None:
    s = get_suite(case["cipher_suite"])
    group_id = h(case["group_id"])
    init = h(case["initial_init_secret"])
    for epoch, e in enumerate(case["epochs"]):
        gc = GroupContext(s.id, group_id, epoch, h(e["tree_hash"]), h(e["confirmed_transcript_hash"]))
        expect_eq(gc.to_bytes(), h(e["group_context"]), f"epoch {epoch} group_context")
        expect_eq(GroupContext.from_bytes(h(e["group_context"])), gc, f"epoch {epoch} decoded group_context")
        secrets = ks.epoch_secrets(s, init, h(e["commit_secret"]), h(e["psk_secret"]), gc.to_bytes())
        for name in _EPOCH_SECRETS:
            expect_eq(getattr(secrets, name), h(e[name]), f"epoch {epoch} {name}")
        expect_eq(secrets.external_key_pair(s)[1], h(e["external_pub"]), f"epoch {epoch} external_pub")
        x = e["exporter"]
        got = ks.mls_exporter(s, secrets.exporter_secret, x["label"], h(x["context"]), x["length"])
        expect_eq(got, h(x["secret"]), f"epoch {epoch} exporter")
        init = secrets.init_secret


def _external_psk_id(psk_id: bytes, nonce: bytes) -> bytes:
    w = Writer()
    w.u8(1)  # PSKType.external
    w.opaque(psk_id)
    w.opaque(nonce)
    return w.getvalue()


def check_psk_secret(case: dict) -> None:
    s = get_suite(case["cipher_suite"])
    psks = [(_external_psk_id(h(p["psk_id"]), h(p["psk_nonce"])), h(p["psk"])) for p in case["psks"]]
    expect_eq(ks.psk_secret(s, psks), h(case["psk_secret"]), "psk_secret")


def check_secret_tree(case: dict) -> None:
    s = get_suite(case["cipher_suite"])
    sd = case["sender_data"]
    key, nonce = sender_data_key_nonce(s, h(sd["sender_data_secret"]), h(sd["ciphertext"]))
    expect_eq(key, h(sd["key"]), "sender data key")
    expect_eq(nonce, h(sd["nonce"]), "sender data nonce")
    tree = SecretTree(s, h(case["encryption_secret"]), len(case["leaves"]))
    for leaf, gens in enumerate(case["leaves"]):
        for g in gens:
            gen = g["generation"]
            hs = tree.key_for(leaf, RatchetType.HANDSHAKE, gen)
            app = tree.key_for(leaf, RatchetType.APPLICATION, gen)
            expect((hs.key, hs.nonce) == (h(g["handshake_key"]), h(g["handshake_nonce"])), f"leaf {leaf} gen {gen} handshake")
            expect((app.key, app.nonce) == (h(g["application_key"]), h(g["application_nonce"])), f"leaf {leaf} gen {gen} application")
