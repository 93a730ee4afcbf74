"""Federation components on their own: replay cache, peer policy, peer-key cache,
discovery (static table, well-known, cache), keyring, admin commands."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from crypto.primitives import ed25519_public_key
from crypto.rng import SeededRng
from federation.discovery import Discovery
from federation.keyring import ServerKeyring, rotate
from federation.peer_keys import PeerKeys
from federation.policy import PeerPolicy
from federation.replay import REPLAY_MARGIN_MS, ReplayCache
from protocol.federation import (
    KeyExpired,
    PeerDenied,
    PeerUnreachable,
    ReplayCacheFull,
    Replayed,
    ServerKey,
    ServerKeys,
    UnknownKey,
    key_id_for,
)
from server.storage import Database

REPO = Path(__file__).resolve().parents[2]


class Clock:
    def __init__(self, now=1_800_000_000.0):
        self.now = now

    def __call__(self):
        return self.now


def test_replay_cache_window_and_bound():
    cache = ReplayCache(capacity=2, window_ms=1000)
    cache.check("a", b"s1", 0, 0)
    cache.add("a", b"s1", 0)
    with pytest.raises(Replayed):
        cache.check("a", b"s1", 0, 500)
    cache.check("b", b"s1", 0, 500)  # another origin
    cache.add("b", b"s1", 0)
    with pytest.raises(ReplayCacheFull):
        cache.check("c", b"s2", 0, 999 + REPLAY_MARGIN_MS)  # kept past ts + window
    cache.check("c", b"s2", 600, 1000 + REPLAY_MARGIN_MS)  # both expired at ts + window + margin
    assert len(cache) == 0


def test_peer_policy():
    # only configured peers: the peer table, or the allow-list when there is one (finding 6)
    assert not PeerPolicy(True).allowed("x.test")
    assert PeerPolicy(True, peers=["x.test"]).allowed("x.test")
    assert not PeerPolicy(True, allow=["y.test"], peers=["x.test"]).allowed("x.test")
    assert not PeerPolicy(False, peers=["x.test"]).allowed("x.test")
    assert not PeerPolicy(True, deny=["x.test"], peers=["x.test"]).allowed("x.test")
    p = PeerPolicy(True, allow=["y.test"], deny=["y.test"])
    assert not p.allowed("y.test") and not p.allowed("z.test")
    with pytest.raises(PeerDenied):
        p.check("z.test")


def _doc(seed: bytes, name="a.test", valid_from=0) -> ServerKeys:
    kid = key_id_for(ed25519_public_key(seed))
    return ServerKeys.build(name, {kid: ServerKey(ed25519_public_key(seed), valid_from)}, {kid: seed}, valid_from)


async def test_peer_keys_cache_and_refetch():
    clock = Clock()
    seeds = [bytes([1]) * 32]
    calls = []

    async def fetch(server):
        calls.append(server)
        if not seeds:
            raise PeerUnreachable("down")
        return _doc(seeds[-1])

    keys = PeerKeys(fetch, clock, ttl=3600, refetch_interval=30)
    kid1 = key_id_for(ed25519_public_key(seeds[0]))
    assert await keys.public_key("a.test", kid1, 5) == ed25519_public_key(seeds[0])
    assert await keys.public_key("a.test", kid1, 5) and calls == ["a.test"]  # cached
    seeds.append(bytes([2]) * 32)
    kid2 = key_id_for(ed25519_public_key(seeds[-1]))
    with pytest.raises(UnknownKey):  # within the refetch interval: no new fetch
        await keys.public_key("a.test", kid2, 5)
    assert calls == ["a.test"]
    clock.now += 31
    assert await keys.public_key("a.test", kid2, 5) == ed25519_public_key(seeds[-1])
    with pytest.raises(KeyExpired):
        await keys.public_key("a.test", kid2, -1)
    seeds.clear()
    clock.now += 3601  # stale and the peer is down: unknown_key, not an exception of another kind
    with pytest.raises(UnknownKey):
        await keys.public_key("b.test", kid2, 5)


class _Resp:
    def __init__(self, status, body):
        self.status = status
        self._body = body
        self.content = self

    async def read(self, n=-1):
        return self._body[: n if n >= 0 else None]

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        return False


class _Session:
    def __init__(self, answers):
        self.answers = answers
        self.urls = []

    def get(self, url, **kwargs):
        self.urls.append(url)
        status, body = self.answers[url]
        if isinstance(body, Exception):
            raise body
        return _Resp(status, body)


async def test_discovery():
    clock = Clock()
    session = _Session({
        "https://b.test/.well-known/confide/server": (200, json.dumps({"base_url": "https://fed.b.test:8448"}).encode()),
        "https://c.test/.well-known/confide/server": (404, b""),
        "https://d.test/.well-known/confide/server": (200, b'{"base_url": "https://x/path"}'),
        "https://e.test/.well-known/confide/server": (500, b""),
        "https://f.test/.well-known/confide/server": (200, b"[" * 5000),
        "https://g.test/.well-known/confide/server": (0, OSError("refused")),
    })
    d = Discovery(session, {"a.test": "http://127.0.0.1:1"}, ttl=60, clock=clock)
    assert await d.base_url("a.test") == "http://127.0.0.1:1" and session.urls == []
    assert await d.base_url("b.test") == "https://fed.b.test:8448"
    assert await d.base_url("b.test") == "https://fed.b.test:8448" and len(session.urls) == 1
    clock.now += 61
    await d.base_url("b.test")
    assert len(session.urls) == 2
    assert await d.base_url("c.test") == "https://c.test"
    for name in ("d.test", "e.test", "f.test", "g.test"):
        with pytest.raises(PeerUnreachable):
            await d.base_url(name)


async def test_keyring_first_key_rotation_and_reload(tmp_path):
    db = await Database.open(tmp_path / "db.sqlite")
    clock = Clock()
    try:
        ring = await ServerKeyring.open(db, tmp_path / "keys", "a.test", clock, SeededRng(1))
        first = ring.current()
        again = await ServerKeyring.open(db, tmp_path / "keys", "a.test", clock, SeededRng(2))
        assert again.current() == first  # reused, not regenerated
        new_id = await rotate(db, tmp_path / "keys", SeededRng(3), int(clock() * 1000), 10_000)
        assert ring.current() == first  # until it reloads
        await ring.refresh()
        assert ring.current().key_id == new_id
        doc = ring.document()
        doc.verify("a.test")
        assert doc.keys[first.key_id].valid_until == int(clock() * 1000) + 10_000
    finally:
        await db.close()


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "server.cli", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=60)


async def test_admin_commands(tmp_path):
    from federation import store

    data = tmp_path / "data"
    data.mkdir()
    db = await Database.open(data / "confide.sqlite")
    try:
        ring = await ServerKeyring.open(db, data / "keys", "a.test", Clock(), SeededRng(9))
        async with db.transaction() as tx:
            for i in range(3):
                await store.enqueue(tx, "b.test", "test.note", b"x", 1000 + i)
            await store.record_failure(tx, "b.test", "peer_unreachable", lambda n: 4_102_444_800_000)
    finally:
        await db.close()
    out = _cli("admin", "federation", "--data", str(data))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["destination", "queued", "oldest", "attempts", "next_retry", "parked",
                                "last_error"]
    assert lines[1].split() == ["b.test", "3", "1970-01-01T00:00:01Z", "1", "2100-01-01T00:00:00Z", "0",
                                "peer_unreachable"]
    out = _cli("admin", "federation", "parked", "--data", str(data))
    assert out.returncode == 0 and out.stdout.strip() == "no parked transactions", out.stderr
    out = _cli("admin", "federation", "retry", "t-none", "--data", str(data))
    assert out.returncode == 1 and out.stderr.strip() == (
        "confide admin federation retry: no parked transaction 't-none'")
    out = _cli("admin", "rotate-key", "--data", str(data), "--overlap", "0")
    assert out.returncode == 0, out.stderr
    new_id = out.stdout.strip()
    assert new_id.startswith("ed25519:") and new_id != ring.current().key_id
    assert _cli("admin", "rotate-key", "--data", str(tmp_path / "none")).returncode == 2
