"""The one failure type of the vector checks."""

from __future__ import annotations

__all__ = ["VectorMismatch", "CaseUnsupported", "expect", "expect_eq", "h"]

h = bytes.fromhex


class VectorMismatch(AssertionError):
    """A computed value differs from the vector's."""


class CaseUnsupported(Exception):
    """The case uses something Confide does not implement; the message says what."""


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise VectorMismatch(what)


def expect_eq(got: object, want: object, what: str) -> None:
    if got != want:
        g = got.hex() if isinstance(got, bytes) else got
        w = want.hex() if isinstance(want, bytes) else want
        raise VectorMismatch(f"{what}: got {g!r}, want {w!r}")
