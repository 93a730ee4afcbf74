"""The client's local profile: a directory of records sealed with a passphrase.

Layout of a profile directory::

    profile.hdr           JSON: format version, Argon2id salt and limits, a sealed check value
    lock                  empty; ``flock``-ed while a process changes the profile
    r-<hex>.rec           one sealed record each

The passphrase goes through Argon2id (``nacl.pwhash.argon2id.kdf``, the salt
and limits from the header) to a 32-byte key. The header's check value is a
known string sealed with that key: a wrong passphrase (or a header whose limits
or salt were changed) fails to open it and raises :class:`WrongPassphrase`.

Each record is a msgpack map ``{"name", "value"}`` sealed with
``nacl.secret.SecretBox`` (XSalsa20-Poly1305, a random nonce per write). Its
file name is ``HMAC-SHA256(key, name)`` truncated, so the directory listing
reveals no room ids or other names, and a record moved to another name's file
is detected because the sealed name must match. Writes are atomic: a temporary
file in the same directory, ``fsync``, ``rename``, then ``fsync`` of the
directory. Nothing is ever written in plaintext except the header.

Errors (all :class:`ProfileError`, each with a stable ``code``):
:class:`ProfileMissing`, :class:`ProfileExists`, :class:`WrongPassphrase`,
:class:`ProfileCorrupt` (a record fails to open or decode: tampering or damage).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import nacl.exceptions
import nacl.pwhash
import nacl.secret
import nacl.utils

from crypto.primitives import hmac_sha256

__all__ = [
    "Profile",
    "ProfileError",
    "ProfileMissing",
    "ProfileExists",
    "WrongPassphrase",
    "ProfileCorrupt",
    "KdfLimits",
    "INTERACTIVE",
    "MINIMUM",
]

_HEADER = "profile.hdr"
_LOCK = "lock"
_VERSION = 1
_CHECK = b"confide.profile.check.v1"
_NAME_LABEL = b"confide.profile.record-name.v1"
_MAX_RECORD = 64 << 20


class ProfileError(Exception):
    """Base of the profile's errors; ``code`` is stable."""

    code = "profile_error"


class ProfileMissing(ProfileError):
    code = "profile_missing"


class ProfileExists(ProfileError):
    code = "profile_exists"


class WrongPassphrase(ProfileError):
    code = "wrong_passphrase"


class ProfileCorrupt(ProfileError):
    code = "profile_corrupt"


class KdfLimits:
    """Argon2id limits (operations, memory bytes)."""

    def __init__(self, opslimit: int, memlimit: int) -> None:
        self.opslimit = opslimit
        self.memlimit = memlimit


#: libsodium's interactive limits: the default for real profiles.
INTERACTIVE = KdfLimits(nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE, nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE)
#: libsodium's minimum limits: for tests only.
MINIMUM = KdfLimits(nacl.pwhash.argon2id.OPSLIMIT_MIN, nacl.pwhash.argon2id.MEMLIMIT_MIN)


def _derive(passphrase: str, salt: bytes, ops: int, mem: int) -> bytes:
    return nacl.pwhash.argon2id.kdf(nacl.secret.SecretBox.KEY_SIZE, passphrase.encode(), salt,
                                    opslimit=ops, memlimit=mem)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


