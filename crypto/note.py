"""C2SP signed notes (c2sp.org/signed-note) with Ed25519 keys and tlog cosignatures.

A note is UTF-8 text ending in a newline, a blank line, then one or more
signature lines ``— <key name> base64(key ID || signature)``. Two signature
types are implemented:

- ``0x01`` Ed25519 over the note text (a log's checkpoint signature);
- ``0x04`` timestamped Ed25519 cosignatures (c2sp.org/tlog-cosignature v1): the
  signature is ``u64 timestamp || Ed25519(sig)`` over
  ``"cosignature/v1\\ntime <t>\\n" || text``.

Key IDs are ``SHA-256(name || 0x0A || type || public key)[:4]`` and verifier
keys are ``<name>+<hex key ID>+base64(type || public key)``.

Parsing is strict and size-capped; every malformed input raises
:class:`MalformedNote` (code ``"malformed"``). :func:`open_note` ignores
signatures from unknown keys, raises :class:`NoteSignatureInvalid` if a
signature from a known key fails (the whole note is rejected, as the spec
recommends), and :class:`UnverifiedNote` if no known key signed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from dataclasses import dataclass

from .errors import CryptoError, DecodeError, InvalidSignature
from .primitives import ed25519_public_key, ed25519_sign, ed25519_verify

__all__ = [
    "MAX_NOTE_SIZE",
    "MAX_SIGNATURES",
    "SIG_ED25519",
    "SIG_COSIGNATURE_V1",
    "MalformedNote",
    "NoteSignatureInvalid",
    "UnverifiedNote",
    "NoteSignature",
    "Note",
    "Verifier",
    "Signer",
    "VerifiedSignature",
    "VerifiedNote",
    "key_id",
    "check_key_name",
    "b64decode_strict",
    "parse_note",
    "parse_signature_lines",
    "parse_vkey",
    "sign_note",
    "open_note",
    "cosignature_message",
]

#: Largest note accepted, in bytes (checkpoints are ~200 bytes; 16 KiB leaves room for cosignatures).
MAX_NOTE_SIZE = 16 * 1024
#: Most signature lines accepted in one note (the spec asks for at least 16).
MAX_SIGNATURES = 64
MAX_KEY_NAME = 255

SIG_ED25519 = 0x01
SIG_COSIGNATURE_V1 = 0x04
_SUPPORTED = (SIG_ED25519, SIG_COSIGNATURE_V1)
_DASH = "\u2014 "
_MAX_TIMESTAMP = (1 << 63) - 1


class MalformedNote(DecodeError):
    """The note, signature line, or verifier key does not follow the format."""

    code = "malformed"


class NoteSignatureInvalid(InvalidSignature):
    """A signature line names a known key (name and ID) but does not verify."""

    code = "note_signature_invalid"


class UnverifiedNote(CryptoError):
    """No signature in the note is from a key the verifier trusts."""

    code = "unverified_note"


def key_id(name: str, sig_type: int, public_key: bytes) -> int:
    """``SHA-256(name || "\\n" || type || public key)[:4]`` as a big-endian uint32."""
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([sig_type]) + public_key).digest()
    return int.from_bytes(digest[:4], "big")


def check_key_name(name: str) -> None:
    """Raise :class:`MalformedNote` unless ``name`` is a valid key name (non-empty, no spaces, no '+')."""
    if not name or len(name.encode()) > MAX_KEY_NAME:
        raise MalformedNote("key name empty or too long")
    if any(ch.isspace() or ch == "+" or ord(ch) < 0x20 for ch in name):
        raise MalformedNote("key name contains a space, '+' or a control character")


def b64decode_strict(s: str) -> bytes:
    """Standard base64 with padding, canonical only; :class:`MalformedNote` otherwise."""
    try:
        raw = base64.b64decode(s.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise MalformedNote("invalid base64") from exc
    if base64.b64encode(raw).decode() != s:
        raise MalformedNote("non-canonical base64")
    return raw


@dataclass(frozen=True)
class NoteSignature:
    """One signature line: key name, key ID and the signature bytes after the ID."""

    name: str
    key_id: int
    signature: bytes

    def line(self) -> str:
        blob = struct.pack(">I", self.key_id) + self.signature
        return f"{_DASH}{self.name} {base64.b64encode(blob).decode()}\n"


@dataclass(frozen=True)
class Note:
    """An unverified note: its text (ending in a newline) and its signature lines."""

    text: str
    signatures: tuple[NoteSignature, ...]

    def to_bytes(self) -> bytes:
        return (self.text + "\n" + "".join(s.line() for s in self.signatures)).encode()


def _check_chars(s: str) -> None:
    for ch in s:
        if ch < " " and ch != "\n":
            raise MalformedNote("control character in note")


def _parse_signature_line(line: str) -> NoteSignature:
    if not line.startswith(_DASH):
        raise MalformedNote("signature line does not start with an em dash and space")
    rest = line[len(_DASH) :]
    name, sep, b64 = rest.partition(" ")
    if not sep:
        raise MalformedNote("signature line without a signature")
    check_key_name(name)
    blob = b64decode_strict(b64)
    if len(blob) < 5:
        raise MalformedNote("signature shorter than a key ID and one byte")
    return NoteSignature(name, int.from_bytes(blob[:4], "big"), blob[4:])


def parse_signature_lines(data: str) -> tuple[NoteSignature, ...]:
    """Parse one or more newline-terminated signature lines (e.g. a witness's response)."""
    if not data.endswith("\n"):
        raise MalformedNote("signature lines must end with a newline")
    lines = data[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise MalformedNote("too many signatures")
    return tuple(_parse_signature_line(line) for line in lines)


def parse_note(data: bytes) -> Note:
    """Split a signed note into text and signature lines, strictly.

    Raises :class:`MalformedNote` for: more than :data:`MAX_NOTE_SIZE` bytes,
    invalid UTF-8, control characters other than newline, no blank line, no
    signature line, a malformed signature line or more than
    :data:`MAX_SIGNATURES` of them.
    """
    if len(data) > MAX_NOTE_SIZE:
        raise MalformedNote("note too large")
    try:
        s = bytes(data).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedNote("note is not UTF-8") from exc
    _check_chars(s)
    split = s.rfind("\n\n")
    if split < 0:
        raise MalformedNote("no blank line before the signatures")
    text, sigs = s[: split + 1], s[split + 2 :]
    if not sigs:
        raise MalformedNote("note has no signatures")
    return Note(text, parse_signature_lines(sigs))


def cosignature_message(text: str, timestamp: int) -> bytes:
    """The message a tlog-cosignature/v1 signs over a checkpoint's note text."""
    return f"cosignature/v1\ntime {timestamp}\n".encode() + text.encode()


@dataclass(frozen=True)
class VerifiedSignature:
    """A signature that verified; ``timestamp`` is set for cosignatures."""

    name: str
    key_id: int
    sig_type: int
    timestamp: int | None
    signature: NoteSignature


@dataclass(frozen=True)
class VerifiedNote:
    """A note at least one trusted key signed. Only this type carries trusted text."""

    text: str
    verified: tuple[VerifiedSignature, ...]
    note: Note


@dataclass(frozen=True)
class Verifier:
    """A trusted public key: name, ID, signature type (0x01 or 0x04) and the Ed25519 key."""

    name: str
    key_id: int
    sig_type: int
    public_key: bytes

    @classmethod
    def of(cls, name: str, sig_type: int, public_key: bytes) -> Verifier:
        check_key_name(name)
        if sig_type not in _SUPPORTED or len(public_key) != 32:
            raise MalformedNote("unsupported signature type or key size")
        return cls(name, key_id(name, sig_type, public_key), sig_type, bytes(public_key))

    def vkey(self) -> str:
        material = base64.b64encode(bytes([self.sig_type]) + self.public_key).decode()
        return f"{self.name}+{self.key_id:08x}+{material}"

    def verify(self, text: str, sig: NoteSignature) -> VerifiedSignature:
        """Verify ``sig`` over ``text``; raise :class:`NoteSignatureInvalid` if it fails."""
        timestamp = None
        try:
            if self.sig_type == SIG_ED25519:
                ed25519_verify(self.public_key, text.encode(), sig.signature)
            else:
                if len(sig.signature) != 72:
                    raise NoteSignatureInvalid("cosignature is not 8 + 64 bytes")
                timestamp = int.from_bytes(sig.signature[:8], "big")
                if timestamp > _MAX_TIMESTAMP:
                    raise NoteSignatureInvalid("cosignature timestamp above 2**63 - 1")
                ed25519_verify(
                    self.public_key, cosignature_message(text, timestamp), sig.signature[8:]
                )
        except InvalidSignature as exc:
            raise NoteSignatureInvalid(
                f"signature by {self.name}+{self.key_id:08x} does not verify"
            ) from exc
        return VerifiedSignature(self.name, self.key_id, self.sig_type, timestamp, sig)


def parse_vkey(vkey: str) -> Verifier:
    """Parse ``<name>+<hex id>+<base64(type || key)>``; :class:`MalformedNote` if anything is off.

    The key ID must be the one the spec derives from the name, type and key.
    """
    if len(vkey) > MAX_KEY_NAME + 100:
        raise MalformedNote("verifier key too long")
    name, sep, rest = vkey.partition("+")
    if not sep or len(rest) < 10 or rest[8] != "+":
        raise MalformedNote("verifier key is not name+id+key")
    check_key_name(name)
    hex_id = rest[:8]
    if any(c not in "0123456789abcdef" for c in hex_id):
        raise MalformedNote("key ID is not 8 lowercase hex digits")
    material = b64decode_strict(rest[9:])
    if len(material) != 33 or material[0] not in _SUPPORTED:
        raise MalformedNote("unsupported verifier key type or size")
    verifier = Verifier.of(name, material[0], material[1:])
    if verifier.key_id != int(hex_id, 16):
        raise MalformedNote("key ID does not match the key")
    return verifier


@dataclass(frozen=True)
class Signer:
    """A private Ed25519 key (32-byte seed) under a key name, as a log key (0x01) or cosigner (0x04)."""

    name: str
    seed: bytes
    sig_type: int = SIG_ED25519

    def __post_init__(self) -> None:
        check_key_name(self.name)
        if self.sig_type not in _SUPPORTED:
            raise MalformedNote("unsupported signature type")

    @property
    def verifier(self) -> Verifier:
        return Verifier.of(self.name, self.sig_type, ed25519_public_key(self.seed))

    def sign(self, text: str, timestamp: int | None = None) -> NoteSignature:
        """Sign note text; a cosigner needs ``timestamp`` (POSIX seconds, 1 .. 2**63-1)."""
        kid = self.verifier.key_id
        if self.sig_type == SIG_ED25519:
            return NoteSignature(self.name, kid, ed25519_sign(self.seed, text.encode()))
        if timestamp is None or not 0 < timestamp <= _MAX_TIMESTAMP:
            raise MalformedNote("a cosignature needs a timestamp in 1 .. 2**63-1")
        sig = ed25519_sign(self.seed, cosignature_message(text, timestamp))
        return NoteSignature(self.name, kid, timestamp.to_bytes(8, "big") + sig)


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise MalformedNote("note text must end with a newline")
    _check_chars(text)


def sign_note(text: str, signers: list[Signer], timestamp: int | None = None) -> bytes:
    """A signed note of ``text`` with one signature line per signer, in order."""
    _check_text(text)
    note = Note(text, tuple(s.sign(text, timestamp) for s in signers))
    return note.to_bytes()


def open_note(data: bytes, verifiers: list[Verifier]) -> VerifiedNote:
    """Parse ``data`` and verify it with the trusted ``verifiers``.

    Signatures whose (name, key ID) match no verifier are ignored. Raises
    :class:`MalformedNote`, :class:`NoteSignatureInvalid` (a known key's
    signature fails) or :class:`UnverifiedNote` (no known key signed).
    """
    note = parse_note(data)
    known = {(v.name, v.key_id): v for v in verifiers}
    verified: list[VerifiedSignature] = []
    seen: set[tuple[str, int]] = set()
    for sig in note.signatures:
        v = known.get((sig.name, sig.key_id))
        if v is None:
            continue
        if (sig.name, sig.key_id) in seen:
            raise MalformedNote("two signatures by the same key")
        seen.add((sig.name, sig.key_id))
        verified.append(v.verify(note.text, sig))
    if not verified:
        raise UnverifiedNote("no signature from a trusted key")
    return VerifiedNote(note.text, tuple(verified), note)
