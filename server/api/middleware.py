"""The one place errors become HTTP answers, and the per-request log line.

:func:`error_middleware` answers

- :class:`~protocol.errors.ApiError` with its code's status and the body
  ``{"error": {"code", "message"[, "retry_after_ms"]}}``;
- domain errors of the storage layer (anything with a registered ``code``)
  the same way, through :func:`protocol.errors.error_for_code`;
- a database failure (:class:`sqlite3.OperationalError` such as "database is
  locked" or a disk I/O error, or a bare :class:`sqlite3.DatabaseError` such as
  a damaged file) as ``storage_unavailable`` (503), after logging its type and
  SQLite's error name (never the statement or its parameters);
- aiohttp's own HTTP errors: unknown route ``not_found``, wrong method
  ``method_not_allowed``, oversize ``body_too_large``, other 4xx ``bad_request``;
- anything else as ``internal`` (500) without details, after logging the
  exception with its type (never the request body).

:func:`access_log_middleware` logs one ``request`` line per request at info
level with the method, the route *template* (``/devices/{device_id}``, never
the concrete path, which may hold user ids), the status and the duration.
User ids are never logged at info level.
"""

from __future__ import annotations

import sqlite3
import time

import structlog
from aiohttp import web

from protocol.errors import (
    ApiError,
    BadRequest,
    BodyTooLarge,
    Internal,
    MethodNotAllowed,
    NotFound,
    StorageUnavailable,
    error_for_code,
)
from server.storage import StorageError

from .responses import error_response

__all__ = ["error_middleware", "access_log_middleware", "route_name"]

log = structlog.get_logger("confide.http")


def route_name(request: web.Request) -> str:
    """The matched route's template, or ``-`` for an unmatched path."""
    resource = getattr(request.match_info.route, "resource", None)
    return resource.canonical if resource is not None else "-"


def _from_http(exc: web.HTTPException) -> ApiError:
    if exc.status == 404:
        return NotFound("no such endpoint")
    if exc.status == 405:
        return MethodNotAllowed("method not allowed on this endpoint")
    if exc.status == 413:
        return BodyTooLarge("request body too large")
    return BadRequest(exc.reason or "bad request")


def _is_storage_failure(exc: Exception) -> bool:
    """A fault of the database rather than of the code: locked, I/O, read-only, damaged.
    (``IntegrityError``, ``ProgrammingError`` and the like are bugs: ``internal``.)"""
    return isinstance(exc, sqlite3.OperationalError) or type(exc) is sqlite3.DatabaseError


@web.middleware
async def error_middleware(request: web.Request, handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc)
    except StorageError as exc:
        return error_response(error_for_code(exc.code)(str(exc)) if exc.code != "internal" else Internal())
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_response(_from_http(exc))
    except Exception as exc:
        if _is_storage_failure(exc):
            log.error("storage_unavailable", route=route_name(request), error_type=type(exc).__name__,
                      sqlite_error=getattr(exc, "sqlite_errorname", None))
            return error_response(StorageUnavailable("storage temporarily unavailable, retry later"))
        log.error("unhandled_error", route=route_name(request), error_type=type(exc).__name__,
                  exc_info=True)
        return error_response(Internal("internal error"))


@web.middleware
async def access_log_middleware(request: web.Request, handler) -> web.StreamResponse:
    start = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    finally:
        log.info("request", method=request.method, route=route_name(request), status=status,
                 ms=round((time.perf_counter() - start) * 1000, 1))
