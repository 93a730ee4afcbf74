"""protocol.federation: the header, key documents, transactions, discovery documents and
the backoff schedule; hypothesis fuzzes every decoder (nothing but typed errors escapes)."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto.primitives import ed25519_public_key
from protocol.errors import ApiError, MalformedBody
from protocol.federation import (
    MAX_ITEM_DATA,
    MAX_TXN_BODY,
    MAX_TXN_ITEMS,
    Authorization,
    ItemResult,
    ServerKey,
    ServerKeys,
    ServerKeysInvalid,
    Transaction,
    TransactionItem,
    TransactionResponse,
    TransactionTooLarge,
    WellKnown,
    key_id_for,
    parse_base_url,
    parse_target,
    retry_delay_ms,
    sign_request,
)
from protocol.schema import pack_body

SEED = bytes(range(32))
PK = ed25519_public_key(SEED)
KID = key_id_for(PK)
T = 1_767_225_600_000


def _header() -> str:
    return sign_request(SEED, KID, "GET", "/x", b"", "a.example", "b.example", T).to_header()


# -- backoff ----------------------------------------------------------------------------------


def test_backoff_doubles_between_half_and_full_step():
    for attempts in range(1, 12):
        step = min(3_600_000, 1000 * 2 ** (attempts - 1))
        assert retry_delay_ms(attempts, 1000, 3_600_000, 0.0) == step // 2
        assert step // 2 <= retry_delay_ms(attempts, 1000, 3_600_000, 0.999999) <= step


def test_backoff_schedule_values():
    assert [retry_delay_ms(n, 1000, 60_000, 0.5) for n in range(0, 9)] == [
        0, 750, 1500, 3000, 6000, 12000, 24000, 45000, 45000]


@given(st.integers(1, 10_000), st.integers(1, 10**6), st.integers(1, 10**9), st.floats(0, 1, exclude_max=True))
def test_backoff_never_exceeds_cap_and_grows(attempts, initial, cap, jitter):
    d = retry_delay_ms(attempts, initial, cap, jitter)
    assert 0 <= d <= cap
    assert retry_delay_ms(attempts + 1, initial, cap, 0.0) >= retry_delay_ms(attempts, initial, cap, 0.0)


def test_backoff_rejects_bad_jitter():
    with pytest.raises(ValueError):
        retry_delay_ms(1, 1000, 2000, 1.0)


# -- header and signed bytes ---------------------------------------------------------------


def test_header_round_trip():
    h = _header()
    auth = Authorization.parse(h)
    assert auth.to_header() == h and auth.key_id == KID and auth.timestamp_ms == T


@pytest.mark.parametrize("target", ["x", "/a b", "/a\n", "/" + "a" * 2048, "/a#frag"])
def test_bad_targets(target):
    with pytest.raises(MalformedBody):
        parse_target(target)


def test_signed_bytes_refuse_bad_inputs():
    with pytest.raises(MalformedBody):
        sign_request(SEED, KID, "get", "/x", b"", "a.example", "b.example", T)
    with pytest.raises(MalformedBody):
        sign_request(SEED, KID, "GET", "/x", b"", "A.example", "b.example", T)


# -- server keys ---------------------------------------------------------------------------


def test_server_keys_validity_and_tamper():
    doc = ServerKeys.build("a.example", {KID: ServerKey(PK, T - 10)}, {KID: SEED}, T)
    again = ServerKeys.decode(pack_body(doc))
    again.verify("a.example")
    assert again.key_at(KID, T + 10**9) == PK
    with pytest.raises(ApiError, match="not valid"):
        again.key_at(KID, T - 11)
    tampered = pack_body(ServerKeys("a.example", T, {KID: ServerKey(PK, T - 10, T + 5)}, doc.signatures))
    with pytest.raises(ServerKeysInvalid):
        ServerKeys.decode(tampered).verify("a.example")


# -- transactions --------------------------------------------------------------------------


def test_transaction_bounds():
    ok = Transaction((TransactionItem("room_event", b"x"),))
    assert Transaction.decode(pack_body(ok)) == ok
    many = pack_body({"items": [{"kind": "a", "data": b""}] * (MAX_TXN_ITEMS + 1)})
    with pytest.raises(TransactionTooLarge):
        Transaction.decode(many)
    with pytest.raises(TransactionTooLarge):
        Transaction.decode(pack_body({"items": [{"kind": "a", "data": b"x" * (MAX_ITEM_DATA + 1)}]}))
    with pytest.raises(TransactionTooLarge):
        Transaction.decode(b"\x00" * (MAX_TXN_BODY + 1))
    with pytest.raises(MalformedBody):
        Transaction.decode(pack_body({"items": []}))
    with pytest.raises(MalformedBody):
        Transaction.decode(pack_body({"items": [{"kind": "Bad Kind", "data": b""}]}))


def test_base_urls():
    assert parse_base_url("https://hub.example:8448") == "https://hub.example:8448"
    assert parse_base_url("http://127.0.0.1:80") == "http://127.0.0.1:80"
    for bad in ["ftp://x", "https://x/", "https://X", "https://x:0", "https://x:70000", "https://x/path"]:
        with pytest.raises(MalformedBody):
            parse_base_url(bad)


# -- fuzz: nothing but typed errors escapes the decoders -------------------------------------

_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.binary(max_size=40) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)


def _mutations(data: bytes):
    return st.tuples(st.integers(0, max(0, len(data) - 1)), st.integers(0, 255), st.integers(0, 3)).map(
        lambda t: data[: t[0]] + bytes([t[1]]) + data[t[0] + 1 + t[2] % 2 :] if data else bytes([t[1]]))


_GOOD_KEYS = pack_body(ServerKeys.build("a.example", {KID: ServerKey(PK, 0)}, {KID: SEED}, T))
_GOOD_TXN = pack_body(Transaction((TransactionItem("room_event", b"abc"), TransactionItem("welcome", b""))))


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=300), _mutations(_header().encode()).map(lambda b: b.decode("latin-1"))))
def test_fuzz_authorization(value):
    try:
        Authorization.parse(value)
    except ApiError as exc:
        assert exc.code in {"unsigned", "malformed_authorization"}


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=300), _mutations(_GOOD_KEYS), _values.map(lambda v: msgpack.packb(v))))
def test_fuzz_server_keys(data):
    try:
        ServerKeys.decode(data).verify("a.example")
    except ServerKeysInvalid:
        pass


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=300), _mutations(_GOOD_TXN), _values.map(lambda v: msgpack.packb(v))))
def test_fuzz_transaction(data):
    try:
        Transaction.decode(data)
    except ApiError as exc:
        assert exc.code in {"malformed_body", "transaction_too_large"}


@settings(max_examples=200, deadline=None)
@given(_values)
def test_fuzz_responses_and_well_known(value):
    for cls in (TransactionResponse, ItemResult, WellKnown):
        try:
            cls.from_wire(value)
        except MalformedBody:
            pass
