"""The one forms of finding 9 (``spec/security.md``), as pure functions: client transaction
ids (``protocol.txn_ids``), padding buckets (``protocol.padding``), the sealed attachment and
to-device formats (``protocol.sealed``) and the hub's MLS field checks
(``protocol.room_channels``). Hypothesis drives every decoder and check with arbitrary and
mutated input: each answers with its value or its one typed error, never anything else."""

from __future__ import annotations

import base64
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crypto.mls import Group, MLSMessage
from crypto.mls.ciphersuite import get_suite
from crypto.mls.extensions import Extension, ExtensionType
from crypto.mls.key_package_gen import default_capabilities, generate_key_package
from crypto.mls.proposals import PreSharedKey, PreSharedKeyID, Proposal, PSKType
from crypto.primitives import x25519_public_key
from crypto.rng import SeededRng, system_rng
from protocol.channel_errors import (
    AttachmentNotSealed,
    AuthenticatedDataNotEmpty,
    ExtensionNotAllowed,
    FieldLengthInvalid,
    GroupIdInvalid,
    InvalidTxnId,
    MessageNotPadded,
    ProposalNotAllowed,
    ToDeviceNotSealed,
)
from protocol.errors import ApiError
from protocol.padding import MIN_BUCKET, application_padding, bucket, is_bucket
from protocol.room_channels import (
    check_application,
    check_handshake,
    check_key_package,
    check_new_group,
    check_welcome,
    derive_group_id,
)
from protocol.room_messages import classify_message
from protocol.sealed import (
    ATTACHMENT_HEADER,
    SealedInvalid,
    check_attachment,
    check_to_device,
    open_attachment,
    open_to_device,
    pad,
    seal_attachment,
    seal_to_device,
    unpad,
)
from protocol.txn_ids import new_client_txn_id, parse_client_txn_id, txn_key

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SUITE = get_suite(3)
PRIV = bytes(range(32))
PUB = x25519_public_key(PRIV)


# -- txn_id ----------------------------------------------------------------------------------


@SETTINGS
@given(st.binary(min_size=16, max_size=16))
def test_every_16_bytes_make_one_txn_id(raw):
    t = new_client_txn_id(lambda n: raw[:n])
    assert parse_client_txn_id(t) == t and len(t) == 22
    assert base64.urlsafe_b64decode(t + "==") == raw
    assert txn_key(t) != t and len(txn_key(t)) == 64


@SETTINGS
@given(st.one_of(st.text(max_size=40), st.binary(max_size=30), st.integers(), st.none()))
def test_anything_else_is_an_invalid_txn_id(v):
    try:
        t = parse_client_txn_id(v)
    except InvalidTxnId:
        return
    assert new_client_txn_id(lambda n: base64.urlsafe_b64decode(t + "==")[:n]) == t  # canonical


@pytest.mark.parametrize("bad", ["t1", "A" * 21, "A" * 23, "A" * 21 + "B", "A" * 21 + "=",
                                 "A" * 20 + "+A", "Zelda Quimby bipolar."])
def test_txn_ids_of_another_form(bad):
    with pytest.raises(InvalidTxnId):
        parse_client_txn_id(bad)


# -- padding ---------------------------------------------------------------------------------


