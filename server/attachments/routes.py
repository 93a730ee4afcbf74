"""``POST /attachments``, ``GET /attachments/{content_id}`` and ``POST
/rooms/{room_id}/attachments/{content_id}`` (``spec/client-server.md`` section 11). All need
an access token; uploads are ``application/octet-stream``. A download by a device that may
not read the attachment (:func:`.access.may_read`) answers as an unknown id: ``not_found``."""

from __future__ import annotations

from aiohttp import web

from protocol.api import CLIENT_PREFIX
from protocol.errors import NotFound, UnsupportedMediaType
from protocol.ids import RoomId
from protocol.room_errors import NotMember
from protocol.rooms_api import AttachmentLink, AttachmentResponse
from server.api import authenticate, read_request, respond
from server.appkeys import ATTACHMENTS, DATABASE
from server.rooms import storage

from . import access
from .store import CONTENT_ID

__all__ = ["add_routes", "OCTET_STREAM"]

OCTET_STREAM = "application/octet-stream"
_CHUNK = 64 * 1024


async def upload(request: web.Request) -> web.Response:
    mime = request.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
    if mime != OCTET_STREAM:
        raise UnsupportedMediaType(f"attachments are uploaded as {OCTET_STREAM}")
    session = await authenticate(request)
    content_id = await request.app[ATTACHMENTS].put(request.content.iter_chunked(_CHUNK),
                                                    request.content_length)
    async with request.app[DATABASE].transaction() as tx:
        await access.record_upload(tx, content_id, str(session.user_id))
    return respond(AttachmentResponse(content_id))


async def download(request: web.Request) -> web.StreamResponse:
    session = await authenticate(request)
    content_id = request.match_info["content_id"]
    async with request.app[DATABASE].read() as conn:
        allowed = await access.may_read(conn, content_id, str(session.user_id), str(session.device_id))
    if not allowed:
        raise NotFound("no such attachment")
    path = request.app[ATTACHMENTS].path(content_id)
    return web.FileResponse(path, headers={"Content-Type": OCTET_STREAM,
                                           "Cache-Control": "private, max-age=31536000, immutable"})


async def link(request: web.Request) -> web.Response:
    """Record that the caller's message at ``seq`` announces the attachment in the room. The
    caller must be a current member of the room and able to read the attachment itself
    (else ``not_found``, as an unknown id); the link counts only if the stored event at
    ``seq`` is the caller's (checked at each read, so a follower may link before the hub's
    event arrives)."""
    req = await read_request(request, AttachmentLink, 1024)
    room_id = str(RoomId.parse(request.match_info["room_id"]))
    session = await authenticate(request)
    user, device = str(session.user_id), str(session.device_id)
    content_id = request.match_info["content_id"]
    if not CONTENT_ID.fullmatch(content_id):
        raise NotFound("no such attachment")
    async with request.app[DATABASE].transaction() as tx:
        if not await access.may_read(tx, content_id, user, device):
            raise NotFound("no such attachment")
        if (user, device) not in await storage.open_members(tx, room_id):
            raise NotMember("the device is not a member of this room")
        await access.record_link(tx, content_id, room_id, req.seq, user, device)
    return respond(AttachmentResponse(content_id))


def add_routes(router: web.UrlDispatcher, prefix: str = CLIENT_PREFIX) -> None:
    router.add_post(f"{prefix}/attachments", upload)
    router.add_get(f"{prefix}/attachments/{{content_id}}", download)
    router.add_post(f"{prefix}/rooms/{{room_id}}/attachments/{{content_id}}", link)
