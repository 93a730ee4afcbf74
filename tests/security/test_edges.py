"""Finding 14 (noise and edges), each performed against the server.

- A WebSocket client that vanishes (TCP reset) while the server pushes a large sync
  answer to it: against ``confide serve``, whose log must hold no ``unhandled_error``.
- Device names with U+202E, only U+200B, U+0085, U+2028 (and a user name with U+202E)
  at ``/register`` and ``/login`` of ``confide serve``: refused with a typed code, and
  nothing stored (the invite still works, the account keeps one device).
- The federation clock-skew window: in-process on the real application, because time
  is injected there (a process runs on the wall clock, so "exactly the limit" cannot be
  hit from outside): ``|now - ts|`` equal to the limit is refused, one millisecond less
  is accepted, and a replay is refused as ``replayed`` up to the window's last millisecond.

Imports: ``tests.harness`` (ServerProcess, FakeClock, make_nodes, raw_request,
signed_headers, http_msgpack) and this directory's conftest (``get``).
"""

from __future__ import annotations

import socket
import struct
import time

import msgpack
import pytest

from federation import FEDERATION_KEYRING
from protocol.api import CLIENT_PREFIX
from protocol.federation import FEDERATION_PREFIX, sign_request
from tests.harness import (
    FakeClock,
    ServerProcess,
    box,
    http_msgpack,
    make_nodes,
    raw_request,
    signed_headers,
    txn,
)

from .conftest import get

pytestmark = pytest.mark.net

PASSWORD = "a long enough password"
BAD_DEVICE_NAMES = ["a\u202eb", "\u200b", "\u200b\u200b\u200b", "\u0085", "\u2028", "lap\u2028top", "\u2066x\u2069"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    proc = ServerProcess(tmp_path_factory.mktemp("edges"))
    proc.start()
    yield proc
    proc.stop()


def _invite(server: ServerProcess) -> str:
    return server.admin("invite", "--role", "client").strip().split()[-1]


def _register(server: ServerProcess, invite: str, user: str, device_name: str) -> tuple[int, dict]:
    body = msgpack.packb({"invite": invite, "user": user, "password": PASSWORD, "device_name": device_name})
    return http_msgpack("POST", f"{server.url}{CLIENT_PREFIX}/register", body)


def test_names_with_bidi_controls_separators_or_nothing_visible_are_refused(server):
    invite = _invite(server)
    for name in BAD_DEVICE_NAMES:
        status, answer = _register(server, invite, "nora", name)
        assert (status, answer["error"]["code"]) == (400, "invalid_name"), name
    status, answer = _register(server, invite, "no\u202era", "phone")
    assert (status, answer["error"]["code"]) == (400, "invalid_identifier")
    status, answer = _register(server, invite, "nora", "phone")  # no name is stored (finding 9)
    assert (status, answer["error"]["code"]) == (400, "device_name_not_accepted")
    status, answer = _register(server, invite, "nora", "")  # nothing was stored or consumed
    assert status == 200, answer
    token, device = answer["access_token"], answer["device_id"]
    for name in BAD_DEVICE_NAMES:
        body = msgpack.packb({"user": "nora", "password": PASSWORD, "device_name": name})
        status, answer = http_msgpack("POST", f"{server.url}{CLIENT_PREFIX}/login", body)
        assert (status, answer["error"]["code"]) == (400, "invalid_name"), name
    status, answer = _get(server, "/devices", token)
    assert status == 200 and answer["devices"] == [d for d in answer["devices"] if "display_name" not in d]
    assert [d["device_id"] for d in answer["devices"]] == [device]


def _get(server: ServerProcess, path: str, token: str) -> tuple[int, dict]:
    return get(server.url + CLIENT_PREFIX + path, token)


def test_websocket_client_gone_during_a_push_is_not_an_error(server):
    _, answer = _register(server, _invite(server), "wes", "")
    token, user, device = answer["access_token"], answer["user_id"], answer["device_id"]
    payload = box(b"\x01" * (200 * 1024))
    for i in range(10):  # ~7.5 MB waiting in the device's own inbox
        body = msgpack.packb({"txn_id": txn(f"fill{i}"), "messages": [
            {"user_id": user, "device_id": device, "payload": payload}] * 3})
        status, _ = http_msgpack("POST", f"{server.url}{CLIENT_PREFIX}/sendToDevice", body,
                                 {"Authorization": f"Bearer {token}"})
        assert status == 200
    before = server.log_text()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", server.port))
    sock.sendall((f"GET {CLIENT_PREFIX}/sync/ws?limit=30 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                  f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Bearer {token}\r\n\r\n"
                  ).encode())
    assert sock.recv(12) == b"HTTP/1.1 101"  # the push starts; this client reads no further
    time.sleep(0.5)  # not a timing assert: lets the server fill the socket's buffers
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()  # a reset in the middle of the push
    assert _get(server, "/account/whoami", token)[0] == 200  # the server still answers
    time.sleep(0.5)
    new = server.log_text()[len(before):]
    assert "unhandled_error" not in new and "Traceback" not in new


async def test_skew_limit_is_exclusive_and_the_replay_window_covers_it(tmp_path):
    clock = FakeClock(time.time() - 1000)
    a, b = make_nodes(tmp_path, "a.test", "b.test")
    a.clock = b.clock = clock
    await a.start()
    await b.start()
    clock.advance(1000)  # a's key is valid from 1000 s ago, so ts = now - skew is in its validity
    try:
        key = a.app[FEDERATION_KEYRING].current()
        target = FEDERATION_PREFIX + "/ping"
        now = int(clock() * 1000)
        skew = 300_000

        async def ping(ts: int) -> tuple[int, str | None]:
            auth = sign_request(key.seed, key.key_id, "GET", target, b"", "a.test", "b.test", ts)
            hdr = signed_headers(auth.to_header(), False)
            status, answer = await raw_request(b, "GET", target, hdr, None)
            return status, answer.get("error", {}).get("code")

        assert await ping(now - skew) == (401, "clock_skew")
        assert await ping(now + skew) == (401, "clock_skew")
        ts = now - skew + 2
        auth = sign_request(key.seed, key.key_id, "GET", target, b"", "a.test", "b.test", ts)
        hdr = signed_headers(auth.to_header(), False)
        assert (await raw_request(b, "GET", target, hdr, None))[0] == 200
        clock.advance(0.001)  # now - ts = skew - 1: still inside the window, so its entry is kept
        status, answer = await raw_request(b, "GET", target, hdr, None)
        assert (status, answer["error"]["code"]) == (401, "replayed")
        clock.advance(0.001)  # now - ts = skew: outside, refused by the skew check
        status, answer = await raw_request(b, "GET", target, hdr, None)
        assert (status, answer["error"]["code"]) == (401, "clock_skew")
    finally:
        await a.stop()
        await b.stop()