@SETTINGS
@given(st.integers(0, 1 << 30))
def test_bucket_is_the_smallest_bucket_at_or_above(n):
    b = bucket(n)
    assert b >= max(n, MIN_BUCKET) and is_bucket(b)
    assert b <= max(MIN_BUCKET, n + n // 4 + 1)  # at most a quarter more
    assert bucket(b) == b
    if b - n < 5000:
        assert not any(is_bucket(x) for x in range(max(n, MIN_BUCKET), b))


def test_the_first_buckets():
    assert [n for n in range(2000) if is_bucket(n)] == [
        256, 320, 384, 448, 512, 640, 768, 896, 1024, 1280, 1536, 1792]


@settings(max_examples=25, deadline=None)
@given(st.binary(max_size=3000))
def test_application_padding_makes_a_bucket_ciphertext(data):
    kp, priv = generate_key_package(SUITE, b"@a:x.test/D", system_rng)
    group = Group.create(SUITE, derive_group_id(kp.leaf_node.encryption_key), kp, priv)
    msg = group.protect(data, padding=application_padding(data))
    check_application(msg.body)
    assert is_bucket(len(msg.body.ciphertext))


# -- sealed formats --------------------------------------------------------------------------


@SETTINGS
@given(st.binary(max_size=2000))
def test_sealed_attachments_and_boxes_round_trip(data):
    blob, key, nonce = seal_attachment(data, system_rng)
    check_attachment(blob[:ATTACHMENT_HEADER], len(blob))
    assert blob[6:18] == nonce and open_attachment(blob, key) == data
    box = seal_to_device(PUB, data, system_rng)
    check_to_device(box)
    assert open_to_device(PRIV, box) == data
    assert unpad(pad(data)) == data


@SETTINGS
@given(st.binary(max_size=600), st.integers(0, 10_000), st.integers(1, 255))
def test_arbitrary_or_flipped_sealed_bytes_get_only_typed_errors(data, pos, flip):
    for candidate in (data, _flip(seal_attachment(b"scan", system_rng)[0], pos, flip)):
        try:
            check_attachment(candidate[:ATTACHMENT_HEADER], len(candidate))
        except AttachmentNotSealed:
            continue
        with pytest.raises(SealedInvalid):  # a header that checks, but not this key's blob
            open_attachment(candidate, bytes(32))
    for candidate in (data, _flip(seal_to_device(PUB, b"key", system_rng), pos, flip)):
        try:
            check_to_device(candidate)
        except ToDeviceNotSealed:
            continue
        try:
            assert open_to_device(PRIV, candidate) == b"key"
        except SealedInvalid:
            pass
    try:
        unpad(data)
    except SealedInvalid:
        pass


def _flip(data: bytes, pos: int, flip: int) -> bytes:
    out = bytearray(data)
    out[pos % len(out)] ^= flip
    return bytes(out)


# -- the hub's MLS checks --------------------------------------------------------------------


def _group(rng=system_rng, **kw):
    kp, priv = generate_key_package(SUITE, b"@a:x.test/D", rng)
    return Group.create(SUITE, derive_group_id(kp.leaf_node.encryption_key), kp, priv, rng=rng, **kw)


def _view(group):
    from crypto.mls.public_group import PublicGroup
    info = group.group_info()
    return PublicGroup.from_group_info(info), info


def test_new_group_checks():
    check_new_group(*_view(_group()))
    kp, priv = generate_key_package(SUITE, b"@a:x.test/D", system_rng)
    with pytest.raises(GroupIdInvalid):
        check_new_group(*_view(Group.create(SUITE, b"Quimby".ljust(32), kp, priv)))
    with pytest.raises(ExtensionNotAllowed):
        check_new_group(*_view(_group(extensions=[Extension(ExtensionType.APPLICATION_ID, b"Q")])))
    view, info = _view(_group())
    with pytest.raises(ExtensionNotAllowed):
        check_new_group(view, replace(info, extensions=(*info.extensions, Extension(0xF0F0, b"Q"))))


def test_handshake_and_key_package_checks():
    group = _group()
    psk = Proposal(PreSharedKey(PreSharedKeyID(PSKType.EXTERNAL, psk_id=b"Quimby",
                                               psk_nonce=bytes(32))))
    msg, _ = group.propose_update()  # the PSK proposal is put in its place below
    check_handshake(classify_message(msg.to_bytes()).message.body)
    body = classify_message(msg.to_bytes()).message.body
    with pytest.raises(AuthenticatedDataNotEmpty):
        check_handshake(replace(body, content=replace(body.content, authenticated_data=b"Q")))
    with pytest.raises(ProposalNotAllowed):
        check_handshake(replace(body, content=replace(body.content, content=psk)))
    caps = default_capabilities(SUITE, (0x5A65, 0x6C64))  # "Zeld" spelled in capabilities
    kp, _ = generate_key_package(SUITE, b"@a:x.test/D", system_rng, capabilities=caps)
    with pytest.raises(ExtensionNotAllowed):
        check_key_package(kp)
    check_key_package(generate_key_package(SUITE, b"@a:x.test/D", system_rng, last_resort=True)[0])


def test_commit_path_lengths():
    group = _group()
    kps = [generate_key_package(SUITE, f"@b:x.test/D{i}".encode(), system_rng)[0] for i in range(2)]
    group.merge_staged_commit(group.add_members(kps))
    body = group.stage_commit(force_path=True).commit.body
    check_handshake(body)
    commit = body.content.content
    node = commit.path.nodes[0]
    bad_key = replace(node, encryption_key=node.encryption_key + b"Q")
    ct = node.encrypted_path_secret[0]
    bad_ct = replace(node, encrypted_path_secret=(replace(ct, ciphertext=ct.ciphertext + b"Q"),))
    for bad in (bad_key, bad_ct):
        path = replace(commit.path, nodes=(bad, *commit.path.nodes[1:]))
        with pytest.raises(FieldLengthInvalid):
            check_handshake(replace(body, content=replace(body.content,
                                                          content=replace(commit, path=path))))
    leaf = replace(commit.path.leaf_node, encryption_key=b"Zelda Quimby-Marsh, bipolar II!!!")
    with pytest.raises(FieldLengthInvalid):
        check_handshake(replace(body, content=replace(body.content, content=replace(
            commit, path=replace(commit.path, leaf_node=leaf)))))


def test_welcome_secret_lengths():
    group = _group()
    kps = [generate_key_package(SUITE, f"@b:x.test/D{i}".encode(), system_rng)[0] for i in range(2)]
    for force_path in (False, True):
        welcome = group.add_members(kps, force_path=force_path).welcome.body
        check_welcome(welcome)
    entry = welcome.secrets[0]
    ct = entry.encrypted_group_secrets
    for bad in (replace(ct, ciphertext=ct.ciphertext + b"Quimby"), replace(ct, kem_output=b"Q" * 33)):
        with pytest.raises(FieldLengthInvalid):
            check_welcome(replace(welcome, secrets=(replace(entry, encrypted_group_secrets=bad),)))


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 255))
def test_mutated_room_messages_get_only_typed_errors(pos, flip):
    group = _group(SeededRng(b"channel forms"))
    app = group.protect(b"hello", padding=application_padding(b"hello")).to_bytes()
    update, _ = group.propose_update(rng=SeededRng(b"update"))
    for data in (app, update.to_bytes()):
        try:
            c = classify_message(_flip(data, pos, flip))
        except ApiError:
            continue
        try:
            if isinstance(c.message.body, type(MLSMessage.from_bytes(app).body)):
                check_application(c.message.body)
            else:
                check_handshake(c.message.body)
        except (AuthenticatedDataNotEmpty, MessageNotPadded, ExtensionNotAllowed,
                ProposalNotAllowed, FieldLengthInvalid):
            pass
