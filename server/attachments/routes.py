"""``POST /attachments`` and ``GET /attachments/{content_id}`` (``spec/client-server.md``
section 11). Both need an access token; uploads are ``application/octet-stream``."""

from __future__ import annotations

from aiohttp import web

from protocol.api import CLIENT_PREFIX
from protocol.errors import UnsupportedMediaType
from protocol.rooms_api import AttachmentResponse
from server.api import authenticate, respond
from server.appkeys import ATTACHMENTS

__all__ = ["add_routes", "OCTET_STREAM"]

OCTET_STREAM = "application/octet-stream"
_CHUNK = 64 * 1024


async def upload(request: web.Request) -> web.Response:
    mime = request.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
    if mime != OCTET_STREAM:
        raise UnsupportedMediaType(f"attachments are uploaded as {OCTET_STREAM}")
    await authenticate(request)
    content_id = await request.app[ATTACHMENTS].put(request.content.iter_chunked(_CHUNK),
                                                    request.content_length)
    return respond(AttachmentResponse(content_id))


async def download(request: web.Request) -> web.StreamResponse:
    await authenticate(request)
    path = request.app[ATTACHMENTS].path(request.match_info["content_id"])
    return web.FileResponse(path, headers={"Content-Type": OCTET_STREAM,
                                           "Cache-Control": "private, max-age=31536000, immutable"})


def add_routes(router: web.UrlDispatcher, prefix: str = CLIENT_PREFIX) -> None:
    router.add_post(f"{prefix}/attachments", upload)
    router.add_get(f"{prefix}/attachments/{{content_id}}", download)
