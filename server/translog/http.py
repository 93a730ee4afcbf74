"""HTTP routes of the transparency log (C2SP tlog-tiles) and of the witness (tlog-witness).

Mount with ``add_routes(app_or_router, log, witness)``. Paths (``LOG_PREFIX``
is ``/_confide/log/v1``, ``WITNESS_PREFIX`` is ``/_confide/witness/v1``):

====================================================  ==========================================
``GET  LOG_PREFIX/checkpoint``                          signed checkpoint with received cosignatures
``GET  LOG_PREFIX/checkpoint/witnessed?min=K``          the latest checkpoint K witnesses cosigned
``GET  LOG_PREFIX/tile/<L>/<N>[.p/<W>]``                hash tile (tlog-tiles)
``GET  LOG_PREFIX/tile/entries/<N>[.p/<W>]``            entry bundle (tlog-tiles), gzip if accepted
``GET  LOG_PREFIX/vkey``                                the log's verifier key (for pinning)
``GET  LOG_PREFIX/proof/inclusion?index=I[&size=S]``    c2sp tlog-proof, entry as ``extra``
``GET  LOG_PREFIX/proof/inclusion?event=<hex>[&size]``  same, found by room event hash
``GET  LOG_PREFIX/proof/consistency?old=M&new=N``       one base64 hash per line
``POST WITNESS_PREFIX/add-checkpoint``                  tlog-witness add-checkpoint
``GET  WITNESS_PREFIX/<sha256(origin) hex>/checkpoint``  last cosigned checkpoint of that log
====================================================  ==========================================

Handlers raise the domain errors (:class:`~server.translog.service.LogError`,
:class:`~server.translog.witness.WitnessError`, :class:`crypto.errors.CryptoError`)
or :mod:`protocol.tlog_errors`; the app's one error middleware
(:mod:`server.api.middleware`) maps their codes to statuses through the one
registry and, because these handlers are marked with
:func:`server.http_errors.text_errors`, answers with the C2SP text body: status
plus ``text/plain`` ``<code>: <message>`` and an ``X-Confide-Error: <code>``
header (``text/x.tlog.size`` for a witness size conflict). An app that mounts
these routes needs that middleware.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
from typing import Any

from aiohttp import web

from crypto.checkpoint import parse_decimal
from crypto.tiles import BundleId, TileId, parse_tile_path
from protocol.tlog_errors import TlogMalformed
from server.http_errors import text_errors

from .service import BadRequest, NotFound, TransparencyLog
from .witness import MAX_REQUEST, Witness

__all__ = ["LOG_PREFIX", "WITNESS_PREFIX", "add_routes", "accepts_gzip"]

LOG_PREFIX = "/_confide/log/v1"
WITNESS_PREFIX = "/_confide/witness/v1"

_TEXT = "text/plain; charset=utf-8"
_IMMUTABLE = "public, max-age=31536000, immutable"


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an ``Accept-Encoding`` value (RFC 9110 section 12.5.3) allows ``gzip``:
    listed (or ``x-gzip``, or ``*`` when gzip is not listed) with a q-value above 0."""
    named: float | None = None
    wildcard: float | None = None
    for item in accept_encoding.split(","):
        coding, *params = (part.strip() for part in item.split(";"))
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        coding = coding.lower()
        if coding in ("gzip", "x-gzip"):
            named = q if named is None else max(named, q)
        elif coding == "*":
            wildcard = q
    chosen = named if named is not None else wildcard
    return chosen is not None and chosen > 0


def _int_param(request: web.Request, name: str, default: int | None = None) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return default
    return parse_decimal(raw, name)


