"""The server's public view of an MLS group (RFC 9420 sections 6.2, 12.1, 12.2, 12.4.2, 12.4.3.2).

A :class:`PublicGroup` follows one group's handshake messages without holding any
secret: it knows the members (the public ratchet tree), the epoch and the
GroupContext, and checks what can be checked in public. The hub of a room uses it
to accept the first valid Commit of an epoch and refuse the rest.

* :meth:`PublicGroup.from_group_info` starts it from a signed GroupInfo and the
  ratchet tree (what a room's creator uploads).
* :meth:`PublicGroup.process` checks a proposal or commit sent as PublicMessage and
  returns a :class:`PublicProcessed` without changing the view; the caller stores the
  message, then calls :meth:`PublicProcessed.merge`, the only way the view changes (a
  proposal is remembered for the epoch, a commit advances the epoch).
* :meth:`PublicGroup.check_group_info` checks a GroupInfo a member uploads for the
  current epoch (for external joins): the server cannot make one, having no signing key.
* :meth:`PublicGroup.to_bytes` / :meth:`PublicGroup.from_bytes` persist the view
  (it holds no secret).

What is checked of a PublicMessage: group id and epoch (:class:`EpochMismatch`, a
:class:`~crypto.mls.protection.WrongEpoch` naming the current epoch), that the sender
is a current member, an ``external_senders`` entry or an allowed new member, and
its signature over FramedContentTBS with the current GroupContext. A proposal is
checked on its own as members check it in a Commit; a Commit goes through
:meth:`PublicGroup.commit_publicly`, the very path a member's
:class:`~crypto.mls.group.Group` takes for the public part of a Commit (a Group holds
a PublicGroup for its public state): proposal resolution, the rules
of 12.2, the path required by 12.4, the UpdatePath merged into the public tree
(leaf signature, fresh keys, lengths, parent hash), then the new tree hash and
transcript hashes.

What cannot be checked without the epoch's secrets: the membership tag of a
member's PublicMessage (membership_key), the Commit's confirmation tag
(confirmation_key), the path secrets' ciphertexts, PSKs, and the
``external_pub`` of an external join. A member who holds the secrets still refuses
a Commit that fails those; the server's view is an outer filter, not a substitute.
A view that drifted from the members (say, started from a GroupInfo with a wrong
confirmation tag) does not follow another group silently: a member's signature
covers the GroupContext, so it refuses their next message (InvalidSignature).

Every error leaves the view unchanged. Errors: those of
:mod:`crypto.mls.group_errors` (:class:`HandshakeNotPublic`, :class:`NotHandshake`,
:class:`EpochMismatch`, :class:`NonMemberSender`, :class:`InvalidProposalList`,
:class:`UnknownProposalRef`, :class:`MissingUpdatePath`, :class:`UnexpectedMessage`,
:class:`GroupSuspended`, :class:`StaleStagedCommit`, :class:`GroupInfoMismatch`,
:class:`InvalidGroupState`), WrongGroup and ApplicationNotPrivate of protection,
:class:`~crypto.errors.InvalidSignature`, the TreeKEM and tree validation errors,
and decode errors.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..codec import Reader, Struct, Writer, decode_exact
from ..errors import CryptoError, InternalError
from ..primitives import constant_time_equal
from .ciphersuite import CipherSuite, get_suite
from .commit import Commit
from .extensions import ExtensionType, check_unique_extensions, find_extension
from .framing import (
    AuthenticatedContent,
    ContentType,
    PrivateMessage,
    PublicMessage,
    Sender,
    SenderType,
    WireFormat,
)
from .group_commit import (
    CommitProposals,
    apply_commit_proposals,
    check_proposal,
    external_proposal_signer,
    merge_path_publicly,
)
from .group_context import GroupContext
from .group_errors import (
    ConfirmationTagMismatch,
    EpochMismatch,
    GroupInfoMismatch,
    GroupSuspended,
    HandshakeNotPublic,
    InvalidGroupState,
    MissingRatchetTree,
    MissingUpdatePath,
    NotHandshake,
    StaleStagedCommit,
    UnexpectedMessage,
)
from .group_proposals import CommittedProposal
from .group_results import MessageKind
from .group_state import Member, PublicEpoch, signature_key_lookup
from .group_welcome import verify_group_info
from .key_package import KeyPackage
from .leaf_node import LeafNode
from .message import MLSMessage
from .proposals import Proposal, ReInit
from .protection import (
    ApplicationNotPrivate,
    WrongGroup,
    confirmed_transcript_hash_input,
    verify_framed_content,
)
from .ratchet_tree import RatchetTree
from .transcript import confirmed_transcript_hash, interim_transcript_hash
from .tree_math import LeafIndex
from .tree_validation import validate_tree_for_group
from .welcome import GroupInfo

__all__ = ["PublicGroup", "PublicProcessed", "PendingProposal", "FORMAT_VERSION"]

#: Version of :meth:`PublicGroup.to_bytes`.
FORMAT_VERSION = 1

_PROPOSAL_REF_LABEL = "MLS 1.0 Proposal Reference"


@dataclass(frozen=True, slots=True)
class PendingProposal:
    """A proposal accepted in the current epoch, and who sent it."""

    proposal: Proposal
    sender: Sender

    @property
    def leaf(self) -> LeafIndex | None:
        """The sending member's leaf; None for external and new-member proposals."""
        return LeafIndex(self.sender.leaf_index) if self.sender.sender_type == SenderType.MEMBER else None

    def committed(self) -> CommittedProposal:
        leaf = self.leaf
        return CommittedProposal(self.proposal, -1 if leaf is None else leaf)


