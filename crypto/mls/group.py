"""The MLS group state machine (RFC 9420 sections 6, 8, 11, 12), sans-I/O.

A :class:`Group` is one member's view of one group. It is driven by calls and
returns messages to send; it never touches a network, clock or global RNG
(randomness comes from an ``rng`` argument).

State changes follow one rule: **merging a StagedCommit is the only way the
epoch advances.**

* The committer calls :meth:`Group.stage_commit`: it gets a
  :class:`StagedCommit` holding the Commit (an MLSMessage to send), the
  Welcome for new members, the ratchet tree when it is not in the Welcome,
  and the new epoch's state. Once the delivery service accepted the Commit,
  :meth:`Group.merge_staged_commit` applies it.
* Every other member calls :meth:`Group.process_message`: application data
  comes back at once; a Commit comes back as a StagedCommit to inspect
  (``added``, ``removed``, ``updated``) and then merge.
* A new member calls :meth:`Group.join` with the Welcome, or joins by itself with
  :meth:`Group.external_join` from a GroupInfo (:meth:`Group.group_info`).
* Proposals travel on their own (:meth:`Group.propose`, :meth:`Group.propose_update`,
  external senders in :mod:`crypto.mls.group_external`) and are committed by reference.
* :meth:`Group.branch` starts a subgroup; a merged ReInit suspends the group until
  :meth:`Group.reinit` (or a Welcome joined with ``prior=``) moves on to the new one.
* :meth:`Group.to_bytes` / :meth:`Group.from_bytes` persist the whole member state.

Processing works on copies: a message that fails any check raises a typed
error (:mod:`crypto.mls.group_errors`, and the errors of protection, the
secret tree, TreeKEM and tree validation) and leaves the Group as it was.

Keys of the last ``max_past_epochs`` epochs are kept so that application
messages sent just before a Commit still decrypt; handshake messages are only
accepted for the current epoch (:class:`~crypto.mls.protection.WrongEpoch`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import replace

from ..codec import Writer
from ..errors import InternalError
from ..primitives import constant_time_equal
from ..rng import Rng, system_rng
from .ciphersuite import CipherSuite, get_suite
from .commit import Commit
from .extensions import Extension, ExtensionType, find_extension
from .framing import (
    AuthenticatedContent,
    ContentType,
    FramedContent,
    FramedContentAuthData,
    PrivateMessage,
    PublicMessage,
    Sender,
    SenderType,
    WireFormat,
)
from .group_commit import (
    apply_commit_proposals,
    external_proposal_signer,
    merge_path_publicly,
    resolve_proposals,
)
from .group_context import GroupContext
from .group_errors import (
    ConfirmationTagMismatch,
    EpochNotRetained,
    GroupInactive,
    GroupSuspended,
    InvalidProposalList,
    InvalidResumption,
    MissingRatchetTree,
    MissingUpdatePath,
    OwnLeafNotFound,
    StaleStagedCommit,
    UnexpectedMessage,
    UnknownPsk,
)
from .group_external import external_join
from .group_proposals import CommittedProposal, apply_proposals, validate_leaf_for_group
from .group_results import MessageKind, ProcessedMessage, StagedCommit
from .group_resumption import check_resumption, start_resumed_group
from .group_state import (
    DEFAULT_MAX_PAST_EPOCHS,
    EXTERNAL_INIT_LABEL,
    RESUMPTION_PSKS_KEPT,
    EpochState,
    Member,
    PastEpoch,
    confirmed_input,
    copy_secret_tree,
    secrets_from_epoch_secret,
    signature_key_lookup,
)
from .group_welcome import (
    build_welcome,
    compute_psk_secret,
    open_welcome,
    sign_group_info,
    verify_group_info,
)
from .key_package import KeyPackage
from .key_package_gen import KeyPackagePrivate
from .key_schedule import (
    EpochSecrets,
    confirmation_tag,
    epoch_secrets,
    epoch_secrets_from_joiner,
    mls_exporter,
)
from .leaf_node import LeafNodeSource
from .message import MLSMessage
from .proposals import Add as AddProposal
from .proposals import (
    PreSharedKey,
    PreSharedKeyID,
    Proposal,
    ProposalOrRef,
    PSKType,
    ReInit,
    Remove,
    ResumptionPSKUsage,
    Update,
)
from .protection import (
    WrongEpoch,
    WrongGroup,
    confirmed_transcript_hash_input,
    protect_private,
    protect_public,
    sign_framed_content,
    unprotect_private,
    unprotect_public,
)
from .ratchet_tree import RatchetTree
from .secret_tree import SecretTree
from .transcript import confirmed_transcript_hash, interim_transcript_hash
from .tree_math import LeafIndex
from .tree_validation import validate_tree_for_group
from .treekem import (
    TreePrivateKeys,
    create_update_path,
    joiner_private_keys,
    process_update_path,
)
from .welcome import GroupInfo, Welcome

__all__ = [
    "Group",
    "Member",
    "StagedCommit",
    "ProcessedMessage",
    "MessageKind",
    "DEFAULT_MAX_PAST_EPOCHS",
]


class Group:
    """One member's state of one MLS group (see the module docstring)."""

    def __init__(self, state: EpochState, *, max_past_epochs: int = DEFAULT_MAX_PAST_EPOCHS,
                 external_psks: Mapping[bytes, bytes] | None = None) -> None:
        self._state = state
        self._past: OrderedDict[int, PastEpoch] = OrderedDict()
        self._max_past_epochs = max_past_epochs
        self._active = True
        self._proposals: dict[bytes, CommittedProposal] = {}
        self._pending_leaf_keys: dict[bytes, bytes] = {}
        self._external_psks: dict[bytes, bytes] = dict(external_psks or {})
        self._resumption_psks: OrderedDict[int, bytes] = OrderedDict()
        self._prior_resumption_psks: dict[tuple[bytes, int], bytes] = {}
        self._reinit: ReInit | None = None
        self._remember_resumption_psk()

    def _remember_resumption_psk(self) -> None:
        s = self._state
        self._resumption_psks[s.context.epoch] = s.secrets.resumption_psk
        while len(self._resumption_psks) > RESUMPTION_PSKS_KEPT:
            self._resumption_psks.popitem(last=False)

    def add_external_psk(self, psk_id: bytes, psk: bytes) -> None:
        """Make an external PSK available to PreSharedKey proposals and Welcomes."""
        self._external_psks[psk_id] = psk

    def _psk_lookup(self, psk_id: PreSharedKeyID) -> bytes:
        if psk_id.psktype == PSKType.EXTERNAL:
            psk = self._external_psks.get(psk_id.psk_id or b"")
        elif psk_id.psk_group_id == self.group_id and psk_id.usage == ResumptionPSKUsage.APPLICATION:
            psk = self._resumption_psks.get(psk_id.psk_epoch or 0)
        else:
            # A reinit or branch PSK names the prior group, which may share our group_id (11.2).
            psk = self._prior_resumption_psks.get((psk_id.psk_group_id or b"", psk_id.psk_epoch or 0))
        if psk is None:
            raise UnknownPsk("PSK not available")
        return psk

    def psk_proposal(self, psk_id: bytes, rng: Rng = system_rng) -> Proposal:
        """A PreSharedKey proposal for the external PSK ``psk_id`` with a fresh nonce."""
        return Proposal(PreSharedKey(PreSharedKeyID(PSKType.EXTERNAL, rng(self.cipher_suite.hash_len),
                                                    psk_id=psk_id)))

    def resumption_psk_proposal(self, epoch: int, rng: Rng = system_rng) -> Proposal:
        """A PreSharedKey proposal for this group's resumption PSK of ``epoch`` (usage
        application); the epoch must be one of the last kept (else UnknownPsk on commit)."""
        return Proposal(PreSharedKey(PreSharedKeyID(
            PSKType.RESUMPTION, rng(self.cipher_suite.hash_len), usage=ResumptionPSKUsage.APPLICATION,
            psk_group_id=self.group_id, psk_epoch=epoch)))

    # -- creation and joining -------------------------------------------------------

    @classmethod
    def create(
        cls,
        suite: CipherSuite | int,
        group_id: bytes,
        key_package: KeyPackage,
        private: KeyPackagePrivate,
        *,
        extensions: Sequence[Extension] = (),
        rng: Rng = system_rng,
        max_past_epochs: int = DEFAULT_MAX_PAST_EPOCHS,
    ) -> Group:
        """A one-member group at epoch 0 (section 11), the creator at leaf 0 with the leaf of
        ``key_package`` (its init key is not used). Raises
        :class:`~crypto.mls.group_errors.InvalidProposalList` when that leaf does not support
        ``extensions`` (or a required_capabilities extension among them)."""
        suite = get_suite(suite) if isinstance(suite, int) else suite
        tree = RatchetTree.one_member(suite, key_package.leaf_node)
        validate_leaf_for_group(tree, 0, key_package.leaf_node, tuple(extensions), "creator leaf")
        context = GroupContext(suite.id, group_id, 0, tree.tree_hash(), b"", tuple(extensions))
        secrets = secrets_from_epoch_secret(suite, rng(suite.hash_len))
        tag = confirmation_tag(suite, secrets.confirmation_key, b"")
        state = EpochState(
            suite=suite, context=context, tree=tree,
            keys=TreePrivateKeys.for_leaf(0, private.encryption_priv),
            signature_priv=private.signature_priv, secrets=secrets, confirmation_tag=tag,
            interim_transcript_hash=interim_transcript_hash(suite, b"", tag),
            secret_tree=SecretTree(suite, secrets.encryption_secret, tree.n_leaves),
        )
        return cls(state, max_past_epochs=max_past_epochs)

    @classmethod
    def join(
        cls,
        welcome: MLSMessage | Welcome,
        key_package: KeyPackage,
        private: KeyPackagePrivate,
        ratchet_tree: RatchetTree | None = None,
        *,
        external_psks: Mapping[bytes, bytes] | None = None,
        prior: Group | None = None,
        now: int | None = None,
        max_past_epochs: int = DEFAULT_MAX_PAST_EPOCHS,
    ) -> Group:
        """Join from a Welcome (section 12.4.3.1); ``now`` (seconds) also checks leaf lifetimes.

        ``prior`` is this client's Group that a branch or reinit Welcome resumes: its
        resumption PSKs are available, and the new group is checked against it (11.2, 11.3;
        :class:`~crypto.mls.group_errors.InvalidResumption`).

        The tree comes from the GroupInfo's ratchet_tree extension, else ``ratchet_tree``.
        Raises :class:`~crypto.mls.group_errors.WelcomeNotForUs`,
        :class:`~crypto.mls.group_errors.WelcomeSuiteMismatch`,
        :class:`~crypto.mls.group_errors.MissingRatchetTree`,
        :class:`~crypto.errors.InvalidSignature` (GroupInfo),
        :class:`~crypto.mls.tree_errors.TreeValidationError` subclasses,
        :class:`~crypto.mls.group_errors.OwnLeafNotFound`,
        :class:`~crypto.mls.tree_errors.PrivateKeyMismatch` (path secret),
        :class:`~crypto.mls.group_errors.ConfirmationTagMismatch`, DecryptError, decode errors.
        """
        if isinstance(welcome, MLSMessage):
            if not isinstance(welcome.body, Welcome):
                raise UnexpectedMessage("join needs a Welcome")
            welcome = welcome.body
        suite = get_suite(key_package.cipher_suite)
        store = dict(external_psks or {})

        def lookup(psk_id: PreSharedKeyID) -> bytes:
            if psk_id.psktype == PSKType.EXTERNAL:
                psk = store.get(psk_id.psk_id or b"")
            elif prior is not None and psk_id.psk_group_id == prior.group_id:
                psk = prior._resumption_psks.get(psk_id.psk_epoch or 0)
            else:
                psk = None
            if psk is None:
                raise UnknownPsk("the Welcome needs a PSK this client does not hold")
            return psk

        secrets_in, info, psk = open_welcome(suite, welcome, key_package, private, lookup)
        context = info.group_context
        ext = find_extension(info.extensions, ExtensionType.RATCHET_TREE)
        if ext is not None:
            tree = RatchetTree.from_bytes(suite, ext.extension_data)
        elif ratchet_tree is not None:
            tree = ratchet_tree.copy()
        else:
            raise MissingRatchetTree("no ratchet_tree extension and no tree given")
        verify_group_info(suite, tree, info)
        validate_tree_for_group(tree, context, now=now)
        own = tree.find_leaf(lambda leaf: leaf == key_package.leaf_node)
        if own is None:
            raise OwnLeafNotFound("the KeyPackage's leaf is not in the tree")
        validate_leaf_for_group(tree, own, key_package.leaf_node, context.extensions, "own leaf")
        check_resumption(secrets_in.psks, context, tree, prior)
        path_secret = secrets_in.path_secret.path_secret if secrets_in.path_secret else None
        keys = joiner_private_keys(tree, own, private.encryption_priv,
                                   info.signer if path_secret is not None else None, path_secret)
        secrets = epoch_secrets_from_joiner(suite, secrets_in.joiner_secret, psk, context.to_bytes())
        want = confirmation_tag(suite, secrets.confirmation_key, context.confirmed_transcript_hash)
        if not constant_time_equal(want, info.confirmation_tag):
            raise ConfirmationTagMismatch("GroupInfo confirmation tag does not verify")
        state = EpochState(
            suite=suite, context=context, tree=tree, keys=keys,
            signature_priv=private.signature_priv, secrets=secrets,
            confirmation_tag=info.confirmation_tag,
            interim_transcript_hash=interim_transcript_hash(
                suite, context.confirmed_transcript_hash, info.confirmation_tag),
            secret_tree=SecretTree(suite, secrets.encryption_secret, tree.n_leaves),
        )
        return cls(state, max_past_epochs=max_past_epochs, external_psks=store)

    @classmethod
    def external_join(
        cls,
        group_info: GroupInfo | MLSMessage,
        key_package: KeyPackage,
        private: KeyPackagePrivate,
        ratchet_tree: RatchetTree | None = None,
        *,
        remove_prior: int | None = None,
        external_psks: Mapping[bytes, bytes] | None = None,
        authenticated_data: bytes = b"",
        rng: Rng = system_rng,
        max_past_epochs: int = DEFAULT_MAX_PAST_EPOCHS,
    ) -> tuple[Group, MLSMessage]:
        """Join by an external Commit; see :func:`crypto.mls.group_external.external_join`."""
        return external_join(cls, group_info, key_package, private, ratchet_tree,
                             remove_prior=remove_prior, external_psks=external_psks,
                             authenticated_data=authenticated_data,
                             rng=rng, max_past_epochs=max_past_epochs)

    # -- serialization ------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """The whole member state, secrets included (store it encrypted); see
        :mod:`crypto.mls.group_serialization`."""
        from .group_serialization import encode_group

        return encode_group(self)

    @classmethod
    def from_bytes(cls, data: bytes) -> Group:
        """Restore a Group from :meth:`to_bytes`; raises
        :class:`~crypto.mls.group_errors.InvalidGroupState`."""
        from .group_serialization import decode_group

        return decode_group(data, cls)

    # -- properties -------------------------------------------------------------------

    @property
    def cipher_suite(self) -> CipherSuite:
        """The group's cipher suite (the same name as ``PublicGroup.cipher_suite``)."""
        return self._state.suite

    @property
    def suite(self) -> CipherSuite:
        """Old name of ``cipher_suite``, kept for callers written before the rename."""
        return self._state.suite

    @property
    def group_id(self) -> bytes:
        return self._state.context.group_id

    @property
    def epoch(self) -> int:
        return self._state.context.epoch

    @property
    def group_context(self) -> GroupContext:
        return self._state.context

    @property
    def own_leaf_index(self) -> LeafIndex:
        return self._state.own_leaf

    @property
    def is_active(self) -> bool:
        """False once a merged Commit removed this member."""
        return self._active

    @property
    def epoch_authenticator(self) -> bytes:
        return self._state.secrets.epoch_authenticator

    @property
    def ratchet_tree(self) -> RatchetTree:
        """A copy of the public tree (safe to hand to a joiner out of band)."""
        return self._state.tree.copy()

    @property
    def members(self) -> list[Member]:
        return [Member(i, leaf.credential, leaf.signature_key, leaf.encryption_key)
                for i, leaf in self._state.tree.members()]

    def find_member(self, identity: bytes) -> LeafIndex | None:
        """The leaf of the (first) member whose basic credential carries ``identity``."""
        return next((m.leaf_index for m in self.members if m.identity == identity), None)

    def exporter(self, label: str | bytes, context: bytes, length: int) -> bytes:
        """MLS-Exporter (section 8.5) of the current epoch."""
        return mls_exporter(self.suite, self._state.secrets.exporter_secret, label, context, length)

    def group_info(self, *, with_ratchet_tree: bool = True, with_external_pub: bool = True) -> GroupInfo:
        """A signed GroupInfo of the current epoch; with ``external_pub`` it allows one
        external join (:meth:`external_join`)."""
        s = self._state
        exts: list[Extension] = []
        if with_external_pub:
            w = Writer()
            w.opaque(s.secrets.external_key_pair(s.suite)[1])
            exts.append(Extension(ExtensionType.EXTERNAL_PUB, w.getvalue()))
        if with_ratchet_tree:
            exts.append(Extension(ExtensionType.RATCHET_TREE, s.tree.to_bytes()))
        return sign_group_info(s.suite, s.signature_priv,
                               GroupInfo(s.context, tuple(exts), s.confirmation_tag, s.own_leaf))

    def _require_active(self) -> None:
        if not self._active:
            raise GroupInactive("this member was removed from the group")
        if self._reinit is not None:
            raise GroupSuspended("the group was reinitialized; move to the new group")

    @property
    def pending_reinit(self) -> ReInit | None:
        """The ReInit of the last merged Commit, if any: the group is then suspended."""
        return self._reinit

    # -- application messages --------------------------------------------------------

    def protect(self, data: bytes, *, authenticated_data: bytes = b"", padding: int = 0,
                rng: Rng = system_rng) -> MLSMessage:
        """Application data as a PrivateMessage of the current epoch (consumes one key)."""
        self._require_active()
        s = self._state
        content = FramedContent(s.context.group_id, s.context.epoch, Sender.member(s.own_leaf),
                                authenticated_data, ContentType.APPLICATION, data)
        return MLSMessage(protect_private(s.epoch_keys(), s.signature_priv, content,
                                          padding=padding, rng=rng))

    # -- receiving --------------------------------------------------------------------

    def process_message(self, message: MLSMessage, *, now: int | None = None) -> ProcessedMessage:
        """Unprotect and interpret a PublicMessage or PrivateMessage; see the module docstring.
        ``now`` (seconds) also checks the lifetime of KeyPackages a Commit adds.

        Raises WrongGroup/WrongEpoch, :class:`~crypto.mls.group_errors.EpochNotRetained`,
        :class:`~crypto.mls.group_errors.NonMemberSender`, UnexpectedMessage, the
        protection and secret tree errors, and (for a Commit) what processing it raises.
        The Group is unchanged on any error; a Commit changes it only when merged.
        """
        body = message.body
        if not self._active or self._reinit is not None:
            # A removed or suspended member still reads late application messages of the
            # epochs it kept.
            if (isinstance(body, PrivateMessage) and body.content_type == ContentType.APPLICATION
                    and body.group_id == self.group_id and body.epoch in self._past):
                return self._process_past_private(body)
            self._require_active()
        s = self._state
        if isinstance(body, PrivateMessage):
            if body.group_id != s.context.group_id:
                raise WrongGroup("message is for another group")
            if body.epoch != s.context.epoch:
                return self._process_past_private(body)
            if body.content_type == ContentType.APPLICATION:
                ac = unprotect_private(s.epoch_keys(), signature_key_lookup(s.tree), body)
            else:
                # A handshake message is decrypted on a copy of the secret tree, adopted only
                # once the proposal or commit has been fully processed.
                keys = s.epoch_keys()
                keys.secret_tree = copy_secret_tree(s.secret_tree)
                ac = unprotect_private(keys, signature_key_lookup(s.tree), body)
                result = self._interpret(ac, now)
                s.secret_tree = keys.secret_tree
                return result
        elif isinstance(body, PublicMessage):
            sender = body.content.sender
            if sender.sender_type == SenderType.NEW_MEMBER_COMMIT:
                return self._process_external_commit(body)
            if sender.sender_type in (SenderType.EXTERNAL, SenderType.NEW_MEMBER_PROPOSAL):
                return self._process_external_proposal(body)
            if sender.sender_type != SenderType.MEMBER:
                raise UnexpectedMessage(f"{sender.sender_type.name} senders are not supported")
            if body.content.group_id == s.context.group_id and body.content.epoch == s.context.epoch:
                signature_key_lookup(s.tree)(sender.leaf_index or 0)
            ac = unprotect_public(s.suite, s.context, s.secrets.membership_key,
                                  signature_key_lookup(s.tree), body)
        else:
            raise UnexpectedMessage(f"{type(body).__name__} is not processed by a group")
        return self._interpret(ac, now)

    def _process_past_private(self, body: PrivateMessage) -> ProcessedMessage:
        if body.epoch > self.epoch:
            raise WrongEpoch(f"message for future epoch {body.epoch}")
        if body.content_type != ContentType.APPLICATION:
            raise WrongEpoch(f"handshake message for past epoch {body.epoch}")
        past = self._past.get(body.epoch)
        if past is None:
            raise EpochNotRetained(f"keys of epoch {body.epoch} are no longer kept")
        ac = unprotect_private(past.keys, signature_key_lookup(past.tree), body)
        return ProcessedMessage(MessageKind.APPLICATION, LeafIndex(ac.content.sender.leaf_index or 0),
                                body.epoch, ac.content.authenticated_data, ac.content.content)  # type: ignore[arg-type]

    def _interpret(self, ac: AuthenticatedContent, now: int | None = None) -> ProcessedMessage:
        content = ac.content
        sender = LeafIndex(content.sender.leaf_index or 0)
        if content.content_type == ContentType.APPLICATION:
            return ProcessedMessage(MessageKind.APPLICATION, sender, content.epoch,
                                    content.authenticated_data, content.content)  # type: ignore[arg-type]
        if content.content_type == ContentType.PROPOSAL:
            proposal = content.content
            ref = self.cipher_suite.ref_hash("MLS 1.0 Proposal Reference", ac.to_bytes())
            self._proposals[ref] = CommittedProposal(proposal, int(sender))  # type: ignore[arg-type]
            return ProcessedMessage(MessageKind.PROPOSAL, sender, content.epoch,
                                    content.authenticated_data, proposal=proposal)  # type: ignore[arg-type]
        if sender == self.own_leaf_index:
            raise UnexpectedMessage("our own Commit: merge its StagedCommit instead")
        staged = self._stage_received_commit(ac, now)
        return ProcessedMessage(MessageKind.COMMIT, sender, content.epoch,
                                content.authenticated_data, staged_commit=staged)

    def _resolve(self, commit: Commit, committer: int) -> list[CommittedProposal]:
        return resolve_proposals(commit, committer, self._proposals)

    def _stage_received_commit(self, ac: AuthenticatedContent, now: int | None) -> StagedCommit:
        s = self._state
        commit: Commit = ac.content.content  # type: ignore[assignment]
        committer = LeafIndex(ac.content.sender.leaf_index or 0)
        planned = apply_commit_proposals(s.suite, s.context, s.tree, commit, committer, self._proposals,
                                         now=now)
        applied, provisional = planned.applied, planned.provisional
        staged = StagedCommit(committer, s.context.epoch + 1, applied.added, applied.removed,
                              applied.updated, commit.path is not None,
                              any(i == s.own_leaf for i, _ in applied.removed), applied.reinit,
                              _base=s)
        keys = s.keys.copy()
        keys.prune(applied.tree)
        if s.own_leaf in applied.updated:
            own = applied.tree.leaf(s.own_leaf)
            priv = self._pending_leaf_keys.get(own.encryption_key) if own is not None else None
            if priv is None:
                raise InvalidProposalList("an Update of our leaf that we did not propose")
            keys.set(2 * s.own_leaf, priv)
        joiners = [int(i) for i, _ in applied.added]
        if staged.self_removed:
            # We cannot follow the new epoch; still check the path as the server does.
            if commit.path is not None:
                merge_path_publicly(planned, commit.path)
            return staged
        if commit.path is not None:
            processed = process_update_path(applied.tree, committer, commit.path, keys,
                                            provisional_context=provisional, joiners=joiners)
            tree, keys, commit_secret = processed.tree, processed.private_keys, processed.commit_secret
            validate_leaf_for_group(tree, committer, commit.path.leaf_node, applied.extensions,
                                    "UpdatePath leaf")
        else:
            tree, commit_secret = applied.tree, None
        staged._new = self._next_state(ac, provisional, tree, keys, commit_secret, applied.psks,
                                       s.secrets.init_secret)
        return staged

    def _next_state(self, ac: AuthenticatedContent, provisional: GroupContext, tree: RatchetTree,
                    keys: TreePrivateKeys, commit_secret: bytes | None,
                    psks: Sequence[PreSharedKeyID], init_secret: bytes) -> EpochState:
        """Transcript hashes, key schedule and confirmation tag check of a received Commit."""
        s = self._state
        confirmed = confirmed_transcript_hash(s.suite, s.interim_transcript_hash,
                                              confirmed_transcript_hash_input(ac))
        context = replace(provisional, tree_hash=tree.tree_hash(), confirmed_transcript_hash=confirmed)
        psk = compute_psk_secret(s.suite, psks, self._psk_lookup)
        secrets = epoch_secrets(s.suite, init_secret, commit_secret, psk, context.to_bytes())
        tag = confirmation_tag(s.suite, secrets.confirmation_key, confirmed)
        if not constant_time_equal(tag, ac.auth.confirmation_tag or b""):
            raise ConfirmationTagMismatch("Commit confirmation tag does not verify")
        return self._new_state(s, context, tree, keys, secrets, tag)

    def _process_external_proposal(self, message: PublicMessage) -> ProcessedMessage:
        """A proposal from an ``external_senders`` entry or a joiner's own Add (12.1.8)."""
        s = self._state
        content = message.content
        key = external_proposal_signer(s.context, content)
        ac = unprotect_public(s.suite, s.context, None, key, message)
        proposal: Proposal = content.content  # type: ignore[assignment]
        ref = s.suite.ref_hash("MLS 1.0 Proposal Reference", ac.to_bytes())
        self._proposals[ref] = CommittedProposal(proposal, -1)
        sender = content.sender
        return ProcessedMessage(MessageKind.PROPOSAL, None, content.epoch, content.authenticated_data,
                                proposal=proposal, sender_type=sender.sender_type,
                                external_sender_index=sender.sender_index)

    def _process_external_commit(self, message: PublicMessage) -> ProcessedMessage:
        """An external Commit (12.4.3.2): signed with the path's leaf key, one ExternalInit,
        at most one Remove, PSKs; the joiner takes the leftmost blank leaf."""
        s = self._state
        content = message.content
        commit = content.content
        if content.content_type != ContentType.COMMIT or not isinstance(commit, Commit):
            raise UnexpectedMessage("a new_member_commit sender sent no Commit")
        if commit.path is None:
            raise MissingUpdatePath("an external Commit needs an UpdatePath")
        ac = unprotect_public(s.suite, s.context, None, commit.path.leaf_node.signature_key, message)
        planned = apply_commit_proposals(s.suite, s.context, s.tree, commit, None, self._proposals)
        applied, joiner = planned.applied, planned.sender
        staged = StagedCommit(joiner, s.context.epoch + 1, [], applied.removed, [], True,
                              any(i == s.own_leaf for i, _ in applied.removed), external=True, _base=s)
        if staged.self_removed:
            merge_path_publicly(planned, commit.path)
            return ProcessedMessage(MessageKind.COMMIT, joiner, content.epoch,
                                    content.authenticated_data, staged_commit=staged,
                                    sender_type=SenderType.NEW_MEMBER_COMMIT)
        keys = s.keys.copy()
        keys.prune(applied.tree)
        processed = process_update_path(applied.tree, joiner, commit.path, keys,
                                        provisional_context=planned.provisional)
        validate_leaf_for_group(processed.tree, joiner, commit.path.leaf_node, applied.extensions,
                                "external Commit leaf")
        external_priv, _ = s.secrets.external_key_pair(s.suite)
        kem_output = applied.external_init.kem_output  # type: ignore[union-attr]
        init_secret = s.suite.hpke.receive_export(kem_output, external_priv, b"", EXTERNAL_INIT_LABEL,
                                                  s.suite.hash_len)
        staged._new = self._next_state(ac, planned.provisional, processed.tree, processed.private_keys,
                                       processed.commit_secret, applied.psks, init_secret)
        return ProcessedMessage(MessageKind.COMMIT, joiner, content.epoch,
                                content.authenticated_data, staged_commit=staged,
                                sender_type=SenderType.NEW_MEMBER_COMMIT)

    @staticmethod
    def _new_state(s: EpochState, context: GroupContext, tree: RatchetTree, keys: TreePrivateKeys,
                   secrets: EpochSecrets, tag: bytes) -> EpochState:
        return EpochState(
            suite=s.suite, context=context, tree=tree, keys=keys, signature_priv=s.signature_priv,
            secrets=secrets, confirmation_tag=tag,
            interim_transcript_hash=interim_transcript_hash(s.suite, context.confirmed_transcript_hash, tag),
            secret_tree=SecretTree(s.suite, secrets.encryption_secret, tree.n_leaves),
        )

    # -- proposing --------------------------------------------------------------------

    @property
    def pending_proposals(self) -> dict[bytes, tuple[Proposal, LeafIndex | None]]:
        """Proposals received or sent in this epoch, by ProposalRef, with their sender's leaf
        (None for external and new-member proposals)."""
        return {ref: (cp.proposal, LeafIndex(cp.sender) if cp.sender >= 0 else None)
                for ref, cp in self._proposals.items()}

    def propose(self, proposal: Proposal, *, public: bool = True, authenticated_data: bytes = b"",
                rng: Rng = system_rng) -> tuple[MLSMessage, bytes]:
        """Send ``proposal`` as a PublicMessage (or PrivateMessage); returns the message and its
        ProposalRef. The proposal is remembered for a Commit of this epoch (by any member)."""
        self._require_active()
        s = self._state
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
        ref = s.suite.ref_hash("MLS 1.0 Proposal Reference", ac.to_bytes())
        self._proposals[ref] = CommittedProposal(proposal, int(s.own_leaf))
        return MLSMessage(body), ref

    def propose_update(self, *, public: bool = True, rng: Rng = system_rng) -> tuple[MLSMessage, bytes]:
        """An Update proposal with a fresh encryption key for our leaf (12.1.2); its private key
        is kept until a Commit of this epoch applies it (or the epoch ends)."""
        s = self._state
        old = s.tree.leaf(s.own_leaf)
        if old is None:  # pragma: no cover - an active member has a leaf
            raise InternalError("own leaf is blank")
        priv, pub = s.suite.generate_hpke_key_pair(rng)
        leaf = replace(old, encryption_key=pub, leaf_node_source=LeafNodeSource.UPDATE,
                       lifetime=None, parent_hash=None, signature=b"")
        leaf = replace(leaf, signature=s.suite.sign_with_label(
            s.signature_priv, "LeafNodeTBS", leaf.tbs_bytes(s.context.group_id, s.own_leaf)))
        out = self.propose(Proposal(Update(leaf)), public=public, rng=rng)
        self._pending_leaf_keys[pub] = priv
        return out

    # -- committing -------------------------------------------------------------------

    def stage_commit(
        self,
        proposals: Sequence[Proposal] = (),
        *,
        proposal_refs: Sequence[bytes] = (),
        force_path: bool = False,
        public: bool = True,
        ratchet_tree_in_welcome: bool = True,
        authenticated_data: bytes = b"",
        now: int | None = None,
        rng: Rng = system_rng,
    ) -> StagedCommit:
        """Create a Commit of ``proposals`` (by value) and ``proposal_refs`` (received
        proposals, by reference), sections 12.4, 12.4.3. The Group is not changed: merge
        the returned StagedCommit once the Commit is accepted.

        The path is included when required (empty Commit, Update, Remove, GCE) or when
        ``force_path``. ``public`` selects PublicMessage (else PrivateMessage; that consumes
        one handshake key now). ``now`` (seconds) checks added KeyPackages' lifetimes (RFC 9420
        7.3 requires it of the sender). Raises the errors of :func:`apply_proposals`.
        """
        self._require_active()
        return self._stage_commit(proposals, proposal_refs, force_path=force_path, public=public,
                                  ratchet_tree_in_welcome=ratchet_tree_in_welcome,
                                  authenticated_data=authenticated_data, now=now, rng=rng)

    def _stage_commit(
        self,
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
        s = self._state
        me = s.own_leaf
        por = [ProposalOrRef(p) for p in proposals] + [ProposalOrRef(r) for r in proposal_refs]
        commit = Commit(tuple(por))
        applied = apply_proposals(s.suite, s.context, s.tree, me, self._resolve(commit, me), now=now,
                                  resumption_usages=resumption_usages)
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
        psk = compute_psk_secret(s.suite, applied.psks, self._psk_lookup)
        secrets = epoch_secrets(s.suite, s.secrets.init_secret, commit_secret, psk, context.to_bytes())
        tag = confirmation_tag(s.suite, secrets.confirmation_key, confirmed)
        new_state = self._new_state(s, context, tree, keys, secrets, tag)
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

    # -- branching and reinitialization (sections 11.2, 11.3) ------------------------------

    def branch(
        self,
        group_id: bytes,
        key_package: KeyPackage,
        private: KeyPackagePrivate,
        key_packages: Sequence[KeyPackage],
        *,
        extensions: Sequence[Extension] | None = None,
        force_path: bool = False,
        ratchet_tree_in_welcome: bool = True,
        rng: Rng = system_rng,
    ) -> tuple[Group, StagedCommit]:
        """A subgroup ``group_id`` of this group's members (11.3): a new group with our leaf
        from ``key_package``, whose initial Commit adds ``key_packages`` and injects this
        epoch's resumption PSK with usage branch. Returns the new Group (at epoch 1) and the
        merged StagedCommit, whose ``welcome`` the new members join with
        ``Group.join(..., prior=their_old_group)``."""
        self._require_active()
        exts = self.group_context.extensions if extensions is None else tuple(extensions)
        return start_resumed_group(self, ResumptionPSKUsage.BRANCH, group_id, self.cipher_suite.id, exts,
                                   key_package, private, key_packages, force_path,
                                   ratchet_tree_in_welcome, rng)

    def reinit(
        self,
        key_package: KeyPackage,
        private: KeyPackagePrivate,
        key_packages: Sequence[KeyPackage],
        *,
        force_path: bool = False,
        ratchet_tree_in_welcome: bool = True,
        rng: Rng = system_rng,
    ) -> tuple[Group, StagedCommit]:
        """The new group of a merged ReInit (11.2), with the ReInit's group_id, suite and
        extensions: our leaf from ``key_package`` (of the new suite), the other members from
        ``key_packages``, and the resumption PSK (usage reinit) of the epoch the ReInit
        Commit started. Raises :class:`~crypto.mls.group_errors.InvalidResumption` unless
        the group is suspended by a ReInit."""
        if not self._active:
            raise GroupInactive("this member was removed from the group")
        r = self._reinit
        if r is None:
            raise InvalidResumption("no ReInit was committed")
        return start_resumed_group(self, ResumptionPSKUsage.REINIT, r.group_id, r.cipher_suite,
                                   r.extensions, key_package, private, key_packages, force_path,
                                   ratchet_tree_in_welcome, rng)

    def add_members(self, key_packages: Sequence[KeyPackage], **kwargs) -> StagedCommit:
        """:meth:`stage_commit` of one Add per KeyPackage."""
        return self.stage_commit([Proposal(AddProposal(kp)) for kp in key_packages], **kwargs)

    def remove_members(self, leaves: Sequence[int], **kwargs) -> StagedCommit:
        """:meth:`stage_commit` of one Remove per leaf index."""
        return self.stage_commit([Proposal(Remove(int(i))) for i in leaves], **kwargs)

    def merge_staged_commit(self, staged: StagedCommit) -> None:
        """Apply ``staged``: the epoch advances. The previous epoch's keys are kept for late
        application messages. Raises :class:`~crypto.mls.group_errors.StaleStagedCommit` when
        the group moved on since ``staged`` was made."""
        self._require_active()
        if staged._base is not self._state:
            raise StaleStagedCommit("the StagedCommit was made for another group state")
        old = self._state
        self._past[old.context.epoch] = PastEpoch(old.epoch_keys(), old.tree)
        while len(self._past) > self._max_past_epochs:
            self._past.popitem(last=False)
        self._proposals.clear()
        if staged.self_removed:
            self._active = False
            return
        if staged._new is None:  # pragma: no cover - built only by this class
            raise InternalError("StagedCommit without a new state")
        self._state = staged._new
        self._pending_leaf_keys.clear()
        self._reinit = staged.reinit
        self._remember_resumption_psk()
