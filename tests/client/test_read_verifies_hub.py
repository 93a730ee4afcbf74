"""``confide read`` verifies every room event against the hub's published keys.

A relay sits between bob's device and the real homeserver and rewrites the
room events it carries (in sync answers and in history pages alike). Each
way a relay or a dishonest server can alter an event (a bad hub signature,
an unknown key id, a wrong event id, a broken chain: a wrong ``prev``
re-signed with the hub's own key, or an event left out) makes ``confide
read`` (the real CLI entry point, in-process) refuse the event, name what
failed in one sentence and exit 5, without printing the message. Once the
relay passes events through unchanged, the genuine event is read.

The relay's request log also shows that ``confide send`` to a known room
sends without a sync: it catches that room up from its history, so that a
member added meanwhile can read the message.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import aiohttp
import msgpack
import pytest
import structlog
from aiohttp import web
from aiohttp.test_utils import TestServer

from client.profile import MINIMUM, Profile
from client.sdk import Client, TextMessage
from federation import FEDERATION_KEYRING
from protocol.events import SignedEvent, sign_event
from server.cli import main
from tests.harness import PASSWORD

Tamper = Callable[[dict[str, Any]], dict[str, Any] | None]  # None: leave the event out


class TamperingRelay:
    """Forwards every request to ``upstream``; room events in ``/sync`` and
    ``/rooms/{id}/events`` answers go through :attr:`tamper` first."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.tamper: Tamper | None = None
        self.log: list[str] = []  # "METHOD /path" of every request
        self.app = web.Application()
        self.app.router.add_route("*", "/{tail:.*}", self._forward)
        self.server = TestServer(self.app)
        self._session: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    async def start(self) -> None:
        self._session = aiohttp.ClientSession()
        await self.server.start_server()

    async def close(self) -> None:
        await self.server.close()
        assert self._session is not None
        await self._session.close()

    async def _forward(self, request: web.Request) -> web.Response:
        assert self._session is not None
        self.log.append(f"{request.method} {request.path}")
        headers = {k: v for k, v in request.headers.items()
                   if k in ("Authorization", "Content-Type", "Accept")}
        async with self._session.request(request.method, self.upstream + request.path_qs,
                                         data=await request.read(), headers=headers) as up:
            body, status = await up.read(), up.status
            ctype = up.headers.get("Content-Type", "application/octet-stream")
        if status == 200 and self.tamper is not None and (
                request.path.endswith("/sync") or request.path.endswith("/events")):
            answer = msgpack.unpackb(body, raw=False)
            answer["events"] = [t for e in answer["events"] if (t := self.tamper(e)) is not None]
            body = msgpack.packb(answer, use_bin_type=True)
        return web.Response(status=status, body=body, headers={"Content-Type": ctype})


@pytest.fixture
async def setup(hs, monkeypatch):
    """alice on the homeserver directly; bob's profile talks to it through the relay."""
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=io.StringIO()))
    monkeypatch.setenv("CONFIDE_PASSPHRASE", "pp")
    relay = TamperingRelay(hs.url)
    await relay.start()
    alice = await hs.user("alice")
    profile = Profile.create(hs.tmp / "profile-bob", "pp", MINIMUM)
    bob = await Client.register(profile, relay.url, await hs.invite(), "bob", PASSWORD)
    bob.set_auto_join(True)  # not about invitations: join the Welcome at once
    await bob.close()
    room = await alice.create_room("tamper")
    await alice.invite(room, bob.user_id)
    await alice.send_text(room, "before any tampering")
    yield hs, relay, alice, room
    await relay.close()
    structlog.reset_defaults()


async def read(hs, capsys, room: str) -> tuple[int, str, str]:
    """``confide read`` for bob (its own event loop, in a thread, as from a shell)."""
    code = await asyncio.to_thread(main, ["read", "--profile", str(hs.tmp / "profile-bob"), room])
    out = capsys.readouterr()
    return code, out.out, out.err


def at(room: str, seq: int, change: Callable[[dict[str, Any]], dict[str, Any] | None]) -> Tamper:
    """Apply ``change`` to event ``seq`` of ``room`` only."""
    return lambda e: change(dict(e)) if (e["room_id"], e["seq"]) == (room, seq) else e


def flip_signature(e: dict[str, Any]) -> dict[str, Any]:
    e["hub_signature"] = bytes([e["hub_signature"][0] ^ 1]) + e["hub_signature"][1:]
    return e


def unknown_key_id(e: dict[str, Any]) -> dict[str, Any]:
    e["hub_key_id"] = "ed25519:notpublished"
    return e


def wrong_event_id(e: dict[str, Any]) -> dict[str, Any]:
    e["event_id"] = hashlib.sha256(b"another event").hexdigest()
    return e


