"""Typed errors of the MLS group state machine (RFC 9420 sections 11, 12).

Every error leaves the :class:`~crypto.mls.group.Group` that raised it unchanged.
Errors from the layers below pass through unchanged as well: message
protection (:class:`~crypto.mls.protection.WrongEpoch`, ``MembershipTagMismatch``,
...), the secret tree (``GenerationTooFarAhead``, ``KeyAlreadyUsed``, ...), TreeKEM
and tree validation (:mod:`crypto.mls.tree_errors`), signatures
(:class:`~crypto.errors.InvalidSignature`) and AEADs (:class:`~crypto.errors.DecryptError`).
"""

from __future__ import annotations

from ..errors import CryptoError
from .protection import InvalidSender, ProtectionError, WrongEpoch

__all__ = [
    "GroupError",
    "NonMemberSender",
    "InvalidProposalList",
    "UnknownProposalRef",
    "UnsupportedProposal",
    "MissingUpdatePath",
    "UnknownPsk",
    "ConfirmationTagMismatch",
    "WelcomeNotForUs",
    "WelcomeSuiteMismatch",
    "MissingRatchetTree",
    "MissingExternalPub",
    "OwnLeafNotFound",
    "EpochNotRetained",
    "StaleStagedCommit",
    "GroupInactive",
    "GroupSuspended",
    "InvalidResumption",
    "UnexpectedMessage",
    "InvalidGroupState",
    "EpochMismatch",
    "HandshakeNotPublic",
    "NotHandshake",
    "GroupInfoMismatch",
]


class GroupError(CryptoError):
    """Base of the group state machine's own errors."""

    code = "mls_group"


class NonMemberSender(InvalidSender):
    """The message claims a sender leaf that is blank or outside the tree."""

    code = "mls_non_member_sender"


class InvalidProposalList(GroupError):
    """The committed proposal list breaks a rule of RFC 9420 section 12.2 (or a proposal is
    invalid on its own: a bad KeyPackage in an Add, a Remove of a blank leaf, ...)."""

    code = "mls_invalid_proposal_list"


class UnknownProposalRef(GroupError):
    """A Commit references a proposal this member has not received in the epoch."""

    code = "mls_unknown_proposal_ref"


class UnsupportedProposal(GroupError):
    """A proposal type Confide does not process (ReInit, PSK without a store, ...)."""

    code = "mls_unsupported_proposal"


class UnknownPsk(GroupError):
    """A PreSharedKey proposal or GroupSecrets names a PSK this member does not hold."""

    code = "mls_unknown_psk"


class MissingUpdatePath(GroupError):
    """A Commit that requires a path (RFC 9420 section 12.4) has none."""

    code = "mls_missing_update_path"


class ConfirmationTagMismatch(GroupError):
    """The confirmation tag of a Commit or GroupInfo does not match the derived one."""

    code = "mls_confirmation_tag_mismatch"


class WelcomeNotForUs(GroupError):
    """No EncryptedGroupSecrets in the Welcome names this client's KeyPackageRef."""

    code = "mls_welcome_not_for_us"


class WelcomeSuiteMismatch(GroupError):
    """The Welcome's or GroupInfo's cipher suite differs from the KeyPackage's."""

    code = "mls_welcome_suite_mismatch"


class MissingRatchetTree(GroupError):
    """A Welcome without a ratchet_tree extension and no tree given out of band."""

    code = "mls_missing_ratchet_tree"


class MissingExternalPub(GroupError):
    """A GroupInfo used for an external join has no external_pub extension."""

    code = "mls_missing_external_pub"


class OwnLeafNotFound(GroupError):
    """The joiner's KeyPackage leaf is not in the group's tree."""

    code = "mls_own_leaf_not_found"


class EpochNotRetained(GroupError):
    """A message for a past epoch whose keys are no longer kept (or a future epoch)."""

    code = "mls_epoch_not_retained"


class StaleStagedCommit(GroupError):
    """A StagedCommit merged into a group whose state moved on since it was staged."""

    code = "mls_stale_staged_commit"


class GroupInactive(GroupError):
    """This member was removed from the group; it can no longer send or process messages."""

    code = "mls_group_inactive"


class GroupSuspended(GroupError):
    """A Commit with a ReInit was merged: the group sends and processes nothing more; its
    members move to the new group (:meth:`~crypto.mls.group.Group.reinit`)."""

    code = "mls_group_suspended"


class InvalidResumption(GroupError):
    """A Welcome with a reinit or branch resumption PSK does not match the prior group
    (RFC 9420 sections 11.2, 11.3, 12.4.3.1)."""

    code = "mls_invalid_resumption"


class UnexpectedMessage(GroupError):
    """A message of a kind the group does not process here (a Welcome to process_message,
    a handshake message for a past epoch, our own commit echoed back, ...)."""

    code = "mls_unexpected_message"


class InvalidGroupState(GroupError):
    """Serialized group state that does not decode or is inconsistent."""

    code = "mls_invalid_group_state"


# -- the server's public view (crypto.mls.public_group) ---------------------------------


class EpochMismatch(WrongEpoch):
    """A handshake message for another epoch than the public view's current one (code
    ``mls_wrong_epoch``, as its base): ``current_epoch`` tells the sender where to re-base."""

    def __init__(self, message: str, *, current_epoch: int, message_epoch: int) -> None:
        super().__init__(message)
        self.current_epoch = current_epoch
        self.message_epoch = message_epoch


class HandshakeNotPublic(ProtectionError):
    """A proposal or commit sent as PrivateMessage: the server follows handshake messages
    only as PublicMessage."""

    code = "mls_handshake_not_public"


class NotHandshake(ProtectionError):
    """An application message given to the server's public view, which follows proposals and
    commits only (application data is a PrivateMessage it cannot read)."""

    code = "mls_not_handshake"


class GroupInfoMismatch(GroupError):
    """A GroupInfo that does not describe the public view's current epoch: another
    GroupContext, a confirmation tag that is not the last Commit's, a ratchet_tree
    extension with another tree, or a malformed or repeated extension."""

    code = "mls_group_info_mismatch"
