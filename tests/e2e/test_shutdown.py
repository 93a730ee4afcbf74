"""``confide serve`` exits with status 0 within :data:`EXIT_BOUND` seconds of a SIGTERM in
every state: peers down with retries pending (one refusing connections, one that never
answers), a long-poll open (answered, empty), a WebSocket open (closed with 1001, going
away), and a burst of submissions in group-commit batches (every answered event stored).

Each test starts its own ``confide serve`` process; the bound is a timeout of the wait,
not a measured duration.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import aiohttp
import msgpack
import pytest

from crypto.mls.group import Group
from protocol.api import CLIENT_PREFIX
from tests.harness import PASSWORD, ServerProcess, box, free_port, protect, register_client, txn

pytestmark = [pytest.mark.net, pytest.mark.soak, pytest.mark.timeout(150)]

#: Seconds from SIGTERM to exit at most (aiohttp waits 10 s at most for requests in flight).
EXIT_BOUND = 25.0
#: Seconds a test waits at most for a state it prepares (a retry recorded, an ack applied).
STATE_BOUND = 30.0
#: Submissions sent at once for the group-commit test.
BURST = 40


@pytest.fixture
def serve(tmp_path):
    """``serve(extra_config="")`` starts a ``confide serve``; every one is killed at the end."""
    started: list[ServerProcess] = []

    def start(extra_config: str = "[federation]\nenabled = false\n") -> ServerProcess:
        root = tmp_path / f"server{len(started)}"
        root.mkdir()
        server = ServerProcess(root, extra_config)
        started.append(server)
        server.start()
        return server

    yield start
    for server in started:
        server.kill()


async def _stop(server: ServerProcess) -> int | None:
    """SIGTERM and the exit status; ``TimeoutExpired`` (after a SIGKILL) past the bound."""
    return await asyncio.to_thread(server.stop, EXIT_BOUND)


def _rows(server: ServerProcess, sql: str, args: tuple = ()) -> list[tuple]:
    with sqlite3.connect(server.data / "confide.sqlite", timeout=10) as conn:
        return conn.execute(sql, args).fetchall()


async def _until(predicate, what: str) -> None:
    """Until ``predicate()`` holds (checked off the loop); fails after :data:`STATE_BOUND`."""
    async with asyncio.timeout(STATE_BOUND):
        while not await asyncio.to_thread(predicate):
            await asyncio.sleep(0.05)
    assert await asyncio.to_thread(predicate), what


class _Account:
    def __init__(self, server: ServerProcess, http: aiohttp.ClientSession, body: dict) -> None:
        self.server, self.http = server, http
        self.user_id, self.device_id = body["user_id"], body["device_id"]
        self.headers = {"Authorization": f"Bearer {body['access_token']}",
                        "Content-Type": "application/msgpack"}

    async def call(self, method: str, path: str, body: dict | None = None,
                   params: dict | None = None) -> tuple[int, dict]:
        data = None if body is None else msgpack.packb(body, use_bin_type=True)
        async with self.http.request(method, self.server.url + CLIENT_PREFIX + path, data=data,
                                     params=params, headers=self.headers) as resp:
            return resp.status, msgpack.unpackb(await resp.read())


async def _register(server: ServerProcess, http: aiohttp.ClientSession, name: str) -> _Account:
    invite = (await asyncio.to_thread(server.admin, "invite", "--role", "clinician")).strip()
    body = msgpack.packb({"invite": invite, "user": name, "password": PASSWORD}, use_bin_type=True)
    async with http.post(server.url + CLIENT_PREFIX + "/register", data=body,
                         headers={"Content-Type": "application/msgpack"}) as resp:
        assert resp.status == 200
        return _Account(server, http, msgpack.unpackb(await resp.read()))


async def test_sigterm_with_peers_down_and_retries_pending(serve):
    reached = asyncio.Event()
    held: list[asyncio.StreamWriter] = []

    async def never_answer(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        reached.set()

    mute = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens
    server = serve("[federation]\nretry_initial_ms = 50\nretry_max_ms = 200\n"
                   f'[federation.peers]\n"down.test" = "{down}"\n'
                   f'"mute.test" = "http://127.0.0.1:{mute.sockets[0].getsockname()[1]}"\n')
    try:
        async with aiohttp.ClientSession() as http:
            alice = await _register(server, http, "alice")
            status, _ = await alice.call("POST", "/sendToDevice", {"txn_id": txn("t1"), "messages": [
                {"user_id": "@bob:down.test", "device_id": "D", "payload": box(b"p1")},
                {"user_id": "@carol:mute.test", "device_id": "D", "payload": box(b"p2")}]})
            assert status == 200
            await _until(lambda: _rows(server, "SELECT attempts FROM federation_destinations "
                                               "WHERE destination = 'down.test' AND attempts >= 2"),
                         "down.test failed twice: its retry is pending")
            async with asyncio.timeout(STATE_BOUND):
                await reached.wait()  # a transaction to mute.test is in flight
            assert await _stop(server) == 0
        queued = _rows(server, "SELECT destination FROM federation_outbox ORDER BY destination")
        assert queued == [("down.test",), ("mute.test",)]  # kept for the next start
    finally:
        for writer in held:
            writer.close()
        mute.close()
        await mute.wait_closed()


async def test_sigterm_answers_an_open_long_poll(serve):
    server = serve()
    async with aiohttp.ClientSession() as http:
        alice = await _register(server, http, "alice")
        status, _ = await alice.call("POST", "/sendToDevice", {"txn_id": txn("t1"), "messages": [
            {"user_id": alice.user_id, "device_id": alice.device_id, "payload": box(b"to myself")}]})
        assert status == 200
        status, first = await alice.call("GET", "/sync", params={"timeout": "0"})
        assert status == 200 and len(first["inbox"]) == 1
        poll = asyncio.create_task(alice.call("GET", "/sync", params={
            "since": first["next"], "timeout": "30000"}))
        # The long-poll acknowledges its token (deleting the item) before it waits.
        await _until(lambda: _rows(server, "SELECT COUNT(*) FROM inbox") == [(0,)],
                     "the long-poll is in its handler")
        assert await _stop(server) == 0
        status, body = await poll
        assert status == 200 and (body["events"], body["inbox"]) == ([], [])


async def test_sigterm_closes_open_websockets_going_away(serve):
    server = serve()
    async with aiohttp.ClientSession() as http:
        alice = await _register(server, http, "alice")
        sockets = [await http.ws_connect(f"{server.url}{CLIENT_PREFIX}/sync/ws",
                                         headers=alice.headers) for _ in range(2)]
        stopping = asyncio.create_task(_stop(server))
        for ws in sockets:
            msg = await ws.receive(timeout=EXIT_BOUND)
            assert msg.type == aiohttp.WSMsgType.CLOSE and ws.close_code == 1001
        assert await stopping == 0
        for ws in sockets:
            await ws.close()


async def test_sigterm_during_group_commit_batches_keeps_every_answered_event(serve, tmp_path: Path):
    server = serve()
    invite = (await asyncio.to_thread(server.admin, "invite", "--role", "clinician")).strip()
    client = await register_client(None, server.url, tmp_path / "profile-alice", "alice",
                                   invite=invite, auto_add_own_devices=False)
    try:
        room = await client.create_room("burst")
        group = Group.from_bytes(client.store.room(room).group)
        messages = [protect(group, f"message {i}".encode())
                    for i in range(BURST)]
        headers = {"Authorization": f"Bearer {client.http.token}",
                   "Content-Type": "application/msgpack"}
        url = f"{server.url}{CLIENT_PREFIX}/rooms/{room}/send"
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:

            async def submit(i: int) -> tuple[int, dict] | None:
                body = msgpack.packb({"txn_id": txn(f"burst-{i}"), "message": messages[i]})
                try:
                    async with http.post(url, data=body, headers=headers) as resp:
                        return resp.status, msgpack.unpackb(await resp.read())
                except aiohttp.ClientError:
                    return None  # not taken: the server had stopped listening

            pending = {asyncio.create_task(submit(i)) for i in range(BURST)}
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            stopping = asyncio.create_task(_stop(server))  # the others are queued or in a batch
            outcomes = [t.result() for t in done] + list(await asyncio.gather(*pending))
            assert await stopping == 0
        answered = [body["seq"] for r in outcomes if r is not None for status, body in [r]
                    if status == 200]
        assert answered, outcomes
        assert all(r is None or r[0] in (200, 503) for r in outcomes), outcomes
        stored = [s for (s,) in _rows(server, "SELECT seq FROM room_events WHERE room_id = ? "
                                              "ORDER BY seq", (room,))]
        assert stored == list(range(len(stored))) and set(answered) <= set(stored)
    finally:
        await client.close()
