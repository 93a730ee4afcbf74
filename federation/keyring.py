"""This server's federation signing keys: current and old ones, with validity; rotation.

Public parts and validity live in ``federation_server_keys``; each seed is a
0600 file ``<data>/keys/federation/<key id with ':' as '_'>.key``. The key
that signs is the one valid now with the latest ``valid_from`` whose seed is
present. Rotation (:func:`rotate`, ``confide admin rotate-key``) ends every
open-ended key at ``now + overlap`` and adds a new key valid from ``now``; the
old seed files are deleted (an old key never signs again once a running
server has reloaded, which :meth:`ServerKeyring.refresh` does every
:data:`RELOAD_INTERVAL` seconds and before serving the key document).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from crypto.errors import InternalError
from crypto.primitives import ed25519_public_key, ed25519_sign
from crypto.rng import Rng
from protocol.federation import MAX_KEYS, ServerKey, ServerKeys, key_id_for
from server.background import run_forever
from server.keyfiles import load_or_create_seed
from server.storage import Database

from . import store

__all__ = ["SigningKey", "ServerKeyring", "rotate", "RELOAD_INTERVAL", "seed_path"]

#: Seconds between reloads of the key table by a running server.
RELOAD_INTERVAL = 10.0


@dataclass(frozen=True)
class SigningKey:
    key_id: str
    seed: bytes
    public_key: bytes

    def sign(self, message: bytes) -> bytes:
        return ed25519_sign(self.seed, message)


def seed_path(keys_dir: Path, key_id: str) -> Path:
    return keys_dir / "federation" / (key_id.replace(":", "_") + ".key")


def _ms(clock: Callable[[], float]) -> int:
    return int(clock() * 1000)


async def _create_key(db: Database, keys_dir: Path, rng: Rng, now_ms: int, overlap_ms: int | None) -> str:
    """A new key valid from ``now_ms``; with ``overlap_ms`` not None, open-ended keys end then."""
    seed = rng(32)
    public = ed25519_public_key(seed)
    key_id = key_id_for(public)
    path = seed_path(keys_dir, key_id)
    written = load_or_create_seed(path, lambda n: seed)
    if written != seed:
        raise FileExistsError(f"{path} exists with another seed")
    retired: list[str] = []
    async with db.transaction() as tx:
        if overlap_ms is not None:
            retired = await store.retire_current_keys(tx, now_ms + overlap_ms)
        await store.insert_key(tx, store.KeyRow(key_id, public, now_ms, None))
    for old in retired:
        with contextlib.suppress(FileNotFoundError):
            seed_path(keys_dir, old).unlink()
    return key_id


async def rotate(db: Database, keys_dir: Path, rng: Rng, now_ms: int, overlap_ms: int) -> str:
    """Retire the current key(s) at ``now_ms + overlap_ms`` and add a new current key; returns its id."""
    return await _create_key(db, keys_dir, rng, now_ms, overlap_ms)


class ServerKeyring:
    """The keys this server signs with and publishes. Build with :meth:`open`."""

    def __init__(self, db: Database, keys_dir: Path, server_name: str, clock: Callable[[], float]) -> None:
        self._db = db
        self._keys_dir = keys_dir
        self._server_name = server_name
        self._clock = clock
        self._rows: list[store.KeyRow] = []
        self._seeds: dict[str, bytes] = {}
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, db: Database, keys_dir: Path, server_name: str, clock: Callable[[], float],
                   rng: Rng) -> ServerKeyring:
        """Load the keys, creating the first one (or a fresh one if none can sign now)."""
        ring = cls(db, keys_dir, server_name, clock)
        await ring.refresh()
        if ring._signing_key(_ms(clock)) is None:
            await _create_key(db, keys_dir, rng, _ms(clock), None)
            await ring.refresh()
        return ring

    async def refresh(self) -> None:
        """Reload the key table and any seed files not loaded yet."""
        async with self._lock:
            async with self._db.read() as conn:
                rows = await store.list_keys(conn)
            seeds = dict(self._seeds)
            for row in rows:
                if row.key_id in seeds:
                    continue
                path = seed_path(self._keys_dir, row.key_id)
                if path.exists():
                    seed = path.read_bytes()
                    if len(seed) == 32 and ed25519_public_key(seed) == row.public_key:
                        seeds[row.key_id] = seed
            self._rows, self._seeds = rows, seeds

    def _signing_key(self, now_ms: int) -> SigningKey | None:
        best = None
        for row in self._rows:
            usable = row.key_id in self._seeds and ServerKey(
                row.public_key, row.valid_from, row.valid_until).valid_at(now_ms)
            if usable and (best is None or row.valid_from >= best.valid_from):
                best = row
        return None if best is None else SigningKey(best.key_id, self._seeds[best.key_id], best.public_key)

    def current(self) -> SigningKey:
        """The key to sign with now (hub signatures, requests, the key document).

        Raises :class:`~crypto.errors.InternalError` if none is valid (all
        retired without a successor: only possible if the table was edited by hand).
        """
        key = self._signing_key(_ms(self._clock))
        if key is None:
            raise InternalError("no federation signing key is valid now")
        return key

    def published(self) -> dict[str, ServerKey]:
        """Every key (newest :data:`~protocol.federation.MAX_KEYS`), old ones with their validity."""
        rows = self._rows[-MAX_KEYS:]
        return {r.key_id: ServerKey(r.public_key, r.valid_from, r.valid_until) for r in rows}

    def document(self) -> ServerKeys:
        """The self-signed key document, signed by :meth:`current`, published now."""
        key = self.current()
        return ServerKeys.build(self._server_name, self.published(), {key.key_id: key.seed}, _ms(self._clock))

    async def reload_forever(self, sleep: Callable[[float], Awaitable[object]] = asyncio.sleep) -> None:
        """:meth:`refresh` every :data:`RELOAD_INTERVAL` seconds until cancelled; a failed
        reload is logged (loop ``federation_key_reload``) and retried at the next interval."""
        await run_forever("federation_key_reload", self.refresh, RELOAD_INTERVAL, sleep=sleep)
