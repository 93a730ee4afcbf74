"""Checks for ``messages.json`` (decode, re-encode, same bytes) and ``welcome.json`` (join steps).

``messages.json``: every field of a case decodes as its type (MLSMessage
bodies of the right class and content type, bare structures otherwise) and
re-encodes to exactly the input.

``welcome.json``: find the EncryptedGroupSecrets for the KeyPackage by its
KeyPackageRef, open GroupSecrets with ``init_priv``, derive the welcome key
and open the GroupInfo, verify its signature with ``signer_pub``, and check
the confirmation tag against the epoch secrets derived from the joiner secret
(no PSKs). A modified signature and a wrong init key are refused.
"""

from __future__ import annotations

from collections.abc import Callable

from crypto.errors import DecryptError, InvalidSignature
from crypto.mls.ciphersuite import get_suite
from crypto.mls.commit import Commit
from crypto.mls.framing import ContentType, PrivateMessage, PublicMessage
from crypto.mls.key_package import KeyPackage
from crypto.mls.key_schedule import (
    confirmation_tag,
    epoch_secrets_from_joiner,
    welcome_key_nonce,
    welcome_secret,
)
from crypto.mls.message import MLSMessage
from crypto.mls.proposals import (
    Add,
    ExternalInit,
    GroupContextExtensions,
    PreSharedKey,
    ReInit,
    Remove,
    Update,
)
from crypto.mls.tree_nodes import decode_ratchet_tree, encode_ratchet_tree
from crypto.mls.welcome import GroupInfo, GroupSecrets, Welcome

from ._expect import VectorMismatch, expect, expect_eq, h

__all__ = ["FIELDS", "check_messages", "check_welcome"]


def _mls(body_type: type, content_type: ContentType | None = None) -> Callable[[bytes], bytes]:
    def round_trip(data: bytes) -> bytes:
        msg = MLSMessage.from_bytes(data)
        expect(isinstance(msg.body, body_type), f"body is {type(msg.body).__name__}, want {body_type.__name__}")
        if content_type is not None:
            expect_eq(msg.body.content.content_type, content_type, "content type")
        return msg.to_bytes()

    return round_trip


def _struct(cls: type) -> Callable[[bytes], bytes]:
    return lambda data: cls.from_bytes(data).to_bytes()


#: Field of a messages.json case -> decode-and-re-encode function.
FIELDS: dict[str, Callable[[bytes], bytes]] = {
    "mls_welcome": _mls(Welcome),
    "mls_group_info": _mls(GroupInfo),
    "mls_key_package": _mls(KeyPackage),
    "ratchet_tree": lambda data: encode_ratchet_tree(decode_ratchet_tree(data)),
    "group_secrets": _struct(GroupSecrets),
    "add_proposal": _struct(Add),
    "update_proposal": _struct(Update),
    "remove_proposal": _struct(Remove),
    "pre_shared_key_proposal": _struct(PreSharedKey),
    "re_init_proposal": _struct(ReInit),
    "external_init_proposal": _struct(ExternalInit),
    "group_context_extensions_proposal": _struct(GroupContextExtensions),
    "commit": _struct(Commit),
    "public_message_application": _mls(PublicMessage, ContentType.APPLICATION),
    "public_message_proposal": _mls(PublicMessage, ContentType.PROPOSAL),
    "public_message_commit": _mls(PublicMessage, ContentType.COMMIT),
    "private_message": _mls(PrivateMessage),
}


def check_messages(case: dict) -> None:
    missing = set(FIELDS) - set(case)
    expect(not missing, f"case lacks fields {sorted(missing)}")
    for field, round_trip in FIELDS.items():
        data = h(case[field])
        expect_eq(round_trip(data), data, field)


def check_welcome(case: dict) -> None:
    suite = get_suite(case["cipher_suite"])
    init_priv, signer_pub = h(case["init_priv"]), h(case["signer_pub"])
    kp_msg = MLSMessage.from_bytes(h(case["key_package"]))
    welcome_msg = MLSMessage.from_bytes(h(case["welcome"]))
    expect(isinstance(kp_msg.body, KeyPackage) and isinstance(welcome_msg.body, Welcome), "message types")
    key_package, welcome = kp_msg.body, welcome_msg.body
    expect_eq(welcome.cipher_suite, suite.id, "welcome cipher suite")

    ref = suite.ref_hash("MLS 1.0 KeyPackage Reference", key_package.to_bytes())
    entry = welcome.secrets_for(ref)
    expect(entry is not None, "no EncryptedGroupSecrets for this KeyPackage")
    sealed = entry.encrypted_group_secrets
    opened = suite.decrypt_with_label(init_priv, "Welcome", welcome.encrypted_group_info, sealed.kem_output, sealed.ciphertext)
    secrets = GroupSecrets.from_bytes(opened)
    expect_eq(secrets.psks, (), "psks")

    key, nonce = welcome_key_nonce(suite, welcome_secret(suite, secrets.joiner_secret))
    group_info = GroupInfo.from_bytes(suite.aead_open(key, nonce, b"", welcome.encrypted_group_info))
    suite.verify_with_label(signer_pub, "GroupInfoTBS", group_info.tbs_bytes(), group_info.signature)
    context = group_info.group_context
    epoch = epoch_secrets_from_joiner(suite, secrets.joiner_secret, None, context.to_bytes())
    tag = confirmation_tag(suite, epoch.confirmation_key, context.confirmed_transcript_hash)
    expect_eq(group_info.confirmation_tag, tag, "confirmation_tag")

    bad_sig = bytes([group_info.signature[0] ^ 1]) + group_info.signature[1:]
    try:
        suite.verify_with_label(signer_pub, "GroupInfoTBS", group_info.tbs_bytes(), bad_sig)
    except InvalidSignature:
        pass
    else:
        raise VectorMismatch("a modified GroupInfo signature verified")
    try:
        suite.decrypt_with_label(bytes(31) + b"\x01", "Welcome", welcome.encrypted_group_info, sealed.kem_output, sealed.ciphertext)
    except DecryptError:
        pass
    else:
        raise VectorMismatch("GroupSecrets opened under a wrong init key")