def malformed(e: dict[str, Any]) -> dict[str, Any]:
    e["epoch"] = -1  # not a uint: the map does not decode as an event
    return e


CASES = {
    "malformed": (malformed, "it is not a well-formed event"),
    "bad_signature": (flip_signature, "the hub's signature does not verify"),
    "unknown_key_id": (unknown_key_id, "it names a hub key id that the hub does not publish"),
    "wrong_event_id": (wrong_event_id, "its event id is not the hash of its content"),
}


@pytest.mark.parametrize("case", sorted(CASES))
async def test_read_refuses_an_altered_event_and_names_the_failure(setup, capsys, case):
    hs, relay, alice, room = setup
    code, out, err = await read(hs, capsys, room)
    assert code == 0 and "before any tampering" in out and "refused" not in err
    change, what = CASES[case]
    seq = await alice.send_text(room, "the altered message")
    relay.tamper = at(room, seq, change)
    code, out, err = await read(hs, capsys, room)
    assert code == 5
    assert "the altered message" not in out
    refusals = [line for line in err.splitlines() if "was refused" in line]
    assert refusals == [f"confide: verification failed: Event {seq} of room {room} was refused: "
                        + refusals[0].split(" was refused: ", 1)[1]]
    assert what in refusals[0]
    # the refusal is kept: reading again without a fixed event says it again
    code, out, err = await read(hs, capsys, room)
    assert code == 5 and "the altered message" not in out and f"Event {seq} of room" in err
    # the genuine event, once served, is verified and read
    relay.tamper = None
    code, out, err = await read(hs, capsys, room)
    assert code == 0 and "the altered message" in out and "refused" not in err


async def test_read_refuses_a_resigned_event_whose_prev_breaks_the_chain(setup, capsys):
    hs, relay, alice, room = setup
    assert (await read(hs, capsys, room))[0] == 0
    signing = hs.app[FEDERATION_KEYRING].current()

    def relink(e: dict[str, Any]) -> dict[str, Any]:
        ev = SignedEvent.from_wire(e)
        forged = replace(ev.content, prev=hashlib.sha256(b"a history the hub never had").digest())
        return sign_event(signing.seed, forged, signing.key_id).to_wire()  # id and signature valid

    seq = await alice.send_text(room, "the relinked message")
    relay.tamper = at(room, seq, relink)
    code, out, err = await read(hs, capsys, room)
    assert code == 5 and "the relinked message" not in out
    assert (f"Event {seq} of room {room} was refused: it does not follow the room's previous "
            f"event (its prev is not the id of event {seq - 1}).") in err
    relay.tamper = None
    code, out, _ = await read(hs, capsys, room)
    assert code == 0 and "the relinked message" in out


async def test_read_refuses_events_after_one_left_out(setup, capsys):
    hs, relay, alice, room = setup
    assert (await read(hs, capsys, room))[0] == 0
    hidden = await alice.send_text(room, "the hidden message")
    after = await alice.send_text(room, "the message after it")
    relay.tamper = at(room, hidden, lambda e: None)
    code, out, err = await read(hs, capsys, room)
    assert code == 5
    assert "the hidden message" not in out and "the message after it" not in out
    assert (f"Event {after} of room {room} was refused: it does not follow the room's previous "
            f"event (events {hidden}..{hidden} are missing).") in err
    relay.tamper = None
    code, out, _ = await read(hs, capsys, room)
    assert code == 0 and "the hidden message" in out and "the message after it" in out


async def test_send_to_a_known_room_posts_once_and_never_syncs(setup, capsys):
    hs, relay, alice, room = setup
    assert (await read(hs, capsys, room))[0] == 0
    profile = str(hs.tmp / "profile-bob")
    relay.log.clear()
    assert await asyncio.to_thread(main, ["send", "--profile", profile, room, "one"]) == 0
    posts = [r for r in relay.log if r.startswith("POST ") and r.endswith("/send")]
    assert len(posts) == 1 and not any(r.endswith("/sync") for r in relay.log)
    carol = await hs.user("carol")
    await alice.invite(room, carol.user_id)  # a commit bob has not read
    relay.log.clear()
    assert await asyncio.to_thread(main, ["send", "--profile", profile, room, "two"]) == 0
    assert not any(r.endswith("/sync") for r in relay.log)
    assert any(r.startswith("GET ") and r.endswith("/events") for r in relay.log)
    await alice.sync()
    await carol.sync()
    assert [m.body for m in alice.messages(room) if isinstance(m, TextMessage)][-2:] == ["one", "two"]
    assert [m.body for m in carol.messages(room) if isinstance(m, TextMessage)] == ["two"]
