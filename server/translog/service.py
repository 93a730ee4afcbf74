"""The transparency log service: batched appends, signed checkpoints, proofs and tiles.

:class:`TransparencyLog` is what the homeserver calls. ``await log.append(entry)``
returns the entry's index once the entry, its Merkle node hashes and a new
signed checkpoint covering it are committed in one SQLite transaction (group
commit: appends that arrive while a batch is being written form the next
batch, so there is one checkpoint per batch and no timer).

The checkpoint origin and the key name are the server's name; the key is the
server's Ed25519 log key (:class:`crypto.note.Signer`).

Entries arrive opened; the batch writer seals each one at its index
(:mod:`protocol.audit_seal`, salts under the log-privacy key) and stores the
sealed entry (public: leaf, bundle, proof), the opened one and the users it
names (for :meth:`TransparencyLog.opening` and :meth:`TransparencyLog.own_entries`,
which the caller guards with the access rule).

Errors: :class:`LogError` subclasses with stable codes, translated to HTTP in
:mod:`server.translog.http` only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiosqlite

from crypto import merkle
from crypto.checkpoint import (
    Checkpoint,
    TlogProof,
    format_tlog_proof,
    parse_checkpoint,
    sign_checkpoint,
)
from crypto.merkle import Frontier
from crypto.note import (
    SIG_ED25519,
    MalformedNote,
    NoteSignatureInvalid,
    Signer,
    UnverifiedNote,
    Verifier,
    open_note,
    parse_note,
    parse_signature_lines,
)
from crypto.tiles import TILE_WIDTH, BundleId, TileId, encode_bundle
from protocol.audit import AuditEntry, RoomEvent, decode_entry, encode_entry
from protocol.audit_seal import Opening, salts_for, seal, subjects_of

from .storage import LogStorage, StorageCorrupt, migrate

__all__ = ["LogError", "NotFound", "BadRequest", "TransparencyLog", "InclusionProof"]

#: Most entries written in one transaction.
MAX_BATCH = 4096


async def _check_stored_tree(storage: LogStorage, verifier: Verifier, origin: str, size: int,
                             root: bytes, note: bytes) -> None:
    """The start-up check: the latest stored checkpoint is signed by this server's log key,
    names its origin, and has the size and root of the stored tree; the entries of the last
    bundle hash to their stored leaves (a bounded spot check: at most 256 entries).
    Raises :class:`StorageCorrupt` saying which of these fails."""
    try:
        cp = parse_checkpoint(open_note(note, [verifier]).text)
    except (MalformedNote, UnverifiedNote, NoteSignatureInvalid) as exc:
        raise StorageCorrupt(f"the latest checkpoint is not signed by this server's log key: {exc}") from None
    if cp.origin != origin:
        raise StorageCorrupt(f"the latest checkpoint is for {cp.origin!r}, not {origin!r}")
    if cp.size != size or cp.root_hash != root:
        raise StorageCorrupt(
            f"the latest checkpoint (size {cp.size}) does not match the stored tree (size {size})"
        )
    start = (size - 1) // TILE_WIDTH * TILE_WIDTH if size else 0
    entries = await storage.read_entries(start, size - start)
    leaves = await storage.read_hash_range(0, start, size - start)
    for index, (entry, leaf) in enumerate(zip(entries, leaves, strict=False), start):
        if merkle.leaf_hash(entry) != leaf:
            raise StorageCorrupt(f"entry {index} does not match its stored leaf hash")
    if len(entries) != size - start:
        raise StorageCorrupt(f"entries from {start} to {size - 1} are incomplete")


class LogError(Exception):
    code = "log_error"


class NotFound(LogError):
    """The tile, entry, event or checkpoint asked for does not exist (yet)."""

    code = "not_found"


class BadRequest(LogError):
    """The request names sizes or indexes that cannot describe a proof."""

    code = "bad_request"


@dataclass(frozen=True)
class InclusionProof:
    index: int
    size: int
    proof: tuple[bytes, ...]
    entry: bytes
    checkpoint_note: bytes

    def to_tlog_proof(self) -> bytes:
        """The c2sp.org/tlog-proof text, with the entry itself as ``extra``."""
        return format_tlog_proof(TlogProof(self.index, self.proof, self.checkpoint_note, self.entry))


class TransparencyLog:
    """One server's append-only log. Build with :meth:`open`."""

    def __init__(self, storage: LogStorage, signer: Signer, frontier: Frontier,
                 privacy_key: bytes) -> None:
        if signer.sig_type != SIG_ED25519:
            raise ValueError("the log key must be an Ed25519 note key (type 0x01)")
        if len(privacy_key) != 32:
            raise ValueError("the log-privacy key is 32 bytes")
        self._privacy_key = privacy_key
        self.storage = storage
        self.signer = signer
        self.origin = signer.name
        self._frontier = frontier
        self._pending: list[tuple[AuditEntry, bytes | None, asyncio.Future[int]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._latest: tuple[int, bytes] | None = None

    @classmethod
    async def open(cls, conn: aiosqlite.Connection, signer: Signer, *, privacy_key: bytes,
                   lock: Any = None) -> TransparencyLog:
        """Migrate, rebuild the in-memory right edge of the tree, sign the empty tree if new.

        Raises :class:`StorageCorrupt` if the stored tree does not match the
        latest stored checkpoint (see :func:`_check_stored_tree`).
        ``lock`` serializes the log's write transactions (see :class:`LogStorage`);
        ``privacy_key`` (32 secret bytes) derives the salts of the entries' commitments.
        Raises :class:`~server.translog.storage.LegacyLog` for a log written unsealed.
        """
        await migrate(conn)
        storage = LogStorage(conn, lock)
        size = await storage.size()
        hashes = await storage.read_hashes(merkle.range_nodes(0, size)) if size else []
        log = cls(storage, signer, Frontier(size, hashes), privacy_key)
        latest = await storage.checkpoint_note(None)
        if latest is None:
            if size:
                raise StorageCorrupt("entries without any checkpoint")
            note = sign_checkpoint(Checkpoint(log.origin, 0, merkle.EMPTY_ROOT), signer)
            await storage.put_checkpoint(0, note)
            latest = (0, note)
        else:
            await _check_stored_tree(storage, signer.verifier, log.origin, size, log._frontier.root(),
                                     latest[1])
        log._latest = latest
        return log

    @property
    def verifier(self) -> Verifier:
        return self.signer.verifier

    @property
    def size(self) -> int:
        """Committed tree size (the size of the latest checkpoint)."""
        assert self._latest is not None
        return self._latest[0]

    # -- appends ------------------------------------------------------------------

    async def append(self, entry: AuditEntry | bytes) -> int:
        """Append one entry; returns its index once it is committed under a signed checkpoint.

        ``entry`` is an :class:`protocol.audit` entry or its encoding (which is
        decoded strictly first: a malformed entry raises before anything is
        queued).
        """
        return (await self.append_many([entry]))[0]

    async def append_many(self, entries: Sequence[AuditEntry | bytes]) -> list[int]:
        loop = asyncio.get_running_loop()
        futures = []
        for e in entries:
            obj = decode_entry(e) if isinstance(e, bytes | bytearray) else e
            encode_entry(obj)  # EntryTooLarge before anything is queued
            event_hash = obj.event_hash if isinstance(obj, RoomEvent) else None
            fut: asyncio.Future[int] = loop.create_future()
            self._pending.append((obj, event_hash, fut))
            futures.append(fut)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_loop())
        return list(await asyncio.gather(*futures))

    async def _flush_loop(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            try:
                indexes = await self._write_batch([(d, h) for d, h, _ in batch])
            except BaseException as exc:  # every waiter learns of the failure
                for _, _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise
                continue
            for (_, _, fut), idx in zip(batch, indexes, strict=True):
                if not fut.done():
                    fut.set_result(idx)

    async def _write_batch(self, batch: Sequence[tuple[AuditEntry, bytes | None]]) -> list[int]:
        frontier = Frontier(self._frontier.size, self._frontier.hashes)
        entries, hashes, events, indexes = [], [], [], []
        openings, subjects = [], []
        for obj, event_hash in batch:
            idx = frontier.size
            data = seal(obj, salts_for(self._privacy_key, idx, obj)).to_bytes()
            hashes.extend(frontier.append(merkle.leaf_hash(data)))
            entries.append((idx, data))
            openings.append((idx, encode_entry(obj)))
            subjects.extend((user, idx) for user in set(subjects_of(obj).values()))
            if event_hash is not None:
                events.append((event_hash, idx))
            indexes.append(idx)
        note = sign_checkpoint(Checkpoint(self.origin, frontier.size, frontier.root()), self.signer)
        await self.storage.append_batch(entries, hashes, events, (frontier.size, note),
                                        openings, subjects)
        self._frontier = frontier
        self._latest = (frontier.size, note)
        return indexes

    async def flush(self) -> None:
        """Wait until every entry queued so far is committed."""
        while self._flusher is not None and not self._flusher.done():
            await asyncio.shield(self._flusher)

    # -- reads ----------------------------------------------------------------------

    async def checkpoint(self) -> bytes:
        """The latest signed checkpoint with every cosignature received for it."""
        assert self._latest is not None
        size, note = self._latest
        extra = await self.storage.cosignature_lines(size)
        return note + "".join(extra).encode()

    async def witnessed_checkpoint(self, min_count: int) -> bytes:
        """The latest checkpoint cosigned by at least ``min_count`` witnesses, with its
        cosignatures (the one a client that requires a witness quorum can accept while the
        newest is not cosigned yet). Raises :class:`NotFound` when there is none."""
        size = await self.storage.latest_cosigned_size(min_count)
        if size is None:
            raise NotFound(f"no checkpoint has {min_count} cosignatures yet")
        note = await self._checkpoint_at(size)
        return note + "".join(await self.storage.cosignature_lines(size)).encode()

    async def _checkpoint_at(self, size: int) -> bytes:
        found = await self.storage.checkpoint_note(size)
        if found is None:
            raise NotFound(f"no signed checkpoint of size {size}")
        return found[1]

    async def root_at(self, size: int) -> bytes:
        if not 0 <= size <= self.size:
            raise BadRequest(f"size {size} is beyond the log")
        if size == 0:
            return merkle.EMPTY_ROOT
        nodes = merkle.range_nodes(0, size)
        return merkle.fold_range(await self.storage.read_hashes(nodes))

    async def inclusion_proof(self, index: int, size: int | None = None) -> InclusionProof:
        """Proof of entry ``index`` in the checkpoint of ``size`` (latest when None).

        Raises :class:`NotFound` for an index beyond the log or a size without a
        signed checkpoint, :class:`BadRequest` for an index not below the size.
        """
        size = self.size if size is None else size
        note = await self._checkpoint_at(size)
        if not 0 <= index < size:
            raise BadRequest(f"index {index} is not in a tree of size {size}")
        plan = merkle.inclusion_plan(index, size)
        proof = plan.assemble(await self.storage.read_hashes(plan.nodes))
        entry = await self.storage.read_entries(index, 1)
        if not entry:
            raise StorageCorrupt(f"entry {index} missing")
        return InclusionProof(index, size, tuple(proof), bytes(entry[0]), note)

    async def inclusion_proof_for_event(self, event_hash: bytes, size: int | None = None) -> InclusionProof:
        idx = await self.storage.event_index(event_hash)
        if idx is None or idx >= self.size:
            raise NotFound("no such event in the log")
        return await self.inclusion_proof(idx, size)

    async def opening(self, index: int) -> Opening:
        """The opening of committed entry ``index``; :class:`NotFound` beyond the log. The
        caller decides who may have it (:mod:`server.services.log_openings`)."""
        raw = await self.storage.read_opened(index) if 0 <= index < self.size else None
        if raw is None:
            raise NotFound("no such entry")
        entry = decode_entry(raw)
        return Opening(index, entry, salts_for(self._privacy_key, index, entry))

    async def opened_entry(self, index: int) -> AuditEntry | None:
        """The opened entry at ``index`` (None beyond the committed log), for access rules."""
        raw = await self.storage.read_opened(index) if 0 <= index < self.size else None
        return None if raw is None else decode_entry(raw)

    async def own_entries(self, user: str, start: int, limit: int) -> list[int]:
        """Indexes (from ``start``, at most ``limit``) of committed entries naming ``user``."""
        return await self.storage.subject_indexes(user, start, limit, self.size)

    async def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        if not 0 <= old_size <= new_size <= self.size:
            raise BadRequest(f"no consistency proof from {old_size} to {new_size}")
        plan = merkle.consistency_plan(old_size, new_size)
        return plan.assemble(await self.storage.read_hashes(plan.nodes))

    async def read_tile(self, tile: TileId) -> bytes:
        """Tile bytes, if the committed tree has at least ``width`` hashes there."""
        available = self.size >> (8 * tile.level)
        if tile.index * 256 + tile.width > available:
            raise NotFound(f"{tile.path()} is beyond the log")
        hashes = await self.storage.read_hash_range(8 * tile.level, tile.index * 256, tile.width)
        return b"".join(hashes)

    async def read_bundle(self, bundle: BundleId) -> bytes:
        if bundle.start + bundle.width > self.size:
            raise NotFound(f"{bundle.path()} is beyond the log")
        return encode_bundle(await self.storage.read_entries(bundle.start, bundle.width))

    # -- cosignatures received from witnesses ----------------------------------------

    async def add_cosignatures(self, size: int, lines: str, witnesses: Sequence[Verifier]) -> int:
        """Keep the witness cosignature lines (a tlog-witness response) that verify.

        Lines from keys not in ``witnesses`` are ignored; one that names a known
        key and fails raises :class:`crypto.note.NoteSignatureInvalid`. Returns
        how many were stored.
        """
        note = await self._checkpoint_at(size)
        text = parse_note(note).text
        sigs = parse_signature_lines(lines)
        opened = open_note(text.encode() + b"\n" + "".join(s.line() for s in sigs).encode(), list(witnesses))
        keep = [(v.name, v.key_id, v.signature.line()) for v in opened.verified]
        if not keep:
            raise MalformedNote("no cosignature to store")
        await self.storage.add_cosignatures(size, keep)
        return len(keep)
