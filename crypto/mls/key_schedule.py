"""The MLS key schedule (RFC 9420 sections 8, 8.4, 8.5, 8.7 and 12.4.3.1).

One epoch's secrets derive from the previous epoch's ``init_secret``, the
``commit_secret`` of the commit that starts the epoch, the ``psk_secret`` and
the new :class:`~crypto.mls.group_context.GroupContext`::

    joiner_secret = ExpandWithLabel(Extract(init_secret, commit_secret), "joiner", GroupContext, Nh)
    member_secret = Extract(joiner_secret, psk_secret)
    welcome_secret = DeriveSecret(member_secret, "welcome")
    epoch_secret  = ExpandWithLabel(member_secret, "epoch", GroupContext, Nh)
    <secret>      = DeriveSecret(epoch_secret, <label>)

Each derived secret is a field of :class:`EpochSecrets`, named as in the RFC.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..codec import Writer
from .ciphersuite import CipherSuite

__all__ = [
    "EpochSecrets",
    "joiner_secret",
    "epoch_secrets_from_joiner",
    "epoch_secrets",
    "welcome_secret",
    "welcome_key_nonce",
    "psk_secret",
    "mls_exporter",
    "confirmation_tag",
]


@dataclass(frozen=True, slots=True)
class EpochSecrets:
    """The secrets of one epoch (RFC 9420 Table 4), plus the joiner and welcome secrets."""

    joiner_secret: bytes
    welcome_secret: bytes
    epoch_secret: bytes
    sender_data_secret: bytes
    encryption_secret: bytes
    exporter_secret: bytes
    epoch_authenticator: bytes
    external_secret: bytes
    confirmation_key: bytes
    membership_key: bytes
    resumption_psk: bytes
    init_secret: bytes

    def external_key_pair(self, suite: CipherSuite) -> tuple[bytes, bytes]:
        """``KEM.DeriveKeyPair(external_secret)``: the key pair for external commits."""
        return suite.derive_hpke_key_pair(self.external_secret)


def joiner_secret(suite: CipherSuite, init_secret: bytes, commit_secret: bytes | None, group_context: bytes) -> bytes:
    prk = suite.extract(init_secret, commit_secret or bytes(suite.hash_len))
    return suite.expand_with_label(prk, "joiner", group_context, suite.hash_len)


def welcome_secret(suite: CipherSuite, joiner: bytes, psk: bytes | None = None) -> bytes:
    member = suite.extract(joiner, psk or bytes(suite.hash_len))
    return suite.derive_secret(member, "welcome")


def welcome_key_nonce(suite: CipherSuite, welcome: bytes) -> tuple[bytes, bytes]:
    """The AEAD key and nonce that protect a Welcome's GroupInfo (section 12.4.3.1)."""
    return (
        suite.expand_with_label(welcome, "key", b"", suite.aead_key_len),
        suite.expand_with_label(welcome, "nonce", b"", suite.aead_nonce_len),
    )


def epoch_secrets_from_joiner(
    suite: CipherSuite, joiner: bytes, psk: bytes | None, group_context: bytes
) -> EpochSecrets:
    """The epoch's secrets from the joiner secret, as a new member computes them."""
    member = suite.extract(joiner, psk or bytes(suite.hash_len))
    epoch = suite.expand_with_label(member, "epoch", group_context, suite.hash_len)

    def d(label: str) -> bytes:
        return suite.derive_secret(epoch, label)

    return EpochSecrets(
        joiner_secret=joiner,
        welcome_secret=suite.derive_secret(member, "welcome"),
        epoch_secret=epoch,
        sender_data_secret=d("sender data"),
        encryption_secret=d("encryption"),
        exporter_secret=d("exporter"),
        epoch_authenticator=d("authentication"),
        external_secret=d("external"),
        confirmation_key=d("confirm"),
        membership_key=d("membership"),
        resumption_psk=d("resumption"),
        init_secret=d("init"),
    )


def epoch_secrets(
    suite: CipherSuite,
    init_secret: bytes,
    commit_secret: bytes | None,
    psk: bytes | None,
    group_context: bytes,
) -> EpochSecrets:
    """The epoch's secrets from the previous epoch's init secret, as an existing member computes them."""
    return epoch_secrets_from_joiner(suite, joiner_secret(suite, init_secret, commit_secret, group_context), psk, group_context)


def psk_secret(suite: CipherSuite, psks: Sequence[tuple[bytes, bytes]]) -> bytes:
    """``psk_secret`` (section 8.4) from ``(encoded PreSharedKeyID, psk)`` pairs, in order.

    With no PSKs the result is the all-zero vector.
    """
    secret = bytes(suite.hash_len)
    count = len(psks)
    for index, (psk_id, psk) in enumerate(psks):
        extracted = suite.extract(bytes(suite.hash_len), psk)
        w = Writer()
        w.write(psk_id)
        w.u16(index)
        w.u16(count)
        psk_input = suite.expand_with_label(extracted, "derived psk", w.getvalue(), suite.hash_len)
        secret = suite.extract(psk_input, secret)
    return secret


def mls_exporter(suite: CipherSuite, exporter_secret: bytes, label: str | bytes, context: bytes, length: int) -> bytes:
    """MLS-Exporter (section 8.5)."""
    secret = suite.derive_secret(exporter_secret, label)
    return suite.expand_with_label(secret, "exported", suite.hash(context), length)


def confirmation_tag(suite: CipherSuite, confirmation_key: bytes, confirmed_transcript_hash: bytes) -> bytes:
    return suite.mac(confirmation_key, confirmed_transcript_hash)
