"""The SDK reads a whole response body even when it arrives in several chunks."""

from __future__ import annotations

import asyncio

import aiohttp
import msgpack
from aiohttp import web
from aiohttp.test_utils import TestServer

from client.sdk.http import _read_bounded


async def test_body_arriving_in_pieces_is_read_whole():
    body = msgpack.packb({"blob": b"x" * 300_000}, use_bin_type=True)

    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/msgpack"})
        await resp.prepare(request)
        for i in range(0, len(body), 7_000):
            await resp.write(body[i:i + 7_000])
            await asyncio.sleep(0)
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_get("/", handler)
    async with TestServer(app) as server, aiohttp.ClientSession() as session, \
            session.get(server.make_url("/")) as resp:
        got = await _read_bounded(resp, 1 << 20)
    assert got == body
    assert msgpack.unpackb(got)["blob"] == b"x" * 300_000


async def test_read_stops_at_the_limit():
    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=b"y" * 50_000)

    app = web.Application()
    app.router.add_get("/", handler)
    async with TestServer(app) as server, aiohttp.ClientSession() as session, \
            session.get(server.make_url("/")) as resp:
        got = await _read_bounded(resp, 1000)
    assert len(got) == 1000
