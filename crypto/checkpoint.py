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

from .merkle import HASH_SIZE, MAX_PROOF_LEN
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
    "TlogProof",
    "format_tlog_proof",
    "parse_tlog_proof",
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


_TLOG_PROOF_HEADER = "c2sp.org/tlog-proof@v1"
_MAX_EXTRA = 8192


@dataclass(frozen=True)
class TlogProof:
    """A c2sp.org/tlog-proof: optional extra data, an index, its inclusion proof and the
    signed checkpoint (kept as the exact note bytes, to be verified by the reader)."""

    index: int
    proof: tuple[bytes, ...]
    checkpoint_note: bytes
    extra: bytes | None = None


def format_tlog_proof(p: TlogProof) -> bytes:
    lines = [_TLOG_PROOF_HEADER]
    if p.extra is not None:
        lines.append("extra " + base64.b64encode(p.extra).decode())
    lines.append(f"index {p.index}")
    lines.extend(base64.b64encode(h).decode() for h in p.proof)
    return ("\n".join(lines) + "\n\n").encode() + p.checkpoint_note


def parse_tlog_proof(data: bytes) -> TlogProof:
    """Parse a tlog-proof strictly; the checkpoint note is returned unverified.

    Raises :class:`MalformedNote` for a wrong header, bad ``extra``/``index``
    lines, a hash line that is not 32 bytes of canonical base64, too many
    proof lines, or a missing blank line.
    """
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedNote("tlog-proof is not UTF-8") from exc
    head, sep, _ = text.partition("\n\n")
    if not sep:
        raise MalformedNote("tlog-proof without a blank line before the checkpoint")
    lines = head.split("\n")
    if lines[0] != _TLOG_PROOF_HEADER:
        raise MalformedNote("not a c2sp.org/tlog-proof@v1")
    pos = 1
    extra = None
    if pos < len(lines) and lines[pos].startswith("extra "):
        extra = b64decode_strict(lines[pos][len("extra "):])
        if len(extra) > _MAX_EXTRA:
            raise MalformedNote("extra data too large")
        pos += 1
    if pos >= len(lines) or not lines[pos].startswith("index "):
        raise MalformedNote("missing index line")
    index = parse_decimal(lines[pos][len("index "):], "index")
    hashes = lines[pos + 1 :]
    if len(hashes) > MAX_PROOF_LEN:
        raise MalformedNote("inclusion proof too long")
    proof = []
    for line in hashes:
        h = b64decode_strict(line)
        if len(h) != HASH_SIZE:
            raise MalformedNote("proof hash is not 32 bytes")
        proof.append(h)
    note_bytes = bytes(data)[len((head + "\n\n").encode()):]
    return TlogProof(index, tuple(proof), note_bytes, extra)