@dataclass(frozen=True)
class PublicProcessed:
    """What :meth:`PublicGroup.process` found; nothing changes until :meth:`merge`.

    ``sender`` is the member's leaf, the joiner's new leaf for an external Commit, and
    None for proposals from ``external`` and ``new_member_proposal`` senders. ``epoch`` is
    the message's (the current) epoch. A proposal comes with its ``proposal_ref``; a
    commit with the new epoch's ``group_context`` and what it changed (``added`` with the
    new members' KeyPackages, ``removed`` with the leaves they had, ``updated``,
    ``reinit``).
    """

    kind: MessageKind
    sender_type: SenderType
    sender: LeafIndex | None
    epoch: int
    authenticated_data: bytes = b""
    external_sender_index: int | None = None
    proposal: Proposal | None = None
    proposal_ref: bytes | None = None
    group_context: GroupContext | None = None
    added: tuple[tuple[LeafIndex, KeyPackage], ...] = ()
    removed: tuple[tuple[LeafIndex, LeafNode], ...] = ()
    updated: tuple[LeafIndex, ...] = ()
    has_path: bool = False
    reinit: ReInit | None = None
    _group: PublicGroup | None = field(default=None, repr=False, compare=False)
    _base: PublicEpoch | None = field(default=None, repr=False, compare=False)
    _new: PublicEpoch | None = field(default=None, repr=False, compare=False)

    @property
    def new_epoch(self) -> int | None:
        """The epoch a merged commit starts (None for a proposal)."""
        return None if self.group_context is None else self.group_context.epoch

    def merge(self) -> None:
        """Apply this result to the view it came from; see :meth:`PublicGroup.merge`."""
        if self._group is None:  # pragma: no cover - built only by PublicGroup.process
            raise InternalError("PublicProcessed without its group")
        self._group.merge(self)


