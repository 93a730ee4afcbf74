"""Password hashing with Argon2id (libsodium through PyNaCl).

Confide uses libsodium's INTERACTIVE limits by default (64 MiB, 2 passes,
about 0.1 s on a small machine): the brief targets one small machine shared by
a practice, where MODERATE (256 MiB, about 0.7 s per hash) would let a handful
of concurrent logins exhaust memory; 64 MiB is still well above the OWASP
minimum for Argon2id (19 MiB). ``login.password_hash = "moderate"`` selects
MODERATE. Hashes carry their own parameters, so changing the setting keeps
old hashes valid.

Hashing runs in worker threads, at most ``login.max_concurrent_hashes`` at a
time (default :data:`MAX_CONCURRENT`), so the event loop never blocks, memory
stays bounded (64 MiB per slot at "interactive") and a flood of logins or
registrations waits in line instead of taking the machine. Each hash and
each check is counted (:attr:`PasswordHasher.work`) and logged as one
``password_work`` info line with ``op`` = ``hash`` or ``verify`` and
``running`` (slots taken, at most the bound; no user id, no password): the security tests count them to show which requests did
Argon2 work and which were refused before it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator

import nacl.exceptions
import nacl.pwhash
import structlog

__all__ = ["PasswordHasher", "MAX_CONCURRENT"]

MAX_CONCURRENT = 2

_LIMITS = {
    "interactive": (nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE, nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE),
    "moderate": (nacl.pwhash.argon2id.OPSLIMIT_MODERATE, nacl.pwhash.argon2id.MEMLIMIT_MODERATE),
}


class PasswordHasher:
    """``await hash(password)`` and ``await verify(stored, password)``."""

    def __init__(self, strength: str = "interactive", max_concurrent: int = MAX_CONCURRENT) -> None:
        self._ops, self._mem = _LIMITS[strength]
        self._slots = asyncio.Semaphore(max_concurrent)
        self.max_concurrent = max_concurrent
        self._dummy: str | None = None
        self._dummy_lock = asyncio.Lock()
        self._running = 0
        #: Argon2 runs so far by ``op`` ("hash", "verify"); the dummy hash is not counted.
        self.work: Counter[str] = Counter()
        self._log = structlog.get_logger("confide.passwords")

    @contextlib.asynccontextmanager
    async def _slot(self, op: str | None) -> AsyncIterator[None]:
        """One of the bounded slots; ``op`` is counted and logged with the slots taken."""
        async with self._slots:
            self._running += 1
            try:
                if op is not None:
                    self.work[op] += 1
                    self._log.info("password_work", op=op, running=self._running)
                yield
            finally:
                self._running -= 1

    def hash_sync(self, password: str) -> str:
        """The encoded Argon2id hash (``$argon2id$v=19$...``); used by the offline admin command."""
        return nacl.pwhash.argon2id.str(password.encode(), self._ops, self._mem).decode()

    async def hash(self, password: str) -> str:
        return await self._hash(password, "hash")

    async def _hash(self, password: str, op: str | None = None) -> str:
        async with self._slot(op):
            return await asyncio.to_thread(self.hash_sync, password)

    async def verify(self, stored: str | None, password: str) -> bool:
        """Whether ``password`` matches ``stored``. With ``stored=None`` (no such account) a
        dummy hash is checked so that the answer takes as long as for a real account."""
        async with self._dummy_lock:  # made at the first check of either kind: the same work
            if self._dummy is None:
                self._dummy = await self._hash("confide-dummy-password")
        stored = self._dummy if stored is None else stored
        async with self._slot("verify"):
            return await asyncio.to_thread(_verify, stored.encode(), password.encode())


def _verify(stored: bytes, password: bytes) -> bool:
    try:
        return bool(nacl.pwhash.verify(stored, password))
    except (nacl.exceptions.InvalidkeyError, nacl.exceptions.CryptoError, ValueError):
        return False
