"""Checks for ``transcript-hashes.json`` and ``message-protection.json`` (steps as in FORMATS.md)."""

from __future__ import annotations

from crypto.mls import transcript
from crypto.mls.ciphersuite import get_suite
from crypto.mls.commit import Commit
from crypto.mls.framing import AuthenticatedContent, ContentType, FramedContent, Sender
from crypto.mls.group_context import GroupContext
from crypto.mls.key_schedule import confirmation_tag
from crypto.mls.message import MLSMessage
from crypto.mls.proposals import Proposal
from crypto.mls.protection import (
    ApplicationNotPrivate,
    EpochKeys,
    confirmed_transcript_hash_input,
    protect_private,
    protect_public,
    unprotect_private,
    unprotect_public,
)
from crypto.mls.secret_tree import SecretTree
from crypto.rng import SeededRng

from ._expect import VectorMismatch, expect_eq, h

__all__ = ["check_transcript_hashes", "check_message_protection"]


def check_transcript_hashes(case: dict) -> None:
    s = get_suite(case["cipher_suite"])
    ac = AuthenticatedContent.from_bytes(h(case["authenticated_content"]))
    expect_eq(ac.content.content_type, ContentType.COMMIT, "content type")
    confirmed = transcript.confirmed_transcript_hash(
        s, h(case["interim_transcript_hash_before"]), confirmed_transcript_hash_input(ac)
    )
    expect_eq(confirmed, h(case["confirmed_transcript_hash_after"]), "confirmed_transcript_hash_after")
    tag = confirmation_tag(s, h(case["confirmation_key"]), confirmed)
    expect_eq(ac.auth.confirmation_tag, tag, "confirmation_tag")
    interim = transcript.interim_transcript_hash(s, confirmed, ac.auth.confirmation_tag)
    expect_eq(interim, h(case["interim_transcript_hash_after"]), "interim_transcript_hash_after")


def check_message_protection(case: dict) -> None:
    s = get_suite(case["cipher_suite"])
    ctx = GroupContext(s.id, h(case["group_id"]), case["epoch"], h(case["tree_hash"]), h(case["confirmed_transcript_hash"]))
    sig_priv, sig_pub = h(case["signature_priv"]), h(case["signature_pub"])
    membership_key = h(case["membership_key"])

    def keys() -> EpochKeys:
        return EpochKeys(s, ctx, membership_key, h(case["sender_data_secret"]), SecretTree(s, h(case["encryption_secret"]), 2))

    raw = {
        ContentType.PROPOSAL: Proposal.from_bytes(h(case["proposal"])),
        ContentType.COMMIT: Commit.from_bytes(h(case["commit"])),
        ContentType.APPLICATION: h(case["application"]),
    }
    names = {ContentType.PROPOSAL: "proposal", ContentType.COMMIT: "commit", ContentType.APPLICATION: "application"}
    rng = SeededRng(b"message-protection")
    for ctype, value in raw.items():
        name = names[ctype]
        tag = bytes(s.hash_len) if ctype == ContentType.COMMIT else None
        content = FramedContent(ctx.group_id, ctx.epoch, Sender.member(1), b"", ctype, value)
        if ctype != ContentType.APPLICATION:
            pub = MLSMessage.from_bytes(h(case[f"{name}_pub"])).body
            ac = unprotect_public(s, ctx, membership_key, sig_pub, pub)
            expect_eq(ac.content.content, value, f"{name}_pub content")
            ours = protect_public(s, ctx, membership_key, sig_priv, content, tag)
            expect_eq(unprotect_public(s, ctx, membership_key, sig_pub, ours).content.content, value, f"{name} public round trip")
        else:
            try:
                protect_public(s, ctx, membership_key, sig_priv, content)
            except ApplicationNotPrivate:
                pass
            else:
                raise VectorMismatch("application data was protected as PublicMessage")
        priv = MLSMessage.from_bytes(h(case[f"{name}_priv"])).body
        ac = unprotect_private(keys(), sig_pub, priv)
        expect_eq(ac.content.content, value, f"{name}_priv content")
        sender_keys, receiver_keys = keys(), keys()
        ours = protect_private(sender_keys, sig_priv, content, tag, padding=7, rng=rng)
        expect_eq(unprotect_private(receiver_keys, sig_pub, ours).content.content, value, f"{name} private round trip")
