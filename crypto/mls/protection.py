"""Message protection (RFC 9420 sections 6.1 to 6.3).

Signing and verifying FramedContent, the membership tag of PublicMessage,
and the two-layer encryption of PrivateMessage (sender data, then content,
keyed by the secret tree). Unprotecting returns an
:class:`~crypto.mls.framing.AuthenticatedContent` only after every check has
passed: group and epoch match (:class:`WrongGroup`, :class:`WrongEpoch`), the
membership tag (:class:`MembershipTagMismatch`), the AEADs
(:class:`~crypto.errors.DecryptError`), the generation window
(:mod:`crypto.mls.secret_tree` errors) and the signature
(:class:`~crypto.errors.InvalidSignature`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..codec import Writer
from ..errors import CryptoError
from ..rng import Rng, system_rng
from .ciphersuite import CipherSuite
from .framing import (
    AuthenticatedContent,
    AuthenticatedContentTBM,
    ContentType,
    FramedContent,
    FramedContentAuthData,
    FramedContentTBS,
    PrivateContentAAD,
    PrivateMessage,
    PrivateMessageContent,
    PublicMessage,
    Sender,
    SenderData,
    SenderDataAAD,
    SenderType,
    WireFormat,
)
from .group_context import GroupContext
from .secret_tree import RatchetType, SecretTree, sender_data_key_nonce

__all__ = [
    "ProtectionError",
    "WrongGroup",
    "WrongEpoch",
    "MembershipTagMismatch",
    "ApplicationNotPrivate",
    "InvalidSender",
    "EpochKeys",
    "sign_framed_content",
    "verify_framed_content",
    "membership_tag",
    "protect_public",
    "unprotect_public",
    "protect_private",
    "unprotect_private",
    "confirmed_transcript_hash_input",
    "SignatureKeyLookup",
]


class ProtectionError(CryptoError):
    code = "mls_protection"


class WrongGroup(ProtectionError):
    code = "mls_wrong_group"


class WrongEpoch(ProtectionError):
    """The message is for another epoch than the one it is being processed in."""

    code = "mls_wrong_epoch"


class MembershipTagMismatch(ProtectionError):
    code = "mls_membership_tag_mismatch"


class ApplicationNotPrivate(ProtectionError):
    """Application data must travel as PrivateMessage (section 6.2)."""

    code = "mls_application_not_private"


class InvalidSender(ProtectionError):
    """The sender type or leaf is not allowed for this message."""

    code = "mls_invalid_sender"


#: Returns the signature public key of the member at a leaf (or raises InvalidSender).
SignatureKeyLookup = Callable[[int], bytes]


@dataclass(slots=True)
class EpochKeys:
    """What protecting and unprotecting needs from the current epoch."""

    suite: CipherSuite
    context: GroupContext
    membership_key: bytes
    sender_data_secret: bytes
    secret_tree: SecretTree


def _tbs(wire_format: WireFormat, content: FramedContent, context: GroupContext) -> bytes:
    has_context = content.sender.sender_type in (SenderType.MEMBER, SenderType.NEW_MEMBER_COMMIT)
    return FramedContentTBS(wire_format, content, context if has_context else None).to_bytes()


def sign_framed_content(
    suite: CipherSuite, signature_priv: bytes, wire_format: WireFormat, content: FramedContent, context: GroupContext
) -> bytes:
    return suite.sign_with_label(signature_priv, "FramedContentTBS", _tbs(wire_format, content, context))


def verify_framed_content(
    suite: CipherSuite, signature_pub: bytes, ac: AuthenticatedContent, context: GroupContext
) -> None:
    """Raises :class:`~crypto.errors.InvalidSignature` unless ``ac`` carries a valid signature."""
    tbs = _tbs(ac.wire_format, ac.content, context)
    suite.verify_with_label(signature_pub, "FramedContentTBS", tbs, ac.auth.signature)


def membership_tag(
    suite: CipherSuite, membership_key: bytes, content: FramedContent, auth: FramedContentAuthData, context: GroupContext
) -> bytes:
    tbs = FramedContentTBS(WireFormat.MLS_PUBLIC_MESSAGE, content, context)
    return suite.mac(membership_key, AuthenticatedContentTBM(tbs, auth).to_bytes())


def _check_group_epoch(context: GroupContext, group_id: bytes, epoch: int) -> None:
    if group_id != context.group_id:
        raise WrongGroup("message is for another group")
    if epoch != context.epoch:
        raise WrongEpoch(f"message for epoch {epoch}, group is at epoch {context.epoch}")


def protect_public(
    suite: CipherSuite,
    context: GroupContext,
    membership_key: bytes | None,
    signature_priv: bytes,
    content: FramedContent,
    confirmation_tag: bytes | None = None,
) -> PublicMessage:
    """Sign ``content`` and, for a member sender, add the membership tag.

    Raises :class:`ApplicationNotPrivate` for application data.
    """
    if content.content_type == ContentType.APPLICATION:
        raise ApplicationNotPrivate("application messages must be PrivateMessage")
    signature = sign_framed_content(suite, signature_priv, WireFormat.MLS_PUBLIC_MESSAGE, content, context)
    auth = FramedContentAuthData(signature, confirmation_tag)
    tag = None
    if content.sender.sender_type == SenderType.MEMBER:
        if membership_key is None:
            raise InvalidSender("a member's PublicMessage needs the membership key")
        tag = membership_tag(suite, membership_key, content, auth, context)
    return PublicMessage(content, auth, tag)


def unprotect_public(
    suite: CipherSuite,
    context: GroupContext,
    membership_key: bytes | None,
    signature_pub: bytes | SignatureKeyLookup,
    message: PublicMessage,
) -> AuthenticatedContent:
    """Verify a PublicMessage for the current epoch; see the module docstring for errors."""
    content = message.content
    _check_group_epoch(context, content.group_id, content.epoch)
    if content.content_type == ContentType.APPLICATION:
        raise ApplicationNotPrivate("application data in a PublicMessage")
    if content.sender.sender_type == SenderType.MEMBER:
        if membership_key is None or message.membership_tag is None:
            raise MembershipTagMismatch("member message without a membership tag")
        want = membership_tag(suite, membership_key, content, message.auth, context)
        if not _ct_eq(want, message.membership_tag):
            raise MembershipTagMismatch("membership tag does not verify")
    ac = AuthenticatedContent(WireFormat.MLS_PUBLIC_MESSAGE, content, message.auth)
    key = signature_pub if isinstance(signature_pub, bytes) else signature_pub(_sender_key_index(content.sender))
    verify_framed_content(suite, key, ac, context)
    return ac


def _sender_key_index(sender: Sender) -> int:
    if sender.sender_type == SenderType.MEMBER:
        return sender.leaf_index  # type: ignore[return-value]
    if sender.sender_type == SenderType.EXTERNAL:
        return sender.sender_index  # type: ignore[return-value]
    return -1  # new members: the caller's lookup takes the key from the proposal or commit


def _ct_eq(a: bytes, b: bytes) -> bool:
    from ..primitives import constant_time_equal

    return constant_time_equal(a, b)


def _ratchet_for(content_type: ContentType) -> RatchetType:
    return RatchetType.APPLICATION if content_type == ContentType.APPLICATION else RatchetType.HANDSHAKE


def _xor_reuse_guard(nonce: bytes, guard: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(guard, nonce[:4], strict=True)) + nonce[4:]


def protect_private(
    keys: EpochKeys,
    signature_priv: bytes,
    content: FramedContent,
    confirmation_tag: bytes | None = None,
    *,
    padding: int = 0,
    rng: Rng = system_rng,
) -> PrivateMessage:
    """Sign and encrypt ``content`` from a member (section 6.3); consumes one ratchet key."""
    suite, context = keys.suite, keys.context
    if content.sender.sender_type != SenderType.MEMBER:
        raise InvalidSender("only members send PrivateMessage")
    _check_group_epoch(context, content.group_id, content.epoch)
    signature = sign_framed_content(suite, signature_priv, WireFormat.MLS_PRIVATE_MESSAGE, content, context)
    auth = FramedContentAuthData(signature, confirmation_tag)
    plaintext = PrivateMessageContent(content.content_type, content.content, auth, padding).to_bytes()
    leaf = content.sender.leaf_index
    ratchet = keys.secret_tree.next_key(leaf, _ratchet_for(content.content_type))
    reuse_guard = rng(4)
    aad = PrivateContentAAD(content.group_id, content.epoch, content.content_type, content.authenticated_data)
    ciphertext = suite.aead_seal(ratchet.key, _xor_reuse_guard(ratchet.nonce, reuse_guard), aad.to_bytes(), plaintext)
    sd_key, sd_nonce = sender_data_key_nonce(suite, keys.sender_data_secret, ciphertext)
    sd_aad = SenderDataAAD(content.group_id, content.epoch, content.content_type).to_bytes()
    sender_data = SenderData(leaf, ratchet.generation, reuse_guard).to_bytes()
    encrypted_sender_data = suite.aead_seal(sd_key, sd_nonce, sd_aad, sender_data)
    return PrivateMessage(
        content.group_id, content.epoch, content.content_type, content.authenticated_data,
        encrypted_sender_data, ciphertext,
    )


def private_sender_leaf(keys: EpochKeys, message: PrivateMessage) -> int:
    """The sender leaf of a PrivateMessage: only its SenderData is opened (section 6.3.2),
    no ratchet key is used or consumed and the content is not verified. Raises
    ``decrypt_failed`` and the decode errors."""
    suite = keys.suite
    _check_group_epoch(keys.context, message.group_id, message.epoch)
    sd_key, sd_nonce = sender_data_key_nonce(suite, keys.sender_data_secret, message.ciphertext)
    sd_aad = SenderDataAAD(message.group_id, message.epoch, message.content_type).to_bytes()
    return SenderData.from_bytes(suite.aead_open(sd_key, sd_nonce, sd_aad,
                                                 message.encrypted_sender_data)).leaf_index


def unprotect_private(
    keys: EpochKeys,
    signature_pub: bytes | SignatureKeyLookup,
    message: PrivateMessage,
) -> AuthenticatedContent:
    """Decrypt and verify a PrivateMessage; the ratchet key it used is consumed only on success."""
    suite, context = keys.suite, keys.context
    _check_group_epoch(context, message.group_id, message.epoch)
    sd_key, sd_nonce = sender_data_key_nonce(suite, keys.sender_data_secret, message.ciphertext)
    sd_aad = SenderDataAAD(message.group_id, message.epoch, message.content_type).to_bytes()
    sender_data = SenderData.from_bytes(suite.aead_open(sd_key, sd_nonce, sd_aad, message.encrypted_sender_data))
    if sender_data.leaf_index >= keys.secret_tree.n_leaves:
        raise InvalidSender(f"sender leaf {sender_data.leaf_index} outside the tree")
    ratchet, consume = keys.secret_tree.prepare_key(
        sender_data.leaf_index, _ratchet_for(message.content_type), sender_data.generation
    )
    aad = PrivateContentAAD(message.group_id, message.epoch, message.content_type, message.authenticated_data)
    nonce = _xor_reuse_guard(ratchet.nonce, sender_data.reuse_guard)
    plaintext = suite.aead_open(ratchet.key, nonce, aad.to_bytes(), message.ciphertext)
    pmc = PrivateMessageContent.from_bytes(plaintext, message.content_type)
    content = FramedContent(
        message.group_id, message.epoch, Sender.member(sender_data.leaf_index),
        message.authenticated_data, message.content_type, pmc.content,
    )
    ac = AuthenticatedContent(WireFormat.MLS_PRIVATE_MESSAGE, content, pmc.auth)
    key = signature_pub if isinstance(signature_pub, bytes) else signature_pub(sender_data.leaf_index)
    verify_framed_content(suite, key, ac, context)
    consume()
    return ac


def confirmed_transcript_hash_input(ac: AuthenticatedContent) -> bytes:
    """ConfirmedTranscriptHashInput (section 8.2): wire_format, content, signature."""
    w = Writer()
    w.u16(ac.wire_format)
    ac.content.encode(w)
    w.opaque(ac.auth.signature)
    return w.getvalue()
