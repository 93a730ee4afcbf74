"""The server's secret key files: 32-byte secrets (Ed25519 seeds, the log-privacy key,
and `mfa.key`, the root of the MFA sealing and MAC keys), created once with mode 0600.

Raises :class:`KeyFileError` for a key file of the wrong size or with
permissions that let other users read it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from crypto.rng import Rng

__all__ = ["KeyFileError", "load_or_create_seed"]


class KeyFileError(Exception):
    code = "key_file_error"


def load_or_create_seed(path: Path, rng: Rng) -> bytes:
    """Read the seed at ``path``, or create it (``O_EXCL``, 0600, fsynced) on first use."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeyFileError(f"{path} is readable by other users; chmod 600 it") from None
        seed = path.read_bytes()
        if len(seed) != 32:
            raise KeyFileError(f"{path} must hold exactly 32 bytes") from None
        return seed
    seed = rng(32)
    with os.fdopen(fd, "wb") as f:
        f.write(seed)
        f.flush()
        os.fsync(f.fileno())
    return seed
