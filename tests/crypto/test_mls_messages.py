"""RFC 9420 wire structures against the IETF ``messages.json`` vectors, plus robustness.

Source: mls-implementations test-vectors ``messages.json`` (300 cases, suites 1-3,
FORMATS.md "Messages"). Check per case: every field decodes as its type (see
``FIELDS``) and re-encodes to the same bytes. Structure decoding does not
depend on the suite, so no case is skipped.

Property tests: random bytes and mutations (flip, truncate, extend, splice) of
vector encodings fed to every decoder raise nothing but ``DecodeError``
subclasses, and whatever decodes re-encodes to the input (the codec is canonical).
Unit tests cover each typed rejection and its stable code.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

# The vector cases themselves run in test_vectors.py through client.conformance.mls_messages.
from client.conformance.mls_messages import FIELDS  # noqa: E402
from crypto.codec import Writer, decode_exact
from crypto.errors import DecodeError, InternalError, InvalidValue, LengthTooLarge, Truncated
from crypto.mls.commit import Commit
from crypto.mls.credential import Credential
from crypto.mls.framing import (
    AuthenticatedContent,
    AuthenticatedContentTBM,
    ContentType,
    FramedContent,
    FramedContentAuthData,
    FramedContentTBS,
    PrivateContentAAD,
    PrivateMessage,
    PrivateMessageContent,
    PublicMessage,
    Sender,
    SenderData,
    SenderDataAAD,
    SenderType,
    WireFormat,
)
from crypto.mls.group_context import GroupContext
from crypto.mls.key_package import KeyPackage, KeyPackageTBS
from crypto.mls.leaf_node import Capabilities, LeafNode, LeafNodeSource
from crypto.mls.message import MLSMessage
from crypto.mls.proposals import (
    PreSharedKey,
    PreSharedKeyID,
    Proposal,
    ProposalOrRef,
    Remove,
)
from crypto.mls.tree_nodes import (
    HPKECiphertext,
    Node,
    ParentNode,
    UpdatePath,
    UpdatePathNode,
    decode_ratchet_tree,
    encode_ratchet_tree,
)
from crypto.mls.welcome import (
    EncryptedGroupSecrets,
    GroupInfo,
    GroupInfoTBS,
    Welcome,
)
from crypto.mls.wire_errors import (
    BlankLastNode,
    InvalidPadding,
    NodeTypeMismatch,
    UnknownCredentialType,
    UnknownEnumValue,
    UnknownProposalType,
    UnknownWireFormat,
    UnsupportedProtocolVersion,
)
from tests.conftest import load_vectors


def _struct(cls: type) -> Callable[[bytes], bytes]:
    return lambda data: cls.from_bytes(data).to_bytes()


# --- samples for the property tests, taken from the vectors --------------------------------


@cache
def _samples() -> dict[str, list[bytes]]:
    cases = load_vectors("mls/messages.json")[:4]
    out: dict[str, list[bytes]] = {}

    def add(name: str, data: bytes) -> None:
        out.setdefault(name, []).append(data)

    for case in cases:
        raw = {k: bytes.fromhex(v) for k, v in case.items() if k in FIELDS}
        for k, v in raw.items():
            add(k, v)
        for k in ("mls_welcome", "mls_group_info", "mls_key_package", "private_message",
                  "public_message_application", "public_message_proposal", "public_message_commit"):
            add("mls_message", raw[k])
            add(type(MLSMessage.from_bytes(raw[k]).body).__name__, raw[k][4:])
        kp = MLSMessage.from_bytes(raw["mls_key_package"]).body
        add("KeyPackageTBS", kp.tbs_bytes())
        add("LeafNode", kp.leaf_node.to_bytes())
        add("Credential", kp.leaf_node.credential.to_bytes())
        add("Capabilities", kp.leaf_node.capabilities.to_bytes())
        gi = MLSMessage.from_bytes(raw["mls_group_info"]).body
        add("GroupInfoTBS", gi.tbs_bytes())
        welcome = MLSMessage.from_bytes(raw["mls_welcome"]).body
        for s in welcome.secrets:
            add("EncryptedGroupSecrets", s.to_bytes())
            add("HPKECiphertext", s.encrypted_group_secrets.to_bytes())
        for node in decode_ratchet_tree(raw["ratchet_tree"]):
            if node is not None:
                add("Node", node.to_bytes())
                if node.parent_node is not None:
                    add("ParentNode", node.parent_node.to_bytes())
        commit = Commit.from_bytes(raw["commit"])
        if commit.path is not None:
            add("UpdatePath", commit.path.to_bytes())
        for por in commit.proposals:
            add("ProposalOrRef", por.to_bytes())
        add("PreSharedKeyID", PreSharedKey.from_bytes(raw["pre_shared_key_proposal"]).psk.to_bytes())
        for k in ("public_message_application", "public_message_proposal", "public_message_commit"):
            pm = MLSMessage.from_bytes(raw[k]).body
            ct = pm.content.content_type
            add("FramedContent", pm.content.to_bytes())
            add(f"FramedContentAuthData/{ct.name}", pm.auth.to_bytes())
            add(f"PrivateMessageContent/{ct.name}",
                PrivateMessageContent(ct, pm.content.content, pm.auth, 5).to_bytes())
            add("AuthenticatedContent",
                AuthenticatedContent(WireFormat.MLS_PUBLIC_MESSAGE, pm.content, pm.auth).to_bytes())
            context = gi.group_context if pm.content.sender.sender_type in (
                SenderType.MEMBER, SenderType.NEW_MEMBER_COMMIT) else None
            tbs = FramedContentTBS(WireFormat.MLS_PUBLIC_MESSAGE, pm.content, context)
            add("FramedContentTBS", tbs.to_bytes())
            add("AuthenticatedContentTBM", AuthenticatedContentTBM(tbs, pm.auth).to_bytes())
            add("Sender", pm.content.sender.to_bytes())
            add("PrivateContentAAD", PrivateContentAAD(b"g", 7, ct, b"ad").to_bytes())
            add("SenderDataAAD", SenderDataAAD(b"g", 7, ct).to_bytes())
        add("SenderData", SenderData(3, 9, b"\x01\x02\x03\x04").to_bytes())
        add("Proposal", Proposal(Remove(1)).to_bytes())
        add("ParentNode", ParentNode(b"k" * 32, b"p" * 32, (1, 3)).to_bytes())
    return out


def _by_type(cls: type, content_type: ContentType) -> Callable[[bytes], bytes]:
    return lambda data: cls.from_bytes(data, content_type).to_bytes()


DECODERS: dict[str, Callable[[bytes], bytes]] = {
    "mls_message": _struct(MLSMessage),
    **{k: v for k, v in FIELDS.items() if not k.startswith(("mls_", "public_", "private_"))},
    **{c.__name__: _struct(c) for c in (
        PublicMessage, PrivateMessage, Welcome, GroupInfo, KeyPackage, KeyPackageTBS, LeafNode,
        Credential, Capabilities, GroupInfoTBS, EncryptedGroupSecrets, HPKECiphertext, Node,
        ParentNode, UpdatePath, ProposalOrRef, PreSharedKeyID, FramedContent, AuthenticatedContent,
        FramedContentTBS, AuthenticatedContentTBM, Sender, PrivateContentAAD, SenderDataAAD,
        SenderData, Proposal)},
    **{f"FramedContentAuthData/{ct.name}": _by_type(FramedContentAuthData, ct) for ct in ContentType},
    **{f"PrivateMessageContent/{ct.name}": _by_type(PrivateMessageContent, ct) for ct in ContentType},
}


def _check_decoder(name: str, data: bytes) -> None:
    try:
        encoded = DECODERS[name](data)
    except DecodeError:
        return
    assert encoded == data


def test_every_decoder_has_samples():
    if not load_vectors("mls/messages.json"):
        pytest.skip("vectors not found: mls/messages.json")
    assert set(DECODERS) <= set(_samples())


_PROPS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("name", sorted(DECODERS))
@_PROPS
@given(data=st.binary(max_size=300))
def test_random_bytes_only_raise_decode_errors(name, data):
    _check_decoder(name, data)


@st.composite
def _mutation(draw, sample: bytes) -> bytes:
    kind = draw(st.sampled_from(["flip", "truncate", "extend", "splice"]))
    if kind == "truncate" or not sample:
        return sample[: draw(st.integers(0, max(len(sample) - 1, 0)))]
    if kind == "extend":
        return sample + draw(st.binary(min_size=1, max_size=8))
    pos = draw(st.integers(0, len(sample) - 1))
    if kind == "flip":
        return sample[:pos] + bytes([sample[pos] ^ draw(st.integers(1, 255))]) + sample[pos + 1:]
    return sample[:pos] + draw(st.binary(min_size=1, max_size=4)) + sample[pos:]


@pytest.mark.parametrize("name", sorted(DECODERS))
@_PROPS
@given(data=st.data())
def test_mutated_vectors_only_raise_decode_errors(name, data):
    samples = _samples().get(name)
    if not samples:
        pytest.skip("vectors not found: mls/messages.json")
    sample = data.draw(st.sampled_from(samples))
    _check_decoder(name, data.draw(_mutation(sample)))


# --- typed rejections ------------------------------------------------------------------------


def _leaf(source: LeafNodeSource = LeafNodeSource.UPDATE) -> LeafNode:
    from crypto.mls.leaf_node import Lifetime

    return LeafNode(
        encryption_key=b"e" * 32, signature_key=b"s" * 32, credential=Credential.basic(b"alice"),
        capabilities=Capabilities(versions=(1,), cipher_suites=(1, 3)), leaf_node_source=source,
        lifetime=Lifetime(0, 2**64 - 1) if source == LeafNodeSource.KEY_PACKAGE else None,
        parent_hash=b"p" * 32 if source == LeafNodeSource.COMMIT else None, signature=b"x" * 64)


def test_unknown_wire_format():
    with pytest.raises(UnknownWireFormat) as exc:
        MLSMessage.from_bytes(b"\x00\x01\x00\x06")
    assert exc.value.code == "mls_unknown_wire_format"
    with pytest.raises(UnknownWireFormat):
        MLSMessage.from_bytes(b"\x00\x01\x00\x00")


def test_wrong_version():
    body = Remove(0)  # any bytes: the version is checked first
    for version in (0, 2, 0xFFFF):
        data = version.to_bytes(2, "big") + b"\x00\x01" + body.to_bytes()
        with pytest.raises(UnsupportedProtocolVersion) as exc:
            MLSMessage.from_bytes(data)
        assert exc.value.code == "mls_unsupported_version"
    kp_bytes = KeyPackage(1, b"i" * 32, _leaf(LeafNodeSource.KEY_PACKAGE)).to_bytes()
    with pytest.raises(UnsupportedProtocolVersion):
        KeyPackage.from_bytes(b"\x00\x02" + kp_bytes[2:])


def test_padding_zero_accepted_nonzero_refused():
    auth = FramedContentAuthData(b"sig")
    plain = encode_private_message_content_bytes = PrivateMessageContent(
        ContentType.APPLICATION, b"hello", auth, 0).to_bytes()
    padded = plain + bytes(17)
    decoded = PrivateMessageContent.from_bytes(padded, ContentType.APPLICATION)
    assert (decoded.content, decoded.auth, decoded.padding) == (b"hello", auth, 17)
    assert decoded.to_bytes() == padded
    for bad in (plain + b"\x01", plain + bytes(5) + b"\x80" + bytes(3)):
        with pytest.raises(InvalidPadding) as exc:
            PrivateMessageContent.from_bytes(bad, ContentType.APPLICATION)
        assert exc.value.code == "mls_invalid_padding"
    assert encode_private_message_content_bytes == b"\x05hello\x03sig"


def test_blank_last_node_and_empty_tree():
    leaf = Node(_leaf())
    assert decode_ratchet_tree(encode_ratchet_tree([leaf])) == [leaf]
    with pytest.raises(BlankLastNode) as exc:
        decode_ratchet_tree(encode_ratchet_tree([leaf, None]))
    assert exc.value.code == "mls_blank_last_node"
    with pytest.raises(BlankLastNode):
        decode_ratchet_tree(encode_ratchet_tree([leaf, None, None]))
    with pytest.raises(BlankLastNode):
        decode_ratchet_tree(encode_ratchet_tree([]))


def test_node_at_wrong_position():
    leaf, parent = Node(_leaf()), Node(ParentNode(b"k" * 32))
    assert decode_ratchet_tree(encode_ratchet_tree([leaf, parent, leaf]))[1] == parent
    with pytest.raises(NodeTypeMismatch):
        decode_ratchet_tree(encode_ratchet_tree([leaf, leaf, leaf]))
    with pytest.raises(NodeTypeMismatch):
        decode_ratchet_tree(encode_ratchet_tree([parent]))


def test_non_boolean_optional_byte():
    data = Commit((ProposalOrRef(Proposal(Remove(2))),)).to_bytes()
    assert data[-1] == 0
    with pytest.raises(InvalidValue):
        Commit.from_bytes(data[:-1] + b"\x02")
    with pytest.raises(InvalidValue):
        decode_ratchet_tree(b"\x01\x02")


def test_unknown_proposal_and_credential_types():
    for ptype in (0, 8, 0x0A0A):
        with pytest.raises(UnknownProposalType) as exc:
            Proposal.from_bytes(ptype.to_bytes(2, "big") + b"\x00" * 4)
        assert exc.value.code == "mls_unknown_proposal_type"
    for ctype in (0, 3, 0x0A0A):
        with pytest.raises(UnknownCredentialType) as exc2:
            Credential.from_bytes(ctype.to_bytes(2, "big") + b"\x00")
        assert exc2.value.code == "mls_unknown_credential_type"


def _leaf_with_source_byte(source: int) -> bytes:
    leaf = _leaf()
    w = Writer()
    w.opaque(leaf.encryption_key)
    w.opaque(leaf.signature_key)
    head = w.getvalue() + leaf.credential.to_bytes() + leaf.capabilities.to_bytes()
    data = leaf.to_bytes()
    assert data[len(head)] == LeafNodeSource.UPDATE
    return head + bytes([source]) + data[len(head) + 1:]


@pytest.mark.parametrize("decode, data", [
    (Sender.from_bytes, b"\x05"),
    (Sender.from_bytes, b"\x00"),
    (SenderDataAAD.from_bytes, b"\x00" + bytes(8) + b"\x04"),
    (lambda d: decode_exact(d, Node.decode), b"\x03"),
    (PreSharedKeyID.from_bytes, b"\x03"),
    (PreSharedKeyID.from_bytes, b"\x02\x04"),
    (ProposalOrRef.from_bytes, b"\x03"),
    (LeafNode.from_bytes, _leaf_with_source_byte(4)),
])
def test_unknown_closed_enum_values(decode, data):
    with pytest.raises(UnknownEnumValue):
        decode(data)


def test_fixed_and_bounded_lengths():
    with pytest.raises(Truncated):
        SenderData.from_bytes(bytes(8) + b"\x01\x02\x03")
    with pytest.raises(InternalError):
        SenderData(0, 0, b"\x01")
    with pytest.raises(LengthTooLarge):
        ProposalOrRef.from_bytes(b"\x02\x41" + bytes(65))
    assert ProposalOrRef.from_bytes(b"\x02\x20" + bytes(32)).value == bytes(32)
    with pytest.raises(LengthTooLarge):
        EncryptedGroupSecrets.from_bytes(b"\x40\x41" + bytes(65) + b"\x00\x00")


def test_tag_presence_follows_content_and_sender():
    w = Writer()
    w.opaque(b"sig")
    w.opaque(b"t" * 32)
    data = w.getvalue()
    assert FramedContentAuthData.from_bytes(data, ContentType.COMMIT).confirmation_tag == b"t" * 32
    with pytest.raises(DecodeError):
        FramedContentAuthData.from_bytes(data, ContentType.PROPOSAL)
    with pytest.raises(Truncated):
        FramedContentAuthData.from_bytes(b"\x03sig", ContentType.COMMIT)
    content = FramedContent(b"g", 1, Sender.external(0), b"", ContentType.PROPOSAL,
                            Proposal(Remove(1)))
    external = PublicMessage(content, FramedContentAuthData(b"sig"))
    assert PublicMessage.from_bytes(external.to_bytes()) == external
    with pytest.raises(InternalError):
        PublicMessage(content, FramedContentAuthData(b"sig"), membership_tag=b"m")
    member = FramedContent(b"g", 1, Sender.member(0), b"", ContentType.APPLICATION, b"x")
    with pytest.raises(Truncated):  # a member's message needs its membership_tag
        PublicMessage.from_bytes(member.to_bytes() + FramedContentAuthData(b"s").to_bytes())


def test_tbs_encodings():
    leaf = _leaf(LeafNodeSource.COMMIT)
    body = leaf.to_bytes()[:-66]  # signature: 2-byte prefix + 64 bytes
    assert leaf.tbs_bytes(b"grp", 5) == body + b"\x03grp\x00\x00\x00\x05"
    with pytest.raises(InternalError):
        leaf.tbs_bytes()
    kp_leaf = _leaf(LeafNodeSource.KEY_PACKAGE)
    assert kp_leaf.tbs_bytes() == kp_leaf.to_bytes()[:-66]
    with pytest.raises(InternalError):
        kp_leaf.tbs_bytes(b"grp", 5)
    kp = KeyPackage(1, b"i" * 32, kp_leaf, signature=b"k" * 64)
    assert kp.to_bytes() == kp.tbs_bytes() + b"\x40\x40" + b"k" * 64
    ctx = GroupContext(1, b"grp", 3, b"h" * 32, b"c" * 32)
    gi = GroupInfo(ctx, (), b"t" * 32, 2, b"g" * 64)
    assert gi.to_bytes() == gi.tbs_bytes() + b"\x40\x40" + b"g" * 64
    assert GroupInfoTBS.from_bytes(gi.tbs_bytes()) == gi.tbs()
    content = FramedContent(b"grp", 3, Sender.member(2), b"", ContentType.APPLICATION, b"hi")
    with pytest.raises(InternalError):
        FramedContentTBS(WireFormat.MLS_PUBLIC_MESSAGE, content, None)
    tbs = FramedContentTBS(WireFormat.MLS_PRIVATE_MESSAGE, content, ctx)
    assert tbs.to_bytes() == b"\x00\x01\x00\x02" + content.to_bytes() + ctx.to_bytes()


def test_content_class_must_match_content_type():
    with pytest.raises(InternalError):
        FramedContent(b"g", 0, Sender.member(0), b"", ContentType.COMMIT, b"not a commit")
    with pytest.raises(InternalError):
        Sender(SenderType.MEMBER)


def test_update_path_round_trip():
    node = UpdatePathNode(b"k" * 32, (HPKECiphertext(b"o" * 32, b"c" * 48),))
    path = UpdatePath(_leaf(LeafNodeSource.COMMIT), (node, node))
    commit = Commit((ProposalOrRef(b"r" * 32),), path)
    assert Commit.from_bytes(commit.to_bytes()) == commit
    assert commit.to_bytes().endswith(b"\x01" + path.to_bytes())
