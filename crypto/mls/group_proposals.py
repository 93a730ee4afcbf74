"""Proposal list validation and application (RFC 9420 sections 12.1, 12.2, 12.3).

:func:`apply_proposals` checks a committed list against the rules of 12.2 for a
regular (member) Commit, then applies it to a copy of the tree in the order of
12.3: GroupContextExtensions, Updates, Removes, Adds. It raises
:class:`~crypto.mls.group_errors.InvalidProposalList` for a broken rule or an
invalid proposal, and :class:`~crypto.mls.group_errors.UnsupportedProposal` for
nothing (every RFC 9420 type is handled). PreSharedKey proposals are checked (nonce
length, no duplicate, resumption usage ``application``) and listed in order in
``AppliedProposals.psks``; the caller looks the keys up. A ReInit must be the only
proposal of its Commit and must not lower the protocol version.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ..codec import Reader, decode_exact
from ..errors import CryptoError
from .ciphersuite import CipherSuite
from .extensions import Extension, ExtensionType, check_unique_extensions, find_extension
from .group_context import GroupContext
from .group_errors import InvalidProposalList, UnsupportedProposal
from .key_package import KeyPackage
from .key_package_gen import validate_key_package
from .leaf_node import LeafNode, LeafNodeSource
from .proposals import (
    Add,
    ExternalInit,
    GroupContextExtensions,
    PreSharedKey,
    PreSharedKeyID,
    Proposal,
    ProposalType,
    ReInit,
    Remove,
    ResumptionPSKUsage,
    Update,
)
from .ratchet_tree import RatchetTree
from .tree_math import LeafIndex
from .tree_validation import DEFAULT_EXTENSION_TYPES, verify_leaf_signature

__all__ = [
    "CommittedProposal",
    "AppliedProposals",
    "apply_proposals",
    "validate_leaf_for_group",
    "required_capabilities",
    "PATH_REQUIRED_TYPES",
    "DEFAULT_PROPOSAL_TYPES",
]

#: Proposal types every client implements (RFC 9420 section 7.2); capabilities need not list them.
DEFAULT_PROPOSAL_TYPES = frozenset(int(t) for t in ProposalType)

#: Proposal types whose presence makes the Commit's path mandatory (12.4).
PATH_REQUIRED_TYPES = frozenset({ProposalType.UPDATE, ProposalType.REMOVE,
                                 ProposalType.EXTERNAL_INIT, ProposalType.GROUP_CONTEXT_EXTENSIONS})


@dataclass(frozen=True, slots=True)
class CommittedProposal:
    """A proposal of a Commit and the leaf of the member who proposed it."""

    proposal: Proposal
    sender: int


@dataclass
class AppliedProposals:
    """The tree and extensions after the proposals, and what changed."""

    tree: RatchetTree
    extensions: tuple[Extension, ...]
    added: list[tuple[LeafIndex, KeyPackage]] = field(default_factory=list)
    removed: list[tuple[LeafIndex, LeafNode]] = field(default_factory=list)
    updated: list[LeafIndex] = field(default_factory=list)
    psks: list[PreSharedKeyID] = field(default_factory=list)
    external_init: ExternalInit | None = None
    reinit: ReInit | None = None
    path_required: bool = True


def required_capabilities(extensions: Sequence[Extension]) -> tuple[tuple[int, ...], ...] | None:
    """The (extension, proposal, credential) types of a required_capabilities extension, or None.

    Raises :class:`InvalidProposalList` when its data does not decode.
    """
    ext = find_extension(tuple(extensions), ExtensionType.REQUIRED_CAPABILITIES)
    if ext is None:
        return None

    def read(r: Reader) -> tuple[tuple[int, ...], ...]:
        return tuple(tuple(r.vector(Reader.u16)) for _ in range(3))

    try:
        return decode_exact(ext.extension_data, read)
    except CryptoError as exc:
        raise InvalidProposalList(f"required_capabilities does not decode: {exc.code}") from None


def _supports(leaf: LeafNode, required: tuple[tuple[int, ...], ...] | None,
              extensions: Sequence[Extension]) -> str | None:
    """Why ``leaf`` cannot be in a group with these GroupContext extensions, or None."""
    caps = leaf.capabilities
    for ext in extensions:
        if ext.extension_type not in DEFAULT_EXTENSION_TYPES and ext.extension_type not in caps.extensions:
            return f"group extension {ext.extension_type:#06x} not in its capabilities"
    if required is not None:
        ext_types, proposal_types, credential_types = required
        for t in ext_types:
            if t not in DEFAULT_EXTENSION_TYPES and t not in caps.extensions:
                return f"required extension {t:#06x} not supported"
        for t in proposal_types:
            if t not in DEFAULT_PROPOSAL_TYPES and t not in caps.proposals:
                return f"required proposal type {t} not supported"
        for t in credential_types:
            if t not in caps.credentials:
                return f"required credential type {t} not supported"
    return None


def validate_leaf_for_group(tree: RatchetTree, index: int, leaf: LeafNode,
                            extensions: Sequence[Extension], what: str) -> None:
    """The group-level checks of LeafNode validation (7.3) for ``leaf`` at leaf ``index`` of
    ``tree`` (the other members): required capabilities and group extensions, credential
    types supported both ways, its own extensions in its capabilities, signature and
    encryption keys unique. Raises :class:`InvalidProposalList` naming ``what``."""
    why = _supports(leaf, required_capabilities(extensions), extensions)
    if why is not None:
        raise InvalidProposalList(f"{what}: {why}")
    caps = leaf.capabilities
    for ext in leaf.extensions:
        if ext.extension_type not in DEFAULT_EXTENSION_TYPES and ext.extension_type not in caps.extensions:
            raise InvalidProposalList(f"{what}: leaf extension {ext.extension_type:#06x} not in capabilities")
    ctype = int(leaf.credential.credential_type)
    for i, member in tree.members():
        if int(i) == int(index):
            continue
        if ctype not in member.capabilities.credentials:
            raise InvalidProposalList(f"{what}: credential type {ctype} unsupported by leaf {int(i)}")
        other = int(member.credential.credential_type)
        if other not in caps.credentials:
            raise InvalidProposalList(f"{what}: does not support credential type {other} in use")
        if member.signature_key == leaf.signature_key:
            raise InvalidProposalList(f"{what}: signature key already used by leaf {int(i)}")
    for x in range(tree.width):
        if x != 2 * int(index) and tree.encryption_key(x) == leaf.encryption_key:
            raise InvalidProposalList(f"{what}: encryption key already in the tree")


def apply_proposals(
    suite: CipherSuite,
    context: GroupContext,
    tree: RatchetTree,
    committer: int,
    proposals: Sequence[CommittedProposal],
    *,
    external: bool = False,
    now: int | None = None,
    resumption_usages: frozenset[ResumptionPSKUsage] = frozenset({ResumptionPSKUsage.APPLICATION}),
) -> AppliedProposals:
    """Validate ``proposals`` (committed by leaf ``committer``) and apply them to a copy of
    ``tree``; ``tree`` itself is unchanged. See the module docstring for errors.

    ``external`` applies the rules of an external Commit (12.2): exactly one ExternalInit,
    at most one Remove, PreSharedKeys, nothing else; ``committer`` is then ignored.
    ``now`` (seconds since the epoch) also checks each added KeyPackage's lifetime.
    ``resumption_usages`` widens the allowed resumption PSK usages (only for the initial
    Commit of a branch or reinitialized group, which nobody else processes).
    """
    if external:
        kinds = [cp.proposal.proposal_type for cp in proposals]
        allowed = {ProposalType.EXTERNAL_INIT, ProposalType.REMOVE, ProposalType.PSK}
        if (kinds.count(ProposalType.EXTERNAL_INIT) != 1 or kinds.count(ProposalType.REMOVE) > 1
                or any(k not in allowed for k in kinds)):
            raise InvalidProposalList("an external Commit has one ExternalInit, at most one "
                                      "Remove and PreSharedKeys only")
        committer = -1
    external_init: ExternalInit | None = None
    reinit: ReInit | None = None
    gce: list[GroupContextExtensions] = []
    updates: list[tuple[int, Update]] = []
    removes: list[Remove] = []
    adds: list[Add] = []
    psks: list[PreSharedKeyID] = []
    for cp in proposals:
        body = cp.proposal.body
        if isinstance(body, Add):
            adds.append(body)
        elif isinstance(body, Update):
            updates.append((cp.sender, body))
        elif isinstance(body, Remove):
            removes.append(body)
        elif isinstance(body, GroupContextExtensions):
            gce.append(body)
        elif isinstance(body, ExternalInit):
            if not external:
                raise InvalidProposalList("ExternalInit in a member Commit")
            external_init = body
        elif isinstance(body, PreSharedKey):
            psks.append(body.psk)
        elif isinstance(body, ReInit):
            if len(proposals) != 1:
                raise InvalidProposalList("a ReInit proposal together with other proposals")
            if body.version < context.version:
                raise InvalidProposalList(f"ReInit to version {body.version}, below the group's")
            reinit = body
        else:  # pragma: no cover - the union is closed
            raise UnsupportedProposal(f"proposal type {cp.proposal.proposal_type}")
    if len(gce) > 1:
        raise InvalidProposalList("more than one GroupContextExtensions proposal")

    touched: set[int] = set()
    for sender, _ in updates:
        if sender == committer:
            raise InvalidProposalList("the committer's own Update proposal")
        if sender in touched:
            raise InvalidProposalList(f"two Update/Remove proposals for leaf {sender}")
        touched.add(sender)
    for r in removes:
        if r.removed == committer:
            raise InvalidProposalList("a Remove of the committer")
        if r.removed in touched:
            raise InvalidProposalList(f"two Update/Remove proposals for leaf {r.removed}")
        touched.add(r.removed)

    seen_psk: set[bytes] = set()
    for psk in psks:
        encoded = psk.to_bytes()
        if encoded in seen_psk:
            raise InvalidProposalList("two PreSharedKey proposals for the same PreSharedKeyID")
        seen_psk.add(encoded)
        if len(psk.psk_nonce) != suite.hash_len:
            raise InvalidProposalList("psk_nonce is not KDF.Nh bytes")
        if psk.usage is not None and psk.usage not in resumption_usages:
            raise InvalidProposalList(f"resumption PSK with usage {psk.usage.name} in a Commit")

    new = tree.copy()
    extensions = context.extensions
    if gce:
        try:
            check_unique_extensions(gce[0].extensions)
        except CryptoError as exc:
            raise InvalidProposalList(str(exc)) from None
        extensions = gce[0].extensions
        required = required_capabilities(extensions)
        for i, member in tree.members():
            if int(i) in {r.removed for r in removes}:
                continue
            why = _supports(member, required, extensions)
            if why is not None:
                raise InvalidProposalList(f"GroupContextExtensions: leaf {int(i)}: {why}")
    out = AppliedProposals(new, extensions, psks=psks, external_init=external_init, reinit=reinit)
    out.path_required = not proposals or any(
        cp.proposal.proposal_type in PATH_REQUIRED_TYPES for cp in proposals)

    for sender, upd in updates:
        leaf = upd.leaf_node
        old = tree.leaf(sender) if 0 <= sender < tree.n_leaves else None
        if old is None:
            raise InvalidProposalList(f"Update from blank leaf {sender}")
        if leaf.leaf_node_source != LeafNodeSource.UPDATE:
            raise InvalidProposalList("Update leaf_node_source is not update")
        if leaf.encryption_key == old.encryption_key:
            raise InvalidProposalList("Update keeps the old encryption key")
        try:
            verify_leaf_signature(tree, leaf, sender, context.group_id)
        except CryptoError as exc:
            raise InvalidProposalList(f"Update leaf: {exc}") from None
        validate_leaf_for_group(new, sender, leaf, extensions, "Update")
        new.update_leaf(sender, leaf)
        out.updated.append(LeafIndex(sender))

    for r in removes:
        if not 0 <= r.removed < new.n_leaves or new.leaf(r.removed) is None:
            raise InvalidProposalList(f"Remove of blank or absent leaf {r.removed}")
        out.removed.append((LeafIndex(r.removed), new.leaf(r.removed)))  # type: ignore[arg-type]
        new.remove_leaf(r.removed)

    seen_sig: set[bytes] = set()
    for add in adds:
        kp = add.key_package
        try:
            validate_key_package(suite, kp, now=now)
        except CryptoError as exc:
            raise InvalidProposalList(f"Add: {exc.code}: {exc}") from None
        leaf = kp.leaf_node
        if leaf.signature_key in seen_sig:
            raise InvalidProposalList("two Adds with the same signature key")
        seen_sig.add(leaf.signature_key)
        if any(new.encryption_key(x) == kp.init_key for x in range(new.width)):
            raise InvalidProposalList("Add of a KeyPackage whose init key is already in the tree")
        validate_leaf_for_group(new, -1, leaf, extensions, "Add")
        out.added.append((new.add_leaf(leaf), kp))
    return out