class PublicGroup:
    """The public view of one group (see the module docstring)."""

    def __init__(self, suite: CipherSuite, epoch: PublicEpoch,
                 proposals: dict[bytes, PendingProposal] | None = None) -> None:
        self._suite = suite
        self._epoch = epoch
        self._proposals: dict[bytes, PendingProposal] = dict(proposals or {})

    # -- creation -------------------------------------------------------------------------

    @classmethod
    def from_group_info(cls, group_info: GroupInfo | MLSMessage,
                        ratchet_tree: RatchetTree | bytes | None = None, *,
                        now: int | None = None) -> PublicGroup:
        """The view of the epoch ``group_info`` describes. The tree is ``ratchet_tree`` when
        given, else the GroupInfo's ratchet_tree extension; it is validated against the
        GroupContext (tree hash, parent hashes, leaf signatures and, with ``now``, lifetimes),
        and the GroupInfo must be signed by the member at its ``signer`` leaf.

        The interim transcript hash follows from the GroupInfo's confirmed transcript hash
        and confirmation tag (8.2). Raises UnexpectedMessage (not a GroupInfo),
        UnsupportedCipherSuite, :class:`MissingRatchetTree`, :class:`GroupInfoMismatch`
        (repeated extensions, a confirmation tag of the wrong length), the
        :class:`~crypto.mls.tree_errors.TreeValidationError` subclasses, InvalidSignature
        and decode errors.
        """
        info = _unwrap_group_info(group_info)
        context = info.group_context
        suite = get_suite(context.cipher_suite)
        _check_extensions(info)
        if isinstance(ratchet_tree, RatchetTree):
            tree = ratchet_tree.copy()
        elif isinstance(ratchet_tree, bytes):
            tree = RatchetTree.from_bytes(suite, ratchet_tree)
        else:
            ext = find_extension(info.extensions, ExtensionType.RATCHET_TREE)
            if ext is None:
                raise MissingRatchetTree("no ratchet tree given and no ratchet_tree extension")
            tree = RatchetTree.from_bytes(suite, ext.extension_data)
        validate_tree_for_group(tree, context, now=now)
        verify_group_info(suite, tree, info)
        if len(info.confirmation_tag) != suite.hash_len:
            raise GroupInfoMismatch("the confirmation tag is not KDF.Nh bytes")
        interim = interim_transcript_hash(suite, context.confirmed_transcript_hash, info.confirmation_tag)
        return cls(suite, PublicEpoch(context, tree, interim))

    # -- what the view knows ------------------------------------------------------------------

    @property
    def cipher_suite(self) -> CipherSuite:
        return self._suite

    @property
    def group_id(self) -> bytes:
        return self._epoch.context.group_id

    @property
    def epoch(self) -> int:
        return self._epoch.context.epoch

    @property
    def group_context(self) -> GroupContext:
        return self._epoch.context

    @property
    def interim_transcript_hash(self) -> bytes:
        return self._epoch.interim_transcript_hash

    @property
    def ratchet_tree(self) -> RatchetTree:
        """A copy of the public tree."""
        return self._epoch.tree.copy()

    @property
    def pending_proposals(self) -> dict[bytes, PendingProposal]:
        """The proposals merged in the current epoch, by ProposalRef."""
        return dict(self._proposals)

    @property
    def pending_reinit(self) -> ReInit | None:
        """The ReInit of the last merged Commit: the group then accepts nothing more."""
        return self._epoch.reinit

    @property
    def members(self) -> list[Member]:
        """The current members in leaf order (leaf index, credential with its ``identity``,
        signature key, encryption key)."""
        return [Member(i, leaf.credential, leaf.signature_key, leaf.encryption_key)
                for i, leaf in self._epoch.tree.members()]

    def find_member(self, identity: bytes) -> LeafIndex | None:
        """The leaf of the (first) member whose basic credential carries ``identity``."""
        return next((m.leaf_index for m in self.members if m.identity == identity), None)

    @property
    def public_epoch(self) -> PublicEpoch:
        """The current epoch's public state (an immutable record)."""
        return self._epoch

    # -- processing ---------------------------------------------------------------------------

    def process(self, message: MLSMessage, *, now: int | None = None) -> PublicProcessed:
        """Check a handshake PublicMessage of the current epoch; see the module docstring.
        ``now`` (seconds) also checks the lifetimes of added KeyPackages.

        The membership tag and a Commit's confirmation tag are not checked: they need the
        epoch's secrets, which the server does not hold. Raises :class:`HandshakeNotPublic`
        (a handshake PrivateMessage), :class:`NotHandshake` (an application
        PrivateMessage), ApplicationNotPrivate (application data in a PublicMessage),
        UnexpectedMessage (a Welcome, GroupInfo or KeyPackage, or a content its sender may
        not send), :class:`GroupSuspended`, WrongGroup, :class:`EpochMismatch`,
        :class:`NonMemberSender`, InvalidSignature, and for a proposal or commit the
        errors of :mod:`crypto.mls.group_commit`. The view is unchanged.
        """
        body = message.body
        if isinstance(body, PrivateMessage):
            if body.content_type == ContentType.APPLICATION:
                raise NotHandshake("the public view follows proposals and commits only")
            raise HandshakeNotPublic("proposals and commits must be sent as PublicMessage")
        if not isinstance(body, PublicMessage):
            raise UnexpectedMessage(f"{type(body).__name__} is not a handshake message")
        content = body.content
        if content.content_type == ContentType.APPLICATION:
            raise ApplicationNotPrivate("application data in a PublicMessage")
        base = self._epoch
        context = base.context
        if base.reinit is not None:
            raise GroupSuspended("the group was reinitialized; it accepts no more messages")
        if content.group_id != context.group_id:
            raise WrongGroup("message is for another group")
        if content.epoch != context.epoch:
            raise EpochMismatch(f"message for epoch {content.epoch}, group is at epoch {context.epoch}",
                                current_epoch=context.epoch, message_epoch=content.epoch)
        sender = content.sender
        if sender.sender_type == SenderType.MEMBER:
            key = signature_key_lookup(base.tree)(sender.leaf_index or 0)
        elif sender.sender_type == SenderType.NEW_MEMBER_COMMIT:
            commit = content.content
            if content.content_type != ContentType.COMMIT or not isinstance(commit, Commit):
                raise UnexpectedMessage("a new_member_commit sender sent no Commit")
            if commit.path is None:
                raise MissingUpdatePath("an external Commit needs an UpdatePath")
            key = commit.path.leaf_node.signature_key
        else:
            key = external_proposal_signer(context, content)
        ac = AuthenticatedContent(WireFormat.MLS_PUBLIC_MESSAGE, content, body.auth)
        verify_framed_content(self._suite, key, ac, context)
        if content.content_type == ContentType.PROPOSAL:
            return self._process_proposal(ac, now)
        return self._process_commit(ac, now)

    def _process_proposal(self, ac: AuthenticatedContent, now: int | None) -> PublicProcessed:
        content = ac.content
        proposal: Proposal = content.content  # type: ignore[assignment]
        sender = content.sender
        leaf = sender.leaf_index if sender.sender_type == SenderType.MEMBER else None
        base = self._epoch
        check_proposal(self._suite, base.context, base.tree, proposal, -1 if leaf is None else leaf,
                       now=now)
        ref = self._suite.ref_hash(_PROPOSAL_REF_LABEL, ac.to_bytes())
        return PublicProcessed(
            MessageKind.PROPOSAL, sender.sender_type, None if leaf is None else LeafIndex(leaf),
            content.epoch, content.authenticated_data, sender.sender_index, proposal=proposal,
            proposal_ref=ref, _group=self, _base=base)

    def _process_commit(self, ac: AuthenticatedContent, now: int | None) -> PublicProcessed:
        content = ac.content
        commit: Commit = content.content  # type: ignore[assignment]
        planned, new = self.commit_publicly(ac, now=now)
        applied = planned.applied
        return PublicProcessed(
            MessageKind.COMMIT, content.sender.sender_type, planned.sender, content.epoch,
            content.authenticated_data, group_context=new.context, added=tuple(applied.added),
            removed=tuple(applied.removed), updated=tuple(applied.updated),
            has_path=commit.path is not None, reinit=applied.reinit,
            _group=self, _base=self._epoch, _new=new)

    def commit_publicly(self, ac: AuthenticatedContent, *, now: int | None = None,
                        ) -> tuple[CommitProposals, PublicEpoch]:
        """The public part of processing an authenticated Commit of the current epoch, the
        one path members and the server share: the proposals validated and applied
        (:func:`~crypto.mls.group_commit.apply_commit_proposals`), the UpdatePath merged
        into the public tree (:func:`~crypto.mls.group_commit.merge_path_publicly`), then
        the new GroupContext and transcript hashes. The view is unchanged.

        The confirmation tag is only checked for its length (:class:`ConfirmationTagMismatch`);
        a member checks its value with the epoch's secrets. Raises the errors of
        :mod:`crypto.mls.group_commit`.
        """
        suite, base = self._suite, self._epoch
        content = ac.content
        commit: Commit = content.content  # type: ignore[assignment]
        sender = content.sender
        committer = sender.leaf_index if sender.sender_type == SenderType.MEMBER else None
        pending = {ref: p.committed() for ref, p in self._proposals.items()}
        planned = apply_commit_proposals(suite, base.context, base.tree, commit, committer, pending,
                                         now=now)
        applied = planned.applied
        tree = merge_path_publicly(planned, commit.path) if commit.path is not None else applied.tree
        tag = ac.auth.confirmation_tag or b""
        if len(tag) != suite.hash_len:
            raise ConfirmationTagMismatch("the confirmation tag is not KDF.Nh bytes")
        confirmed = confirmed_transcript_hash(suite, base.interim_transcript_hash,
                                              confirmed_transcript_hash_input(ac))
        context = replace(planned.provisional, tree_hash=tree.tree_hash(),
                          confirmed_transcript_hash=confirmed)
        return planned, PublicEpoch(context, tree, interim_transcript_hash(suite, confirmed, tag),
                                    applied.reinit)

    def remember_proposal(self, ref: bytes, proposal: PendingProposal) -> None:
        """Keep an accepted proposal for a Commit of this epoch (by any member)."""
        self._proposals[ref] = proposal

    def advance(self, epoch: PublicEpoch) -> None:
        """Start ``epoch`` (the result of a merged Commit) and forget the proposals."""
        self._epoch = epoch
        self._proposals = {}

    def merge(self, processed: PublicProcessed) -> None:
        """Apply ``processed``: a proposal is remembered for the epoch; a commit starts the
        next epoch (and forgets the proposals). Raises :class:`StaleStagedCommit` when the
        view left the epoch ``processed`` was checked in (another commit was merged)."""
        if processed._group is not self or processed._base is not self._epoch:
            raise StaleStagedCommit("the view moved on since the message was processed")
        if processed.kind == MessageKind.PROPOSAL:
            if processed.proposal is None or processed.proposal_ref is None:  # pragma: no cover
                raise InternalError("a processed proposal without its proposal")
            sender = _proposal_sender(processed)
            self.remember_proposal(processed.proposal_ref, PendingProposal(processed.proposal, sender))
            return
        if processed._new is None:  # pragma: no cover - built only by process
            raise InternalError("a processed commit without its new epoch")
        self.advance(processed._new)

    # -- GroupInfo of the current epoch ------------------------------------------------------

    def check_group_info(self, group_info: GroupInfo | MLSMessage) -> None:
        """Check that ``group_info`` describes the current epoch: the same GroupContext, the
        confirmation tag of the Commit that started it (its interim transcript hash is the
        view's), a signature by the member at its ``signer`` leaf, unique extensions, a
        ratchet_tree extension (if any) holding the view's tree, and an ``external_pub`` (if
        any) that decodes as an HPKE public key. The key itself cannot be checked.

        Raises UnexpectedMessage (not a GroupInfo), :class:`GroupInfoMismatch` and
        InvalidSignature.
        """
        info = _unwrap_group_info(group_info)
        base = self._epoch
        if info.group_context.to_bytes() != base.context.to_bytes():
            raise GroupInfoMismatch("the GroupInfo's GroupContext is not the current epoch's")
        tag = info.confirmation_tag
        if len(tag) != self._suite.hash_len or not constant_time_equal(
                interim_transcript_hash(self._suite, base.context.confirmed_transcript_hash, tag),
                base.interim_transcript_hash):
            raise GroupInfoMismatch("the confirmation tag is not the one of the epoch's Commit")
        verify_group_info(self._suite, base.tree, info)
        _check_extensions(info)
        ext = find_extension(info.extensions, ExtensionType.RATCHET_TREE)
        if ext is not None:
            try:
                tree = RatchetTree.from_bytes(self._suite, ext.extension_data)
            except CryptoError as exc:
                raise GroupInfoMismatch(f"ratchet_tree extension does not decode: {exc.code}") from None
            if tree.tree_hash() != base.context.tree_hash:
                raise GroupInfoMismatch("the ratchet_tree extension holds another tree")
        pub = find_extension(info.extensions, ExtensionType.EXTERNAL_PUB)
        if pub is not None:
            try:
                key = decode_exact(pub.extension_data, lambda r: r.opaque())
            except CryptoError as exc:
                raise GroupInfoMismatch(f"external_pub does not decode: {exc.code}") from None
            if len(key) != _HPKE_PUBLIC_KEY_LEN:
                raise GroupInfoMismatch(f"external_pub of {len(key)} bytes")

    # -- persistence ------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """The view in Confide's own format (no secret in it)::

            uint8 format_version = 1;
            GroupContext context;
            opaque ratchet_tree<V>;
            opaque interim_transcript_hash<V>;
            optional<ReInit> pending_reinit;
            struct { opaque ref<V>; Sender sender; Proposal proposal; } proposals<V>;
        """
        e = self._epoch
        w = Writer()
        w.u8(FORMAT_VERSION)
        e.context.encode(w)
        w.opaque(e.tree.to_bytes())
        w.opaque(e.interim_transcript_hash)
        w.optional(e.reinit, Struct.write_item)
        w.vector(list(self._proposals.items()),
                 lambda w2, kv: (w2.opaque(kv[0]), kv[1].sender.encode(w2), kv[1].proposal.encode(w2)))
        return w.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> PublicGroup:
        """Restore a view from :meth:`to_bytes`. Raises :class:`InvalidGroupState` when the
        data does not decode, or the tree, suite and hashes are inconsistent."""
        try:
            r = Reader(data)
            version = r.u8()
            if version != FORMAT_VERSION:
                raise InvalidGroupState(f"public group state format {version}")
            context = GroupContext.decode(r)
            suite = get_suite(context.cipher_suite)
            tree = RatchetTree.from_bytes(suite, r.opaque())
            interim = r.opaque()
            reinit = r.optional(ReInit.decode)

            def proposal(r2: Reader) -> tuple[bytes, PendingProposal]:
                ref, sender = r2.opaque(), Sender.decode(r2)
                return ref, PendingProposal(Proposal.decode(r2), sender)

            proposals = dict(r.vector(proposal))
            r.finish()
        except InvalidGroupState:
            raise
        except (CryptoError, InternalError, ValueError, KeyError, IndexError, TypeError) as exc:
            raise InvalidGroupState(f"public group state does not decode: {type(exc).__name__}: "
                                    f"{exc}") from None
        if tree.tree_hash() != context.tree_hash:
            raise InvalidGroupState("the tree does not match the GroupContext's tree hash")
        if len(interim) != suite.hash_len or any(len(ref) != suite.hash_len for ref in proposals):
            raise InvalidGroupState("a hash or ProposalRef of the wrong length")
        return cls(suite, PublicEpoch(context, tree, interim, reinit), proposals)


#: Encapsulation public key length of DHKEM(X25519), the KEM of every supported suite.
_HPKE_PUBLIC_KEY_LEN = 32


def _unwrap_group_info(group_info: GroupInfo | MLSMessage) -> GroupInfo:
    if isinstance(group_info, MLSMessage):
        if not isinstance(group_info.body, GroupInfo):
            raise UnexpectedMessage(f"{type(group_info.body).__name__} is not a GroupInfo")
        return group_info.body
    return group_info


def _check_extensions(info: GroupInfo) -> None:
    try:
        check_unique_extensions(info.extensions)
        check_unique_extensions(info.group_context.extensions)
    except CryptoError as exc:
        raise GroupInfoMismatch(str(exc)) from None


def _proposal_sender(processed: PublicProcessed) -> Sender:
    if processed.sender_type == SenderType.MEMBER:
        return Sender.member(int(processed.sender))  # type: ignore[arg-type]
    if processed.sender_type == SenderType.EXTERNAL:
        return Sender.external(processed.external_sender_index or 0)
    return Sender(processed.sender_type)

