"""The logs this device uses, held to what it saw before (``spec/security.md``, finding 3).

For each log (by origin: this device's own server, or another server's log relayed by
it) the profile keeps the last checkpoint this device accepted
(:class:`~client.sdk.store.StoredCheckpoint`). :meth:`LogView.accept` fetches the
current checkpoint and accepts it only if

1. it is signed by the log's key (the trust document's for the own server, the pinned
   or listed one for another server) and names the expected origin;
2. for the own server, it carries the witness cosignatures the trust document requires
   (:func:`protocol.trust.check_witnesses`); when the newest checkpoint does not carry
   them yet, the latest one that does (``checkpoint/witnessed?min=N``) is taken instead,
   and an entry beyond it cannot be proven until the witnesses cosign;
3. it extends the stored one: not a smaller tree (a rollback), not another root for the
   same size (a fork), and a consistency proof (``proof/consistency``) from the stored
   size and root to it verifies.

A refusal raises :class:`~client.sdk.errors.LogInconsistent`, records an alert in the
profile (``log_alerts``) and keeps the stored checkpoint. :meth:`LogView.inclusion_proof`
returns an entry's tlog-proof only when its checkpoint is the one just accepted.

Every request carries the session's token: a server relays another server's log only
to a signed-in user of its own (``spec/audit-log.md``, finding 1).
"""

from __future__ import annotations

import asyncio
import base64

import aiohttp

from client.audit import AuditFailure, HttpSource
from crypto import merkle
from crypto.checkpoint import Checkpoint, open_checkpoint, parse_tlog_proof
from crypto.errors import CryptoError
from crypto.note import Verifier
from protocol.trust import TrustDocument, check_witnesses

from .errors import LogInconsistent, VerificationFailed
from .http import Http
from .store import Store, StoredCheckpoint

__all__ = ["LogView"]


class LogView:
    def __init__(self, http: Http, store: Store) -> None:
        self._http = http
        self.store = store
        self._locks: dict[str, asyncio.Lock] = {}

    async def _get(self, base: str, path: str) -> bytes:
        try:
            body = await HttpSource(self._http.session, base, self._http.token).get(path)
        except (AuditFailure, aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise VerificationFailed(f"the log at {base} did not answer {path}: {exc}") from None
        if body is None:
            raise VerificationFailed(f"the log at {base} has no {path}")
        return body

    def _refuse(self, origin: str, kind: str, text: str, note: bytes) -> LogInconsistent:
        self.store.add_log_alert({"origin": origin, "kind": kind, "message": text, "checkpoint": note})
        return LogInconsistent(f"{text}: the checkpoint of {origin} is refused and the one "
                               "accepted before is kept")

    def _open(self, origin: str, verifier: Verifier, note: bytes) -> Checkpoint:
        try:
            return open_checkpoint(note, [verifier], origin)[0]
        except CryptoError as exc:
            raise self._refuse(origin, "signature", "the checkpoint is not signed by the log key "
                               f"this device trusts ({exc})", note) from None

    async def _with_quorum(self, base: str, origin: str, verifier: Verifier,
                           policy: TrustDocument, note: bytes) -> tuple[Checkpoint, bytes]:
        """``note`` if it carries the quorum, else the latest checkpoint that does
        (``checkpoint/witnessed``: the newest is often not cosigned yet)."""
        try:
            check_witnesses(note, policy)
            return self._open(origin, verifier, note), note
        except CryptoError as exc:
            first = str(exc)
        try:
            older = await HttpSource(self._http.session, base, self._http.token).get(
                f"checkpoint/witnessed?min={policy.witness_quorum}")
        except (AuditFailure, aiohttp.ClientError, TimeoutError, OSError):
            older = None
        if older is None:
            raise self._refuse(origin, "witnesses", first, note)
        cp = self._open(origin, verifier, older)
        try:
            check_witnesses(older, policy)
        except CryptoError as exc:
            raise self._refuse(origin, "witnesses", str(exc), older) from None
        return cp, older

    async def accept(self, base: str, origin: str, verifier: Verifier,
                     policy: TrustDocument | None = None) -> StoredCheckpoint:
        """The current checkpoint of the log at ``base``, accepted as the module docstring
        says: with a witness quorum, the latest one that carries it."""
        lock = self._locks.setdefault(origin, asyncio.Lock())
        async with lock:
            note = await self._get(base, "checkpoint")
            cp = self._open(origin, verifier, note)
            if policy is not None and policy.witness_quorum:
                cp, note = await self._with_quorum(base, origin, verifier, policy, note)
            old = self.store.checkpoint(origin)
            if old is not None:
                await self._check_extends(base, origin, old, cp, note)
            new = StoredCheckpoint(origin, cp.size, cp.root_hash, note)
            if old is None or cp.size > old.size:
                self.store.save_checkpoint(new)
            return new

    async def _check_extends(self, base: str, origin: str, old: StoredCheckpoint, cp: Checkpoint,
                             note: bytes) -> None:
        if cp.size < old.size:
            raise self._refuse(origin, "rollback", f"ROLLBACK: the log shrank from {old.size} "
                               f"entries to {cp.size}", note)
        if cp.size == old.size:
            if cp.root_hash != old.root:
                raise self._refuse(origin, "fork", f"FORK: another root for tree size {cp.size} "
                                   "than the one accepted before", note)
            return
        try:
            raw = await self._get(base, f"proof/consistency?old={old.size}&new={cp.size}")
        except VerificationFailed as exc:
            raise self._refuse(origin, "fork", f"FORK: no consistency proof from size {old.size} "
                               f"to the checkpoint of size {cp.size} ({exc})", note) from None
        try:
            proof = [base64.b64decode(line, validate=True) for line in raw.decode().splitlines()]
            merkle.verify_consistency(old.size, cp.size, old.root, cp.root_hash, proof)
        except (ValueError, CryptoError) as exc:
            raise self._refuse(origin, "fork", f"FORK: the checkpoint of size {cp.size} does not "
                               f"extend the one of size {old.size} ({exc})", note) from None

    async def inclusion_proof(self, base: str, origin: str, verifier: Verifier, index: int,
                              policy: TrustDocument | None = None) -> bytes:
        """The tlog-proof of entry ``index`` against a checkpoint accepted just now."""
        cp = await self.accept(base, origin, verifier, policy)
        if not 0 <= index < cp.size:
            if policy is not None and policy.witness_quorum:
                raise VerificationFailed(f"entry {index} is not yet in a checkpoint of {origin} that "
                                         f"the witnesses cosigned (size {cp.size}); try again later")
            raise VerificationFailed(f"entry {index} is not in the accepted checkpoint of {origin}")
        proof = await self._get(base, f"proof/inclusion?index={index}&size={cp.size}")
        try:
            got, _ = open_checkpoint(parse_tlog_proof(proof).checkpoint_note, [verifier], origin)
        except CryptoError as exc:
            raise VerificationFailed(f"the inclusion proof's checkpoint does not verify: {exc}") from None
        if (got.size, got.root_hash) != (cp.size, cp.root):
            raise self._refuse(origin, "fork", "FORK: the inclusion proof is against a checkpoint "
                               "other than the accepted one", parse_tlog_proof(proof).checkpoint_note)
        return proof
