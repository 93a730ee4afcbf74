"""Serialization of a member's group state (Confide's own format, not an MLS wire structure).

The encoding holds secrets (signature key, tree private keys, epoch secrets,
the secret tree's ratchets): store it encrypted at rest. It keeps the exact
forward-secure state of every ratchet, so a restored Group never reuses a key
or nonce. Layout, in the TLS presentation language of :mod:`crypto.codec`::

    uint8 format_version = 1;
    <epoch state>                 -- see _write_state
    <past epochs>                 -- epoch, context, keys, secret tree, tree
    boolean active; uint32 max_past_epochs;
    proposals, pending leaf keys, external PSKs, resumption PSKs (own and prior groups'),
    optional<ReInit> pending reinit

:func:`encode_group_state` writes a :class:`~crypto.mls.group_state.GroupState`
record, :func:`decode_group_state` reads one back; the latter raises :class:`~crypto.mls.group_errors.InvalidGroupState`
for anything that does not decode or is inconsistent (e.g. private keys that do
not match the tree).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import replace

from ..codec import Reader, Struct, Writer
from ..errors import CryptoError, InternalError
from .ciphersuite import CipherSuite, get_suite
from .framing import Sender, SenderType
from .group_context import GroupContext
from .group_errors import InvalidGroupState
from .group_state import EpochState, GroupState, PastEpoch, PublicEpoch
from .key_schedule import EpochSecrets
from .proposals import Proposal, ReInit
from .protection import EpochKeys
from .public_group import PendingProposal, PublicGroup
from .ratchet_tree import RatchetTree
from .secret_tree import RatchetKey, RatchetType, SecretTree, _Ratchet
from .tree_math import LeafIndex, NodeIndex
from .treekem import TreePrivateKeys

__all__ = ["encode_group_state", "decode_group_state", "FORMAT_VERSION"]

FORMAT_VERSION = 1
_NON_MEMBER = 0xFFFFFFFF
_SECRET_FIELDS = ("joiner_secret", "welcome_secret", "epoch_secret", "sender_data_secret",
                  "encryption_secret", "exporter_secret", "epoch_authenticator", "external_secret",
                  "confirmation_key", "membership_key", "resumption_psk", "init_secret")
_KINDS = {RatchetType.HANDSHAKE: 1, RatchetType.APPLICATION: 2}
_KIND_BY_CODE = {v: k for k, v in _KINDS.items()}


def _write_secret_tree(w: Writer, st: SecretTree) -> None:
    w.u32(st.n_leaves)
    w.u32(st.max_forward)
    w.u32(st.out_of_order)
    w.vector(sorted(st._nodes.items()), lambda w2, kv: (w2.u32(kv[0]), w2.opaque(kv[1])))

    def ratchet(w2: Writer, item: tuple[tuple[int, RatchetType], _Ratchet]) -> None:
        (leaf, kind), r = item
        w2.u32(leaf)
        w2.u8(_KINDS[kind])
        w2.opaque(r.secret)
        w2.u32(r.generation)
        w2.vector(sorted(r.skipped.values(), key=lambda k: k.generation),
                  lambda w3, k: (w3.u32(k.generation), w3.opaque(k.key), w3.opaque(k.nonce)))

    w.vector(sorted(st._ratchets.items(), key=lambda kv: (kv[0][0], _KINDS[kv[0][1]])), ratchet)


def _read_secret_tree(r: Reader, suite: CipherSuite) -> SecretTree:
    n_leaves, max_forward, out_of_order = r.u32(), r.u32(), r.u32()
    st = SecretTree(suite, b"", max(n_leaves, 1), max_forward=max_forward, out_of_order=out_of_order)
    st._nodes = dict(r.vector(lambda r2: (r2.u32(), r2.opaque())))

    def ratchet(r2: Reader) -> tuple[tuple[int, RatchetType], _Ratchet]:
        leaf = r2.u32()
        code = r2.u8()
        if code not in _KIND_BY_CODE:
            raise InvalidGroupState(f"ratchet kind {code}")
        secret, generation = r2.opaque(), r2.u32()
        skipped = r2.vector(lambda r3: RatchetKey(r3.u32(), r3.opaque(), r3.opaque()))
        return (leaf, _KIND_BY_CODE[code]), _Ratchet(secret, generation, {k.generation: k for k in skipped})

    st._ratchets = dict(r.vector(ratchet))
    return st


def _write_state(w: Writer, s: EpochState) -> None:
    w.u16(s.suite.id)
    s.context.encode(w)
    w.opaque(s.tree.to_bytes())
    w.u32(s.keys.leaf_index)
    w.vector(sorted(s.keys.keys.items()), lambda w2, kv: (w2.u32(kv[0]), w2.opaque(kv[1])))
    w.opaque(s.signature_priv)
    for name in _SECRET_FIELDS:
        w.opaque(getattr(s.secrets, name))
    w.opaque(s.confirmation_tag)
    w.opaque(s.interim_transcript_hash)
    _write_secret_tree(w, s.secret_tree)


def _read_state(r: Reader) -> EpochState:
    """The epoch state; its ReInit (stored at the end of the record) is set by the caller."""
    suite = get_suite(r.u16())
    context = GroupContext.decode(r)
    tree = RatchetTree.from_bytes(suite, r.opaque())
    keys = TreePrivateKeys(LeafIndex(r.u32()), {NodeIndex(x): k for x, k in
                                                r.vector(lambda r2: (r2.u32(), r2.opaque()))})
    signature_priv = r.opaque()
    secrets = EpochSecrets(**{name: r.opaque() for name in _SECRET_FIELDS})
    tag, interim = r.opaque(), r.opaque()
    secret_tree = _read_secret_tree(r, suite)
    keys.check_consistent(tree)
    if context.cipher_suite != suite.id or tree.tree_hash() != context.tree_hash:
        raise InvalidGroupState("group context does not match the tree")
    return EpochState(suite, PublicEpoch(context, tree, interim), keys, signature_priv, secrets, tag,
                      secret_tree)


def _write_past(w: Writer, item: tuple[int, PastEpoch]) -> None:
    epoch, p = item
    w.u64(epoch)
    p.keys.context.encode(w)
    w.opaque(p.keys.membership_key)
    w.opaque(p.keys.sender_data_secret)
    _write_secret_tree(w, p.keys.secret_tree)
    w.opaque(p.tree.to_bytes())


def _write_proposal(w: Writer, item: tuple[bytes, PendingProposal]) -> None:
    ref, p = item
    w.opaque(ref)
    p.proposal.encode(w)
    leaf = p.sender.leaf_index if p.sender.sender_type == SenderType.MEMBER else None
    w.u32(_NON_MEMBER if leaf is None else leaf)


def _read_proposal(r: Reader) -> tuple[bytes, PendingProposal]:
    ref, prop, leaf = r.opaque(), Proposal.decode(r), r.u32()
    # The format keeps only a member sender's leaf; which kind of non-member sent a
    # proposal does not matter to a member (it commits it by reference alike).
    sender = Sender(SenderType.EXTERNAL, sender_index=0) if leaf == _NON_MEMBER else Sender.member(leaf)
    return ref, PendingProposal(prop, sender)


def encode_group_state(st: GroupState) -> bytes:
    """The bytes of ``st`` (see the module docstring)."""
    w = Writer()
    w.u8(FORMAT_VERSION)
    _write_state(w, st.epoch)
    w.vector(list(st.past.items()), _write_past)
    w.boolean(st.active)
    w.u32(st.max_past_epochs)
    w.vector(list(st.public.pending_proposals.items()), _write_proposal)
    w.vector(list(st.pending_leaf_keys.items()), lambda w2, kv: (w2.opaque(kv[0]), w2.opaque(kv[1])))
    w.vector(list(st.external_psks.items()), lambda w2, kv: (w2.opaque(kv[0]), w2.opaque(kv[1])))
    w.vector(list(st.resumption_psks.items()), lambda w2, kv: (w2.u64(kv[0]), w2.opaque(kv[1])))
    w.vector(list(st.prior_resumption_psks.items()),
             lambda w2, kv: (w2.opaque(kv[0][0]), w2.u64(kv[0][1]), w2.opaque(kv[1])))
    w.optional(st.epoch.public.reinit, Struct.write_item)
    return w.getvalue()


def decode_group_state(data: bytes) -> GroupState:
    """Restore a group's state record; raises :class:`InvalidGroupState` (see the module
    docstring)."""

    try:
        r = Reader(data)
        version = r.u8()
        if version != FORMAT_VERSION:
            raise InvalidGroupState(f"group state format {version}")
        state = _read_state(r)
        suite = state.suite

        def past(r2: Reader) -> tuple[int, PastEpoch]:
            epoch = r2.u64()
            context = GroupContext.decode(r2)
            membership, sender_data = r2.opaque(), r2.opaque()
            st = _read_secret_tree(r2, suite)
            tree = RatchetTree.from_bytes(suite, r2.opaque())
            return epoch, PastEpoch(EpochKeys(suite, context, membership, sender_data, st), tree)

        past_epochs = OrderedDict(r.vector(past))
        active = r.boolean()
        max_past = r.u32()
        proposals = dict(r.vector(_read_proposal))
        pending_leaf_keys = dict(r.vector(lambda r2: (r2.opaque(), r2.opaque())))
        external_psks = dict(r.vector(lambda r2: (r2.opaque(), r2.opaque())))
        resumption_psks = OrderedDict(r.vector(lambda r2: (r2.u64(), r2.opaque())))
        prior = dict(r.vector(lambda r2: ((r2.opaque(), r2.u64()), r2.opaque())))
        state.public = replace(state.public, reinit=r.optional(ReInit.decode))
        r.finish()
    except InvalidGroupState:
        raise
    except (CryptoError, InternalError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise InvalidGroupState(f"group state does not decode: {type(exc).__name__}: {exc}") from None
    return GroupState(state, PublicGroup(suite, state.public, proposals), max_past_epochs=max_past,
                      active=active, past=past_epochs, pending_leaf_keys=pending_leaf_keys,
                      external_psks=external_psks, resumption_psks=resumption_psks,
                      prior_resumption_psks=prior)
