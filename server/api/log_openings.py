"""The log-openings routes (``spec/audit-log.md``, "Openings"); paths under ``CLIENT_PREFIX``:

- ``GET /log/openings/{index}``: a user session (``Bearer``) or an auditor credential
  (``ConfideAuditor``) opens entry ``index`` under the rule of
  :mod:`server.services.log_openings`; ``not_found`` for everything else;
- ``GET /log/mine?from=I&limit=N``: the caller's own entry indexes (``Bearer`` only).
"""

from __future__ import annotations

from aiohttp import web

from protocol.api import CLIENT_PREFIX
from protocol.log_openings import AUDITOR_SCHEME, MAX_OWN_ENTRIES, OpeningResponse
from protocol.rooms_api import parse_uint_param
from server.appkeys import LOG_OPENINGS, SESSIONS

from .responses import respond

__all__ = ["add_routes"]

_MAX_INDEX = (1 << 63) - 1


async def opening(request: web.Request) -> web.Response:
    index = parse_uint_param(request.match_info["index"], "index", default=0, max_value=_MAX_INDEX)
    header = request.headers.get("Authorization") or ""
    openings = request.app[LOG_OPENINGS]
    if header.partition(" ")[0] == AUDITOR_SCHEME:
        name = await openings.auditor(header)
        found = await openings.open_for_auditor(name, index)
    else:
        session = await request.app[SESSIONS].authenticate(header or None)
        found = await openings.open_for_user(session, index)
    return respond(OpeningResponse(found.to_bytes()))


async def own_entries(request: web.Request) -> web.Response:
    session = await request.app[SESSIONS].authenticate(request.headers.get("Authorization"))
    start = parse_uint_param(request.query.get("from"), "from", default=0, max_value=_MAX_INDEX)
    limit = parse_uint_param(request.query.get("limit"), "limit", default=MAX_OWN_ENTRIES,
                             max_value=MAX_OWN_ENTRIES, min_value=1)
    return respond(await request.app[LOG_OPENINGS].own_entries(session, start, limit))


def add_routes(router: web.UrlDispatcher, prefix: str = CLIENT_PREFIX) -> None:
    router.add_get(f"{prefix}/log/openings/{{index}}", opening)
    router.add_get(f"{prefix}/log/mine", own_entries)
