"""TOTP and HOTP (crypto/totp.py) against the RFCs' own known answers.

- RFC 4226 Appendix D: HOTP of the ASCII secret ``12345678901234567890`` for counters 0..9.
- RFC 6238 Appendix B: TOTP (8 digits, 30 s, T0 = 0) with SHA-1, SHA-256 and SHA-512 and the
  seeds the RFC's reference code uses (20, 32 and 64 bytes of ``1234567890`` repeated).
Then the window and replay-relevant behaviour of :func:`match_step`, and a property test of it
on arbitrary codes (a decoder of client input: it never raises, it matches only real codes).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto.errors import InvalidValue
from crypto.totp import encode_secret, hotp, match_step, otpauth_uri, totp, totp_step

SEED20 = b"12345678901234567890"
SEED32 = b"12345678901234567890123456789012"
SEED64 = b"1234567890123456789012345678901234567890123456789012345678901234"

# RFC 4226 Appendix D, "HOTP" column.
RFC4226 = ["755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583",
           "399871", "520489"]

# RFC 6238 Appendix B: (time, TOTP SHA-1, SHA-256, SHA-512).
RFC6238 = [
    (59, "94287082", "46119246", "90693936"),
    (1111111109, "07081804", "68084774", "25091201"),
    (1111111111, "14050471", "67062674", "99943326"),
    (1234567890, "89005924", "91819424", "93441116"),
    (2000000000, "69279037", "90698825", "38618901"),
    (20000000000, "65353130", "77737706", "47863826"),
]


@pytest.mark.parametrize("counter", range(10))
def test_rfc4226_appendix_d(counter):
    assert hotp(SEED20, counter) == RFC4226[counter]


@pytest.mark.parametrize("row", RFC6238, ids=lambda r: str(r[0]))
def test_rfc6238_appendix_b(row):
    t, sha1, sha256, sha512 = row
    assert totp(SEED20, t, digits=8) == sha1
    assert totp(SEED32, t, digits=8, digest="sha256") == sha256
    assert totp(SEED64, t, digits=8, digest="sha512") == sha512


def test_rfc6238_steps():
    # Appendix B's "Value of T (hex)" column: 59 -> 1, 1111111109 -> 0x23523EC, ...
    assert totp_step(59) == 1
    assert totp_step(1111111109) == 0x23523EC
    assert totp_step(20000000000) == 0x27BC86AA


def test_six_digits_are_the_last_six_of_eight():
    # Dynamic truncation then mod 10^d: the 6-digit code is the 8-digit one's tail.
    for t, sha1, _, _ in RFC6238:
        assert totp(SEED20, t) == sha1[-6:]


def test_match_step_window_is_one_step_each_way():
    now = 1111111111.0
    step = totp_step(now)
    for offset in (-1, 0, 1):
        assert match_step(SEED20, hotp(SEED20, step + offset), now) == step + offset
    for offset in (-2, 2, 10):
        assert match_step(SEED20, hotp(SEED20, step + offset), now) is None


@pytest.mark.parametrize("bad", ["", "12345", "1234567", "12345a", " 12345", "١٢٣٤٥٦", "123 456"])
def test_match_step_refuses_what_is_not_six_ascii_digits(bad):
    assert match_step(SEED20, bad, 1111111111.0) is None


def test_out_of_range_parameters():
    with pytest.raises(InvalidValue):
        hotp(SEED20, -1)
    with pytest.raises(InvalidValue):
        hotp(SEED20, 1 << 64)
    with pytest.raises(InvalidValue):
        hotp(SEED20, 0, digits=5)


def test_secret_and_uri():
    assert encode_secret(SEED20) == "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
    uri = otpauth_uri(SEED20, "@dr.lee:practice.example", "practice.example")
    assert uri == ("otpauth://totp/practice.example%3A%40dr.lee%3Apractice.example"
                   "?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=practice.example"
                   "&algorithm=SHA1&digits=6&period=30")


@settings(max_examples=200, deadline=None)
@given(code=st.text(max_size=12), now=st.floats(0, 2**40, allow_nan=False))
def test_match_step_on_arbitrary_input(code, now):
    step = match_step(SEED20, code, now)
    if step is not None:
        assert abs(step - totp_step(now)) <= 1 and hotp(SEED20, step) == code
