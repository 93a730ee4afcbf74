"""Message protection refuses what it must, each failure with its own typed error,
and a failed unprotect consumes no ratchet key."""

from __future__ import annotations

import dataclasses

import pytest

from crypto.errors import DecryptError, InvalidSignature
from crypto.mls.ciphersuite import get_suite
from crypto.mls.framing import ContentType, FramedContent, PrivateMessage, Sender
from crypto.mls.group_context import GroupContext
from crypto.mls.proposals import Proposal, Remove
from crypto.mls.protection import (
    ApplicationNotPrivate,
    EpochKeys,
    MembershipTagMismatch,
    WrongEpoch,
    WrongGroup,
    protect_private,
    protect_public,
    unprotect_private,
    unprotect_public,
)
from crypto.mls.secret_tree import GenerationTooFarAhead, KeyAlreadyUsed, SecretTree
from crypto.rng import SeededRng

SUITE = get_suite(3)
CTX = GroupContext(3, b"group", 7, b"t" * 32, b"c" * 32)
SIG_PRIV, SIG_PUB = SUITE.generate_signature_key_pair(SeededRng("sig"))
OTHER_PRIV, OTHER_PUB = SUITE.generate_signature_key_pair(SeededRng("other"))
MEMBERSHIP = b"m" * 32


def keys(ctx: GroupContext = CTX, **kw) -> EpochKeys:
    return EpochKeys(SUITE, ctx, MEMBERSHIP, b"s" * 32, SecretTree(SUITE, b"e" * 32, 4, **kw))


def app(text: bytes = b"hello", ctx: GroupContext = CTX) -> FramedContent:
    return FramedContent(ctx.group_id, ctx.epoch, Sender.member(1), b"", ContentType.APPLICATION, text)


def proposal() -> FramedContent:
    return FramedContent(CTX.group_id, CTX.epoch, Sender.member(1), b"ad", ContentType.PROPOSAL, Proposal(Remove(2)))


def test_private_round_trip_and_replay():
    sender, receiver = keys(), keys()
    msg = protect_private(sender, SIG_PRIV, app(), rng=SeededRng(1))
    assert unprotect_private(receiver, SIG_PUB, msg).content.content == b"hello"
    with pytest.raises(KeyAlreadyUsed):
        unprotect_private(receiver, SIG_PUB, msg)


def test_wrong_signature_key():
    msg = protect_private(keys(), SIG_PRIV, app(), rng=SeededRng(1))
    with pytest.raises(InvalidSignature):
        unprotect_private(keys(), OTHER_PUB, msg)


@pytest.mark.parametrize("field", ["ciphertext", "encrypted_sender_data"])
def test_flipped_aead_tag(field):
    msg = protect_private(keys(), SIG_PRIV, app(), rng=SeededRng(1))
    data = bytearray(getattr(msg, field))
    data[-1] ^= 0x01
    receiver = keys()
    with pytest.raises(DecryptError):
        unprotect_private(receiver, SIG_PUB, dataclasses.replace(msg, **{field: bytes(data)}))
    # nothing was consumed: the intact message still opens
    assert unprotect_private(receiver, SIG_PUB, msg).content.content == b"hello"


def test_wrong_epoch_and_group():
    msg = protect_private(keys(), SIG_PRIV, app(), rng=SeededRng(1))
    later = dataclasses.replace(CTX, epoch=8)
    with pytest.raises(WrongEpoch):
        unprotect_private(keys(later), SIG_PUB, msg)
    with pytest.raises(WrongGroup):
        unprotect_private(keys(dataclasses.replace(CTX, group_id=b"other")), SIG_PUB, msg)


def test_wrong_epoch_keys_do_not_decrypt():
    """The same epoch number under another epoch's secrets fails authentication."""
    msg = protect_private(keys(), SIG_PRIV, app(), rng=SeededRng(1))
    other = EpochKeys(SUITE, CTX, MEMBERSHIP, b"S" * 32, SecretTree(SUITE, b"E" * 32, 4))
    with pytest.raises(DecryptError):
        unprotect_private(other, SIG_PUB, msg)


def test_generation_too_far_ahead():
    sender = keys()
    for _ in range(5):
        protect_private(sender, SIG_PRIV, app(), rng=SeededRng(1))
    msg = protect_private(sender, SIG_PRIV, app(), rng=SeededRng(1))  # generation 5
    with pytest.raises(GenerationTooFarAhead):
        unprotect_private(keys(max_forward=3), SIG_PUB, msg)


def test_public_message_membership_tag_and_signature():
    msg = protect_public(SUITE, CTX, MEMBERSHIP, SIG_PRIV, proposal())
    assert unprotect_public(SUITE, CTX, MEMBERSHIP, SIG_PUB, msg).content == proposal()
    with pytest.raises(MembershipTagMismatch):
        unprotect_public(SUITE, CTX, b"x" * 32, SIG_PUB, msg)
    with pytest.raises(InvalidSignature):
        unprotect_public(SUITE, CTX, MEMBERSHIP, OTHER_PUB, msg)
    with pytest.raises(WrongEpoch):
        unprotect_public(SUITE, dataclasses.replace(CTX, epoch=6), MEMBERSHIP, SIG_PUB, msg)


def test_application_must_be_private():
    with pytest.raises(ApplicationNotPrivate):
        protect_public(SUITE, CTX, MEMBERSHIP, SIG_PRIV, app())


def test_padding_is_hidden_and_accepted():
    msg = protect_private(keys(), SIG_PRIV, app(), padding=100, rng=SeededRng(1))
    bare = protect_private(keys(), SIG_PRIV, app(), rng=SeededRng(1))
    assert len(msg.ciphertext) == len(bare.ciphertext) + 100
    assert unprotect_private(keys(), SIG_PUB, msg).content.content == b"hello"


def test_private_message_decodes_strictly():
    msg = protect_private(keys(), SIG_PRIV, app(), rng=SeededRng(1))
    data = msg.to_bytes()
    assert PrivateMessage.from_bytes(data) == msg


def test_forged_signature_consumes_no_key():
    sender = keys()
    msg = protect_private(sender, SIG_PRIV, app(), rng=SeededRng(1))
    receiver = keys()
    with pytest.raises(InvalidSignature):
        unprotect_private(receiver, OTHER_PUB, msg)
    assert unprotect_private(receiver, SIG_PUB, msg).content.content == b"hello"
