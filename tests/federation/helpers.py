"""Two (or more) in-process homeservers on loopback TestServers with a static peer table.

Each :class:`Node` is a real :func:`server.app.create_app` application with its
own server name, data directory and port (chosen before start, so the peer
table can name it). ``stop``/``start`` restart it on the same data and port.
A test item kind ``test.note`` records what each node applied, in order.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import msgpack
from aiohttp.test_utils import TestServer

from federation import FEDERATION_ITEMS, InboundItem
from protocol.errors import Forbidden
from server.app import create_app
from server.appkeys import DATABASE
from server.config import Config, Federation
from tests.server.helpers import FastHasher

__all__ = ["Node", "free_port", "make_nodes", "signed_headers", "raw_request", "TEST_FED"]

#: Fast schedule for tests: 20 ms first retry, 200 ms cap, keys refetched at once.
TEST_FED = dict(retry_initial_ms=20, retry_max_ms=200, key_refetch_interval=0, request_timeout=5,
                connect_timeout=2)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Node:
    name: str
    data: Path
    port: int
    peers: dict[str, str]
    fed: dict = field(default_factory=dict)
    clock: object = time.time
    applied: list[tuple[str, bytes]] = field(default_factory=list)
    server: TestServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def app(self):
        return self.server.app

    @property
    def db(self):
        return self.app[DATABASE]

    def config(self) -> Config:
        return Config(server_name=self.name, data_dir=self.data,
                      federation=Federation(peers=dict(self.peers), **{**TEST_FED, **self.fed}))

    async def start(self) -> None:
        app = create_app(self.config(), clock=self.clock, hasher=FastHasher())
        app[FEDERATION_ITEMS].register("test.note", self._on_note)
        self.server = TestServer(app, host="127.0.0.1", port=self.port)
        await self.server.start_server()

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.close()
            self.server = None

    async def _on_note(self, item: InboundItem) -> None:
        if item.data.startswith(b"refuse"):
            await item.tx.execute("CREATE TABLE IF NOT EXISTS test_notes (origin TEXT, data BLOB)")
            await item.tx.execute("INSERT INTO test_notes VALUES (?, ?)", (item.origin, item.data))
            raise Forbidden("this note is refused")
        await item.tx.execute("CREATE TABLE IF NOT EXISTS test_notes (origin TEXT, data BLOB)")
        await item.tx.execute("INSERT INTO test_notes VALUES (?, ?)", (item.origin, item.data))
        item.after_commit(lambda: self.applied.append((item.origin, item.data)))

    async def stored_notes(self) -> list[bytes]:
        async with self.db.read() as conn:
            async with conn.execute("SELECT name FROM sqlite_master WHERE name = 'test_notes'") as cur:
                if await cur.fetchone() is None:
                    return []
            async with conn.execute("SELECT data FROM test_notes ORDER BY rowid") as cur:
                return [bytes(r[0]) for r in await cur.fetchall()]

    async def inbound_txns(self) -> int:
        async with self.db.read() as conn, conn.execute("SELECT COUNT(*) FROM federation_inbound_txns") as cur:
            return (await cur.fetchone())[0]


def make_nodes(tmp_path: Path, *names: str, fed: dict | None = None) -> list[Node]:
    ports = {n: free_port() for n in names}
    table = {n: f"http://127.0.0.1:{p}" for n, p in ports.items()}
    return [Node(n, tmp_path / n, ports[n], {k: v for k, v in table.items() if k != n}, dict(fed or {}))
            for n in names]


def signed_headers(auth_header: str | None, body: bool = True) -> dict[str, str]:
    h = {}
    if auth_header is not None:
        h["Authorization"] = auth_header
    if body:
        h["Content-Type"] = "application/msgpack"
    return h


async def raw_request(node: Node, method: str, target: str, headers: dict, data: bytes | None):
    async with aiohttp.ClientSession() as s, s.request(method, node.url + target, headers=headers,
                                                        data=data) as resp:
        return resp.status, msgpack.unpackb(await resp.read())
