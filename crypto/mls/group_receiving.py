"""A member receiving messages (RFC 9420 sections 6, 12.1, 12.4.2, 12.4.3.2): the body of
:meth:`crypto.mls.group.Group.process_message`, over the group's
:class:`~crypto.mls.group_state.GroupState`.

:func:`process_message` unprotects a PublicMessage or PrivateMessage and interprets
it: application data comes back at once, a proposal is remembered in the group's
public view, and a Commit comes back as a :class:`StagedCommit`. A Commit's public
part (proposals, UpdatePath merged into the tree, new GroupContext and transcript
hashes) goes through :meth:`PublicGroup.commit_publicly
<crypto.mls.public_group.PublicGroup.commit_publicly>`, the path the server's view
takes; this module adds the private part: the path secret, the key schedule and the
confirmation tag.

Nothing is changed on any error; a Commit changes the state only when merged.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..primitives import constant_time_equal
from .commit import Commit
from .framing import AuthenticatedContent, ContentType, PrivateMessage, PublicMessage, SenderType
from .group_commit import external_proposal_signer
from .group_errors import (
    ConfirmationTagMismatch,
    EpochNotRetained,
    InvalidProposalList,
    MissingUpdatePath,
    UnexpectedMessage,
)
from .group_results import MessageKind, ProcessedMessage, StagedCommit
from .group_state import (
    EXTERNAL_INIT_LABEL,
    EpochState,
    GroupState,
    PublicEpoch,
    copy_secret_tree,
    next_epoch_state,
    signature_key_lookup,
)
from .group_welcome import compute_psk_secret
from .key_schedule import confirmation_tag, epoch_secrets
from .message import MLSMessage
from .proposals import PreSharedKeyID, Proposal
from .protection import (
    WrongEpoch,
    WrongGroup,
    private_sender_leaf,
    unprotect_private,
    unprotect_public,
)
from .public_group import PendingProposal
from .tree_math import LeafIndex
from .treekem import TreePrivateKeys, decrypt_update_path

__all__ = ["process_message", "claimed_sender", "PROPOSAL_REF_LABEL"]

PROPOSAL_REF_LABEL = "MLS 1.0 Proposal Reference"


def process_message(st: GroupState, message: MLSMessage, now: int | None) -> ProcessedMessage:
    """See :meth:`crypto.mls.group.Group.process_message` (what it raises)."""
    body = message.body
    if not st.active or st.epoch.public.reinit is not None:
        # A removed or suspended member still reads late application messages of the
        # epochs it kept.
        if (isinstance(body, PrivateMessage) and body.content_type == ContentType.APPLICATION
                and body.group_id == st.epoch.context.group_id and body.epoch in st.past):
            return _process_past_private(st, body)
        st.require_active()
    s = st.epoch
    if isinstance(body, PrivateMessage):
        if body.group_id != s.context.group_id:
            raise WrongGroup("message is for another group")
        if body.epoch != s.context.epoch:
            return _process_past_private(st, body)
        if body.content_type == ContentType.APPLICATION:
            ac = unprotect_private(s.epoch_keys(), signature_key_lookup(s.tree), body)
        else:
            # A handshake message is decrypted on a copy of the secret tree, adopted only
            # once the proposal or commit has been fully processed.
            keys = s.epoch_keys()
            keys.secret_tree = copy_secret_tree(s.secret_tree)
            ac = unprotect_private(keys, signature_key_lookup(s.tree), body)
            result = _interpret(st, ac, now)
            s.secret_tree = keys.secret_tree
            return result
    elif isinstance(body, PublicMessage):
        sender = body.content.sender
        if sender.sender_type == SenderType.NEW_MEMBER_COMMIT:
            return _process_external_commit(st, body)
        if sender.sender_type in (SenderType.EXTERNAL, SenderType.NEW_MEMBER_PROPOSAL):
            return _process_external_proposal(st, body)
        if sender.sender_type != SenderType.MEMBER:
            raise UnexpectedMessage(f"{sender.sender_type.name} senders are not supported")
        if body.content.group_id == s.context.group_id and body.content.epoch == s.context.epoch:
            signature_key_lookup(s.tree)(sender.leaf_index or 0)
        ac = unprotect_public(s.suite, s.context, s.secrets.membership_key,
                              signature_key_lookup(s.tree), body)
    else:
        raise UnexpectedMessage(f"{type(body).__name__} is not processed by a group")
    return _interpret(st, ac, now)


def claimed_sender(st: GroupState, message: MLSMessage) -> LeafIndex | None:
    """The member leaf ``message`` names as its sender, unverified (see
    :meth:`crypto.mls.group.Group.claimed_sender`)."""
    body = message.body
    if isinstance(body, PublicMessage):
        sender = body.content.sender
        if sender.sender_type != SenderType.MEMBER or sender.leaf_index is None:
            return None
        return LeafIndex(sender.leaf_index)
    if not isinstance(body, PrivateMessage) or body.group_id != st.epoch.context.group_id:
        return None
    if body.epoch == st.epoch.context.epoch:
        keys = st.epoch.epoch_keys()
    elif body.epoch in st.past:
        keys = st.past[body.epoch].keys
    else:
        return None
    return LeafIndex(private_sender_leaf(keys, body))


def _process_past_private(st: GroupState, body: PrivateMessage) -> ProcessedMessage:
    if body.epoch > st.epoch.context.epoch:
        raise WrongEpoch(f"message for future epoch {body.epoch}")
    if body.content_type != ContentType.APPLICATION:
        raise WrongEpoch(f"handshake message for past epoch {body.epoch}")
    past = st.past.get(body.epoch)
    if past is None:
        raise EpochNotRetained(f"keys of epoch {body.epoch} are no longer kept")
    ac = unprotect_private(past.keys, signature_key_lookup(past.tree), body)
    return ProcessedMessage(MessageKind.APPLICATION, LeafIndex(ac.content.sender.leaf_index or 0),
                            body.epoch, ac.content.authenticated_data, ac.content.content)  # type: ignore[arg-type]


def _interpret(st: GroupState, ac: AuthenticatedContent, now: int | None) -> ProcessedMessage:
    content = ac.content
    sender = LeafIndex(content.sender.leaf_index or 0)
    if content.content_type == ContentType.APPLICATION:
        return ProcessedMessage(MessageKind.APPLICATION, sender, content.epoch,
                                content.authenticated_data, content.content)  # type: ignore[arg-type]
    if content.content_type == ContentType.PROPOSAL:
        proposal: Proposal = content.content  # type: ignore[assignment]
        ref = st.epoch.suite.ref_hash(PROPOSAL_REF_LABEL, ac.to_bytes())
        st.public.remember_proposal(ref, PendingProposal(proposal, content.sender))
        return ProcessedMessage(MessageKind.PROPOSAL, sender, content.epoch,
                                content.authenticated_data, proposal=proposal)
    if sender == st.epoch.own_leaf:
        raise UnexpectedMessage("our own Commit: merge its StagedCommit instead")
    staged = _stage_received_commit(st, ac, now)
    return ProcessedMessage(MessageKind.COMMIT, sender, content.epoch,
                            content.authenticated_data, staged_commit=staged)


def _stage_received_commit(st: GroupState, ac: AuthenticatedContent, now: int | None) -> StagedCommit:
    s = st.epoch
    commit: Commit = ac.content.content  # type: ignore[assignment]
    committer = LeafIndex(ac.content.sender.leaf_index or 0)
    planned, public = st.public.commit_publicly(ac, now=now)
    applied = planned.applied
    staged = StagedCommit(committer, s.context.epoch + 1, applied.added, applied.removed,
                          applied.updated, commit.path is not None,
                          any(i == s.own_leaf for i, _ in applied.removed), applied.reinit, _base=s)
    if staged.self_removed:
        return staged  # we cannot follow the new epoch; its public part was checked
    keys = s.keys.copy()
    keys.prune(applied.tree)
    if s.own_leaf in applied.updated:
        own = applied.tree.leaf(s.own_leaf)
        priv = st.pending_leaf_keys.get(own.encryption_key) if own is not None else None
        if priv is None:
            raise InvalidProposalList("an Update of our leaf that we did not propose")
        keys.set(2 * s.own_leaf, priv)
    commit_secret = None
    if commit.path is not None:
        path = decrypt_update_path(public.tree, committer, commit.path, keys,
                                   provisional_context=planned.provisional,
                                   joiners=[int(i) for i, _ in applied.added])
        keys, commit_secret = path.private_keys, path.commit_secret
    staged._new = _next_state(st, ac, public, keys, commit_secret, applied.psks, s.secrets.init_secret)
    return staged


def _next_state(st: GroupState, ac: AuthenticatedContent, public: PublicEpoch, keys: TreePrivateKeys,
                commit_secret: bytes | None, psks: Sequence[PreSharedKeyID],
                init_secret: bytes) -> EpochState:
    """Key schedule and confirmation tag check of a received Commit whose public part
    gave ``public``."""
    s = st.epoch
    psk = compute_psk_secret(s.suite, psks, st.psk_lookup)
    secrets = epoch_secrets(s.suite, init_secret, commit_secret, psk, public.context.to_bytes())
    tag = confirmation_tag(s.suite, secrets.confirmation_key, public.context.confirmed_transcript_hash)
    if not constant_time_equal(tag, ac.auth.confirmation_tag or b""):
        raise ConfirmationTagMismatch("Commit confirmation tag does not verify")
    return next_epoch_state(s, public, keys, secrets, tag)


def _process_external_proposal(st: GroupState, message: PublicMessage) -> ProcessedMessage:
    """A proposal from an ``external_senders`` entry or a joiner's own Add (12.1.8)."""
    s = st.epoch
    content = message.content
    key = external_proposal_signer(s.context, content)
    ac = unprotect_public(s.suite, s.context, None, key, message)
    proposal: Proposal = content.content  # type: ignore[assignment]
    ref = s.suite.ref_hash(PROPOSAL_REF_LABEL, ac.to_bytes())
    st.public.remember_proposal(ref, PendingProposal(proposal, content.sender))
    sender = content.sender
    return ProcessedMessage(MessageKind.PROPOSAL, None, content.epoch, content.authenticated_data,
                            proposal=proposal, sender_type=sender.sender_type,
                            external_sender_index=sender.sender_index)


