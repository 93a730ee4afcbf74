"""msgpack responses (``application/msgpack``) for messages and errors."""

from __future__ import annotations

from aiohttp import web

from protocol.api import MSGPACK
from protocol.errors import ApiError
from protocol.schema import Message, pack_body

__all__ = ["respond", "error_response"]


def respond(message: Message, status: int = 200) -> web.Response:
    return web.Response(status=status, body=pack_body(message), content_type=MSGPACK)


def error_response(exc: ApiError) -> web.Response:
    headers = {}
    retry = exc.details.get("retry_after_ms")
    if isinstance(retry, int):
        headers["Retry-After"] = str(max(1, -(-retry // 1000)))
    return web.Response(status=exc.status, body=pack_body(exc.to_wire()), content_type=MSGPACK,
                        headers=headers)
