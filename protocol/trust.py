"""The trust anchor: a server's trust document, its fingerprint in the invite, and the
witness policy a client applies to every checkpoint (``spec/security.md``, finding 3).

A *trust document* is UTF-8 text, one item per line, each line ending in ``\\n``::

    confide.trust/v1
    server a.example
    log a.example+1a2b3c4d+AQ...                 (the log's C2SP verifier key)
    witness-quorum 1
    witness b.example/witness+5e6f7a8b+BA...     (0..16 cosigner keys, type 0x04, sorted)
    peer b.example b.example+9c0d1e2f+AQ...      (0..64 peers' log keys, sorted by name)

The *anchor* is ``base64url(SHA-256(document))`` without padding (43 characters). It
travels out of band with the invite, ``ABCD-EFGH-JKLM-NPQR#<anchor>``, so a client that
fetched the document from the server checks it against the invite before it trusts
anything the server signs. :func:`check_witnesses` counts the valid cosignatures of the
document's witnesses on a checkpoint note and fails below the quorum.

A server attests the log key of a peer that its trust document does not list with a
*peer log key statement*, a C2SP signed note by its own log key whose text is::

    confide.peer-log-key/v1
    origin a.example                  (the attesting server: its log key signs this)
    peer b.example
    key b.example+9c0d1e2f+AQ...

(:func:`peer_log_key_text`, :func:`parse_peer_log_key`). The first line keeps it from
ever parsing as a checkpoint (whose second line is a tree size).

Everything here is pure; every malformed input raises :class:`TrustDocumentInvalid`.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from crypto.errors import CryptoError
from crypto.note import (
    SIG_COSIGNATURE_V1,
    SIG_ED25519,
    UnverifiedNote,
    Verifier,
    open_note,
    parse_vkey,
)
from protocol.errors import InvalidIdentifier
from protocol.ids import parse_server_name

__all__ = [
    "MAX_TRUST_DOCUMENT",
    "MAX_WITNESSES",
    "MAX_PEERS",
    "ANCHOR_LENGTH",
    "TrustDocumentInvalid",
    "TrustDocument",
    "parse_trust_document",
    "anchor_of",
    "format_invite",
    "split_invite",
    "check_witnesses",
    "peer_log_key_text",
    "parse_peer_log_key",
]

MAX_TRUST_DOCUMENT = 16 * 1024
MAX_WITNESSES = 16
MAX_PEERS = 64
ANCHOR_LENGTH = 43
_HEADER = "confide.trust/v1"
_B64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


class TrustDocumentInvalid(CryptoError):
    """A trust document, anchor or witness policy that does not parse or does not hold."""

    code = "trust_document_invalid"


@dataclass(frozen=True)
class TrustDocument:
    """What a client trusts about its server: the log key, the witness policy, peers' log keys."""

    server: str
    log_key: str
    witness_quorum: int = 0
    witnesses: tuple[str, ...] = ()
    peers: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        _check_server(self.server)
        v = _vkey(self.log_key, SIG_ED25519)
        if v.name != self.server:
            raise TrustDocumentInvalid("the log key is not named after the server")
        if len(self.witnesses) > MAX_WITNESSES or len(self.peers) > MAX_PEERS:
            raise TrustDocumentInvalid("too many witnesses or peers")
        if list(self.witnesses) != sorted(set(self.witnesses)):
            raise TrustDocumentInvalid("witnesses must be sorted and distinct")
        for w in self.witnesses:
            _vkey(w, SIG_COSIGNATURE_V1)
        if not 0 <= self.witness_quorum <= len(self.witnesses):
            raise TrustDocumentInvalid("the witness quorum is above the number of witnesses")
        names = [p[0] for p in self.peers]
        if names != sorted(set(names)) or self.server in names:
            raise TrustDocumentInvalid("peers must be sorted, distinct and not the server")
        for name, key in self.peers:
            _check_server(name)
            if _vkey(key, SIG_ED25519).name != name:
                raise TrustDocumentInvalid(f"the log key of peer {name} is not named after it")

    @classmethod
    def of(cls, server: str, log_key: str, witness_quorum: int = 0, witnesses=(),
           peers=()) -> TrustDocument:
        """Build one from unsorted parts (``peers`` a mapping or pairs)."""
        pairs = peers.items() if isinstance(peers, dict) else peers
        return cls(server, log_key, witness_quorum, tuple(sorted(set(witnesses))),
                   tuple(sorted((str(k), str(v)) for k, v in pairs)))

    def encode(self) -> bytes:
        lines = [_HEADER, f"server {self.server}", f"log {self.log_key}",
                 f"witness-quorum {self.witness_quorum}"]
        lines += [f"witness {w}" for w in self.witnesses]
        lines += [f"peer {n} {k}" for n, k in self.peers]
        return ("\n".join(lines) + "\n").encode()

    @property
    def anchor(self) -> str:
        return anchor_of(self.encode())

    @property
    def log_verifier(self) -> Verifier:
        return parse_vkey(self.log_key)

    @property
    def witness_verifiers(self) -> list[Verifier]:
        return [parse_vkey(w) for w in self.witnesses]

    def peer_log_key(self, server: str) -> str | None:
        return dict(self.peers).get(server)


def _check_server(name: str) -> None:
    try:
        parse_server_name(name)
    except InvalidIdentifier:
        raise TrustDocumentInvalid("not a server name") from None


