"""One-time passwords: HOTP (RFC 4226) and TOTP (RFC 6238), pure functions over bytes and ints.

Confide's second factor is TOTP with HMAC-SHA-1, 6 digits and a 30 second
step from the Unix epoch (what every authenticator app speaks); SHA-256 and
SHA-512 are here for RFC 6238's Appendix B vectors. Time is a parameter
(POSIX seconds); nothing here reads a clock.

- :func:`hotp` is RFC 4226 section 5.3 (dynamic truncation, then modulo
  ``10**digits``, zero-padded).
- :func:`totp_step` is RFC 6238 section 4.2: ``T = floor((now - T0) / X)``.
- :func:`match_step` looks for ``code`` at the steps ``T - window .. T + window``
  (RFC 6238 section 5.2 allows one step of drift each way) and returns the step
  it matched, so that the caller can refuse a second use of a step (replay).
  Every candidate is computed and compared in constant time.
- :func:`encode_secret` / :func:`otpauth_uri`: the base32 secret and the
  ``otpauth://totp/...`` URI that authenticator apps import (Google's "Key Uri
  Format", the de facto standard).

Raises :class:`~crypto.errors.InvalidValue` for a digit count, period or
counter out of range.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct

from .errors import InvalidValue

__all__ = ["DIGITS", "PERIOD", "SECRET_BYTES", "hotp", "totp", "totp_step", "match_step",
           "encode_secret", "otpauth_uri"]

#: Digits of a code, seconds of a step, bytes of a secret (RFC 4226 section 4 asks 128 bits
#: at least and recommends 160).
DIGITS = 6
PERIOD = 30
SECRET_BYTES = 20

_DIGESTS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha512": hashlib.sha512}


def hotp(key: bytes, counter: int, digits: int = DIGITS, digest: str = "sha1") -> str:
    """RFC 4226 HOTP value of ``counter`` (an unsigned 64-bit integer) as ``digits`` decimals."""
    if not 6 <= digits <= 10:
        raise InvalidValue("an HOTP value has 6..10 digits")
    if not 0 <= counter < 1 << 64:
        raise InvalidValue("the HOTP counter is an unsigned 64-bit integer")
    mac = hmac.new(key, struct.pack(">Q", counter), _DIGESTS[digest]).digest()
    offset = mac[-1] & 0x0F
    binary = int.from_bytes(mac[offset:offset + 4], "big") & 0x7FFF_FFFF
    return str(binary % 10**digits).zfill(digits)


def totp_step(now: float, period: int = PERIOD, t0: int = 0) -> int:
    """RFC 6238's ``T``: whole steps of ``period`` seconds since ``t0``."""
    if period < 1:
        raise InvalidValue("the TOTP period is at least one second")
    return int((now - t0) // period)


def totp(key: bytes, now: float, digits: int = DIGITS, period: int = PERIOD,
         digest: str = "sha1") -> str:
    """The TOTP value at POSIX time ``now``."""
    return hotp(key, totp_step(now, period), digits, digest)


def match_step(key: bytes, code: str, now: float, window: int = 1, digits: int = DIGITS,
               period: int = PERIOD) -> int | None:
    """The step in ``T - window .. T + window`` whose value is ``code``, or None.

    A code that is not exactly ``digits`` ASCII decimals matches nothing. When two steps
    give the same value (a one-in-a-million coincidence), the later one is returned.
    """
    if len(code) != digits or not code.isascii() or not code.isdigit():
        return None
    now_step = totp_step(now, period)
    found = None
    for step in range(now_step - window, now_step + window + 1):
        if step >= 0 and hmac.compare_digest(hotp(key, step, digits).encode(), code.encode()):
            found = step
    return found


def encode_secret(key: bytes) -> str:
    """The secret as authenticator apps take it: RFC 4648 base32 without padding."""
    return base64.b32encode(key).decode().rstrip("=")


_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def _percent(text: str) -> str:
    """RFC 3986 percent-encoding of everything but the unreserved characters."""
    return "".join(chr(b) if b in _UNRESERVED else f"%{b:02X}" for b in text.encode())


def otpauth_uri(key: bytes, account: str, issuer: str) -> str:
    """``otpauth://totp/ISSUER:ACCOUNT?secret=...&issuer=...&algorithm=SHA1&digits=6&period=30``."""
    label = _percent(f"{issuer}:{account}")
    return (f"otpauth://totp/{label}?secret={encode_secret(key)}&issuer={_percent(issuer)}"
            f"&algorithm=SHA1&digits={DIGITS}&period={PERIOD}")
