"""Plaintext channels closed: every MLS field the hub can check holds only what an honest
Confide client puts there (``spec/security.md`` finding 9). Pure functions over decoded
MLS structures; each raises a :mod:`protocol.channel_errors` code.

What is checked, and the one form allowed:

- **group id** of a new room: :func:`derive_group_id` of the creator's leaf encryption key
  (32 bytes; the SDK derives it, so it carries no chosen bytes);
- **authenticated_data** of every PrivateMessage and PublicMessage: empty;
- **application PrivateMessage**: ``encrypted_sender_data`` of its fixed length, and a
  ``ciphertext`` whose length is a padding bucket (:mod:`protocol.padding`);
- **GroupInfo extensions**: ``ratchet_tree`` (equal to the hub's view of the tree) and
  ``external_pub`` (one 32-byte key), nothing else;
- **GroupContext extensions** (of a new group, and of a group_context_extensions
  proposal): ``required_capabilities`` naming only known values, nothing else;
- **proposals**: Add, Update, Remove, ExternalInit, GroupContextExtensions (checked as
  above); never PreSharedKey or ReInit (Confide sends neither; their ids are free bytes);
- **KeyPackages and LeafNodes** (of Adds, Updates, commit paths, a new group's tree, and
  uploads): no KeyPackage extension but an empty ``last_resort``, no LeafNode extension,
  capabilities naming only known versions, suites, extension, proposal and credential
  types; ExternalInit's kem_output one X25519 key;
- **key and ciphertext lengths** (``field_length_invalid``): a leaf's encryption and
  signature keys, a KeyPackage's init key and a commit path's node keys are 32 bytes, an
  encrypted path secret's kem_output 32 and its ciphertext 48 (suites 1 and 3); a
  Welcome's group secrets a 32-byte kem_output and a 51- or 84-byte ciphertext.

What no server can check (keys, nonces, signatures and ciphertext are random-looking
bytes a malicious client can fill as it likes) is listed in ``spec/security.md``.
"""

from __future__ import annotations

from crypto.codec import Reader, decode_exact
from crypto.errors import CryptoError
from crypto.mls.commit import Commit
from crypto.mls.extensions import Extension, ExtensionType
from crypto.mls.framing import PrivateMessage, PublicMessage
from crypto.mls.key_package import KeyPackage
from crypto.mls.leaf_node import LeafNode
from crypto.mls.proposals import (
    Add,
    ExternalInit,
    GroupContextExtensions,
    Proposal,
    ProposalType,
    Update,
)
from crypto.mls.public_group import PublicGroup
from crypto.mls.welcome import GroupInfo, Welcome
from crypto.primitives import sha256

from .channel_errors import (
    AuthenticatedDataNotEmpty,
    ExtensionNotAllowed,
    FieldLengthInvalid,
    GroupIdInvalid,
    MessageNotPadded,
    ProposalNotAllowed,
)
from .padding import is_bucket

__all__ = [
    "GROUP_ID_LABEL",
    "GROUP_ID_LENGTH",
    "SENDER_DATA_LENGTH",
    "derive_group_id",
    "check_new_group",
    "check_application",
    "check_handshake",
    "check_group_info",
    "check_welcome",
    "check_key_package",
    "check_leaf_node",
    "check_group_context_extensions",
]

GROUP_ID_LABEL = b"confide group id v1"
GROUP_ID_LENGTH = 32
#: SenderData (leaf u32, generation u32, reuse_guard[4]) sealed with a 16-byte tag.
SENDER_DATA_LENGTH = 12 + 16

_VERSIONS = frozenset({1})
_SUITES = frozenset({1, 3})
_CREDENTIALS = frozenset({1})  # basic
_CAPABILITY_EXTENSIONS = frozenset(int(t) for t in ExtensionType)
_CAPABILITY_PROPOSALS = frozenset(int(t) for t in ProposalType)
_ROOM_PROPOSAL_TYPES = frozenset({ProposalType.ADD, ProposalType.UPDATE, ProposalType.REMOVE,
                                  ProposalType.EXTERNAL_INIT, ProposalType.GROUP_CONTEXT_EXTENSIONS})
