"""Two (or more) in-process homeservers on loopback TestServers with a static peer table.

Each :class:`Node` is a real :func:`server.app.create_app` application with its
own server name, data directory and port (chosen before start, so the peer
table can name it). ``stop``/``start`` restart it on the same data and port.
A test item kind ``test.note`` records what each node applied, in order.

Also: requests signed by a node's federation key (:func:`signed_call`, :func:`put_items`),
SDK users on a node (:func:`user_on`), :func:`eventually`, and the room steps the
two-server tests share (:func:`consult`, :func:`joined`, :func:`reads`, :func:`room_seqs`).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import msgpack
from aiohttp.test_utils import TestServer

from client.sdk import Client, TextMessage
from client.sdk.store import RoomStatus
from federation import FEDERATION_ITEMS, FEDERATION_KEYRING, InboundItem
from protocol.errors import Forbidden
from protocol.federation import FEDERATION_PREFIX, sign_request
from server.appkeys import DATABASE
from server.config import Config, Federation

from .inprocess import NO_MFA, build_app, free_port, register_client, serve

__all__ = ["Node", "make_nodes", "signed_headers", "raw_request", "TEST_FED",
           "FEDERATION_VECTORS", "eventually", "signed_call", "put_items", "user_on", "texts",
           "sync_all", "room_seqs", "joined", "reads", "consult"]

#: Fast schedule for tests: 20 ms first retry, 200 ms cap, keys refetched at once.
TEST_FED = dict(retry_initial_ms=20, retry_max_ms=200, key_refetch_interval=0, request_timeout=5,
                connect_timeout=2)
#: The federation test vectors of spec/.
FEDERATION_VECTORS = Path(__file__).resolve().parents[2] / "spec" / "vectors" / "federation"


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
        return Config(server_name=self.name, data_dir=self.data, auth=NO_MFA,
                      federation=Federation(peers=dict(self.peers), **{**TEST_FED, **self.fed}))

    async def start(self) -> None:
        app = build_app(self.config(), self.clock)
        app[FEDERATION_ITEMS].register("test.note", self._on_note)
        self.server = await serve(app, self.port)

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


async def eventually(predicate, timeout: float = 10.0, interval: float = 0.02):
    """Await until ``predicate()`` (sync or async) is true; fails the test after ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(interval)


def _auth(origin: Node, dest: Node, method: str, target: str, body: bytes) -> str:
    key = origin.app[FEDERATION_KEYRING].current()
    return sign_request(key.seed, key.key_id, method, target, body, origin.name, dest.name,
                        int(time.time() * 1000)).to_header()


async def signed_call(origin: Node, dest: Node, method: str, target: str, obj=None):
    """``method target`` (body ``obj`` in msgpack) from ``origin`` to ``dest``, signed by
    ``origin``'s federation key; returns (status, decoded body)."""
    body = b"" if obj is None else msgpack.packb(obj, use_bin_type=True)
    auth = _auth(origin, dest, method, target, body)
    return await raw_request(dest, method, target, signed_headers(auth, obj is not None), body or None)


_txns = 0


async def put_items(origin: Node, dest: Node, items, txn_id: str | None = None):
    """One signed transaction of ``(kind, data)`` items from ``origin`` to ``dest``."""
    global _txns
    _txns += 1
    txn_id = txn_id or f"t{_txns}-{time.time_ns()}"
    target = f"{FEDERATION_PREFIX}/send/{txn_id}"
    body = msgpack.packb({"items": [{"kind": k, "data": d} for k, d in items]}, use_bin_type=True)
    return await raw_request(dest, "PUT", target, signed_headers(_auth(origin, dest, "PUT", target, body)),
                             body)


async def user_on(node: Node, name: str, role: str = "clinician", clients: list | None = None) -> Client:
    """A registered user of ``node`` (keys and KeyPackages uploaded)."""
    c = await register_client(node.db, node.url, node.data.parent / f"profile-{node.name}-{name}", name,
                              role=role, auto_add_own_devices=False)
    if clients is not None:
        clients.append(c)
    return c


def texts(client: Client, room: str) -> list[str]:
    return [m.body for m in client.messages(room) if isinstance(m, TextMessage)]


async def sync_all(*clients: Client, rounds: int = 1) -> None:
    for _ in range(rounds):
        for c in clients:
            await c.sync()


async def room_seqs(node: Node, room: str):
    async with node.db.read() as conn, conn.execute(
            "SELECT seq, event_id FROM room_events WHERE room_id = ? ORDER BY seq", (room,)) as cur:
        return [(r[0], bytes(r[1])) for r in await cur.fetchall()]


async def joined(client: Client, room: str) -> bool:
    await client.sync()
    return client.store.has_room(room) and client.room(room).status is RoomStatus.JOINED


async def reads(client: Client, room: str, expected: list[str]) -> bool:
    await client.sync()
    return texts(client, room) == expected


async def consult(a: Node, b: Node, alice: Client, bob: Client) -> str:
    """Alice of hub ``a`` creates a room and invites Bob of ``b``; returns once Bob joined."""
    room = await alice.create_room("consult")
    assert room.endswith(":a.test")
    assert await alice.invite(room, bob.user_id) == [f"{bob.user_id}/{bob.device_id}"]
    await eventually(lambda: joined(bob, room))
    return room
