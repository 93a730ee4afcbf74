"""Finding 6 (SSRF and unbounded state), performed against real ``confide serve`` processes.

The attacks: make the server fetch a host and port of the attacker's choosing through
``GET /hub_key?server=X`` and the log relay ``/federation/{X}/_confide/log/v1/...``
(unconfigured names, ``/``, ``?``, ``..``, ``%2e%2e%2f``, a 64-byte label, U+2028, ...);
tell a closed port from an open one by the answer; make the server fetch keys for signed
requests from random origins; grow per-name state with thousands of names; flood the
outbound pool so local requests wait. A loopback :class:`~tests.security.conftest.Listener`
records every connection: the server must make none towards a name it was not configured
with. The cache-size check runs on the real application in-process (its size is not
observable from outside a process); everything else talks to ``confide serve`` over HTTP.

Imports: ``tests.harness`` (PeerProcess, free_port, http_msgpack, make_nodes, raw_request,
signed_headers) and this directory's conftest.
"""

from __future__ import annotations

import concurrent.futures
import time

import pytest

from crypto.primitives import ed25519_public_key
from crypto.rng import SeededRng
from federation import FEDERATION_PEER_KEYS
from protocol.api import CLIENT_PREFIX
from protocol.federation import FEDERATION_PREFIX, key_id_for, sign_request
from tests.harness import (
    PeerProcess,
    free_port,
    http_msgpack,
    make_nodes,
    raw_request,
    signed_headers,
)

from .conftest import Listener, get, quoted, register

pytestmark = pytest.mark.net

RELAY = CLIENT_PREFIX + "/federation/{server}/_confide/log/v1/checkpoint"


def _bad_names(listener_port: int) -> list[str]:
    return [
        f"127.0.0.1:{listener_port}",  # a well-formed name, but not a configured peer
        "evil.test", f"localhost:{listener_port}",
        f"127.0.0.1:{listener_port}/x", f"127.0.0.1:{listener_port}?a=b", "a.test/../b",
        "..", "%2e%2e%2f", "x" * 64 + ".test", "a\u2028b.test", "a\u202eb.test", "A.TEST",
        "", "a..b", "-a.test", "a.test:0", "a.test:99999", "a" * 231,
    ]


@pytest.fixture
def server(tmp_path):
    """``a.test`` with two configured peers: ``open.test`` (a listener that hangs up without an
    answer) and ``closed.test`` (a port nobody listens on)."""
    open_peer = Listener("close")
    port = free_port()
    proc = PeerProcess(tmp_path, "a.test", port, {"open.test": f"http://127.0.0.1:{open_peer.port}",
                                                  "closed.test": f"http://127.0.0.1:{free_port()}"},
                       federation="request_timeout = 3\nconnect_timeout = 2\n")
    proc.start()
    try:
        yield proc, open_peer
    finally:
        proc.stop()
        open_peer.close()


def test_bad_and_unconfigured_names_cause_no_connection(server, listener):
    proc, _ = server
    token = register(proc, "mallory")
    for name in _bad_names(listener.port):
        status, answer = get(f"{proc.url}{CLIENT_PREFIX}/hub_key?server={quoted(name)}", token)
        assert (status, answer["error"]["code"]) in ((400, "invalid_server_name"), (502, "peer_unreachable")), name
        status, answer = get(proc.url + RELAY.format(server=quoted(name)), token)
        assert status != 500 and answer["error"]["code"] in (
            "invalid_server_name", "peer_unreachable", "not_found"), name
    # without a token, even a well-formed name is refused before anything is fetched
    status, answer = get(f"{proc.url}{CLIENT_PREFIX}/hub_key?server=open.test")
    assert (status, answer["error"]["code"]) == (401, "unauthorized")
    assert listener.accepted == 0


def test_closed_and_open_ports_answer_the_same(server):
    proc, open_peer = server
    token = register(proc, "eve")
    answers = {}
    for name in ("open.test", "closed.test"):
        hub = get(f"{proc.url}{CLIENT_PREFIX}/hub_key?server={name}", token)
        relay = get(proc.url + RELAY.format(server=name), token)
        answers[name] = [(s, a["error"]["code"], a["error"]["message"].replace(name, "NAME"))
                         for s, a in (hub, relay)]
    assert answers["open.test"] == answers["closed.test"] == [
        (502, "peer_unreachable", "NAME cannot be reached")] * 2
    assert open_peer.accepted >= 1  # the configured peer was tried: the answers are the same anyway


