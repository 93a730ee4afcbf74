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

The code is split by concept: this module is the facade and the epoch's lifecycle
(merging); creation and joining are in :mod:`crypto.mls.group_lifecycle` (external
joins in :mod:`crypto.mls.group_external`, branch and reinit in
:mod:`crypto.mls.group_resumption`), receiving in :mod:`crypto.mls.group_receiving`,
proposing and committing in :mod:`crypto.mls.group_committing`. They all work on the
one state record, :class:`~crypto.mls.group_state.GroupState`, which holds the
group's :class:`~crypto.mls.public_group.PublicGroup` (the public epoch and the
epoch's proposals, as the server's view holds them) beside the member's secrets;
:meth:`Group.state` hands it out and :mod:`crypto.mls.group_serialization` encodes it.

Processing works on copies: a message that fails any check raises a typed
error (:mod:`crypto.mls.group_errors`, and the errors of protection, the
secret tree, TreeKEM and tree validation) and leaves the Group as it was.

Keys of the last ``max_past_epochs`` epochs are kept so that application
messages sent just before a Commit still decrypt; handshake messages are only
accepted for the current epoch (:class:`~crypto.mls.protection.WrongEpoch`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..codec import Writer
from ..errors import InternalError
from ..rng import Rng, system_rng
from .ciphersuite import CipherSuite, get_suite
from .extensions import Extension, ExtensionType
from .framing import ContentType, FramedContent, Sender
from .group_committing import propose, propose_update, stage_commit
from .group_context import GroupContext
from .group_errors import GroupInactive, InvalidResumption, StaleStagedCommit, UnknownPsk
from .group_external import external_join
from .group_lifecycle import create_state, join_state, start_state
from .group_receiving import claimed_sender, process_message
from .group_results import MessageKind, ProcessedMessage, StagedCommit
from .group_resumption import start_resumed_group
from .group_serialization import decode_group_state, encode_group_state
from .group_state import DEFAULT_MAX_PAST_EPOCHS, GroupState, Member, PastEpoch
from .group_welcome import sign_group_info
from .key_package import KeyPackage
from .key_package_gen import KeyPackagePrivate
from .key_schedule import mls_exporter
from .message import MLSMessage
from .proposals import Add as AddProposal
from .proposals import (
    PreSharedKey,
    PreSharedKeyID,
    Proposal,
    PSKType,
    ReInit,
    Remove,
    ResumptionPSKUsage,
)
from .protection import protect_private
from .public_group import PendingProposal, PublicGroup
from .ratchet_tree import RatchetTree
from .tree_math import LeafIndex
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

    def __init__(self, state: GroupState) -> None:
        self._s = state

    @property
    def state(self) -> GroupState:
        """The group's one state record (live, secrets included); see
        :class:`~crypto.mls.group_state.GroupState`."""
        return self._s

    def add_external_psk(self, psk_id: bytes, psk: bytes) -> None:
        """Make an external PSK available to PreSharedKey proposals and Welcomes."""
        self._s.external_psks[psk_id] = psk

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

    # -- creation and joining (crypto.mls.group_lifecycle) -----------------------------

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
        epoch = create_state(suite, group_id, key_package, private, extensions, rng)
        return cls(start_state(epoch, max_past_epochs=max_past_epochs))

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
        suite = get_suite(key_package.cipher_suite)
        store = dict(external_psks or {})

        def lookup(psk_id: PreSharedKeyID) -> bytes:
            if psk_id.psktype == PSKType.EXTERNAL:
                psk = store.get(psk_id.psk_id or b"")
            elif prior is not None and psk_id.psk_group_id == prior.group_id:
                psk = prior.state.resumption_psks.get(psk_id.psk_epoch or 0)
            else:
                psk = None
            if psk is None:
                raise UnknownPsk("the Welcome needs a PSK this client does not hold")
            return psk

        epoch = join_state(suite, welcome, key_package, private, ratchet_tree, lookup, prior, now)
        return cls(start_state(epoch, max_past_epochs=max_past_epochs, external_psks=store))

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
        epoch, store, commit = external_join(group_info, key_package, private, ratchet_tree,
                                             remove_prior=remove_prior, external_psks=external_psks,
                                             authenticated_data=authenticated_data, rng=rng)
        return cls(start_state(epoch, max_past_epochs=max_past_epochs, external_psks=store)), commit

    # -- serialization ------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """The whole member state, secrets included (store it encrypted); see
        :mod:`crypto.mls.group_serialization`."""
        return encode_group_state(self._s)

    @classmethod
    def from_bytes(cls, data: bytes) -> Group:
        """Restore a Group from :meth:`to_bytes`; raises
        :class:`~crypto.mls.group_errors.InvalidGroupState`."""
        return cls(decode_group_state(data))

    # -- properties (the public ones are the PublicGroup's) -------------------------------

    @property
    def public_group(self) -> PublicGroup:
        """The group's public view, the same object this Group updates (read it; merging
        into it directly would leave the member's secrets behind)."""
        return self._s.public

    @property
    def cipher_suite(self) -> CipherSuite:
        """The group's cipher suite (the same name as ``PublicGroup.cipher_suite``)."""
        return self._s.public.cipher_suite

    @property
    def group_id(self) -> bytes:
        return self._s.public.group_id

    @property
    def epoch(self) -> int:
        return self._s.public.epoch

    @property
    def group_context(self) -> GroupContext:
        return self._s.public.group_context

    @property
    def interim_transcript_hash(self) -> bytes:
        return self._s.public.interim_transcript_hash

    @property
    def ratchet_tree(self) -> RatchetTree:
        """A copy of the public tree (safe to hand to a joiner out of band)."""
        return self._s.public.ratchet_tree

    @property
    def members(self) -> list[Member]:
        """The current members in leaf order (as ``PublicGroup.members``)."""
        return self._s.public.members

    def find_member(self, identity: bytes) -> LeafIndex | None:
        """The leaf of the (first) member whose basic credential carries ``identity``."""
        return self._s.public.find_member(identity)

    def leaf_identity(self, leaf: int, epoch: int | None = None) -> bytes | None:
        """The credential identity at ``leaf`` in ``epoch`` (the current one by default, or a
        retained past one); None for a blank leaf or an epoch not kept."""
        if epoch is None or epoch == self.epoch:
            tree = self._s.epoch.tree
        elif epoch in self._s.past:
            tree = self._s.past[epoch].tree
        else:
            return None
        node = tree.leaf(leaf) if 0 <= leaf < tree.n_leaves else None
        return None if node is None else node.credential.identity

    @property
    def pending_reinit(self) -> ReInit | None:
        """The ReInit of the last merged Commit, if any: the group is then suspended."""
        return self._s.public.pending_reinit

    @property
    def own_leaf_index(self) -> LeafIndex:
        return self._s.epoch.own_leaf

    @property
    def is_active(self) -> bool:
        """False once a merged Commit removed this member."""
        return self._s.active

    @property
    def epoch_authenticator(self) -> bytes:
        return self._s.epoch.secrets.epoch_authenticator

    def exporter(self, label: str | bytes, context: bytes, length: int) -> bytes:
        """MLS-Exporter (section 8.5) of the current epoch."""
        return mls_exporter(self.cipher_suite, self._s.epoch.secrets.exporter_secret, label, context,
                            length)

    def group_info(self, *, with_ratchet_tree: bool = True, with_external_pub: bool = True) -> GroupInfo:
        """A signed GroupInfo of the current epoch; with ``external_pub`` it allows one
        external join (:meth:`external_join`)."""
        s = self._s.epoch
        exts: list[Extension] = []
        if with_external_pub:
            w = Writer()
            w.opaque(s.secrets.external_key_pair(s.suite)[1])
            exts.append(Extension(ExtensionType.EXTERNAL_PUB, w.getvalue()))
        if with_ratchet_tree:
            exts.append(Extension(ExtensionType.RATCHET_TREE, s.tree.to_bytes()))
        return sign_group_info(s.suite, s.signature_priv,
                               GroupInfo(s.context, tuple(exts), s.confirmation_tag, s.own_leaf))

    # -- application messages --------------------------------------------------------

    def protect(self, data: bytes, *, authenticated_data: bytes = b"", padding: int = 0,
                rng: Rng = system_rng) -> MLSMessage:
        """Application data as a PrivateMessage of the current epoch (consumes one key)."""
        self._s.require_active()
        s = self._s.epoch
        content = FramedContent(s.context.group_id, s.context.epoch, Sender.member(s.own_leaf),
                                authenticated_data, ContentType.APPLICATION, data)
        return MLSMessage(protect_private(s.epoch_keys(), s.signature_priv, content,
                                          padding=padding, rng=rng))

    # -- receiving (crypto.mls.group_receiving) --------------------------------------

    def process_message(self, message: MLSMessage, *, now: int | None = None) -> ProcessedMessage:
        """Unprotect and interpret a PublicMessage or PrivateMessage; see the module docstring.
        ``now`` (seconds) also checks the lifetime of KeyPackages a Commit adds.

        Raises WrongGroup/WrongEpoch, :class:`~crypto.mls.group_errors.EpochNotRetained`,
        :class:`~crypto.mls.group_errors.NonMemberSender`, UnexpectedMessage, the
        protection and secret tree errors, and (for a Commit) what processing it raises:
        the errors of :meth:`PublicGroup.commit_publicly
        <crypto.mls.public_group.PublicGroup.commit_publicly>`, then those of the path
        secret and :class:`~crypto.mls.group_errors.ConfirmationTagMismatch`.
        The Group is unchanged on any error; a Commit changes it only when merged.
        """
        return process_message(self._s, message, now)

    def claimed_sender(self, message: MLSMessage) -> LeafIndex | None:
        """The member leaf a message names as its sender, *before* verification: a
        PublicMessage's member sender, or a PrivateMessage's SenderData opened under the
        epoch's sender-data secret (this epoch's or a retained past one's; no ratchet key
        is consumed). None for other senders and epochs whose keys are gone. A member's
        own messages cannot be decrypted by itself; this is how it recognises them.
        Raises ``decrypt_failed`` for SenderData that does not open."""
        return claimed_sender(self._s, message)

    # -- proposing and committing (crypto.mls.group_committing) ----------------------

    @property
    def pending_proposals(self) -> dict[bytes, PendingProposal]:
        """Proposals received or sent in this epoch, by ProposalRef, with their sender (the
        same record as ``PublicGroup.pending_proposals``; ``.leaf`` is the sending member's
        leaf, None for external and new-member proposals)."""
        return self._s.public.pending_proposals

    def propose(self, proposal: Proposal, *, public: bool = True, authenticated_data: bytes = b"",
                rng: Rng = system_rng) -> tuple[MLSMessage, bytes]:
        """Send ``proposal`` as a PublicMessage (or PrivateMessage); returns the message and its
        ProposalRef. The proposal is remembered for a Commit of this epoch (by any member)."""
        return propose(self._s, proposal, public=public, authenticated_data=authenticated_data, rng=rng)

    def propose_update(self, *, public: bool = True, rng: Rng = system_rng) -> tuple[MLSMessage, bytes]:
        """An Update proposal with a fresh encryption key for our leaf (12.1.2); its private key
        is kept until a Commit of this epoch applies it (or the epoch ends)."""
        return propose_update(self._s, public=public, rng=rng)

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
        self._s.require_active()
        return stage_commit(self._s, proposals, proposal_refs, force_path=force_path, public=public,
                            ratchet_tree_in_welcome=ratchet_tree_in_welcome,
                            authenticated_data=authenticated_data, now=now, rng=rng)

    def add_members(self, key_packages: Sequence[KeyPackage], **kwargs) -> StagedCommit:
        """:meth:`stage_commit` of one Add per KeyPackage."""
        return self.stage_commit([Proposal(AddProposal(kp)) for kp in key_packages], **kwargs)

    def remove_members(self, leaves: Sequence[int], **kwargs) -> StagedCommit:
        """:meth:`stage_commit` of one Remove per leaf index."""
        return self.stage_commit([Proposal(Remove(int(i))) for i in leaves], **kwargs)

    # -- branching and reinitialization (crypto.mls.group_resumption) ----------------------

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
        self._s.require_active()
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
        if not self._s.active:
            raise GroupInactive("this member was removed from the group")
        r = self.pending_reinit
        if r is None:
            raise InvalidResumption("no ReInit was committed")
        return start_resumed_group(self, ResumptionPSKUsage.REINIT, r.group_id, r.cipher_suite,
                                   r.extensions, key_package, private, key_packages, force_path,
                                   ratchet_tree_in_welcome, rng)

    # -- the epoch's end: merging ------------------------------------------------------

    def merge_staged_commit(self, staged: StagedCommit) -> None:
        """Apply ``staged``: the epoch advances. The previous epoch's keys are kept for late
        application messages. Raises :class:`~crypto.mls.group_errors.StaleStagedCommit` when
        the group moved on since ``staged`` was made."""
        st = self._s
        st.require_active()
        if staged._base is not st.epoch:
            raise StaleStagedCommit("the StagedCommit was made for another group state")
        old = st.epoch
        st.past[old.context.epoch] = PastEpoch(old.epoch_keys(), old.tree)
        while len(st.past) > st.max_past_epochs:
            st.past.popitem(last=False)
        if staged.self_removed:
            st.public.advance(old.public)  # the epoch's proposals are gone; we cannot follow
            st.active = False
            return
        if staged._new is None:  # pragma: no cover - built only by this class
            raise InternalError("StagedCommit without a new state")
        st.epoch = staged._new
        st.public.advance(staged._new.public)
        st.pending_leaf_keys.clear()
        st.remember_resumption_psk()
