"""Security tests: attacks on a real ``confide serve`` process (issue 10).

Helpers shared by the modules here, kept in this conftest (the harness package
is being reorganised): :class:`Attacker`, raw HTTP from a chosen loopback source
address, and :func:`work_lines`, the server's ``password_work`` log lines.
"""

from __future__ import annotations

import asyncio
import json

import aiohttp
import msgpack

from protocol.api import CLIENT_PREFIX


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


def access_events(data_dir, action: str) -> list:
    """The transparency log's access entries with ``action``, read from the server's database
    (read-only, beside the running server: SQLite WAL allows it)."""
    import sqlite3

    from protocol.audit import AccessEvent, decode_entry

    conn = sqlite3.connect(f"file:{data_dir / 'confide.sqlite'}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT data FROM translog_entries ORDER BY idx").fetchall()
    finally:
        conn.close()
    entries = [decode_entry(bytes(r[0])) for r in rows]
    return [e for e in entries if isinstance(e, AccessEvent) and e.action == action]


def count_rows(data_dir, table: str) -> int:
    import sqlite3

    conn = sqlite3.connect(f"file:{data_dir / 'confide.sqlite'}?mode=ro", uri=True)
    try:
        return conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
    finally:
        conn.close()
