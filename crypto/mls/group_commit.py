"""The public checks of a received Commit and of a received proposal's sender (RFC 9420
sections 12.1.8, 12.2, 12.4.2, 12.4.3.2), shared by members and the server's public view.

A member (:class:`~crypto.mls.group.Group`) and the server
(:class:`~crypto.mls.public_group.PublicGroup`) run the same code here, so the
server refuses exactly the proposal lists and paths that members refuse:

* :func:`resolve_proposals`: the Commit's proposals by value and by reference.
* :func:`apply_commit_proposals`: the sender's rules (member Commit or external Commit),
  validation and application of the proposal list (:func:`apply_proposals`), the
  joiner's leaf of an external Commit, and whether the path is required (12.4).
* :func:`merge_path_publicly`: what a party without private keys checks of the
  UpdatePath: :func:`~crypto.mls.treekem.merge_update_path` (leaf, keys, parent hash),
  one ciphertext per resolution member, and the leaf's group checks.
* :func:`check_proposal`: a proposal on its own, as it would be checked in a Commit.
* :func:`external_proposal_signer`: the signature key of an ``external`` or
  ``new_member_proposal`` sender, and what such a sender may propose.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from .ciphersuite import CipherSuite
from .commit import Commit
from .framing import ContentType, FramedContent, SenderType
from .group_context import GroupContext
from .group_errors import (
    InvalidProposalList,
    MissingUpdatePath,
    NonMemberSender,
    UnexpectedMessage,
    UnknownProposalRef,
)
from .group_external import EXTERNAL_PROPOSAL_TYPES, external_senders
from .group_proposals import (
    AppliedProposals,
    CommittedProposal,
    apply_proposals,
    validate_leaf_for_group,
)
from .group_state import leftmost_blank_leaf
from .proposals import Add, ExternalInit, Proposal
from .ratchet_tree import RatchetTree
from .tree_errors import UpdatePathLengthMismatch
from .tree_math import LeafIndex
from .tree_nodes import UpdatePath
from .treekem import merge_update_path

__all__ = [
    "CommitProposals",
    "resolve_proposals",
    "apply_commit_proposals",
    "merge_path_publicly",
    "check_proposal",
    "external_proposal_signer",
]


@dataclass
class CommitProposals:
    """A received Commit's proposals, validated and applied; the path is not merged yet.

    ``sender`` is the committer's leaf, or for an external Commit the joiner's new leaf
    (the leftmost blank leaf after the proposals; ``applied.tree`` is extended when there
    is none). ``provisional`` is the next epoch's GroupContext before the path (epoch + 1,
    the new extensions, the tree hash of ``applied.tree``, the old transcript hash).
    """

    applied: AppliedProposals
    sender: LeafIndex
    external: bool
    provisional: GroupContext


def resolve_proposals(commit: Commit, committer: int,
                      pending: Mapping[bytes, CommittedProposal]) -> list[CommittedProposal]:
    """The Commit's proposals in order: by value (proposed by ``committer``) or looked up in
    ``pending`` by ProposalRef. Raises :class:`UnknownProposalRef`."""
    out = []
    for por in commit.proposals:
        if isinstance(por.value, Proposal):
            out.append(CommittedProposal(por.value, committer))
        else:
            cached = pending.get(por.value)
            if cached is None:
                raise UnknownProposalRef("Commit references an unknown proposal")
            out.append(cached)
    return out


def apply_commit_proposals(
    suite: CipherSuite,
    context: GroupContext,
    tree: RatchetTree,
    commit: Commit,
    committer: int | None,
    pending: Mapping[bytes, CommittedProposal],
    *,
    now: int | None = None,
) -> CommitProposals:
    """Validate and apply a received Commit's proposals; ``committer`` is the sender's leaf, or
    None for an external Commit (sender ``new_member_commit``). ``tree`` is unchanged.

    Raises :class:`MissingUpdatePath` (an external Commit always needs a path, a member
    Commit when 12.4 requires one), :class:`InvalidProposalList` (12.2, including proposals
    by reference in an external Commit) and :class:`UnknownProposalRef`.
    """
    if committer is None:
        if commit.path is None:
            raise MissingUpdatePath("an external Commit needs an UpdatePath")
        if any(not isinstance(p.value, Proposal) for p in commit.proposals):
            raise InvalidProposalList("an external Commit with proposals by reference")
        applied = apply_proposals(suite, context, tree, -1,
                                  [CommittedProposal(p.value, -1) for p in commit.proposals],  # type: ignore[arg-type]
                                  external=True, now=now)
        joiner = leftmost_blank_leaf(applied.tree)
        if joiner == applied.tree.n_leaves:
            applied.tree.extend()
        sender = LeafIndex(joiner)
    else:
        applied = apply_proposals(suite, context, tree, committer,
                                  resolve_proposals(commit, committer, pending), now=now)
        if applied.path_required and commit.path is None:
            raise MissingUpdatePath("this Commit requires an UpdatePath")
        sender = LeafIndex(committer)
    provisional = replace(context, epoch=context.epoch + 1, tree_hash=applied.tree.tree_hash(),
                          extensions=applied.extensions)
    return CommitProposals(applied, sender, committer is None, provisional)


def merge_path_publicly(proposals: CommitProposals, path: UpdatePath) -> RatchetTree:
    """The tree after merging ``path`` into ``proposals.applied.tree``, checked as far as
    public state allows (12.4.2): :func:`~crypto.mls.treekem.merge_update_path` (leaf source
    and signature, fresh keys, path length, parent hash), one ciphertext per member of each
    copath resolution (the new members excluded), and the leaf's group checks.

    Raises the errors of ``merge_update_path``, :class:`UpdatePathLengthMismatch` and
    :class:`InvalidProposalList` (the leaf does not fit the group).
    """
    applied = proposals.applied
    sender = proposals.sender
    new = merge_update_path(applied.tree, sender, path, group_id=proposals.provisional.group_id)
    joiners = [int(i) for i, _ in applied.added]
    for (p, s), node in zip(new.filtered_direct_path_pairs(sender), path.nodes, strict=True):
        res = new.resolution(s, joiners)
        if len(node.encrypted_path_secret) != len(res):
            raise UpdatePathLengthMismatch(f"node {int(p)}: {len(node.encrypted_path_secret)} "
                                           f"ciphertexts for a resolution of {len(res)}")
    what = "external Commit leaf" if proposals.external else "UpdatePath leaf"
    validate_leaf_for_group(new, sender, path.leaf_node, applied.extensions, what)
    return new


def external_proposal_signer(context: GroupContext, content: FramedContent) -> bytes:
    """The signature key of a proposal from an ``external`` sender (an ``external_senders``
    entry, 12.1.8) or a ``new_member_proposal`` sender (its own Add: the KeyPackage's key).

    Raises :class:`UnexpectedMessage` (not a proposal), :class:`NonMemberSender` (no such
    external sender), :class:`InvalidProposalList` (a type that sender may not propose) and
    decode errors (an ``external_senders`` extension that does not decode).
    """
    proposal = content.content
    if content.content_type != ContentType.PROPOSAL or not isinstance(proposal, Proposal):
        raise UnexpectedMessage("only proposals come from external senders")
    sender = content.sender
    if sender.sender_type == SenderType.EXTERNAL:
        senders = external_senders(context.extensions)
        index = sender.sender_index or 0
        if index >= len(senders):
            raise NonMemberSender(f"external sender {index} is not in external_senders")
        if proposal.proposal_type not in EXTERNAL_PROPOSAL_TYPES:
            raise InvalidProposalList(f"{proposal.proposal_type.name} from an external sender")
        return senders[index].signature_key
    if sender.sender_type == SenderType.NEW_MEMBER_PROPOSAL:
        if not isinstance(proposal.body, Add):
            raise InvalidProposalList("a new_member_proposal sender may only propose its Add")
        return proposal.body.key_package.leaf_node.signature_key
    raise UnexpectedMessage(f"{sender.sender_type.name} is not an external proposal sender")


def check_proposal(suite: CipherSuite, context: GroupContext, tree: RatchetTree, proposal: Proposal,
                   sender: int, *, now: int | None = None) -> None:
    """Check ``proposal`` from leaf ``sender`` (-1 for a non-member sender) as
    :func:`apply_proposals` would check it alone in a Commit of this epoch (by another
    member). An ExternalInit is never sent on its own (12.1.5: only in an external Commit).

    Raises :class:`InvalidProposalList`.
    """
    if isinstance(proposal.body, ExternalInit):
        raise InvalidProposalList("an ExternalInit proposal travels only inside an external Commit")
    apply_proposals(suite, context, tree, -1, [CommittedProposal(proposal, sender)], now=now)
