"""MLS (RFC 9420) for cipher suites 1 and 3: pure, sans-I/O.

The public API, re-exported here; each name is imported from its module on first
use, so ``import crypto.mls.codec``-style imports of one submodule stay cheap and
the package itself imports nothing at load time (no cycles through it).

* Members: :class:`Group` (create, join, external_join, stage_commit, process_message,
  merge_staged_commit, protect, ...), :class:`StagedCommit`, :class:`ProcessedMessage`,
  :class:`MessageKind`, :class:`Member`; :class:`GroupState`, the one record of a member's
  state, which holds the group's :class:`PublicGroup` (``Group.state``, ``Group.public_group``).
* The server: :class:`PublicGroup` (the public view of a group, whose epoch is a
  :class:`PublicEpoch`), :class:`PublicProcessed`.
* Key packages: :func:`generate_key_package`, :func:`validate_key_package`,
  :func:`key_package_ref`, :class:`KeyPackage`, :class:`KeyPackagePrivate`.
* Messages: :class:`MLSMessage`, :class:`GroupInfo`, :class:`Welcome`, :class:`Proposal`
  and its bodies, :class:`Credential`, :class:`Extension`, :class:`GroupContext`,
  :class:`RatchetTree`; external senders' messages (:func:`external_proposal`,
  :func:`new_member_add_proposal`, :class:`ExternalSender`).
* Suites: :func:`get_suite`, :class:`CipherSuite`.
* Errors: the base classes (:class:`GroupError`, :class:`ProtectionError`,
  :class:`TreeValidationError`) and those a caller branches on.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

#: Each public name and the submodule that defines it.
_EXPORTS: dict[str, str] = {
    # members
    "Group": "group",
    "StagedCommit": "group_results",
    "ProcessedMessage": "group_results",
    "MessageKind": "group_results",
    "Member": "group_state",
    "GroupState": "group_state",
    "PublicEpoch": "group_state",
    # the server
    "PublicGroup": "public_group",
    "PublicProcessed": "public_group",
    "PendingProposal": "public_group",
    # key packages
    "generate_key_package": "key_package_gen",
    "validate_key_package": "key_package_gen",
    "key_package_ref": "key_package_gen",
    "KeyPackagePrivate": "key_package_gen",
    "KeyPackage": "key_package",
    # messages and structures
    "MLSMessage": "message",
    "GroupInfo": "welcome",
    "Welcome": "welcome",
    "Proposal": "proposals",
    "Add": "proposals",
    "Update": "proposals",
    "Remove": "proposals",
    "PreSharedKey": "proposals",
    "ReInit": "proposals",
    "ExternalInit": "proposals",
    "GroupContextExtensions": "proposals",
    "Credential": "credential",
    "Extension": "extensions",
    "ExtensionType": "extensions",
    "GroupContext": "group_context",
    "RatchetTree": "ratchet_tree",
    "LeafIndex": "tree_math",
    "SenderType": "framing",
    "external_proposal": "group_external",
    "new_member_add_proposal": "group_external",
    "ExternalSender": "group_external",
    # suites
    "get_suite": "ciphersuite",
    "CipherSuite": "ciphersuite",
    # errors
    "GroupError": "group_errors",
    "NonMemberSender": "group_errors",
    "InvalidProposalList": "group_errors",
    "UnknownProposalRef": "group_errors",
    "MissingUpdatePath": "group_errors",
    "StaleStagedCommit": "group_errors",
    "EpochMismatch": "group_errors",
    "HandshakeNotPublic": "group_errors",
    "NotHandshake": "group_errors",
    "GroupInfoMismatch": "group_errors",
    "InvalidGroupState": "group_errors",
    "ProtectionError": "protection",
    "WrongGroup": "protection",
    "WrongEpoch": "protection",
    "TreeValidationError": "tree_validation",
}

__all__ = [
    "Add",
    "CipherSuite",
    "Credential",
    "EpochMismatch",
    "Extension",
    "ExtensionType",
    "ExternalInit",
    "ExternalSender",
    "Group",
    "GroupContext",
    "GroupContextExtensions",
    "GroupError",
    "GroupInfo",
    "GroupInfoMismatch",
    "GroupState",
    "HandshakeNotPublic",
    "InvalidGroupState",
    "InvalidProposalList",
    "KeyPackage",
    "KeyPackagePrivate",
    "LeafIndex",
    "MLSMessage",
    "Member",
    "MessageKind",
    "MissingUpdatePath",
    "NonMemberSender",
    "NotHandshake",
    "PendingProposal",
    "PreSharedKey",
    "ProcessedMessage",
    "Proposal",
    "ProtectionError",
    "PublicGroup",
    "PublicEpoch",
    "PublicProcessed",
    "RatchetTree",
    "ReInit",
    "Remove",
    "SenderType",
    "StagedCommit",
    "StaleStagedCommit",
    "TreeValidationError",
    "UnknownProposalRef",
    "Update",
    "Welcome",
    "WrongEpoch",
    "WrongGroup",
    "external_proposal",
    "generate_key_package",
    "get_suite",
    "key_package_ref",
    "new_member_add_proposal",
    "validate_key_package",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # pragma: no cover - for type checkers and editors only
    from .ciphersuite import CipherSuite, get_suite
    from .credential import Credential
    from .extensions import Extension, ExtensionType
    from .framing import SenderType
    from .group import Group
    from .group_context import GroupContext
    from .group_errors import (
        EpochMismatch,
        GroupError,
        GroupInfoMismatch,
        HandshakeNotPublic,
        InvalidGroupState,
        InvalidProposalList,
        MissingUpdatePath,
        NonMemberSender,
        NotHandshake,
        StaleStagedCommit,
        UnknownProposalRef,
    )
    from .group_external import ExternalSender, external_proposal, new_member_add_proposal
    from .group_results import MessageKind, ProcessedMessage, StagedCommit
    from .group_state import GroupState, Member, PublicEpoch
    from .key_package import KeyPackage
    from .key_package_gen import (
        KeyPackagePrivate,
        generate_key_package,
        key_package_ref,
        validate_key_package,
    )
    from .message import MLSMessage
    from .proposals import (
        Add,
        ExternalInit,
        GroupContextExtensions,
        PreSharedKey,
        Proposal,
        ReInit,
        Remove,
        Update,
    )
    from .protection import ProtectionError, WrongEpoch, WrongGroup
    from .public_group import PendingProposal, PublicGroup, PublicProcessed
    from .ratchet_tree import RatchetTree
    from .tree_math import LeafIndex
    from .tree_validation import TreeValidationError
    from .welcome import GroupInfo, Welcome
