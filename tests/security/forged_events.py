"""A malicious server's tools for the tests of findings 4 and 5 and the Matrix membership attack.

The server controls the envelope of every event: it signs it with its own hub key. These
helpers act as that server, with the real key read from the data directory of a real
``confide serve`` process:

- :func:`hub_key`: the hub's signing key (key id, seed), as the events name it;
- :func:`inject_event`: a new event at the end of a room, signed with the hub key, written
  straight into the database (the server stopped), bypassing every check of the hub: the
  room's head moves (last seq and event id), its epoch and public view do not, so the
  honest hub goes on at the epoch it was at;
- :class:`RelabelProxy`: an aiohttp proxy in front of the server that forwards every
  request and rewrites the room events in ``/sync`` and ``/rooms/{id}/events`` answers:
  a chosen event gets another sender, is signed again with the hub key, and the events
  after it are re-chained (their ``prev``) and re-signed, so only the relabel is false.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import replace
from pathlib import Path

import aiohttp
import msgpack
from aiohttp import web

from protocol.events import EventContent, EventKind, SignedEvent, sign_event

__all__ = ["hub_key", "inject_event", "RelabelProxy", "room_events"]


def hub_key(data: Path) -> tuple[str, bytes]:
    with sqlite3.connect(data / "confide.sqlite") as conn:
        (key_id,) = conn.execute(
            "SELECT key_id FROM federation_server_keys WHERE valid_until IS NULL").fetchone()
    return key_id, (data / "keys" / "federation" / (key_id.replace(":", "_") + ".key")).read_bytes()


def room_events(data: Path, room_id: str) -> list[tuple]:
    with sqlite3.connect(f"file:{data / 'confide.sqlite'}?mode=ro", uri=True) as conn:
        return conn.execute("SELECT seq, kind, sender_user, sender_device, message FROM room_events "
                            "WHERE room_id = ? ORDER BY seq", (room_id,)).fetchall()


def inject_event(data: Path, room_id: str, message: bytes, sender: tuple[str, str],
                 kind: EventKind, epoch: int) -> SignedEvent:
    """Append a hub-signed event to ``room_id`` in the database of a STOPPED server."""
    key_id, seed = hub_key(data)
    with sqlite3.connect(data / "confide.sqlite") as conn:
        last_seq, last_id = conn.execute("SELECT last_seq, last_event_id FROM rooms WHERE room_id = ?",
                                         (room_id,)).fetchone()
        content = EventContent(room_id, last_seq + 1, bytes(last_id), epoch, kind, sender[0],
                               sender[1], int(time.time() * 1000), message)
        event = sign_event(seed, content, key_id)
        (pos,) = conn.execute("UPDATE stream_position SET pos = pos + 1 WHERE id = 1 RETURNING pos"
                              ).fetchone()
        conn.execute(
            "INSERT INTO room_events (stream_pos, room_id, seq, prev, epoch, kind, sender_user, "
            "sender_device, ts, message, event_id, hub_signature, hub_key_id) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (pos, room_id, content.seq, content.prev, epoch, kind.value, sender[0], sender[1],
             content.ts, message, event.event_id, event.hub_signature, key_id))
        conn.execute("UPDATE rooms SET last_seq = ?, last_event_id = ? WHERE room_id = ?",
                     (content.seq, event.event_id, room_id))
    return event


class RelabelProxy:
    """``url`` forwards to ``upstream``; ``relabel[(room_id, seq)] = (user, device)`` makes that
    event's envelope name another sender (see the module docstring). ``rewritten`` counts the
    envelopes it changed."""

    def __init__(self, upstream: str, data: Path) -> None:
        self.upstream = upstream.rstrip("/")
        self.key_id, self.seed = hub_key(data)
        self.relabel: dict[tuple[str, int], tuple[str, str]] = {}
        self.rewritten = 0
        self._renamed: dict[bytes, SignedEvent] = {}  # original event id -> what we serve

    async def start(self, port: int) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self._session = aiohttp.ClientSession(auto_decompress=False)
        self.url = f"http://127.0.0.1:{port}"

    async def close(self) -> None:
        await self._session.close()
        await self._runner.cleanup()

    def _rewrite(self, obj: dict) -> dict:
        ev = SignedEvent.from_wire(obj)
        c = ev.content
        target = self.relabel.get((c.room_id, c.seq))
        prev = self._renamed.get(c.prev)
        if target is None and prev is None:
            return obj
        new = replace(c, prev=prev.event_id if prev is not None else c.prev)
        if target is not None:
            new = replace(new, sender_user=target[0], sender_device=target[1])
        served = sign_event(self.seed, new, self.key_id)
        self._renamed[ev.event_id] = served
        self.rewritten += target is not None
        return served.to_wire()

    async def _forward(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() not in ("host", "content-length", "accept-encoding")}
        async with self._session.request(request.method, self.upstream + request.rel_url.path_qs,
                                         data=body or None, headers=headers) as up:
            raw = await up.read()
            status, ctype = up.status, up.headers.get("Content-Type", "")
        if status == 200 and "msgpack" in ctype and (request.path.endswith("/sync")
                                                     or request.path.endswith("/events")):
            answer = msgpack.unpackb(raw)
            if isinstance(answer.get("events"), list):
                answer["events"] = [self._rewrite(e) for e in answer["events"]]
                raw = msgpack.packb(answer)
        return web.Response(status=status, body=raw, content_type=ctype.split(";")[0] or None)
