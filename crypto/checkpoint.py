"""C2SP tlog-checkpoint note bodies (c2sp.org/tlog-checkpoint).

The body is three or more non-empty lines: the origin, the tree size in
canonical decimal, the base64 root hash (32 bytes), then optional extension
lines. :func:`parse_checkpoint` is strict and raises :class:`MalformedNote`
(code ``"malformed"``) for anything else; :func:`open_checkpoint` parses and
verifies a signed checkpoint in one step.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from .note import (
    MalformedNote,
    Signer,
    VerifiedNote,
    Verifier,
    b64decode_strict,
    open_note,
    sign_note,
)

__all__ = [
    "Checkpoint",
    "parse_checkpoint",
    "parse_decimal",
    "open_checkpoint",
    "sign_checkpoint",
    "MAX_TREE_SIZE",
]

MAX_TREE_SIZE = (1 << 63) - 1
_MAX_ORIGIN = 255
_MAX_EXTENSIONS = 16


def parse_decimal(s: str, what: str = "number") -> int:
    """A canonical ASCII decimal (no sign, no leading zero but ``0``) up to 2**63-1."""
    if not s or len(s) > 19 or not all("0" <= c <= "9" for c in s) or (s[0] == "0" and s != "0"):
        raise MalformedNote(f"{what} is not a canonical decimal")
    value = int(s)
    if value > MAX_TREE_SIZE:
        raise MalformedNote(f"{what} above 2**63-1")
    return value


@dataclass(frozen=True)
class Checkpoint:
    """A tree head: origin, size and root hash (and rarely used extension lines)."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def to_text(self) -> str:
        lines = [self.origin, str(self.size), base64.b64encode(self.root_hash).decode()]
        return "\n".join([*lines, *self.extensions]) + "\n"


def parse_checkpoint(text: str) -> Checkpoint:
    """Parse a checkpoint body; raise :class:`MalformedNote` if it is not exactly canonical."""
    if not text.endswith("\n"):
        raise MalformedNote("checkpoint must end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3 or len(lines) > 3 + _MAX_EXTENSIONS:
        raise MalformedNote("checkpoint needs three lines (and few extensions)")
    if any(not line for line in lines):
        raise MalformedNote("empty line in checkpoint")
    origin = lines[0]
    if len(origin.encode()) > _MAX_ORIGIN:
        raise MalformedNote("origin too long")
    size = parse_decimal(lines[1], "tree size")
    root = b64decode_strict(lines[2])
    if len(root) != 32:
        raise MalformedNote("root hash is not 32 bytes")
    return Checkpoint(origin, size, root, tuple(lines[3:]))


def sign_checkpoint(checkpoint: Checkpoint, signer: Signer) -> bytes:
    """The signed note of ``checkpoint`` by the log key ``signer``."""
    return sign_note(checkpoint.to_text(), [signer])


def open_checkpoint(
    data: bytes, verifiers: list[Verifier], origin: str | None = None
) -> tuple[Checkpoint, VerifiedNote]:
    """Verify a signed checkpoint and parse its body.

    Raises what :func:`crypto.note.open_note` raises, and :class:`MalformedNote`
    for a malformed body or an origin other than ``origin`` (when given).
    """
    verified = open_note(data, verifiers)
    checkpoint = parse_checkpoint(verified.text)
    if origin is not None and checkpoint.origin != origin:
        raise MalformedNote(f"checkpoint origin {checkpoint.origin!r} is not {origin!r}")
    return checkpoint, verified
