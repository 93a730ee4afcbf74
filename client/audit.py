"""The auditor: verify a Confide server's transparency log, live or from an exported bundle.

A *source* serves tlog-tiles paths (``checkpoint``, ``vkey``, ``tile/...``):
:class:`HttpSource` over aiohttp, :class:`BundleSource` from a directory written
by :func:`export_bundle`. :func:`verify_log` then

1. takes the log key from ``--key``, else the state file, else the source's
   ``vkey`` (pinned on first use), and verifies the checkpoint signature;
2. fetches every entry bundle and level-0 tile, decodes each (sealed) entry
   strictly and checks that its leaf hash is the one the tile holds (naming the index);
3. recomputes the root from all entries and compares it with the checkpoint
   (naming the tree size);
4. against the state's last checkpoint: the log must not shrink, the root
   recomputed at the old size must equal the old root (naming the first range
   of entries that changed), and a live server's consistency proof must verify;
5. with ``openings`` (an auditor's credential, :func:`client.sdk.log_openings.auditor_openings`):
   fetches every entry's opening, checks it against the sealed entry
   (:meth:`protocol.audit_seal.Opening.verify`), then the signatures entries carry
   (device self-signatures; consents by a registered device's key) and that removals
   refer to registered devices; without, the public entries' structure only;
6. returns an :class:`AuditReport` (counts by kind, time span, device history when opened).

Any failure raises :class:`AuditFailure` with ``index`` or ``size`` set.

For the client SDK: :func:`verify_device_inclusion` checks a peer device's
registration proof (a tlog-proof) before its key is trusted, and
:func:`list_device_registrations` lists an account's registrations from the
verified log.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import json
import os
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import aiohttp

from crypto import merkle
from crypto.checkpoint import Checkpoint, open_checkpoint, parse_tlog_proof
from crypto.errors import CryptoError
from crypto.merkle import Frontier
from crypto.note import Verifier, parse_vkey
from crypto.tiles import TILE_WIDTH, bundles_for_size, decode_bundle, decode_tile, tiles_for_size
from protocol.audit import (
    ConsentRecord,
    DeviceAdded,
    DeviceApproved,
    DeviceRemoved,
)
from protocol.audit_seal import SealedEntry, decode_opening, decode_sealed

__all__ = [
    "LOG_PATH",
    "AuditFailure",
    "Source",
    "HttpSource",
    "BundleSource",
    "AuditState",
    "DeviceEvent",
    "AuditReport",
    "verify_log",
    "verify_tlog_proof",
    "export_bundle",
    "fetch_proof",
    "verify_device_inclusion",
    "list_device_registrations",
    "check_witness",
    "WITNESS_PATH",
]

LOG_PATH = "/_confide/log/v1"
#: Where a federated Confide server serves its witness (``spec/server-server.md`` section 16).
WITNESS_PATH = "/_confide/federation/v1/witness"
_CONCURRENCY = 8
_MAX_RESOURCE = 1 << 24


class AuditFailure(Exception):
    """Verification failed; ``index`` (entry) or ``size`` (tree size) says where."""

    def __init__(self, message: str, index: int | None = None, size: int | None = None):
        where = f"entry {index}: " if index is not None else f"tree size {size}: " if size is not None else ""
        super().__init__(where + message)
        self.index = index
        self.size = size


#: Fetches the encoded opening of an entry index (an auditor's credential).
Openings = Callable[[int], Awaitable[bytes]]


class Source(Protocol):
    async def get(self, path: str) -> bytes | None: ...

    async def consistency_proof(self, old: int, new: int) -> list[bytes] | None: ...


class HttpSource:
    """A live log at ``base_url`` (the server URL; the log prefix is added unless present).
    ``token`` (a user's access token) is sent as ``Bearer``: a server's relay of a peer's
    log (``/federation/{server}/_confide/log/v1/...``) needs it."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, token: str | None = None) -> None:
        base = base_url.rstrip("/")
        self.base = base if base.endswith(LOG_PATH) else base + LOG_PATH
        self.session = session
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    async def get(self, path: str) -> bytes | None:
        async with self.session.get(f"{self.base}/{path}", headers=self.headers) as resp:
            if resp.status == 404:
                return None
            if resp.status != 200:
                raise AuditFailure(f"GET {path}: HTTP {resp.status}")
            body = bytearray()
            while chunk := await resp.content.read(65536):
                body += chunk
                if len(body) > _MAX_RESOURCE:
                    raise AuditFailure(f"GET {path}: response larger than {_MAX_RESOURCE} bytes")
            return bytes(body)

    async def consistency_proof(self, old: int, new: int) -> list[bytes] | None:
        body = await self.get(f"proof/consistency?old={old}&new={new}")
        if body is None:
            return None
        try:
            return [base64.b64decode(line, validate=True) for line in body.decode().splitlines()]
        except ValueError as exc:
            raise AuditFailure("consistency proof is not base64 lines", size=new) from exc


class BundleSource:
    """An exported bundle: a directory holding the tlog-tiles resources and ``vkey``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def get(self, path: str) -> bytes | None:
        p = self.directory / path
        return p.read_bytes() if p.is_file() else None

    async def consistency_proof(self, old: int, new: int) -> list[bytes] | None:
        return None  # the old root is checked by recomputation instead


@dataclass
class AuditState:
    """What the auditor remembers: pinned key and the last verified checkpoint."""

    vkey: str | None = None
    origin: str | None = None
    size: int = 0
    root: bytes = merkle.EMPTY_ROOT
    frontier: list[bytes] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path) -> AuditState:
        if not path.exists():
            return cls()
        d = json.loads(path.read_text())
        return cls(d.get("vkey"), d.get("origin"), d["size"], base64.b64decode(d["root"]),
                   [base64.b64decode(h) for h in d.get("frontier", [])])

    def save(self, path: Path) -> None:
        d = {"vkey": self.vkey, "origin": self.origin, "size": self.size,
             "root": base64.b64encode(self.root).decode(),
             "frontier": [base64.b64encode(h).decode() for h in self.frontier]}
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(d, indent=1) + "\n")
        os.replace(tmp, path)


@dataclass(frozen=True)
class DeviceEvent:
    index: int
    time: int
    action: str  # "added" | "approved" | "removed"
    device: str
    signature_key: bytes


@dataclass
class AuditReport:
    checkpoint: Checkpoint
    by_kind: Counter = field(default_factory=Counter)
    first_time: int | None = None
    last_time: int | None = None
    devices: dict[str, list[DeviceEvent]] = field(default_factory=dict)
    opened: int = 0  # entries whose opening was fetched and checked

    def summary(self) -> str:
        cp = self.checkpoint
        lines = [f"log {cp.origin}: {cp.size} entries, root {base64.b64encode(cp.root_hash).decode()}: OK"]
        lines.append(f"  openings checked: {self.opened}" if self.opened else
                     "  openings not checked (no auditor credential): structure, signatures and tree only")
        for kind, n in sorted(self.by_kind.items()):
            lines.append(f"  {kind:28} {n}")
        if self.first_time is not None:
            lines.append(f"  time span: {_iso(self.first_time)} .. {_iso(self.last_time or 0)}")
        for user, events in sorted(self.devices.items()):
            lines.append(f"  devices of {user}:")
            for e in events:
                key = base64.b64encode(e.signature_key).decode()[:16]
                lines.append(f"    #{e.index} {_iso(e.time)} {e.action:7} {e.device} key {key}...")
        return "\n".join(lines)


def _iso(ms: int) -> str:
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def _gather_limited(coros: Iterable, limit: int = _CONCURRENCY) -> list:
    sem = asyncio.Semaphore(limit)

    async def run(c):
        async with sem:
            return await c

    return await asyncio.gather(*(run(c) for c in coros))


async def _pin_key(source: Source, state: AuditState, vkey: str | None) -> Verifier:
    if vkey is not None:
        text = vkey
    elif state.vkey is not None:
        text = state.vkey
    else:
        raw = await source.get("vkey")
        if raw is None:
            raise AuditFailure("no --key given, none pinned, and the source serves no vkey")
        text = raw.decode().strip()
    try:
        verifier = parse_vkey(text)
    except CryptoError as exc:
        raise AuditFailure(f"bad verifier key: {exc}") from exc
    if state.vkey is not None and vkey is not None and vkey != state.vkey:
        raise AuditFailure("the key given differs from the key pinned in the state file")
    return verifier


async def _checkpoint(source: Source, verifier: Verifier, state: AuditState) -> Checkpoint:
    raw = await source.get("checkpoint")
    if raw is None:
        raise AuditFailure("the source has no checkpoint")
    try:
        cp, _ = open_checkpoint(raw, [verifier], origin=state.origin)
    except CryptoError as exc:
        raise AuditFailure(f"checkpoint does not verify: {exc}") from exc
    return cp


async def _leaf_tiles(source: Source, size: int) -> list[bytes]:
    tiles = [t for t in tiles_for_size(size) if t.level == 0]
    bodies = await _gather_limited(source.get(t.path()) for t in tiles)
    leaves: list[bytes] = []
    for t, body in zip(tiles, bodies, strict=True):
        if body is None:
            raise AuditFailure(f"{t.path()} missing", index=t.index * TILE_WIDTH)
        try:
            leaves.extend(decode_tile(body, t))
        except CryptoError as exc:
            raise AuditFailure(str(exc), index=t.index * TILE_WIDTH) from exc
    return leaves


def _compare_frontiers(old: AuditState, got: list[bytes]) -> str:
    """Name the first complete subtree of the old tree whose hash changed."""
    nodes = merkle.range_nodes(0, old.size)
    for node, a, b in zip(nodes, old.frontier, got, strict=False):
        if a != b:
            lo, hi = node.index << node.level, (node.index + 1) << node.level
            return f"entries {lo}..{hi - 1} differ from the history seen before"
    return "the history differs from the one seen before"


class _EntryChecker:
    """Semantic checks across entries: carried signatures and device history."""

    def __init__(self, report: AuditReport) -> None:
        self.report = report
        self.keys: dict[tuple[str, str], bytes] = {}

    def check(self, index: int, data: bytes) -> SealedEntry:
        """The public entry's structure, counts and times."""
        try:
            e = decode_sealed(data)
        except CryptoError as exc:
            raise AuditFailure(f"malformed entry: {exc}", index=index) from exc
        r = self.report
        r.by_kind[e.kind if e.kind != "access" else f"access/{e['action']}"] += 1
        r.first_time = e.time if r.first_time is None else min(r.first_time, e.time)
        r.last_time = e.time if r.last_time is None else max(r.last_time, e.time)
        return e

    def check_opening(self, index: int, data: bytes, raw_opening: bytes) -> None:
        """The entry's opening matches it; then the checks of the opened entry."""
        try:
            opening = decode_opening(raw_opening)
            if opening.index != index:
                raise AuditFailure(f"the server sent the opening of entry {opening.index}", index)
            e = opening.verify(data)
        except CryptoError as exc:
            raise AuditFailure(f"opening: {exc}", index=index) from exc
        r = self.report
        r.opened += 1
        try:
            if isinstance(e, DeviceAdded):
                e.verify_signature()
                self.keys[(e.user, e.device)] = e.signature_key
                r.devices.setdefault(e.user, []).append(
                    DeviceEvent(index, e.time, "added", e.device, e.signature_key))
            elif isinstance(e, DeviceRemoved):
                if self.keys.pop((e.user, e.device), None) != e.signature_key:
                    raise AuditFailure(f"removal of {e.device}, which is not registered with that key", index)
                r.devices.setdefault(e.user, []).append(
                    DeviceEvent(index, e.time, "removed", e.device, e.signature_key))
            elif isinstance(e, DeviceApproved):
                approver = self.keys.get((e.user, e.approver_device))
                if approver is None:
                    raise AuditFailure(f"approval by unregistered device {e.approver_device}", index)
                if self.keys.get((e.user, e.device)) != e.signature_key:
                    raise AuditFailure(f"approval of {e.device}, which is not registered with that key", index)
                e.verify_signature(approver)
                r.devices.setdefault(e.user, []).append(
                    DeviceEvent(index, e.time, "approved", e.device, e.signature_key))
            elif isinstance(e, ConsentRecord):
                key = self.keys.get((e.user, e.device))
                if key is None:
                    raise AuditFailure(f"consent by unregistered device {e.device}", index)
                e.verify_signature(key)
        except CryptoError as exc:
            raise AuditFailure(str(exc), index=index) from exc


async def verify_log(source: Source, state: AuditState | None = None, vkey: str | None = None,
                     openings: Openings | None = None) -> tuple[AuditReport, AuditState]:
    """Verify the whole log (and, with ``openings``, every entry's opening); returns the
    report and the state to save. Raises :class:`AuditFailure`."""
    state = state or AuditState()
    verifier = await _pin_key(source, state, vkey)
    cp = await _checkpoint(source, verifier, state)
    n = cp.size
    if n < state.size:
        raise AuditFailure(f"the log shrank from {state.size} entries to {n}", size=n)
    if n == state.size and cp.root_hash != state.root:
        raise AuditFailure(f"fork: a different root for the same size {n} than seen before; "
                           "the log was rewritten", size=n)
    leaves = await _leaf_tiles(source, n)
    report = AuditReport(cp)
    checker = _EntryChecker(report)
    frontier = Frontier()
    old_frontier: list[bytes] | None = None
    bundles = bundles_for_size(n)
    for start in range(0, len(bundles), 64):  # bounded memory: 64 bundles at a time
        chunk = bundles[start : start + 64]
        bodies = await _gather_limited(source.get(b.path()) for b in chunk)
        for b, body in zip(chunk, bodies, strict=True):
            if body is None:
                raise AuditFailure(f"{b.path()} missing", index=b.start)
            try:
                entries = decode_bundle(body, b.width)
            except CryptoError:
                entries = _lenient_bundle(body)
            opened = None
            if openings is not None and len(entries) >= b.width:
                opened = await _gather_limited(openings(b.start + j) for j in range(b.width))
            for j in range(b.width):
                i = b.start + j
                if j >= len(entries):
                    raise AuditFailure("entry missing from its bundle", index=i)
                h = merkle.leaf_hash(entries[j])
                if h != leaves[i]:
                    raise AuditFailure("entry does not match the leaf hash the log committed to", index=i)
                checker.check(i, entries[j])
                if opened is not None:
                    checker.check_opening(i, entries[j], opened[j])
                frontier.append(h)
                if frontier.size == state.size:
                    old_frontier = list(frontier.hashes)
            if len(entries) > b.width:
                raise AuditFailure("extra entries in the bundle", index=b.start + b.width)
    if frontier.root() != cp.root_hash:
        raise AuditFailure("the root recomputed from all entries is not the checkpoint's", size=n)
    if state.size:
        assert old_frontier is not None
        if merkle.fold_range(old_frontier) != state.root:
            raise AuditFailure("not an extension of the log seen before: " +
                               _compare_frontiers(state, old_frontier), size=state.size)
        proof = await source.consistency_proof(state.size, n) if state.size < n else None
        if proof is not None:
            try:
                merkle.verify_consistency(state.size, n, state.root, cp.root_hash, proof)
            except CryptoError as exc:
                raise AuditFailure(f"consistency proof to size {n} fails: {exc}", size=state.size) from exc
    new_state = AuditState(verifier.vkey(), cp.origin, n, cp.root_hash, list(frontier.hashes))
    return report, new_state


def _lenient_bundle(body: bytes) -> list[bytes]:
    """Entries of a bundle that has the wrong count, so the first bad index can be named."""
    out, pos = [], 0
    while pos + 2 <= len(body):
        n = int.from_bytes(body[pos : pos + 2], "big")
        out.append(body[pos + 2 : pos + 2 + n])
        pos += 2 + n
    return out


def verify_tlog_proof(data: bytes, verifier: Verifier, state: AuditState | None = None):
    """Check a tlog-proof whose ``extra`` is the entry: signature, inclusion, and the pinned root.

    Returns ``(checkpoint, index, entry)`` (``entry``: the sealed
    :class:`~protocol.audit_seal.SealedEntry`); raises :class:`AuditFailure`.
    """
    try:
        tp = parse_tlog_proof(data)
        cp, _ = open_checkpoint(tp.checkpoint_note, [verifier])
        if tp.extra is None:
            raise AuditFailure("the proof does not carry the entry (extra line)", index=tp.index)
        entry = decode_sealed(tp.extra)
        merkle.verify_inclusion(tp.index, cp.size, merkle.leaf_hash(tp.extra), tp.proof, cp.root_hash)
    except CryptoError as exc:
        raise AuditFailure(f"inclusion proof does not verify: {exc}") from exc
    if state is not None and state.size == cp.size and state.root != cp.root_hash:
        raise AuditFailure("fork: the proof's checkpoint differs from the one seen before", size=cp.size)
    return cp, tp.index, entry


async def export_bundle(source: Source, out: Path) -> Checkpoint:
    """Write checkpoint, vkey, every tile and entry bundle of the current checkpoint to ``out``."""
    cp_raw = await source.get("checkpoint")
    vkey = await source.get("vkey")
    if cp_raw is None or vkey is None:
        raise AuditFailure("the source has no checkpoint or vkey")
    verifier = parse_vkey(vkey.decode().strip())
    cp, _ = open_checkpoint(cp_raw, [verifier])
    paths = [t.path() for t in tiles_for_size(cp.size)] + [b.path() for b in bundles_for_size(cp.size)]
    out.mkdir(parents=True, exist_ok=True)

    async def fetch(path: str) -> None:
        body = await source.get(path)
        if body is None:
            raise AuditFailure(f"{path} missing")
        p = out / path
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(body)

    await _gather_limited(fetch(p) for p in paths)
    (out / "vkey").write_bytes(vkey)
    (out / "checkpoint").write_bytes(cp_raw)
    return cp


async def fetch_proof(session: aiohttp.ClientSession, base_url: str, what: str,
                      token: str | None = None) -> bytes:
    """The tlog-proof of entry ``what`` (a decimal index) or of a room event (64 hex digits)."""
    src = HttpSource(session, base_url, token)
    query = f"event={what}" if len(what) == 64 else f"index={what}"
    body = await src.get(f"proof/inclusion?{query}")
    if body is None:
        raise AuditFailure(f"no entry or event {what}")
    return body


def verify_device_inclusion(
    proof: bytes, log_key: Verifier, user: str, device: str, signature_key: bytes,
    opening: bytes, credential: bytes | None = None,
) -> DeviceAdded:
    """Before trusting a peer device's key: its registration must be in the log.

    ``proof`` is the tlog-proof the peer's server gave for the registration
    (the sealed entry as ``extra``), ``opening`` the encoded opening of that entry
    (from the device list, :class:`protocol.api.DeviceKeys`). Checks the log
    signature, inclusion, that the opening recomputes the entry's commitments
    (user, device, key, credential, signature and salts), that it is a
    ``device_added`` for exactly this user, device, key (and ``credential`` when
    given), and the device's self-signature. Returns the opened entry; raises
    :class:`AuditFailure`.
    """
    _, index, sealed = verify_tlog_proof(proof, log_key)
    if sealed.kind != DeviceAdded.KIND:
        raise AuditFailure("the proven entry is not a device registration", index=index)
    try:
        opened = decode_opening(opening)
        entry = opened.verify(sealed.to_bytes())
    except CryptoError as exc:
        raise AuditFailure(f"the registration's opening: {exc}", index=index) from exc
    if opened.index != index or not isinstance(entry, DeviceAdded):
        raise AuditFailure("the opening is not the one of the proven registration", index=index)
    if (entry.user, entry.device, entry.signature_key) != (user, device, bytes(signature_key)) or \
            (credential is not None and entry.credential != bytes(credential)):
        raise AuditFailure("the registration in the log is for another user, device or key", index=index)
    try:
        entry.verify_signature()
    except CryptoError as exc:
        raise AuditFailure(str(exc), index=index) from exc
    return entry


async def list_device_registrations(
    source: Source, user: str, state: AuditState | None = None, vkey: str | None = None,
    openings: Openings | None = None,
) -> list[DeviceEvent]:
    """Every registration and removal of ``user``'s devices in the verified log, in order
    (the entries are sealed: only those ``openings`` opens are seen; an auditor's).

    A user reviews this list to spot a device they did not add; a user's own devices
    use :func:`client.sdk.log_openings.own_entries` instead.
    """
    report, _ = await verify_log(source, state, vkey, openings)
    return report.devices.get(user, [])


async def check_witness(session: aiohttp.ClientSession, witness_url: str, source: Source,
                        checkpoint: Checkpoint, log_key: Verifier) -> str:
    """Compare a verified log with what a federation peer's witness saw of it.

    Fails (:class:`AuditFailure`, "split view") when the witness recorded a checkpoint
    of this log inconsistent with one it cosigned before, or when its last cosigned
    checkpoint (signed by ``log_key``) is not consistent with ``checkpoint`` (a
    consistency proof from ``source`` between the two sizes). Returns a one-line result.
    """
    import msgpack

    base = witness_url.rstrip("/") + WITNESS_PATH
    origin = checkpoint.origin
    async with session.get(f"{base}/alerts") as resp:
        raw = await resp.content.read(_MAX_RESOURCE)
        if resp.status != 200:
            raise AuditFailure(f"witness {witness_url}: alerts: HTTP {resp.status}")
    try:
        alerts = [a for a in msgpack.unpackb(raw)["alerts"] if a.get("origin") == origin]
    except Exception as exc:
        raise AuditFailure(f"witness {witness_url}: malformed alerts ({type(exc).__name__})") from None
    if alerts:
        raise AuditFailure(f"split view: witness {witness_url} was shown a checkpoint of size "
                           f"{alerts[0].get('size')} inconsistent with one it cosigned",
                           size=alerts[0].get("size"))
    async with session.get(f"{base}/checkpoint/{origin}") as resp:
        note = await resp.content.read(_MAX_RESOURCE)
        if resp.status == 404:
            return f"witness {witness_url}: has not cosigned {origin} yet"
        if resp.status != 200:
            raise AuditFailure(f"witness {witness_url}: checkpoint: HTTP {resp.status}")
    try:
        seen, _ = open_checkpoint(note, [log_key], origin)
    except CryptoError as exc:
        raise AuditFailure(f"witness {witness_url}: its checkpoint of {origin} does not verify: {exc}") from None
    (m, rm), (n, rn) = sorted([(seen.size, seen.root_hash), (checkpoint.size, checkpoint.root_hash)])
    if m == n:
        ok = rm == rn
    else:
        proof = await source.consistency_proof(m, n)
        try:
            merkle.verify_consistency(m, n, rm, rn, proof or [])
            ok = proof is not None or m == 0
        except CryptoError:
            ok = False
    if not ok:
        raise AuditFailure(f"split view: witness {witness_url} cosigned a checkpoint of size {seen.size} "
                           "that is not consistent with the log shown here", size=seen.size)
    return f"witness {witness_url}: cosigned size {seen.size}, consistent"
