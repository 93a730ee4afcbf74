"""The one place errors become HTTP answers, and the per-request log line.

:func:`error_middleware` turns every error into an :class:`~protocol.errors.ApiError`
of the one registry (:data:`protocol.errors.REGISTRY`, the log's and the
witness's codes included, :mod:`protocol.tlog_errors`), which gives the status:

- :class:`~protocol.errors.ApiError` as it is;
- domain errors with a registered ``code`` (the storage layer's
  :class:`~server.storage.StorageError`, the log's
  :class:`~server.translog.LogError` and ``StorageCorrupt``, the witness's
  :class:`~server.translog.WitnessError`) through :func:`protocol.errors.error_for_code`
  (an unregistered code is ``internal``, logged, without details);
- on the log's and witness's routes, a :class:`crypto.errors.CryptoError` (bad
  input there) by its code if registered, else ``bad_request``;
- a database failure (:class:`sqlite3.OperationalError` such as "database is
  locked" or a disk I/O error, or a bare :class:`sqlite3.DatabaseError` such as
  a damaged file) as ``storage_unavailable`` (503), after logging its type and
  SQLite's error name (never the statement or its parameters);
- aiohttp's own HTTP errors: unknown route ``not_found``, wrong method
  ``method_not_allowed``, oversize ``body_too_large``, other 4xx ``bad_request``;
- anything else as ``internal`` (500) without details, after logging the
  exception with its type (never the request body).

The body is picked by route (:mod:`server.http_errors`): the C2SP text body on
the routes marked with :func:`~server.http_errors.text_errors` (log, witness),
msgpack ``{"error": {"code", "message"[, "retry_after_ms"]}}`` everywhere else.

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

from crypto.errors import CryptoError
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
from protocol.tlog_errors import TlogSizeConflict
from server.http_errors import text_error_response, wants_text_errors
from server.storage import StorageError
from server.translog import LogError, StorageCorrupt, WitnessError

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


_DOMAIN_ERRORS = (StorageError, LogError, StorageCorrupt, WitnessError)


def _from_domain(request: web.Request, exc: Exception) -> ApiError:
    code = getattr(exc, "code", "internal")
    if isinstance(exc, WitnessError) and exc.current_size is not None:
        return TlogSizeConflict(str(exc), exc.current_size)
    cls = error_for_code(code)
    if cls is Internal:
        log.error("domain_error_internal", route=route_name(request), error_type=type(exc).__name__,
                  code=code)
        return Internal("internal error")
    return cls(str(exc))


def _from_crypto(exc: CryptoError) -> ApiError:
    cls = error_for_code(exc.code)
    return cls(str(exc)) if cls.status < 500 else BadRequest(str(exc))


def _api_error(request: web.Request, exc: Exception) -> ApiError:
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, _DOMAIN_ERRORS):
        return _from_domain(request, exc)
    if isinstance(exc, CryptoError) and wants_text_errors(request):
        return _from_crypto(exc)
    if isinstance(exc, web.HTTPException):
        return _from_http(exc)
    if _is_storage_failure(exc):
        log.error("storage_unavailable", route=route_name(request), error_type=type(exc).__name__,
                  sqlite_error=getattr(exc, "sqlite_errorname", None))
        return StorageUnavailable("storage temporarily unavailable, retry later")
    log.error("unhandled_error", route=route_name(request), error_type=type(exc).__name__,
              exc_info=True)
    return Internal("internal error")


@web.middleware
async def error_middleware(request: web.Request, handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _respond(request, _api_error(request, exc))
    except Exception as exc:
        return _respond(request, _api_error(request, exc))


def _respond(request: web.Request, exc: ApiError) -> web.Response:
    return text_error_response(exc) if wants_text_errors(request) else error_response(exc)


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
