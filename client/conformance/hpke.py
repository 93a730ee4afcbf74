"""Check for ``hpke/test-vectors-x25519-sha256.json`` (RFC 9180 Appendix A format).

For one entry: DeriveKeyPair for every key given; the sender's KEM output and
key schedule (enc, shared_secret, key_schedule_context, secret, key,
base_nonce, exporter_secret) with ``ikmE`` injected through the rng; the
receiver's matching context; every encryption in sequence order (seal gives
``ct``, open gives ``pt`` back); every export on both sides.
"""

from __future__ import annotations

from crypto.hpke import AeadId, ExportOnly, Hpke, KdfId, KemId, Mode
from crypto.rng import FixedRng

from ._expect import VectorMismatch, expect_eq, h

__all__ = ["check_hpke"]


def check_hpke(case: dict) -> None:
    suite = Hpke(AeadId(case["aead_id"]), KemId(case["kem_id"]), KdfId(case["kdf_id"]))
    sk_r, pk_r = suite.derive_key_pair(h(case["ikmR"]))
    expect_eq((sk_r, pk_r), (h(case["skRm"]), h(case["pkRm"])), "recipient key pair")
    expect_eq(suite.derive_key_pair(h(case["ikmE"])), (h(case["skEm"]), h(case["pkEm"])), "ephemeral key pair")
    mode = Mode(case["mode"])
    sender_kw: dict = {"mode": mode}
    if "psk" in case:
        sender_kw.update(psk=h(case["psk"]), psk_id=h(case["psk_id"]))
    receiver_kw = dict(sender_kw)
    if "ikmS" in case:
        sk_s, pk_s = suite.derive_key_pair(h(case["ikmS"]))
        expect_eq((sk_s, pk_s), (h(case["skSm"]), h(case["pkSm"])), "sender key pair")
        sender_kw["sk_s"], receiver_kw["pk_s"] = sk_s, pk_s
    info = h(case["info"])

    shared_secret, enc = suite._encap(pk_r, rng=FixedRng(h(case["ikmE"])), sk_s=sender_kw.get("sk_s"))
    expect_eq(enc, h(case["enc"]), "enc")
    expect_eq(shared_secret, h(case["shared_secret"]), "shared_secret")
    expect_eq(suite._decap(enc, sk_r, pk_s=receiver_kw.get("pk_s")), shared_secret, "decap")
    ksc, secret = suite._schedule_secrets(mode, shared_secret, info, sender_kw.get("psk", b""), sender_kw.get("psk_id", b""))
    expect_eq(ksc, h(case["key_schedule_context"]), "key_schedule_context")
    expect_eq(secret, h(case["secret"]), "secret")

    enc, sender = suite.setup_sender(pk_r, info, rng=FixedRng(h(case["ikmE"])), **sender_kw)
    receiver = suite.setup_receiver(enc, sk_r, info, **receiver_kw)
    for who, ctx in (("sender", sender), ("receiver", receiver)):
        expect_eq(ctx.key, h(case["key"]), f"{who} key")
        expect_eq(ctx.base_nonce, h(case["base_nonce"]), f"{who} base_nonce")
        expect_eq(ctx.exporter_secret, h(case["exporter_secret"]), f"{who} exporter_secret")
    for seq, item in enumerate(case["encryptions"]):
        aad, pt = h(item["aad"]), h(item["pt"])
        ct = sender.seal(aad, pt)
        expect_eq(ct, h(item["ct"]), f"encryption {seq}")
        expect_eq(receiver.open(aad, ct), pt, f"decryption {seq}")
    for item in case["exports"]:
        for who, ctx in (("sender", sender), ("receiver", receiver)):
            got = ctx.export(h(item["exporter_context"]), item["L"])
            expect_eq(got, h(item["exported_value"]), f"{who} export")
    if case["aead_id"] == AeadId.EXPORT_ONLY:
        try:
            sender.seal(b"", b"pt")
        except ExportOnly:
            pass
        else:
            raise VectorMismatch("export-only context sealed")
