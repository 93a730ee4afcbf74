"""Helpers of the security tests (tests/security/): a loopback listener that records every
connection made to it, and one registered account's token on a ``confide serve`` process."""

from __future__ import annotations

import socket
import threading
import urllib.error
import urllib.parse
import urllib.request

import msgpack
import pytest

from tests.harness import PeerProcess, http_msgpack


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
                          "password": "a long enough password", "device_name": "phone"})
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
