"""Error bodies by route: msgpack for the client API, C2SP text for the log and the witness.

:func:`server.api.middleware.error_middleware` answers every error; it asks
:func:`wants_text_errors` which body a request gets. Handlers mounted with
:func:`text_errors` (the transparency log's and the witness's, see
:mod:`server.translog.http`) get the C2SP text body (``spec/audit-log.md``
section 4.1): status of the code, ``text/plain`` ``<code>: <message>\\n`` and
the header ``X-Confide-Error: <code>``; ``size_conflict`` (409) is instead
``<size>\\n`` as ``text/x.tlog.size`` (c2sp.org/tlog-witness). Every other
route gets :func:`server.api.responses.error_response` (msgpack).

This module imports nothing of the server, so the log's routes can use it
without importing the client API.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from protocol.errors import ApiError
from protocol.tlog_errors import TlogSizeConflict

__all__ = ["text_errors", "wants_text_errors", "text_error_response"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_MARK = "_confide_text_errors"


def text_errors(handler: Handler) -> Handler:
    """Mark ``handler``: its errors are answered with the C2SP text body."""
    setattr(handler, _MARK, True)
    return handler


def wants_text_errors(request: web.Request) -> bool:
    """Whether the request's matched route was mounted with :func:`text_errors`."""
    return getattr(request.match_info.handler, _MARK, False) is True


def text_error_response(exc: ApiError) -> web.Response:
    headers = {"X-Confide-Error": exc.code}
    if isinstance(exc, TlogSizeConflict):
        return web.Response(status=exc.status, body=f"{exc.current_size}\n".encode(),
                            content_type="text/x.tlog.size", headers=headers)
    return web.Response(status=exc.status, text=f"{exc.code}: {exc.message}\n",
                        content_type="text/plain", headers=headers)