def test_signed_requests_from_unknown_origins_fetch_nothing(server, listener):
    proc, _ = server
    seed = SeededRng("intruder")(32)
    key_id = key_id_for(ed25519_public_key(seed))
    target = FEDERATION_PREFIX + "/ping"
    for origin in (f"127.0.0.1:{listener.port}", "random.test", f"localhost:{listener.port}"):
        auth = sign_request(seed, key_id, "GET", target, b"", origin, "a.test", int(time.time() * 1000))
        status, answer = http_msgpack("GET", proc.url + target, b"", {"Authorization": auth.to_header()})
        assert (status, answer["error"]["code"]) == (403, "peer_denied")
    assert listener.accepted == 0


def test_outbound_pool_is_bounded_and_local_requests_answer(tmp_path):
    """A peer that never answers, 12 concurrent relay requests towards it: at most
    ``max_outbound`` (2) connections are made while the first two hang, and a local request
    is answered while the pool is full; then the peer hangs up and every request gets the
    one unreachable answer."""
    slow = Listener("hold")
    proc = PeerProcess(tmp_path, "a.test", free_port(), {"slow.test": f"http://127.0.0.1:{slow.port}"},
                       federation="max_outbound = 2\nrequest_timeout = 30\nconnect_timeout = 2\n")
    proc.start()
    try:
        token = register(proc, "flooder")  # the relay serves signed-in users only (finding 1)
        with concurrent.futures.ThreadPoolExecutor(12) as pool:
            flood = [pool.submit(get, proc.url + CLIENT_PREFIX + f"/federation/slow.test/_confide/log/v1/tile/0/{i:03d}",
                                 token) for i in range(12)]
            deadline = time.monotonic() + 20
            while slow.open_now < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert slow.open_now == 2
            status, answer = get(f"{proc.url}{CLIENT_PREFIX}/hub_key")  # local: no outbound work
            assert status == 200 and answer["server_name"] == "a.test"
            assert slow.accepted == 2 and not any(f.done() for f in flood)  # the other 10 wait in the pool
            slow.release()
            results = [f.result(timeout=60) for f in flood]
        assert {(s, a["error"]["code"]) for s, a in results} == {(502, "peer_unreachable")}
    finally:
        slow.close()
        proc.stop()


async def test_per_name_state_is_bounded(tmp_path):
    """4,000 distinct names: unconfigured origins leave no state at all; 4,000 configured
    peers that cannot be reached leave at most ``key_cache_servers`` entries (negative
    cached). In-process: the cache's size is not observable from outside the process."""
    closed = f"http://127.0.0.1:{free_port()}"
    (node,) = make_nodes(tmp_path, "a.test")
    node.peers = {f"n{i}.test": closed for i in range(4000)}
    node.fed = {"key_cache_servers": 64, "key_refetch_interval": 30}
    await node.start()
    try:
        seed = SeededRng("flood")(32)
        key_id = key_id_for(ed25519_public_key(seed))
        target = FEDERATION_PREFIX + "/ping"
        keys = node.app[FEDERATION_PEER_KEYS]
        for i in range(4000):
            auth = sign_request(seed, key_id, "GET", target, b"", f"u{i}.test", "a.test", int(time.time() * 1000))
            status, answer = await raw_request(node, "GET", target, signed_headers(auth.to_header(), False), None)
            assert (status, answer["error"]["code"]) == (403, "peer_denied")
        assert len(keys) == 0
        for i in range(4000):
            auth = sign_request(seed, key_id, "GET", target, b"", f"n{i}.test", "a.test", int(time.time() * 1000))
            status, answer = await raw_request(node, "GET", target, signed_headers(auth.to_header(), False), None)
            assert (status, answer["error"]["code"]) == (401, "unknown_key")
            assert len(keys) <= 64
        assert len(keys) == 64
    finally:
        await node.stop()
