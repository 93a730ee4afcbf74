"""The client-server routes of multi-factor sign-in (``spec/client-server.md`` 3.1).

``POST /account/mfa/totp/begin``, ``POST /account/mfa/totp/confirm`` and
``POST /account/mfa/disable``: each takes a signed-in device, including an
enrolment-only session (the routes that session exists for). Handlers are
thin: decode, authenticate, call :class:`server.services.mfa.Mfa`, encode.
"""

from __future__ import annotations

from aiohttp import web

from protocol.api import CLIENT_PREFIX, Empty
from protocol.mfa import MfaCodeRequest, MfaDisableRequest
from server.appkeys import CONFIG, MFA, SESSIONS

from .body import read_request
from .responses import respond

__all__ = ["add_mfa_routes"]


def _max_body(request: web.Request) -> int:
    return request.app[CONFIG].limits.max_body


async def _session(request: web.Request):
    return await request.app[SESSIONS].authenticate(request.headers.get("Authorization"),
                                                    enrolment=True)


async def totp_begin(request: web.Request) -> web.Response:
    await read_request(request, Empty, _max_body(request), optional=True)
    session = await _session(request)
    return respond(await request.app[MFA].begin(session))


async def totp_confirm(request: web.Request) -> web.Response:
    req = await read_request(request, MfaCodeRequest, _max_body(request))
    session = await _session(request)
    return respond(await request.app[MFA].confirm(session, req, request.remote or "-"))


async def disable(request: web.Request) -> web.Response:
    req = await read_request(request, MfaDisableRequest, _max_body(request))
    session = await _session(request)
    await request.app[MFA].disable(session, req, request.remote or "-")
    return respond(Empty())


def add_mfa_routes(router: web.UrlDispatcher, prefix: str = CLIENT_PREFIX) -> None:
    router.add_post(f"{prefix}/account/mfa/totp/begin", totp_begin)
    router.add_post(f"{prefix}/account/mfa/totp/confirm", totp_confirm)
    router.add_post(f"{prefix}/account/mfa/disable", disable)