def add_routes(
    app_or_router: Any,
    log: TransparencyLog | None,
    witness: Witness | None,
    log_prefix: str = LOG_PREFIX,
    witness_prefix: str = WITNESS_PREFIX,
) -> None:
    """Mount the log's and/or the witness's routes on an aiohttp app or router."""
    router = getattr(app_or_router, "router", app_or_router)

    if log is not None:

        async def checkpoint(request: web.Request) -> web.Response:
            return web.Response(
                body=await log.checkpoint(), content_type="text/plain", charset="utf-8",
                headers={"Cache-Control": "no-cache, max-age=2"},
            )

        async def witnessed_checkpoint(request: web.Request) -> web.Response:
            wanted = _int_param(request, "min", 1)
            if wanted is None or not 1 <= wanted <= 64:
                raise BadRequest("min= is 1..64")
            return web.Response(
                body=await log.witnessed_checkpoint(wanted), content_type="text/plain",
                charset="utf-8", headers={"Cache-Control": "no-cache, max-age=2"},
            )

        async def vkey(request: web.Request) -> web.Response:
            return web.Response(text=log.verifier.vkey() + "\n", content_type="text/plain")

        async def tile(request: web.Request) -> web.Response:
            ident = parse_tile_path("tile/" + request.match_info["path"])
            headers = {"Cache-Control": _IMMUTABLE}
            if isinstance(ident, TileId):
                body = await log.read_tile(ident)
            else:
                assert isinstance(ident, BundleId)
                body = await log.read_bundle(ident)
                headers["Vary"] = "Accept-Encoding"
                if accepts_gzip(request.headers.get("Accept-Encoding", "")):
                    body = gzip.compress(body, mtime=0)
                    headers["Content-Encoding"] = "gzip"
            return web.Response(body=body, content_type="application/octet-stream", headers=headers)

        async def inclusion(request: web.Request) -> web.Response:
            size = _int_param(request, "size")
            event = request.query.get("event")
            if event is not None:
                try:
                    event_hash = bytes.fromhex(event)
                except ValueError as exc:
                    raise BadRequest("event must be a hex hash") from exc
                if len(event_hash) != 32:
                    raise BadRequest("event must be a 32-byte hash")
                proof = await log.inclusion_proof_for_event(event_hash, size)
            else:
                index = _int_param(request, "index")
                if index is None:
                    raise BadRequest("give index= or event=")
                proof = await log.inclusion_proof(index, size)
            return web.Response(body=proof.to_tlog_proof(), content_type="text/plain", charset="utf-8")

        async def consistency(request: web.Request) -> web.Response:
            old = _int_param(request, "old")
            new = _int_param(request, "new", log.size)
            if old is None or new is None:
                raise BadRequest("give old= (and optionally new=)")
            proof = await log.consistency_proof(old, new)
            text = "".join(base64.b64encode(h).decode() + "\n" for h in proof)
            return web.Response(text=text, content_type="text/plain")

        router.add_get(f"{log_prefix}/checkpoint", text_errors(checkpoint))
        router.add_get(f"{log_prefix}/checkpoint/witnessed", text_errors(witnessed_checkpoint))
        router.add_get(f"{log_prefix}/vkey", text_errors(vkey))
        router.add_get(f"{log_prefix}/tile/{{path:.+}}", text_errors(tile))
        router.add_get(f"{log_prefix}/proof/inclusion", text_errors(inclusion))
        router.add_get(f"{log_prefix}/proof/consistency", text_errors(consistency))

    if witness is not None:

        async def add_checkpoint(request: web.Request) -> web.Response:
            if request.content_length is not None and request.content_length > MAX_REQUEST:
                raise TlogMalformed("request too large")
            body = bytearray()
            while chunk := await request.content.read(MAX_REQUEST + 1 - len(body)):
                body += chunk
                if len(body) > MAX_REQUEST:
                    raise TlogMalformed("request too large")
            lines = await witness.add_checkpoint(bytes(body))  # WitnessError: the middleware answers
            return web.Response(text=lines, content_type="text/plain")

        async def witnessed(request: web.Request) -> web.Response:
            wanted = request.match_info["origin_hash"]
            for origin in witness.logs:
                if hashlib.sha256(origin.encode()).hexdigest() == wanted:
                    note = await witness.latest(origin)
                    if note is not None:
                        return web.Response(body=note, content_type="text/plain", charset="utf-8")
            raise NotFound("no cosigned checkpoint for that origin")

        router.add_post(f"{witness_prefix}/add-checkpoint", text_errors(add_checkpoint))
        router.add_get(f"{witness_prefix}/{{origin_hash:[0-9a-f]{{64}}}}/checkpoint", text_errors(witnessed))