class Profile:
    """An open profile: get, put and delete named records (msgpack-able values)."""

    def __init__(self, directory: Path, key: bytes) -> None:
        self.directory = directory
        self._box = nacl.secret.SecretBox(key)
        self._name_key = hmac_sha256(key, _NAME_LABEL)

    # -- opening -------------------------------------------------------------------

    @staticmethod
    def exists(directory: Path | str) -> bool:
        return (Path(directory) / _HEADER).is_file()

    @classmethod
    def create(cls, directory: Path | str, passphrase: str, limits: KdfLimits = INTERACTIVE) -> Profile:
        """A new empty profile; raises :class:`ProfileExists` if ``directory`` holds one."""
        directory = Path(directory)
        if cls.exists(directory):
            raise ProfileExists(f"a profile already exists in {directory}")
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        salt = nacl.utils.random(nacl.pwhash.argon2id.SALTBYTES)
        key = _derive(passphrase, salt, limits.opslimit, limits.memlimit)
        box = nacl.secret.SecretBox(key)
        header = {"version": _VERSION, "kdf": "argon2id", "salt": salt.hex(),
                  "opslimit": limits.opslimit, "memlimit": limits.memlimit,
                  "check": bytes(box.encrypt(_CHECK)).hex()}
        _write_atomic(directory / _HEADER, json.dumps(header, indent=1).encode() + b"\n")
        return cls(directory, key)

    @classmethod
    def open(cls, directory: Path | str, passphrase: str) -> Profile:
        """Open an existing profile. Raises :class:`ProfileMissing`, :class:`WrongPassphrase`,
        :class:`ProfileCorrupt` (unreadable header)."""
        directory = Path(directory)
        try:
            raw = (directory / _HEADER).read_bytes()
        except FileNotFoundError:
            raise ProfileMissing(f"no profile in {directory}") from None
        try:
            h = json.loads(raw)
            if h.get("version") != _VERSION or h.get("kdf") != "argon2id":
                raise ProfileCorrupt("unknown profile format")
            salt, check = bytes.fromhex(h["salt"]), bytes.fromhex(h["check"])
            ops, mem = int(h["opslimit"]), int(h["memlimit"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ProfileCorrupt(f"unreadable profile header: {exc}") from None
        if len(salt) != nacl.pwhash.argon2id.SALTBYTES or not (
                nacl.pwhash.argon2id.OPSLIMIT_MIN <= ops <= nacl.pwhash.argon2id.OPSLIMIT_MAX
                and nacl.pwhash.argon2id.MEMLIMIT_MIN <= mem <= 1 << 32):
            raise ProfileCorrupt("profile header out of bounds")
        key = _derive(passphrase, salt, ops, mem)
        try:
            ok = nacl.secret.SecretBox(key).decrypt(check) == _CHECK
        except nacl.exceptions.CryptoError:
            ok = False
        if not ok:
            raise WrongPassphrase("wrong passphrase for this profile")
        return cls(directory, key)

    # -- locking -------------------------------------------------------------------

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the profile's exclusive lock (across processes) for the block."""
        fd = os.open(self.directory / _LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    # -- records ---------------------------------------------------------------------

    def _path(self, name: str) -> Path:
        return self.directory / f"r-{hmac_sha256(self._name_key, name.encode()).hex()[:40]}.rec"

    def put(self, name: str, value: Any) -> None:
        """Seal ``value`` (msgpack-able) under ``name``, atomically replacing the old one."""
        plain = msgpack.packb({"name": name, "value": value}, use_bin_type=True)
        _write_atomic(self._path(name), bytes(self._box.encrypt(plain)))

    def get(self, name: str, default: Any = None) -> Any:
        """The value of ``name``, or ``default``. Raises :class:`ProfileCorrupt`."""
        path = self._path(name)
        try:
            sealed = path.read_bytes()
        except FileNotFoundError:
            return default
        return self._open(sealed, expect=name)

    def delete(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(name).unlink()

    def names(self, prefix: str = "") -> list[str]:
        """Names of all records starting with ``prefix`` (opens every record)."""
        out = []
        for p in sorted(self.directory.glob("r-*.rec")):
            name = self._open_name(p.read_bytes())
            if name.startswith(prefix):
                out.append(name)
        return sorted(out)

    def _open_name(self, sealed: bytes) -> str:
        return self._unseal(sealed)["name"]

    def _open(self, sealed: bytes, expect: str) -> Any:
        d = self._unseal(sealed)
        if d["name"] != expect:
            raise ProfileCorrupt("a record was moved to another record's place")
        return d["value"]

    def _unseal(self, sealed: bytes) -> dict:
        if len(sealed) > _MAX_RECORD:
            raise ProfileCorrupt("record too large")
        try:
            plain = self._box.decrypt(sealed)
        except nacl.exceptions.CryptoError:
            raise ProfileCorrupt("a record fails to open (tampered or damaged)") from None
        try:
            d = msgpack.unpackb(plain, raw=False, strict_map_key=True)
        except Exception as exc:  # msgpack raises several unrelated types
            raise ProfileCorrupt(f"a record does not decode: {type(exc).__name__}") from None
        if not isinstance(d, dict) or not isinstance(d.get("name"), str) or "value" not in d:
            raise ProfileCorrupt("a record has the wrong shape")
        return d
