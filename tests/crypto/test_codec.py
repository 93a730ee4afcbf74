"""The TLS presentation-language codec: strict decoding, typed errors, round trips."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crypto.codec import Reader, Writer, decode_exact, encode_varint
from crypto.errors import (
    DecodeError,
    InvalidValue,
    LengthTooLarge,
    NonMinimalLength,
    TrailingBytes,
    Truncated,
)


def test_truncated_fixed_and_vector():
    with pytest.raises(Truncated):
        decode_exact(b"\x01", Reader.u16)
    with pytest.raises(Truncated):
        decode_exact(b"\x05abc", Reader.opaque)


def test_non_minimal_prefixes():
    with pytest.raises(NonMinimalLength):
        decode_exact(b"\x40\x05" + b"x" * 5, Reader.opaque)
    with pytest.raises(NonMinimalLength):
        decode_exact(b"\x80\x00\x00\x05" + b"x" * 5, Reader.opaque)


def test_reserved_and_over_bound_lengths():
    with pytest.raises(LengthTooLarge):
        decode_exact(b"\xc0\x00\x00\x00\x00\x00\x00\x01", Reader.varint)
    with pytest.raises(LengthTooLarge):
        decode_exact(b"\x0a" + b"x" * 10, lambda r: r.opaque(max_len=4))


def test_trailing_bytes():
    with pytest.raises(TrailingBytes):
        decode_exact(b"\x01ab", Reader.opaque)


def test_vector_items_must_fill_exactly():
    # a vector of u16 with 3 bytes: the last item is truncated inside the vector
    with pytest.raises(Truncated):
        decode_exact(b"\x03\x00\x01\x00", lambda r: r.vector(Reader.u16))


def test_bad_boolean_and_optional():
    with pytest.raises(InvalidValue):
        decode_exact(b"\x02", Reader.boolean)
    with pytest.raises(InvalidValue):
        decode_exact(b"\x02\x00", lambda r: r.optional(Reader.u8))


def test_varint_bounds():
    assert encode_varint(63) == b"\x3f"
    assert encode_varint(64) == b"\x40\x40"
    assert encode_varint(16384) == b"\x80\x00\x40\x00"
    with pytest.raises(ValueError):
        encode_varint(1 << 30)


@given(st.lists(st.binary(max_size=300), max_size=5), st.one_of(st.none(), st.integers(0, 2**64 - 1)))
def test_round_trip(blobs, opt):
    w = Writer()
    w.vector(blobs, Writer.opaque)
    w.optional(opt, Writer.u64)
    data = w.getvalue()

    def read(r: Reader):
        return r.vector(Reader.opaque), r.optional(Reader.u64)

    assert decode_exact(data, read) == (blobs, opt)


@given(st.binary(max_size=200))
def test_random_bytes_only_raise_decode_errors(data):
    def read(r: Reader):
        return r.vector(lambda s: (s.u8(), s.opaque(), s.optional(Reader.u32))), r.u64()

    try:
        decode_exact(data, read)
    except DecodeError:
        pass
