"""Test harness for the homeserver: an in-process app on a fake clock, and client helpers.

``Harness`` wraps an aiohttp ``TestClient`` around :func:`server.app.create_app`
with a controllable clock and a fast password hasher. ``call`` sends msgpack
and decodes the answer. ``DeviceKit`` holds a device's Ed25519 seed and makes
its key registration and KeyPackages.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import msgpack
import nacl.pwhash
from aiohttp.test_utils import TestClient, TestServer

from crypto.mls.ciphersuite import get_suite
from crypto.mls.key_package_gen import generate_key_package
from crypto.mls.leaf_node import Lifetime
from crypto.mls.message import MLSMessage
from crypto.primitives import ed25519_public_key, ed25519_sign
from crypto.rng import SeededRng, system_rng
from protocol.api import CLIENT_PREFIX
from protocol.audit import decode_entry, device_registration_message
from protocol.ids import DeviceId, UserId
from server.app import create_app
from server.appkeys import AUDIT, DATABASE, TRANSPARENCY_LOG
from server.config import Config, LoginPolicy, Sessions
from server.services.devices import expected_credential
from server.services.passwords import PasswordHasher
from server.services.provisioning import create_invite

__all__ = ["FakeClock", "FastHasher", "Harness", "DeviceKit", "P", "MSGPACK_HEADERS"]

P = CLIENT_PREFIX
MSGPACK_HEADERS = {"Content-Type": "application/msgpack"}
T0 = 1_800_000_000.0


class FakeClock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FastHasher(PasswordHasher):
    """Argon2id at libsodium's minimum limits: the same code path, milliseconds per hash."""

    def __init__(self) -> None:
        super().__init__("interactive")
        self._ops = nacl.pwhash.argon2id.OPSLIMIT_MIN
        self._mem = nacl.pwhash.argon2id.MEMLIMIT_MIN


@dataclass
class Harness:
    client: TestClient
    clock: FakeClock
    config: Config

    @property
    def app(self):
        return self.client.server.app

    @property
    def log(self):
        return self.app[TRANSPARENCY_LOG]

    @property
    def db(self):
        return self.app[DATABASE]

    async def call(self, method: str, path: str, body: Any = None, token: str | None = None,
                   raw: bytes | None = None, headers: dict | None = None) -> tuple[int, Any]:
        h = dict(headers or {})
        if body is not None or raw is not None:
            h.setdefault("Content-Type", "application/msgpack")
        if token is not None:
            h["Authorization"] = f"Bearer {token}"
        data = raw if raw is not None else (msgpack.packb(body, use_bin_type=True) if body is not None else None)
        url = path if path.startswith("/_") else P + path
        resp = await self.client.request(method, url, data=data, headers=h)
        content = await resp.read()
        assert resp.headers.get("Content-Type", "").startswith("application/msgpack"), resp.headers
        return resp.status, msgpack.unpackb(content)

    async def invite(self, role: str = "client") -> str:
        return await create_invite(self.db, role, 3600, self.clock, system_rng)

    async def register(self, user: str, password: str = "correct horse", role: str = "client",
                       device_name: str = "phone") -> dict:
        code = await self.invite(role)
        status, body = await self.call("POST", "/register", {
            "invite": code, "user": user, "password": password, "device_name": device_name})
        assert status == 200, body
        return body

    async def login(self, user: str, password: str = "correct horse", **extra) -> tuple[int, dict]:
        return await self.call("POST", "/login", {"user": user, "password": password,
                                                  "device_name": "laptop", **extra})

    async def log_entries(self) -> list:
        await self.app[AUDIT].flush()
        size = self.log.size
        return [decode_entry(e) for e in await self.log.storage.read_entries(0, size)]


def make_config(tmp_path: Path, **overrides) -> Config:
    cfg = Config(data_dir=tmp_path / "data", server_name="test.example",
                 login=LoginPolicy(max_failures_per_user=3, max_failures_per_address=5, window=60),
                 sessions=Sessions(idle_timeout=3600, touch_interval=60))
    return replace(cfg, **overrides)


async def start(tmp_path: Path, clock: FakeClock | None = None, **overrides) -> Harness:
    clock = clock or FakeClock()
    config = make_config(tmp_path, **overrides)
    app = create_app(config, clock=clock, rng=system_rng, hasher=FastHasher())
    client = TestClient(TestServer(app))
    await client.start_server()
    return Harness(client, clock, config)


@dataclass
class DeviceKit:
    """A device's keys: registration body and KeyPackages for (user, device)."""

    user: str
    device: str
    seed: bytes = field(default_factory=lambda: system_rng(32))
    suite_id: int = 3

    @property
    def credential(self) -> bytes:
        return expected_credential(UserId.parse(self.user), DeviceId(self.device))

    @property
    def signature_key(self) -> bytes:
        return ed25519_public_key(self.seed)

    def registration(self) -> dict:
        msg = device_registration_message(self.user, self.device, self.signature_key, self.credential)
        return {"signature_key": self.signature_key, "credential": self.credential,
                "signature": ed25519_sign(self.seed, msg)}

    def key_package(self, last_resort: bool = False, lifetime: Lifetime | None = None,
                    identity: bytes | None = None, seed: bytes | None = None) -> bytes:
        suite = get_suite(self.suite_id)
        kp, _ = generate_key_package(
            suite, identity or f"{self.user}/{self.device}".encode(), SeededRng(system_rng(16)),
            lifetime=lifetime, last_resort=last_resort, signature_priv=seed or self.seed)
        return MLSMessage(kp).to_bytes()

