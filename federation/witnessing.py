"""Federated servers witness each other's transparency logs (``spec/server-server.md`` section 16).

Each server runs a tlog-witness (:class:`server.translog.Witness`, cosignature
key ``DATA/keys/witness.key``, name ``<server>/witness``) for the logs of its
peers, reachable over federation:

- ``POST /_confide/federation/v1/witness/add-checkpoint`` (signed): body
  ``{"request": bin}``, the tlog-witness add-checkpoint request; only the log
  of the request's origin (``not_your_user`` otherwise). The witness pins the
  peer's log key on first use (``GET /_confide/log/v1/vkey`` of the peer). A
  refusal keeps the tlog-witness meaning: ``witness_size_conflict`` (409, with
  ``current_size``), ``witness_inconsistent`` (422: the checkpoint is not
  consistent with the one cosigned before: a split view, *recorded* as an
  alert with both checkpoints) or ``witness_refused`` (400/403/404).
- ``GET /_confide/federation/v1/witness/vkey`` (public): the witness's
  cosigner key; ``GET /_confide/federation/v1/witness/alerts`` (public): the
  recorded split views.

The pinned log keys and the recorded split views are in the database
(:mod:`federation.witness_store`), loaded by :meth:`Witnessing.load` at start,
so a restart neither forgets an alert nor pins a peer's key anew.
- ``GET /_confide/federation/v1/witness/checkpoint/{origin}`` (public): the
  last checkpoint of ``origin`` that this witness cosigned.

As a log, the server submits its latest checkpoint to every peer of its static
peer table every :data:`WITNESS_INTERVAL` seconds, and within
:data:`GROWTH_POLL` seconds after its log grew, from the size that peer last
cosigned (with a consistency proof), starting :data:`START_DELAY` seconds after
start, and stores the cosignatures it gets next
to its checkpoint (``GET /_confide/log/v1/checkpoint`` serves them).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import Callable, Iterable

import structlog

from crypto.checkpoint import parse_checkpoint
from crypto.errors import CryptoError
from crypto.note import MalformedNote, Verifier, parse_note, parse_vkey
from protocol.errors import ApiError, MalformedBody
from protocol.federation import FEDERATION_PREFIX, FederationError, PeerRefused
from protocol.federation_rooms import NotYourUser
from server.storage import Database
from server.translog import LOG_PREFIX, TransparencyLog, Witness, WitnessError

from . import witness_store
from .client import FederationClient

__all__ = ["Witnessing", "WitnessSizeConflict", "WitnessInconsistent", "WitnessRefused",
           "WITNESS_INTERVAL", "GROWTH_POLL", "WITNESS_PATH"]

log = structlog.get_logger("confide.federation")

WITNESS_PATH = FEDERATION_PREFIX + "/witness"
#: Seconds between submissions of an unchanged checkpoint to each peer.
WITNESS_INTERVAL = 300.0
#: Seconds between looks at the log's size (a grown log is submitted at once).
GROWTH_POLL = 2.0
#: Seconds after start before the first submission (peers start at the same time).
START_DELAY = 5.0


class WitnessSizeConflict(ApiError):
    """The old size is not the size this witness last cosigned (``current_size``)."""

    code = "witness_size_conflict"
    status = 409


class WitnessInconsistent(ApiError):
    """The checkpoint is not consistent with the one cosigned before: a split view."""

    code = "witness_inconsistent"
    status = 422


class WitnessRefused(ApiError):
    """Any other tlog-witness refusal (malformed, unknown origin, bad log signature)."""

    code = "witness_refused"
    status = 400


class Witnessing:
    def __init__(self, tlog: TransparencyLog, client: FederationClient, server_name: str,
                 witness: Witness, peers: Iterable[str], clock: Callable[[], float],
                 db: Database) -> None:
        """``witness`` cosigns peers' logs (its ``logs`` are the pinned keys, filled by
        :meth:`load`); it signs as ``<server_name>/witness``."""
        self.db = db
        self.clock = clock
        self.tlog = tlog
        self.client = client
        self.server_name = server_name
        self.witness = witness
        self.signer = witness.signer
        self.peers = sorted(set(peers) - {server_name})
        self.alerts: list[dict] = []
        self._cosigned: dict[str, int] = {}
        self._peer_witness: dict[str, Verifier] = {}
        self._lock = asyncio.Lock()

    async def load(self) -> None:
        """Read the pinned log keys and the recorded alerts (once, at start)."""
        async with self.db.read() as conn:
            pins = await witness_store.pinned_keys(conn)
            self.alerts = await witness_store.alerts(conn)
        for origin, vkey in pins.items():
            try:
                self.witness.logs[origin] = [parse_vkey(vkey)]
            except (CryptoError, MalformedNote) as exc:  # a row edited by hand
                log.error("federation_witness_pin_unreadable", error=str(exc))

    # -- as a witness -------------------------------------------------------------------

    async def _log_key(self, origin: str) -> None:
        if origin in self.witness.logs:
            return
        raw = await self.client.get_public(origin, LOG_PREFIX + "/vkey", cap=4096)
        try:
            vkey = raw.decode().strip()
            parse_vkey(vkey)
        except (CryptoError, MalformedNote, UnicodeDecodeError) as exc:
            raise WitnessRefused(f"the log key of {origin} does not parse: {exc}") from None
        async with self.db.transaction() as tx:
            pinned = await witness_store.pin_key(tx, origin, vkey, self._now_ms())
        self.witness.logs[origin] = [parse_vkey(pinned)]

    async def peer_log_key(self, origin: str) -> str:
        """The log key of ``origin`` as pinned here (fetched and pinned for life on first use;
        the key this witness checks ``origin``'s checkpoints with). Raises what the fetch
        raises (:class:`~protocol.federation.PeerDenied`, ``PeerUnreachable``,
        ``PeerRefused``) and :class:`WitnessRefused` for a key that does not parse."""
        await self._log_key(origin)
        return self.witness.logs[origin][0].vkey()

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    async def add_checkpoint(self, origin: str, request: bytes) -> str:
        """Cosign ``origin``'s checkpoint (tlog-witness); see the module docstring for errors."""
        note = request.partition(b"\n\n")[2]
        try:
            cp = parse_checkpoint(parse_note(note).text)
        except (MalformedNote, CryptoError) as exc:
            raise WitnessRefused(f"malformed checkpoint: {exc}") from None
        if cp.origin != origin:
            raise NotYourUser("a server submits its own log's checkpoints only")
        await self._log_key(origin)
        async with self._lock:
            try:
                return await self.witness.add_checkpoint(request)
            except WitnessError as exc:
                if exc.status == 409:
                    raise WitnessSizeConflict(str(exc), current_size=exc.current_size) from None
                if exc.status == 422:
                    await self._alert(origin, cp.size, note)
                    raise WitnessInconsistent(str(exc)) from None
                raise WitnessRefused(f"{exc.code}: {exc}") from None

    async def _alert(self, origin: str, size: int, note: bytes) -> None:
        log.warning("federation_split_view", size=size)
        alert = {"origin": origin, "size": size, "checkpoint": note.decode("utf-8", "replace")}
        async with self.db.transaction() as tx:
            kept = await witness_store.record_alert(tx, origin, size, alert["checkpoint"], self._now_ms())
        if kept:
            self.alerts.append(alert)

    async def cosigned(self, origin: str) -> bytes | None:
        return await self.witness.latest(origin)

    # -- as a log -------------------------------------------------------------------------

    async def _witness_key(self, peer: str) -> Verifier:
        v = self._peer_witness.get(peer)
        if v is None:
            out = await self.client.call("GET", peer, WITNESS_PATH + "/vkey")
            try:
                v = parse_vkey(out["vkey"])
            except (KeyError, TypeError, CryptoError, MalformedNote) as exc:
                raise WitnessRefused(f"the witness key of {peer} does not parse: {exc}") from None
            self._peer_witness[peer] = v
        return v

    async def submit(self, peer: str) -> int:
        """Send the latest checkpoint to ``peer``'s witness; returns the cosigned size."""
        size = self.tlog.size
        found = await self.tlog.storage.checkpoint_note(size)
        if found is None:
            return self._cosigned.get(peer, 0)
        note = found[1]
        old = self._cosigned.get(peer, 0)
        for _ in range(2):
            old = min(old, size)
            proof = await self.tlog.consistency_proof(old, size) if old else []
            request = (f"old {old}\n" + "".join(base64.b64encode(h).decode() + "\n" for h in proof)
                       + "\n").encode() + note
            try:
                out = await self.client.call("POST", peer, WITNESS_PATH + "/add-checkpoint", {"request": request})
            except PeerRefused as exc:
                current = getattr(exc, "remote_details", {}).get("current_size")
                if exc.remote_code == "witness_size_conflict" and isinstance(current, int):
                    old = current
                    continue
                raise
            lines = out.get("cosignatures") if isinstance(out, dict) else None
            if not isinstance(lines, str):
                raise MalformedBody("a witness answer has cosignatures")
            await self.tlog.add_cosignatures(size, lines, [await self._witness_key(peer)])
            self._cosigned[peer] = size
            return size
        return old

    async def run(self) -> None:
        """Submit to every peer periodically and after the log grows (until cancelled)."""
        last_size, last_all = -1, 0.0
        loop = asyncio.get_running_loop()
        await asyncio.sleep(START_DELAY)
        while True:
            now = loop.time()
            if self.peers and (self.tlog.size != last_size or now - last_all >= WITNESS_INTERVAL):
                last_size, last_all = self.tlog.size, now
                for peer in self.peers:
                    try:
                        await self.submit(peer)
                    except (FederationError, ApiError, CryptoError, MalformedNote) as exc:
                        log.info("federation_witness_submit_failed", code=getattr(exc, "code", "error"))
                        last_size = -1  # try again at the next poll
                    except Exception:
                        log.error("federation_witness_submit_failed", exc_info=True)
            await asyncio.sleep(GROWTH_POLL)


async def cancel(task: asyncio.Task) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
