"""Reading request bodies: content type, size cap, msgpack, schema.

Errors: :class:`UnsupportedMediaType` (a body without ``application/msgpack``),
:class:`BodyTooLarge` (declared or actual length over the cap, checked before
and while reading, so an oversize body is never buffered whole),
:class:`MalformedBody` (not msgpack or not the schema).
"""

from __future__ import annotations

from typing import TypeVar

from aiohttp import web

from protocol.api import MSGPACK
from protocol.errors import BodyTooLarge, UnsupportedMediaType
from protocol.schema import Message, decode_body

__all__ = ["read_body", "read_request"]

M = TypeVar("M", bound=Message)


async def read_body(request: web.Request, max_body: int,
                    too_large: type[Exception] = BodyTooLarge) -> bytes:
    """The whole body (at most ``max_body`` bytes) of a msgpack request.

    Raises :class:`UnsupportedMediaType` unless the body is ``application/msgpack``,
    and ``too_large`` (default :class:`BodyTooLarge`) over ``max_body`` bytes, checked
    on ``Content-Length`` before reading and while reading.
    """
    mime = request.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
    if mime != MSGPACK:
        raise UnsupportedMediaType(f"request bodies must be {MSGPACK}")
    if request.content_length is not None and request.content_length > max_body:
        raise too_large(f"the body limit is {max_body} bytes")
    body = bytearray()
    while chunk := await request.content.read(max_body + 1 - len(body)):
        body += chunk
        if len(body) > max_body:
            raise too_large(f"the body limit is {max_body} bytes")
    return bytes(body)


async def read_request(request: web.Request, cls: type[M], max_body: int, *, optional: bool = False) -> M:
    """Decode the body as ``cls``; with ``optional``, a request without a body gives ``cls()``."""
    if optional and not request.body_exists:
        return cls()
    return decode_body(await read_body(request, max_body), cls)