def _vkey(text: str, sig_type: int) -> Verifier:
    try:
        v = parse_vkey(text)
    except CryptoError:
        raise TrustDocumentInvalid("a key is not a C2SP verifier key") from None
    if v.sig_type != sig_type:
        raise TrustDocumentInvalid("a key has the wrong signature type")
    return v


def _decimal(s: str) -> int:
    if not s or len(s) > 2 or not s.isascii() or not s.isdigit() or (s[0] == "0" and s != "0"):
        raise TrustDocumentInvalid("the quorum is not a small canonical decimal")
    return int(s)


def parse_trust_document(data: bytes) -> TrustDocument:
    """The document in ``data``, which must be exactly its canonical encoding."""
    if len(data) > MAX_TRUST_DOCUMENT:
        raise TrustDocumentInvalid("trust document too large")
    try:
        text = bytes(data).decode("ascii")
    except UnicodeDecodeError:
        raise TrustDocumentInvalid("trust document is not ASCII") from None
    if not text.endswith("\n"):
        raise TrustDocumentInvalid("trust document must end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 4 or lines[0] != _HEADER:
        raise TrustDocumentInvalid("not a confide.trust/v1 document")
    fixed = []
    for line, word in zip(lines[1:4], ("server", "log", "witness-quorum"), strict=True):
        head, sep, value = line.partition(" ")
        if head != word or not sep:
            raise TrustDocumentInvalid(f"expected a {word} line")
        fixed.append(value)
    witnesses, peers = [], []
    for line in lines[4:]:
        head, _, value = line.partition(" ")
        if head == "witness" and not peers:
            witnesses.append(value)
        elif head == "peer":
            name, sep, key = value.partition(" ")
            if not sep:
                raise TrustDocumentInvalid("a peer line is name and key")
            peers.append((name, key))
        else:
            raise TrustDocumentInvalid("unexpected line in trust document")
    doc = TrustDocument(fixed[0], fixed[1], _decimal(fixed[2]), tuple(witnesses), tuple(peers))
    if doc.encode() != bytes(data):
        raise TrustDocumentInvalid("trust document is not in canonical form")
    return doc


def anchor_of(document: bytes) -> str:
    """``base64url(SHA-256(document))`` without padding."""
    return base64.urlsafe_b64encode(hashlib.sha256(document).digest()).decode().rstrip("=")


def format_invite(code: str, anchor: str) -> str:
    """The invite as printed for a person: ``CODE#ANCHOR``."""
    return f"{code}#{anchor}"


def split_invite(text: str) -> tuple[str, str | None]:
    """``(code, anchor)`` of an invite; the anchor is None when the invite carries none.
    Raises :class:`TrustDocumentInvalid` for an anchor of the wrong form."""
    code, sep, anchor = text.strip().partition("#")
    if not sep:
        return code, None
    check_anchor(anchor)
    return code, anchor


def check_anchor(anchor: str) -> str:
    if len(anchor) != ANCHOR_LENGTH or not set(anchor) <= _B64URL:
        raise TrustDocumentInvalid("a trust anchor is 43 characters of base64url")
    return anchor


def check_witnesses(note: bytes, doc: TrustDocument) -> int:
    """How many of ``doc``'s witnesses validly cosigned the checkpoint ``note``; raises
    :class:`TrustDocumentInvalid` below ``doc.witness_quorum`` (a cosignature by a listed
    key that fails verification also raises: the note is refused as a whole)."""
    if doc.witness_quorum == 0:
        return 0
    try:
        opened = open_note(note, doc.witness_verifiers)
        count = len({(v.name, v.key_id) for v in opened.verified if v.sig_type == SIG_COSIGNATURE_V1})
    except UnverifiedNote:
        count = 0
    except CryptoError as exc:
        raise TrustDocumentInvalid(f"a witness cosignature does not verify: {exc}") from None
    if count < doc.witness_quorum:
        raise TrustDocumentInvalid(f"the checkpoint has {count} of the {doc.witness_quorum} "
                                   "witness cosignatures the practice requires")
    return count


_PEER_HEADER = "confide.peer-log-key/v1"


def peer_log_key_text(origin: str, peer: str, key: str) -> str:
    """The note text by which ``origin`` states that ``peer``'s log key is ``key``."""
    _check_server(origin)
    _check_server(peer)
    if origin == peer or _vkey(key, SIG_ED25519).name != peer:
        raise TrustDocumentInvalid("a peer log key is another server's, named after it")
    return f"{_PEER_HEADER}\norigin {origin}\npeer {peer}\nkey {key}\n"


def parse_peer_log_key(text: str) -> tuple[str, str, str]:
    """``(origin, peer, key)`` of a statement's (verified) text, which must be canonical."""
    if len(text) > 1024:
        raise TrustDocumentInvalid("peer log key statement too long")
    lines = text.split("\n")
    if len(lines) != 5 or lines[0] != _PEER_HEADER or lines[4] != "":
        raise TrustDocumentInvalid("not a confide.peer-log-key/v1 statement")
    values = []
    for line, word in zip(lines[1:4], ("origin", "peer", "key"), strict=True):
        head, sep, value = line.partition(" ")
        if head != word or not sep:
            raise TrustDocumentInvalid(f"expected a {word} line")
        values.append(value)
    origin, peer, key = values
    if peer_log_key_text(origin, peer, key) != text:
        raise TrustDocumentInvalid("peer log key statement is not canonical")
    return origin, peer, key