_X25519 = 32
_ED25519 = 32
#: A path secret (Nh = 32 bytes for suites 1 and 3) sealed with a 16-byte tag.
_PATH_SECRET = 32 + 16
#: GroupSecrets without PSKs: joiner_secret (1 + 32), optional path_secret (1, or 1 + 1 + 32),
#: an empty psks vector (1); sealed with a 16-byte tag.
_GROUP_SECRETS = frozenset({35 + 16, 68 + 16})


def derive_group_id(creator_encryption_key: bytes) -> bytes:
    """The MLS group id of a room whose creator's leaf has this encryption key."""
    return sha256(GROUP_ID_LABEL + creator_encryption_key)


def check_new_group(view: PublicGroup, info: GroupInfo) -> None:
    """A new room's group (its creator's GroupInfo and the view made from it): group id,
    GroupInfo and GroupContext extensions, the creator's leaf."""
    members = view.ratchet_tree.members()
    if len(members) != 1 or view.group_id != derive_group_id(members[0][1].encryption_key):
        raise GroupIdInvalid(f"a room's group id is the {GROUP_ID_LENGTH}-byte id derived from "
                             "its creator's leaf")
    check_group_info(view, info)
    check_group_context_extensions(view.group_context.extensions)
    for _, leaf in members:
        check_leaf_node(leaf)


def check_application(body: PrivateMessage) -> None:
    """An application PrivateMessage: no authenticated_data, fixed sender data, padded."""
    if body.authenticated_data:
        raise AuthenticatedDataNotEmpty("authenticated_data must be empty")
    if len(body.encrypted_sender_data) != SENDER_DATA_LENGTH:
        raise MessageNotPadded(f"encrypted_sender_data is {SENDER_DATA_LENGTH} bytes")
    if not is_bucket(len(body.ciphertext)):
        raise MessageNotPadded("an application message's ciphertext length must be a padding "
                               "bucket (256, 320, 384, 448, 512, 640, ...)")


def check_handshake(body: PublicMessage) -> None:
    """A proposal or commit (before the view processes it): no authenticated_data, and every
    proposal by value, and the commit's path leaf, in the allowed forms."""
    content = body.content
    if content.authenticated_data:
        raise AuthenticatedDataNotEmpty("authenticated_data must be empty")
    inner = content.content
    if isinstance(inner, Proposal):
        _check_proposal(inner)
    elif isinstance(inner, Commit):
        for item in inner.proposals:
            if isinstance(item.value, Proposal):
                _check_proposal(item.value)
        if inner.path is not None:
            check_leaf_node(inner.path.leaf_node)
            for node in inner.path.nodes:
                _length(node.encryption_key, _X25519, "a path node's encryption key")
                for ct in node.encrypted_path_secret:
                    _length(ct.kem_output, _X25519, "an encrypted path secret's kem_output")
                    _length(ct.ciphertext, _PATH_SECRET, "an encrypted path secret")


def _check_proposal(proposal: Proposal) -> None:
    if proposal.proposal_type not in _ROOM_PROPOSAL_TYPES:
        raise ProposalNotAllowed(f"a {proposal.proposal_type.name.lower()} proposal is not taken "
                                 "in a room")
    body = proposal.body
    if isinstance(body, Add):
        check_key_package(body.key_package)
    elif isinstance(body, Update):
        check_leaf_node(body.leaf_node)
    elif isinstance(body, ExternalInit):
        if len(body.kem_output) != _X25519:
            raise ExtensionNotAllowed("an ExternalInit's kem_output is one X25519 key")
    elif isinstance(body, GroupContextExtensions):
        check_group_context_extensions(body.extensions)


