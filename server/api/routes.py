"""The client-server routes of accounts, devices and the key directory.

Handlers are thin: decode the body, authenticate, call one service, encode
the answer. Paths are under :data:`protocol.api.CLIENT_PREFIX`; each is
documented in ``spec/client-server.md``. :func:`add_routes` mounts them.
"""

from __future__ import annotations

from typing import Protocol

from aiohttp import web

from protocol.api import (
    CLIENT_PREFIX,
    ClaimRequest,
    ClaimResponse,
    DeviceKeysRequest,
    DeviceKeysResponse,
    Empty,
    KeyPackageUploadRequest,
    LoginRequest,
    RegisterRequest,
    UserDevicesResponse,
    WhoAmIResponse,
)
from protocol.device_approval import ApproveDeviceRequest
from protocol.ids import DeviceId, RoomId, UserId
from protocol.room_errors import NotMember, UnknownRoom
from server.appkeys import ACCOUNTS, CONFIG, DATABASE, DEVICES, KEY_DIRECTORY, SESSIONS
from server.rooms import storage as room_storage
from server.services.sessions import Session

from .body import read_request
from .responses import respond

__all__ = ["add_routes", "authenticate", "RemoteUsers", "REMOTE_USERS"]


class RemoteUsers(Protocol):
    """Users of other servers (room federation, built by the composition root)."""

    async def claim(self, user: UserId) -> ClaimResponse: ...

    async def claim_in_room(self, requester: UserId, room_id: RoomId, user: UserId) -> ClaimResponse: ...

    async def user_devices(self, user: UserId) -> UserDevicesResponse: ...


#: Claims and device lists of remote users go there (filled when the application starts).
REMOTE_USERS = web.AppKey("confide.remote_users", RemoteUsers)


def _remote(request: web.Request, user: UserId) -> RemoteUsers | None:
    if user.server == request.app[CONFIG].server_name:
        return None
    return request.app[REMOTE_USERS]


def _max_body(request: web.Request) -> int:
    return request.app[CONFIG].limits.max_body


async def authenticate(request: web.Request, *, enrolment: bool = False) -> Session:
    """The caller's session; raises :class:`~protocol.errors.Unauthorized`, or
    :class:`~protocol.mfa.MfaEnrolmentRequired` for an enrolment-only session (accepted
    only with ``enrolment``: whoami, logout and the MFA routes)."""
    return await request.app[SESSIONS].authenticate(request.headers.get("Authorization"),
                                                    enrolment=enrolment)


def _address(request: web.Request) -> str:
    return request.remote or "-"


async def register(request: web.Request) -> web.Response:
    req = await read_request(request, RegisterRequest, _max_body(request))
    return respond(await request.app[ACCOUNTS].register(req, _address(request)))


async def login(request: web.Request) -> web.Response:
    req = await read_request(request, LoginRequest, _max_body(request))
    return respond(await request.app[ACCOUNTS].login(req, _address(request)))


async def logout(request: web.Request) -> web.Response:
    await read_request(request, Empty, _max_body(request), optional=True)
    session = await authenticate(request, enrolment=True)
    await request.app[SESSIONS].revoke(session)
    return respond(Empty())


async def whoami(request: web.Request) -> web.Response:
    s = await authenticate(request, enrolment=True)
    return respond(WhoAmIResponse(s.user_id, s.device_id, s.role))


async def list_devices(request: web.Request) -> web.Response:
    session = await authenticate(request)
    return respond(await request.app[DEVICES].list(session))


async def remove_device(request: web.Request) -> web.Response:
    session = await authenticate(request)
    device_id = DeviceId.parse(request.match_info["device_id"])
    await request.app[DEVICES].remove(session, device_id)
    return respond(Empty())


async def pending_devices(request: web.Request) -> web.Response:
    session = await authenticate(request)
    return respond(await request.app[DEVICES].pending(session))


async def approve_device(request: web.Request) -> web.Response:
    req = await read_request(request, ApproveDeviceRequest, _max_body(request))
    session = await authenticate(request)
    device_id = DeviceId.parse(request.match_info["device_id"])
    return respond(await request.app[DEVICES].approve(session, device_id, req))


async def register_device_keys(request: web.Request) -> web.Response:
    req = await read_request(request, DeviceKeysRequest, _max_body(request))
    session = await authenticate(request)
    return respond(DeviceKeysResponse(await request.app[DEVICES].register_keys(session, req)))


async def user_devices(request: web.Request) -> web.Response:
    session = await authenticate(request)
    user = UserId.parse(request.match_info["user_id"])
    await request.app[DEVICES].check_contact(session.user_id, user)
    remote = _remote(request, user)
    if remote is not None:
        return respond(await remote.user_devices(user))
    return respond(await request.app[DEVICES].user_devices(user))


async def upload_key_packages(request: web.Request) -> web.Response:
    req = await read_request(request, KeyPackageUploadRequest, _max_body(request))
    session = await authenticate(request)
    return respond(await request.app[KEY_DIRECTORY].upload(session, req))


async def count_key_packages(request: web.Request) -> web.Response:
    session = await authenticate(request)
    return respond(await request.app[KEY_DIRECTORY].count(session))


async def claim_key_packages(request: web.Request) -> web.Response:
    req = await read_request(request, ClaimRequest, _max_body(request))
    session = await authenticate(request)
    if req.room_id is not None:
        claimed = await _claim_in_room(request, session, req.room_id, req.user)
    elif (remote := _remote(request, req.user)) is not None:
        claimed = await remote.claim(req.user)
    else:
        claimed = await request.app[KEY_DIRECTORY].claim(req.user)
    request.app[DEVICES].note_claim(session.user_id, req.user)  # may now list its devices
    return respond(claimed)


async def _claim_in_room(request: web.Request, session: Session, room_id: RoomId,
                         user: UserId) -> ClaimResponse:
    """A claim for a room (``spec/client-server.md`` 5.3): the caller needs a current member
    device in the room as this server knows it (``unknown_room``, ``not_member``); then the
    hub (this server or, through federation, the room's hub) claims. Nothing is claimed on
    a refusal."""
    async with request.app[DATABASE].read() as conn:
        if await room_storage.get_room(conn, str(room_id)) is None:
            raise UnknownRoom("no such room here")
        if not await room_storage.user_has_member_device(conn, str(room_id), str(session.user_id)):
            raise NotMember("no device of this user is a member of this room")
    here = request.app[CONFIG].server_name
    if room_id.server == here and user.server == here:
        return await request.app[KEY_DIRECTORY].claim(user)
    return await request.app[REMOTE_USERS].claim_in_room(session.user_id, room_id, user)


def add_routes(router: web.UrlDispatcher, prefix: str = CLIENT_PREFIX) -> None:
    router.add_post(f"{prefix}/register", register)
    router.add_post(f"{prefix}/login", login)
    router.add_post(f"{prefix}/logout", logout)
    router.add_get(f"{prefix}/account/whoami", whoami)
    router.add_get(f"{prefix}/devices", list_devices)
    router.add_get(f"{prefix}/devices/pending", pending_devices)
    router.add_post(f"{prefix}/devices/{{device_id}}/approve", approve_device)
    router.add_delete(f"{prefix}/devices/{{device_id}}", remove_device)
    router.add_put(f"{prefix}/keys/device", register_device_keys)
    router.add_get(f"{prefix}/users/{{user_id}}/devices", user_devices)
    router.add_post(f"{prefix}/keys/packages", upload_key_packages)
    router.add_get(f"{prefix}/keys/packages/count", count_key_packages)
    router.add_post(f"{prefix}/keys/claim", claim_key_packages)
