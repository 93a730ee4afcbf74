"""Security tests: attacks on a real ``confide serve`` process (issue 10).

Helpers shared by the modules here: :class:`Attacker`, raw HTTP from a chosen loopback
source address; :func:`work_lines`, the server's ``password_work`` log lines; reads of the
server's database beside it; :class:`Listener`, a loopback listener that records every
connection made to it; and one registered account's token on a ``confide serve`` process.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import urllib.error
import urllib.parse
import urllib.request

import aiohttp
import msgpack
import pytest

from protocol.api import CLIENT_PREFIX
from tests.harness import PeerProcess, http_msgpack


class Attacker:
    """Raw msgpack requests to ``url`` from the loopback address ``source`` (127.0.0.0/8 is
    all local on Linux, so each test can come from addresses of its own)."""

    def __init__(self, url: str, source: str = "127.0.0.1") -> None:
        self.url = url + CLIENT_PREFIX
        self.source = source

    async def __aenter__(self) -> Attacker:
        connector = aiohttp.TCPConnector(local_addr=(self.source, 0), limit=0)
        self.session = aiohttp.ClientSession(connector=connector)
        return self

    async def __aexit__(self, *exc) -> None:
        await self.session.close()

    async def call(self, method: str, path: str, body: dict | None = None,
                   token: str | None = None) -> tuple[int, bytes]:
        """(status, the answer's exact bytes)."""
        headers = {"Content-Type": "application/msgpack"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        data = None if body is None else msgpack.packb(body)
        async with self.session.request(method, self.url + path, data=data, headers=headers) as r:
            return r.status, await r.read()

    async def many(self, n: int, method: str, path: str, body_of) -> list[tuple[int, dict]]:
        """``n`` requests at once (``body_of(i)`` is the i-th body); decoded answers."""
        out = await asyncio.gather(*(self.call(method, path, body_of(i)) for i in range(n)))
        return [(status, msgpack.unpackb(raw)) for status, raw in out]


def code(answer: tuple[int, dict]) -> str | None:
    body = answer[1]
    return body["error"]["code"] if "error" in body else None


def work_lines(log_text: str) -> list[dict]:
    """The server's ``password_work`` lines (one per Argon2 run: op, slots running)."""
    out = []
    for line in log_text.splitlines():
        if '"password_work"' not in line:
            continue
        try:
            out.append(json.loads(line[line.index("{"):]))
        except ValueError:
            continue
    return out


def opened_entries(data_dir) -> list:
    """Every entry of the transparency log, opened (the server keeps each sealed entry's
    opening beside it), read from the server's database (read-only, beside the running
    server: SQLite WAL allows it)."""
    import sqlite3

    from protocol.audit import decode_entry

    conn = sqlite3.connect(f"file:{data_dir / 'confide.sqlite'}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT data FROM translog_openings ORDER BY idx").fetchall()
    finally:
        conn.close()
    return [decode_entry(bytes(r[0])) for r in rows]


def access_events(data_dir, action: str) -> list:
    """The transparency log's (opened) access entries with ``action``."""
    from protocol.audit import AccessEvent

    return [e for e in opened_entries(data_dir) if isinstance(e, AccessEvent) and e.action == action]


def failed_logins(data_dir) -> int:
    """Failed logins counted so far: those of the open windows plus the logged
    ``failed_logins`` entries (finding 1: a count per window, no entry per guess)."""
    import sqlite3

    from protocol.audit import FailedLogins

    conn = sqlite3.connect(f"file:{data_dir / 'confide.sqlite'}?mode=ro", uri=True)
    try:
        (open_count,) = conn.execute("SELECT COALESCE(SUM(count), 0) FROM failed_login_windows").fetchone()
    finally:
        conn.close()
    return open_count + sum(e.count for e in opened_entries(data_dir) if isinstance(e, FailedLogins))


def count_rows(data_dir, table: str) -> int:
    import sqlite3

    conn = sqlite3.connect(f"file:{data_dir / 'confide.sqlite'}?mode=ro", uri=True)
    try:
        return conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
    finally:
        conn.close()


class Listener:
    """A TCP listener on 127.0.0.1 that records connections. ``mode`` ``"close"`` reads a little
    and hangs up without an answer (a port with a non-HTTP service on it); ``"hold"`` keeps each
    connection open, unanswered, until the server closes it or :meth:`release` (a peer that
    never answers). ``open_now``/``max_open`` count connections open at once."""

    def __init__(self, mode: str = "close") -> None:
        self.mode = mode
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.open_now = 0
        self.max_open = 0
        self._lock = threading.Lock()
        self._released = threading.Event()
        self._held: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self._lock:
                self.accepted += 1
                self.open_now += 1
                self.max_open = max(self.max_open, self.open_now)
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(0.5)
            try:
                conn.recv(4096)
            except OSError:
                pass
            while self.mode == "hold" and not self._released.is_set():
                try:
                    if conn.recv(4096) == b"":
                        break  # the server gave up on it (its request timeout)
                except TimeoutError:
                    continue
                except OSError:
                    break
        finally:
            conn.close()
            with self._lock:
                self.open_now -= 1

    def release(self) -> None:
        self._released.set()

    def close(self) -> None:
        self.release()
        self.sock.close()


@pytest.fixture
def listener():
    lst = Listener()
    yield lst
    lst.close()


def register(proc: PeerProcess, name: str) -> str:
    """A new account on ``proc`` (an invite from ``confide admin invite``); its access token."""
    body = msgpack.packb({"invite": proc.invite("client"), "user": name,
                          "password": "a long enough password"})
    status, answer = http_msgpack("POST", f"{proc.url}/_confide/client/v1/register", body)
    assert status == 200, answer
    return answer["access_token"]


def get(url: str, token: str | None = None) -> tuple[int, dict]:
    """A GET with an optional bearer token; (status, msgpack answer, or ``{"raw": bytes}``)."""
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
            status = resp.status
    except urllib.error.HTTPError as exc:
        raw, status = exc.read(), exc.code
    try:
        return status, msgpack.unpackb(raw)
    except Exception:  # noqa: BLE001 - a non-msgpack answer (a relayed log tile) is returned as bytes
        return status, {"raw": raw}


def quoted(name: str) -> str:
    return urllib.parse.quote(name, safe="")