def _process_external_commit(st: GroupState, message: PublicMessage) -> ProcessedMessage:
    """An external Commit (12.4.3.2): signed with the path's leaf key, one ExternalInit,
    at most one Remove, PSKs; the joiner takes the leftmost blank leaf."""
    s = st.epoch
    content = message.content
    commit = content.content
    if content.content_type != ContentType.COMMIT or not isinstance(commit, Commit):
        raise UnexpectedMessage("a new_member_commit sender sent no Commit")
    if commit.path is None:
        raise MissingUpdatePath("an external Commit needs an UpdatePath")
    ac = unprotect_public(s.suite, s.context, None, commit.path.leaf_node.signature_key, message)
    planned, public = st.public.commit_publicly(ac)
    applied, joiner = planned.applied, planned.sender
    staged = StagedCommit(joiner, s.context.epoch + 1, [], applied.removed, [], True,
                          any(i == s.own_leaf for i, _ in applied.removed), external=True, _base=s)
    if not staged.self_removed:
        keys = s.keys.copy()
        keys.prune(applied.tree)
        path = decrypt_update_path(public.tree, joiner, commit.path, keys,
                                   provisional_context=planned.provisional)
        external_priv, _ = s.secrets.external_key_pair(s.suite)
        kem_output = applied.external_init.kem_output  # type: ignore[union-attr]
        init_secret = s.suite.hpke.receive_export(kem_output, external_priv, b"", EXTERNAL_INIT_LABEL,
                                                  s.suite.hash_len)
        staged._new = _next_state(st, ac, public, path.private_keys, path.commit_secret,
                                  applied.psks, init_secret)
    return ProcessedMessage(MessageKind.COMMIT, joiner, content.epoch, content.authenticated_data,
                            staged_commit=staged, sender_type=SenderType.NEW_MEMBER_COMMIT)