def check_group_info(view: PublicGroup, info: GroupInfo) -> None:
    """A GroupInfo's own extensions: ``ratchet_tree`` equal to ``view``'s tree and
    ``external_pub`` holding one key, nothing else (the context is the view's, checked by
    :meth:`~crypto.mls.PublicGroup.check_group_info` or made from this GroupInfo)."""
    for ext in info.extensions:
        if ext.extension_type == ExtensionType.RATCHET_TREE:
            if ext.extension_data != view.ratchet_tree.to_bytes():
                raise ExtensionNotAllowed("the GroupInfo's ratchet_tree is not the group's tree")
        elif ext.extension_type == ExtensionType.EXTERNAL_PUB:
            if len(ext.extension_data) != 1 + _X25519 or ext.extension_data[0] != _X25519:
                raise ExtensionNotAllowed("external_pub holds one X25519 key")
        else:
            raise ExtensionNotAllowed(f"GroupInfo extension {ext.extension_type:#06x} is not "
                                      "taken (ratchet_tree and external_pub only)")


def check_welcome(welcome: Welcome) -> None:
    """A Welcome's group secrets: one X25519 kem_output each, and a ciphertext of GroupSecrets
    (joiner secret, an optional path secret, no PSK) with its tag: 51 or 84 bytes."""
    for entry in welcome.secrets:
        ct = entry.encrypted_group_secrets
        _length(ct.kem_output, _X25519, "a Welcome's kem_output")
        if len(ct.ciphertext) not in _GROUP_SECRETS:
            raise FieldLengthInvalid("a Welcome's encrypted group secrets are 51 or 84 bytes "
                                     "(GroupSecrets without PSKs, with its tag)")


def check_group_context_extensions(extensions: tuple[Extension, ...]) -> None:
    """GroupContext extensions: ``required_capabilities`` with known values only."""
    for ext in extensions:
        if ext.extension_type != ExtensionType.REQUIRED_CAPABILITIES:
            raise ExtensionNotAllowed(f"GroupContext extension {ext.extension_type:#06x} is not "
                                      "taken (required_capabilities only)")
        try:
            exts, props, creds = decode_exact(
                ext.extension_data, lambda r: tuple(tuple(r.vector(Reader.u16)) for _ in range(3)))
        except CryptoError:
            raise ExtensionNotAllowed("required_capabilities does not decode") from None
        _only(exts, _CAPABILITY_EXTENSIONS, "required extension")
        _only(props, _CAPABILITY_PROPOSALS, "required proposal")
        _only(creds, _CREDENTIALS, "required credential")


def check_key_package(kp: KeyPackage) -> None:
    """A KeyPackage: no extension but an empty ``last_resort``; its leaf as
    :func:`check_leaf_node`."""
    for ext in kp.extensions:
        if ext.extension_type != ExtensionType.LAST_RESORT or ext.extension_data:
            raise ExtensionNotAllowed(f"KeyPackage extension {ext.extension_type:#06x} is not "
                                      "taken (an empty last_resort only)")
    _length(kp.init_key, _X25519, "a KeyPackage's init key")
    check_leaf_node(kp.leaf_node)


def check_leaf_node(leaf: LeafNode) -> None:
    """A LeafNode: no extensions; capabilities naming known values only."""
    if leaf.extensions:
        raise ExtensionNotAllowed("a leaf node carries no extensions")
    _length(leaf.encryption_key, _X25519, "a leaf's encryption key")
    _length(leaf.signature_key, _ED25519, "a leaf's signature key")
    caps = leaf.capabilities
    _only(caps.versions, _VERSIONS, "version")
    _only(caps.cipher_suites, _SUITES, "cipher suite")
    _only(caps.extensions, _CAPABILITY_EXTENSIONS, "extension type")
    _only(caps.proposals, _CAPABILITY_PROPOSALS, "proposal type")
    _only(caps.credentials, _CREDENTIALS, "credential type")


def _length(value: bytes, n: int, what: str) -> None:
    if len(value) != n:
        raise FieldLengthInvalid(f"{what} is {n} bytes")


def _only(values: tuple[int, ...], allowed: frozenset[int], what: str) -> None:
    for v in values:
        if v not in allowed:
            raise ExtensionNotAllowed(f"capability {what} {v:#06x} is not one Confide knows")
