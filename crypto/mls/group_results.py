"""What the group state machine hands back: StagedCommit and ProcessedMessage."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from .framing import SenderType
from .group_state import EpochState
from .key_package import KeyPackage
from .leaf_node import LeafNode
from .message import MLSMessage
from .proposals import Proposal, ReInit
from .ratchet_tree import RatchetTree
from .tree_math import LeafIndex
from .welcome import GroupInfo

__all__ = ["MessageKind", "StagedCommit", "ProcessedMessage"]


class MessageKind(Enum):
    APPLICATION = "application"
    PROPOSAL = "proposal"
    COMMIT = "commit"


@dataclass
class StagedCommit:
    """A Commit whose effects are computed but not applied; see the module docstring.

    For the committer, ``commit`` is the MLSMessage to send, ``welcome`` the Welcome for
    the new members (None without Adds), ``ratchet_tree`` the tree to hand to them out of
    band when it is not in the Welcome, and ``group_info`` the signed GroupInfo of the new
    epoch. For a receiver these are None. ``self_removed`` is set when the Commit removes
    this member: merging it makes the Group inactive.
    """

    committer: LeafIndex
    epoch: int  # the new epoch
    added: list[tuple[LeafIndex, KeyPackage]]
    removed: list[tuple[LeafIndex, LeafNode]]
    updated: list[LeafIndex]
    has_path: bool
    self_removed: bool
    reinit: ReInit | None = None  # merging it suspends the group (section 11.2)
    external: bool = False  # an external Commit: ``committer`` is the joiner's new leaf
    commit: MLSMessage | None = None
    welcome: MLSMessage | None = None
    ratchet_tree: RatchetTree | None = None
    group_info: GroupInfo | None = None
    _base: EpochState | None = field(default=None, repr=False)
    _new: EpochState | None = field(default=None, repr=False)


@dataclass(frozen=True)
class ProcessedMessage:
    """The result of :meth:`Group.process_message`.

    ``application_data`` is set for application messages, ``proposal`` for proposals
    (kept for the next Commit), ``staged_commit`` for commits (merge it to apply it).
    """

    kind: MessageKind
    sender: LeafIndex | None  # None for an external or new-member proposal
    epoch: int
    authenticated_data: bytes = b""
    application_data: bytes | None = None
    proposal: Proposal | None = None
    staged_commit: StagedCommit | None = None
    sender_type: SenderType = SenderType.MEMBER
    external_sender_index: int | None = None  # for sender_type EXTERNAL

