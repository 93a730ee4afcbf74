"""Messages from outside the group, the sender's side: external Commits (RFC 9420
sections 12.4.3.2 and 8.3) and external proposals (12.1.8).

* :func:`external_join`: a new member joins by an external Commit from a GroupInfo.
* :func:`external_proposal`: a proposal from a pre-provisioned ``external_senders`` entry.
* :func:`new_member_add_proposal`: a joiner's own Add (``new_member_proposal``).
* :func:`external_senders`: decode the GroupContext's ``external_senders`` extension.

The receiving side of all three is :meth:`crypto.mls.group.Group.process_message`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from ..codec import Reader, Struct, Writer, decode_exact
from ..rng import Rng, system_rng
from .ciphersuite import get_suite
from .commit import Commit
from .credential import Credential
from .extensions import Extension, ExtensionType, find_extension
from .framing import ContentType, FramedContent, Sender, SenderType, WireFormat
from .group_context import GroupContext
from .group_errors import (
    InvalidProposalList,
    MissingExternalPub,
    UnexpectedMessage,
)
from .group_proposals import CommittedProposal, apply_proposals, validate_leaf_for_group
from .group_state import (
    EXTERNAL_INIT_LABEL,
    EpochState,
    confirmed_input,
    first_epoch_state,
    leftmost_blank_leaf,
)
from .group_welcome import compute_psk_secret, group_info_tree, verify_group_info
from .key_package import KeyPackage
from .key_package_gen import KeyPackagePrivate
from .key_schedule import confirmation_tag, epoch_secrets
from .message import MLSMessage
from .proposals import (
    Add,
    ExternalInit,
    PreSharedKey,
    PreSharedKeyID,
    Proposal,
    ProposalOrRef,
    ProposalType,
    PSKType,
    Remove,
)
from .protection import protect_public, sign_framed_content
from .ratchet_tree import RatchetTree
from .transcript import confirmed_transcript_hash, interim_transcript_hash
from .tree_validation import validate_tree_for_group
from .treekem import create_update_path
from .welcome import GroupInfo

__all__ = ["external_join", "external_proposal", "new_member_add_proposal", "ExternalSender",
           "external_senders", "EXTERNAL_PROPOSAL_TYPES"]

#: Proposal types an ``external`` sender may send (12.1.8).
EXTERNAL_PROPOSAL_TYPES = frozenset({ProposalType.ADD, ProposalType.REMOVE, ProposalType.PSK,
                                     ProposalType.REINIT, ProposalType.GROUP_CONTEXT_EXTENSIONS})


@dataclass(frozen=True, slots=True)
class ExternalSender(Struct):
    signature_key: bytes
    credential: Credential

    def encode(self, w: Writer) -> None:
        w.opaque(self.signature_key)
        self.credential.encode(w)

    @classmethod
    def decode(cls, r: Reader) -> ExternalSender:
        return cls(r.opaque(), Credential.decode(r))


def external_senders(extensions: Sequence[Extension]) -> list[ExternalSender]:
    """The ``external_senders`` of a GroupContext (empty without the extension).

    Raises decode errors when the extension data does not decode.
    """
    ext = find_extension(tuple(extensions), ExtensionType.EXTERNAL_SENDERS)
    if ext is None:
        return []
    return decode_exact(ext.extension_data, lambda r: r.vector(ExternalSender.decode))


def external_senders_extension(senders: Sequence[ExternalSender]) -> Extension:
    w = Writer()
    w.vector(senders, Struct.write_item)
    return Extension(ExtensionType.EXTERNAL_SENDERS, w.getvalue())


def external_proposal(group_context: GroupContext, sender_index: int, signature_priv: bytes,
                      proposal: Proposal, *, authenticated_data: bytes = b"") -> MLSMessage:
    """A PublicMessage proposal from external sender ``sender_index`` for the group's current
    epoch. Raises :class:`~crypto.mls.group_errors.InvalidProposalList` for a type an external
    sender may not send."""
    if proposal.proposal_type not in EXTERNAL_PROPOSAL_TYPES:
        raise InvalidProposalList(f"{proposal.proposal_type.name} cannot come from an external sender")
    suite = get_suite(group_context.cipher_suite)
    content = FramedContent(group_context.group_id, group_context.epoch, Sender.external(sender_index),
                            authenticated_data, ContentType.PROPOSAL, proposal)
    return MLSMessage(protect_public(suite, group_context, None, signature_priv, content))


def new_member_add_proposal(group_info: GroupInfo, key_package: KeyPackage, private: KeyPackagePrivate,
                            *, authenticated_data: bytes = b"") -> MLSMessage:
    """A joiner's own Add proposal (sender ``new_member_proposal``), signed with its KeyPackage's
    signature key, for the epoch of ``group_info`` (whose signature the caller has checked)."""
    ctx = group_info.group_context
    content = FramedContent(ctx.group_id, ctx.epoch, Sender(SenderType.NEW_MEMBER_PROPOSAL),
                            authenticated_data, ContentType.PROPOSAL, Proposal(Add(key_package)))
    return MLSMessage(protect_public(get_suite(ctx.cipher_suite), ctx, None, private.signature_priv,
                                     content))


def external_join(
    group_info: GroupInfo | MLSMessage,
    key_package: KeyPackage,
    private: KeyPackagePrivate,
    ratchet_tree: RatchetTree | None = None,
    *,
    remove_prior: int | None = None,
    external_psks: Mapping[bytes, bytes] | None = None,
    authenticated_data: bytes = b"",
    rng: Rng = system_rng,
) -> tuple[EpochState, dict[bytes, bytes], MLSMessage]:
    """Join by an external Commit (12.4.3.2) from a GroupInfo with ``external_pub``.

    The new leaf takes the credential, signature key, capabilities and extensions of
    ``key_package``'s leaf (the init and encryption keys are not used). ``remove_prior``
    removes an old appearance of this client (resync); each of ``external_psks`` (id -> PSK)
    is injected with a PreSharedKey proposal and kept in the new Group's PSK store.
    Returns the joiner's state of the new epoch, its PSK store and the Commit to send
    (:meth:`crypto.mls.group.Group.external_join` makes the Group; if the delivery
    service refuses the Commit, drop the Group). Raises :class:`~crypto.errors.InvalidSignature`, tree validation errors,
    :class:`~crypto.mls.group_errors.MissingExternalPub`,
    :class:`~crypto.mls.group_errors.MissingRatchetTree`, InvalidProposalList.
    """
    if isinstance(group_info, MLSMessage):
        if not isinstance(group_info.body, GroupInfo):
            raise UnexpectedMessage("external_join needs a GroupInfo")
        group_info = group_info.body
    old = group_info.group_context
    suite = get_suite(old.cipher_suite)
    tree = group_info_tree(suite, group_info, ratchet_tree)
    verify_group_info(suite, tree, group_info)
    validate_tree_for_group(tree, old)
    pub_ext = find_extension(group_info.extensions, ExtensionType.EXTERNAL_PUB)
    if pub_ext is None:
        raise MissingExternalPub("the GroupInfo has no external_pub extension")
    external_pub = decode_exact(pub_ext.extension_data, lambda r: r.opaque())
    kem_output, init_secret = suite.hpke.send_export(external_pub, b"", EXTERNAL_INIT_LABEL,
                                                     suite.hash_len, rng=rng)
    proposals = [Proposal(ExternalInit(kem_output))]
    if remove_prior is not None:
        proposals.append(Proposal(Remove(int(remove_prior))))
    store = dict(external_psks or {})
    psk_ids = [PreSharedKeyID(PSKType.EXTERNAL, rng(suite.hash_len), psk_id=i) for i in store]
    proposals.extend(Proposal(PreSharedKey(p)) for p in psk_ids)
    applied = apply_proposals(suite, old, tree, -1, [CommittedProposal(p, -1) for p in proposals],
                              external=True)
    new_tree = applied.tree
    me = leftmost_blank_leaf(new_tree)
    if me == new_tree.n_leaves:
        new_tree.extend()
    provisional = replace(old, epoch=old.epoch + 1, tree_hash=new_tree.tree_hash(),
                          extensions=applied.extensions)
    path = create_update_path(new_tree, me, provisional_context=provisional,
                              sign=private.signature_priv, leaf_node=key_package.leaf_node, rng=rng)
    validate_leaf_for_group(path.tree, me, path.update_path.leaf_node, applied.extensions,
                            "external Commit leaf")
    content = FramedContent(old.group_id, old.epoch, Sender(SenderType.NEW_MEMBER_COMMIT),
                            authenticated_data, ContentType.COMMIT,
                            Commit(tuple(ProposalOrRef(p) for p in proposals), path.update_path))
    wire_format = WireFormat.MLS_PUBLIC_MESSAGE
    signature = sign_framed_content(suite, private.signature_priv, wire_format, content, old)
    interim = interim_transcript_hash(suite, old.confirmed_transcript_hash, group_info.confirmation_tag)
    confirmed = confirmed_transcript_hash(suite, interim, confirmed_input(wire_format, content, signature))
    context = replace(provisional, tree_hash=path.tree.tree_hash(), confirmed_transcript_hash=confirmed)
    psk = compute_psk_secret(suite, psk_ids, lambda p: store[p.psk_id or b""])
    secrets = epoch_secrets(suite, init_secret, path.commit_secret, psk, context.to_bytes())
    tag = confirmation_tag(suite, secrets.confirmation_key, confirmed)
    message = protect_public(suite, old, None, private.signature_priv, content, tag)
    state = first_epoch_state(suite, context, path.tree, path.private_keys, private.signature_priv,
                              secrets, tag)
    return state, store, MLSMessage(message)

