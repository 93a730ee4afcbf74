"""A tlog-witness (c2sp.org/tlog-witness) ``add-checkpoint`` for other servers' logs.

:class:`Witness` verifies a submitted checkpoint against the log keys it trusts
for the checkpoint's origin and a consistency proof from the size it last
cosigned, then returns a timestamped Ed25519 cosignature (tlog-cosignature v1).
The check of the old size and the write of the new one are one transaction.

Every refusal is a :class:`WitnessError` whose code's registered status
(:mod:`protocol.tlog_errors`) is the one tlog-witness prescribes: 400 malformed or old size above the checkpoint size, 403 no valid
signature from a trusted key, 404 unknown origin, 409 old size is not the last
cosigned size (``current_size`` set; answer body ``<size>\\n`` as
``text/x.tlog.size``), 422 the proof or roots do not check.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from crypto import merkle
from crypto.checkpoint import parse_checkpoint, parse_decimal
from crypto.errors import CryptoError
from crypto.note import (
    SIG_COSIGNATURE_V1,
    MalformedNote,
    NoteSignatureInvalid,
    Signer,
    UnverifiedNote,
    Verifier,
    b64decode_strict,
    open_note,
    parse_note,
)
from protocol.errors import status_for_code
from protocol.tlog_errors import TlogMalformed  # noqa: F401  (registers the witness's codes)

from .storage import LogStorage

__all__ = ["WitnessError", "Witness", "parse_add_checkpoint", "MAX_REQUEST"]

MAX_REQUEST = 64 * 1024
_MAX_PROOF_LINES = 63


class WitnessError(Exception):
    """A refused add-checkpoint. ``code`` is one of :mod:`protocol.tlog_errors`' codes, whose
    registered status is the one tlog-witness prescribes (:attr:`status`)."""

    def __init__(self, code: str, message: str, current_size: int | None = None):
        super().__init__(message)
        self.code = code
        self.current_size = current_size

    @property
    def status(self) -> int:
        return status_for_code(self.code)


def parse_add_checkpoint(body: bytes) -> tuple[int, list[bytes], bytes]:
    """Split an add-checkpoint body into old size, proof hashes and the checkpoint note.

    Raises :class:`WitnessError` 400 for anything malformed.
    """
    if len(body) > MAX_REQUEST:
        raise WitnessError("malformed", "request too large")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WitnessError("malformed", "request is not UTF-8") from exc
    head, sep, _ = text.partition("\n\n")
    if not sep:
        raise WitnessError("malformed", "no blank line before the checkpoint")
    lines = head.split("\n")
    try:
        if not lines[0].startswith("old "):
            raise MalformedNote("first line must be 'old <size>'")
        old = parse_decimal(lines[0][4:], "old size")
        if len(lines) - 1 > _MAX_PROOF_LINES:
            raise MalformedNote("more than 63 proof lines")
        proof = [b64decode_strict(line) for line in lines[1:]]
        if any(len(h) != merkle.HASH_SIZE for h in proof):
            raise MalformedNote("proof line is not a 32-byte hash")
    except MalformedNote as exc:
        raise WitnessError("malformed", str(exc)) from exc
    note = body[len((head + "\n\n").encode()) :]
    return old, proof, note


class Witness:
    """Cosigns checkpoints of the logs in ``logs`` (origin -> trusted log keys)."""

    def __init__(
        self,
        storage: LogStorage,
        signer: Signer,
        logs: Mapping[str, Sequence[Verifier]],
        clock: Callable[[], float],
    ) -> None:
        if signer.sig_type != SIG_COSIGNATURE_V1:
            raise ValueError("a witness key signs cosignatures (type 0x04)")
        self.storage = storage
        self.signer = signer
        self.logs = {origin: list(keys) for origin, keys in logs.items()}
        self.clock = clock

    @property
    def verifier(self) -> Verifier:
        return self.signer.verifier

    async def add_checkpoint(self, body: bytes) -> str:
        """Check and cosign; returns the signature line(s) for the response body."""
        old, proof, note_bytes = parse_add_checkpoint(body)
        try:
            unverified = parse_note(note_bytes)
            cp = parse_checkpoint(unverified.text)
        except MalformedNote as exc:
            raise WitnessError("malformed", f"checkpoint: {exc}") from exc
        keys = self.logs.get(cp.origin)
        if not keys:
            raise WitnessError("unknown_origin", f"unknown log origin {cp.origin!r}")
        try:
            open_note(note_bytes, keys)
        except (UnverifiedNote, NoteSignatureInvalid) as exc:
            raise WitnessError(exc.code, str(exc)) from exc
        if old > cp.size:
            raise WitnessError("old_size_too_large", f"old size {old} above {cp.size}")
        state = await self.storage.witness_state(cp.origin)
        current, current_root = (0, merkle.EMPTY_ROOT) if state is None else (state[0], state[1])
        if old != current:
            raise WitnessError("size_conflict", f"last cosigned size is {current}", current)
        if cp.size == 0 and cp.root_hash != merkle.EMPTY_ROOT:
            raise WitnessError("bad_empty_root", "a size-0 checkpoint has the empty root")
        if old == 0 and proof:
            raise WitnessError("unexpected_proof", "no proof is needed from size 0")
        try:
            merkle.verify_consistency(old, cp.size, current_root, cp.root_hash, proof)
        except CryptoError as exc:
            raise WitnessError("inconsistent", f"not consistent with size {old}: {exc}") from exc
        timestamp = int(self.clock())
        line = self.signer.sign(unverified.text, timestamp).line()
        conflict = await self.storage.witness_advance(
            cp.origin, old, cp.size, cp.root_hash, note_bytes, line
        )
        if conflict is not None:
            raise WitnessError("size_conflict", f"last cosigned size is {conflict}", conflict)
        return line

    async def latest(self, origin: str) -> bytes | None:
        """The last cosigned checkpoint for ``origin`` with this witness's cosignature."""
        state = await self.storage.witness_state(origin)
        if state is None:
            return None
        return state[2] + state[3].encode()
