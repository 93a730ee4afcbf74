"""Search files for plaintexts: raw bytes and the encodings a leak would likely take.

:func:`encodings` turns one plaintext into the byte patterns to look for:
utf-8, utf-16 (both byte orders), JSON-escaped utf-8 (structlog writes
non-ASCII as ``\\uXXXX``), hex (lower and upper case) and base64 (standard and
URL-safe alphabets, at each of the three byte alignments the plaintext may
have inside a longer encoded value, so a plaintext embedded in a bigger blob is
found too). :func:`scan` reads every regular file under the given roots
(databases, their ``-wal``/``-shm`` files, attachments, keys, logs) and
reports each (file, plaintext, encoding) found.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Finding", "encodings", "scan", "files_under"]

#: Shorter plaintexts would match random ciphertext by chance in some encoding.
MIN_PLAINTEXT = 12


@dataclass(frozen=True)
class Finding:
    path: Path
    plaintext: bytes
    encoding: str


def _base64_forms(data: bytes) -> Iterable[tuple[str, bytes]]:
    """The base64 characters that ``data`` fixes wherever it sits in a longer encoded value:
    for each alignment (0, 1 or 2 bytes before it in its 3-byte group), the characters that
    depend only on ``data``'s bytes."""
    for shift in range(3):
        padded = b"\0" * shift + data
        full = len(padded) // 3 * 4  # whole groups only: a partial group depends on what follows
        skip = (0, 2, 3)[shift]      # characters that mix in the bytes before ``data``
        for name, enc in (("base64", base64.b64encode), ("base64url", base64.urlsafe_b64encode)):
            chars = enc(padded)[skip:full]
            yield f"{name}@{shift}", chars


def encodings(plaintext: bytes | str) -> dict[str, bytes]:
    """The byte patterns under which ``plaintext`` would appear; raises ValueError if it is
    too short for a meaningful search."""
    raw = plaintext.encode() if isinstance(plaintext, str) else plaintext
    if len(raw) < MIN_PLAINTEXT:
        raise ValueError(f"plaintexts to search for need {MIN_PLAINTEXT}+ bytes: {raw!r}")
    out: dict[str, bytes] = {"raw": raw}
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        text = None
    if text is not None:
        out["utf-16-le"] = text.encode("utf-16-le")
        out["utf-16-be"] = text.encode("utf-16-be")
        out["json"] = json.dumps(text)[1:-1].encode()
    out["hex"] = binascii.hexlify(raw)
    out["HEX"] = binascii.hexlify(raw).upper()
    for name, chars in _base64_forms(raw):
        out[name] = chars
    return out


def files_under(roots: Iterable[Path]) -> list[Path]:
    """Every regular file under ``roots`` (a root may itself be a file)."""
    found: list[Path] = []
    for root in roots:
        if root.is_file():
            found.append(root)
        elif root.is_dir():
            found.extend(p for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink())
    return found


def scan(roots: Iterable[Path], plaintexts: Iterable[bytes | str]) -> list[Finding]:
    """Every occurrence (one per file, plaintext and encoding) of ``plaintexts`` in the files
    under ``roots``."""
    patterns = [(p.encode() if isinstance(p, str) else p, encodings(p)) for p in plaintexts]
    findings: list[Finding] = []
    for path in files_under(roots):
        data = path.read_bytes()
        for raw, forms in patterns:
            for name, pattern in forms.items():
                if pattern in data:
                    findings.append(Finding(path, raw, name))
    return findings
