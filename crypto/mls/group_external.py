"""Joining by an external Commit (RFC 9420 sections 12.4.3.2 and 8.3), the joiner's side.

The receiving side is :meth:`crypto.mls.group.Group.process_message`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from ..codec import decode_exact
from ..rng import Rng, system_rng
from .ciphersuite import get_suite
from .commit import Commit
from .extensions import ExtensionType, find_extension
from .framing import ContentType, FramedContent, Sender, SenderType, WireFormat
from .group_errors import MissingExternalPub, MissingRatchetTree, UnexpectedMessage
from .group_proposals import CommittedProposal, apply_proposals, validate_leaf_for_group
from .group_state import (
    DEFAULT_MAX_PAST_EPOCHS,
    EXTERNAL_INIT_LABEL,
    EpochState,
    confirmed_input,
    leftmost_blank_leaf,
)
from .group_welcome import verify_group_info
from .key_package import KeyPackage
from .key_package_gen import KeyPackagePrivate
from .key_schedule import confirmation_tag, epoch_secrets
from .message import MLSMessage
from .proposals import ExternalInit, Proposal, ProposalOrRef, Remove
from .protection import protect_public, sign_framed_content
from .ratchet_tree import RatchetTree
from .secret_tree import SecretTree
from .transcript import confirmed_transcript_hash, interim_transcript_hash
from .tree_validation import validate_tree_for_group
from .treekem import create_update_path
from .welcome import GroupInfo

if TYPE_CHECKING:
    from .group import Group

__all__ = ["external_join"]


def external_join(
    cls: type[Group],
    group_info: GroupInfo | MLSMessage,
    key_package: KeyPackage,
    private: KeyPackagePrivate,
    ratchet_tree: RatchetTree | None = None,
    *,
    remove_prior: int | None = None,
    authenticated_data: bytes = b"",
    rng: Rng = system_rng,
    max_past_epochs: int = DEFAULT_MAX_PAST_EPOCHS,
) -> tuple[Group, MLSMessage]:
    """Join by an external Commit (12.4.3.2) from a GroupInfo with ``external_pub``.

    The new leaf takes the credential, signature key, capabilities and extensions of
    ``key_package``'s leaf (the init and encryption keys are not used). ``remove_prior``
    removes an old appearance of this client (resync). Returns the Group, already in the
    new epoch, and the Commit to send; if the delivery service refuses the Commit, drop
    the Group. Raises :class:`~crypto.errors.InvalidSignature`, tree validation errors,
    :class:`~crypto.mls.group_errors.MissingExternalPub`,
    :class:`~crypto.mls.group_errors.MissingRatchetTree`, InvalidProposalList.
    """
    if isinstance(group_info, MLSMessage):
        if not isinstance(group_info.body, GroupInfo):
            raise UnexpectedMessage("external_join needs a GroupInfo")
        group_info = group_info.body
    old = group_info.group_context
    suite = get_suite(old.cipher_suite)
    ext = find_extension(group_info.extensions, ExtensionType.RATCHET_TREE)
    if ext is not None:
        tree = RatchetTree.from_bytes(suite, ext.extension_data)
    elif ratchet_tree is not None:
        tree = ratchet_tree.copy()
    else:
        raise MissingRatchetTree("no ratchet_tree extension and no tree given")
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
    secrets = epoch_secrets(suite, init_secret, path.commit_secret, None, context.to_bytes())
    tag = confirmation_tag(suite, secrets.confirmation_key, confirmed)
    message = protect_public(suite, old, None, private.signature_priv, content, tag)
    state = EpochState(
        suite=suite, context=context, tree=path.tree, keys=path.private_keys,
        signature_priv=private.signature_priv, secrets=secrets, confirmation_tag=tag,
        interim_transcript_hash=interim_transcript_hash(suite, confirmed, tag),
        secret_tree=SecretTree(suite, secrets.encryption_secret, path.tree.n_leaves),
    )
    return cls(state, max_past_epochs=max_past_epochs), MLSMessage(message)

