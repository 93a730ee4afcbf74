"""A member proposing and committing (RFC 9420 sections 12.1, 12.4, 12.4.3): the bodies of
:meth:`~crypto.mls.group.Group.propose`, :meth:`~crypto.mls.group.Group.propose_update`
and :meth:`~crypto.mls.group.Group.stage_commit`, over the group's
:class:`~crypto.mls.group_state.GroupState`.

:func:`stage_commit` does not change the state: it returns a :class:`StagedCommit`
holding the new epoch, applied by :meth:`~crypto.mls.group.Group.merge_staged_commit`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from ..errors import InternalError
from ..rng import Rng
from .commit import Commit
from .extensions import Extension, ExtensionType
from .framing import (
    AuthenticatedContent,
    ContentType,
    FramedContent,
    FramedContentAuthData,
    PrivateMessage,
    PublicMessage,
    Sender,
    WireFormat,
)
from .group_commit import resolve_proposals
from .group_proposals import apply_proposals, validate_leaf_for_group
from .group_receiving import PROPOSAL_REF_LABEL
from .group_results import StagedCommit
from .group_state import GroupState, PublicEpoch, confirmed_input, next_epoch_state
from .group_welcome import build_welcome, compute_psk_secret, sign_group_info
from .key_schedule import confirmation_tag, epoch_secrets
from .leaf_node import LeafNodeSource
from .message import MLSMessage
from .proposals import Proposal, ProposalOrRef, ResumptionPSKUsage, Update
from .protection import protect_private, protect_public, sign_framed_content
from .public_group import PendingProposal
from .transcript import confirmed_transcript_hash, interim_transcript_hash
from .treekem import create_update_path
from .welcome import GroupInfo

__all__ = ["propose", "propose_update", "stage_commit"]


def propose(st: GroupState, proposal: Proposal, *, public: bool, authenticated_data: bytes,
            rng: Rng) -> tuple[MLSMessage, bytes]:
    """See :meth:`crypto.mls.group.Group.propose`."""
    st.require_active()
    s = st.epoch
    content = FramedContent(s.context.group_id, s.context.epoch, Sender.member(s.own_leaf),
                            authenticated_data, ContentType.PROPOSAL, proposal)
    if public:
        body: PublicMessage | PrivateMessage = protect_public(
            s.suite, s.context, s.secrets.membership_key, s.signature_priv, content)
        wire_format = WireFormat.MLS_PUBLIC_MESSAGE
    else:
        body = protect_private(s.epoch_keys(), s.signature_priv, content, rng=rng)
        wire_format = WireFormat.MLS_PRIVATE_MESSAGE
    signature = sign_framed_content(s.suite, s.signature_priv, wire_format, content, s.context)
    ac = AuthenticatedContent(wire_format, content, FramedContentAuthData(signature))
    ref = s.suite.ref_hash(PROPOSAL_REF_LABEL, ac.to_bytes())
    st.public.remember_proposal(ref, PendingProposal(proposal, content.sender))
    return MLSMessage(body), ref


def propose_update(st: GroupState, *, public: bool, rng: Rng) -> tuple[MLSMessage, bytes]:
    """See :meth:`crypto.mls.group.Group.propose_update`."""
    s = st.epoch
    old = s.tree.leaf(s.own_leaf)
    if old is None:  # pragma: no cover - an active member has a leaf
        raise InternalError("own leaf is blank")
    priv, pub = s.suite.generate_hpke_key_pair(rng)
    leaf = replace(old, encryption_key=pub, leaf_node_source=LeafNodeSource.UPDATE,
                   lifetime=None, parent_hash=None, signature=b"")
    leaf = replace(leaf, signature=s.suite.sign_with_label(
        s.signature_priv, "LeafNodeTBS", leaf.tbs_bytes(s.context.group_id, s.own_leaf)))
    out = propose(st, Proposal(Update(leaf)), public=public, authenticated_data=b"", rng=rng)
    st.pending_leaf_keys[pub] = priv
    return out


def stage_commit(
    st: GroupState,
    proposals: Sequence[Proposal],
    proposal_refs: Sequence[bytes],
    *,
    force_path: bool,
    public: bool,
    ratchet_tree_in_welcome: bool,
    authenticated_data: bytes,
    now: int | None,
    rng: Rng,
    resumption_usages: frozenset[ResumptionPSKUsage] = frozenset({ResumptionPSKUsage.APPLICATION}),
) -> StagedCommit:
    """See :meth:`crypto.mls.group.Group.stage_commit`; ``resumption_usages`` are the
    resumption PSK usages the proposals may inject (branch and reinit pass theirs)."""
    s = st.epoch
    me = s.own_leaf
    por = [ProposalOrRef(p) for p in proposals] + [ProposalOrRef(r) for r in proposal_refs]
    commit = Commit(tuple(por))
    pending = {ref: p.committed() for ref, p in st.public.pending_proposals.items()}
    applied = apply_proposals(s.suite, s.context, s.tree, me, resolve_proposals(commit, me, pending),
                              now=now, resumption_usages=resumption_usages)
    provisional = replace(s.context, epoch=s.context.epoch + 1, tree_hash=applied.tree.tree_hash(),
                          extensions=applied.extensions)
    joiners = [int(i) for i, _ in applied.added]
    path = None
    if applied.path_required or force_path:
        path = create_update_path(applied.tree, me, provisional_context=provisional,
                                  sign=s.signature_priv, joiners=joiners, rng=rng)
        tree, keys, commit_secret = path.tree, path.private_keys, path.commit_secret
        validate_leaf_for_group(tree, me, path.update_path.leaf_node, applied.extensions,
                                "UpdatePath leaf")
        commit = Commit(commit.proposals, path.update_path)
    else:
        tree, commit_secret = applied.tree, None
        keys = s.keys.copy()
        keys.prune(tree)
    wire_format = WireFormat.MLS_PUBLIC_MESSAGE if public else WireFormat.MLS_PRIVATE_MESSAGE
    content = FramedContent(s.context.group_id, s.context.epoch, Sender.member(me),
                            authenticated_data, ContentType.COMMIT, commit)
    signature = sign_framed_content(s.suite, s.signature_priv, wire_format, content, s.context)
    confirmed = confirmed_transcript_hash(s.suite, s.interim_transcript_hash,
                                          confirmed_input(wire_format, content, signature))
    context = replace(provisional, tree_hash=tree.tree_hash(), confirmed_transcript_hash=confirmed)
    psk = compute_psk_secret(s.suite, applied.psks, st.psk_lookup)
    secrets = epoch_secrets(s.suite, s.secrets.init_secret, commit_secret, psk, context.to_bytes())
    tag = confirmation_tag(s.suite, secrets.confirmation_key, confirmed)
    new_public = PublicEpoch(context, tree, interim_transcript_hash(s.suite, confirmed, tag),
                             applied.reinit)
    new_state = next_epoch_state(s, new_public, keys, secrets, tag)
    if public:
        msg = protect_public(s.suite, s.context, s.secrets.membership_key, s.signature_priv,
                             content, tag)
    else:
        msg = protect_private(s.epoch_keys(), s.signature_priv, content, tag, rng=rng)
    exts = (Extension(ExtensionType.RATCHET_TREE, tree.to_bytes()),) if ratchet_tree_in_welcome else ()
    info = sign_group_info(s.suite, s.signature_priv, GroupInfo(context, exts, tag, me))
    welcome = None
    if applied.added:
        members = [(kp, path.path_secret_for(i) if path is not None else None)
                   for i, kp in applied.added]
        welcome = MLSMessage(build_welcome(s.suite, info, secrets.joiner_secret, members, rng,
                                           psks=applied.psks, psk=psk))
    return StagedCommit(
        me, context.epoch, applied.added, applied.removed, applied.updated, path is not None,
        False, applied.reinit, commit=MLSMessage(msg), welcome=welcome,
        ratchet_tree=None if ratchet_tree_in_welcome else tree.copy(), group_info=info,
        _base=s, _new=new_state,
    )
