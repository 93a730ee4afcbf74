"""In-process homeservers: the one way tests build and start a :func:`server.app.create_app`.

- :func:`build_app` (a fast password hasher, the clock and rng given) and :func:`serve`
  (a started loopback ``TestServer``, on a given port or a free one); :func:`free_port`.
- :class:`Harness` (``start``): an aiohttp ``TestClient`` on a fake clock; ``call`` sends
  msgpack and decodes the answer. :class:`DeviceKit` holds a device's Ed25519 seed and
  makes its key registration and KeyPackages.
- :class:`Homeserver`: an in-process server for SDK clients; :func:`register_client`
  is the one factory of registered SDK users (on any server: this one or a federation node).
- :class:`LoopbackServer`: the server in its own thread and loop, for synchronous callers
  (the CLI tests).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import msgpack
import nacl.pwhash
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from client.profile import MINIMUM, Profile
from client.sdk import Client
from crypto.mls.ciphersuite import get_suite
from crypto.mls.key_package_gen import generate_key_package
from crypto.mls.leaf_node import Lifetime
from crypto.mls.message import MLSMessage
from crypto.primitives import ed25519_public_key, ed25519_sign
from crypto.rng import SeededRng, system_rng
from protocol.api import CLIENT_PREFIX
from protocol.audit import decode_entry, device_registration_message, sign_device_approval
from protocol.ids import DeviceId, UserId
from protocol.trust import anchor_of, format_invite
from server.app import create_app
from server.appkeys import AUDIT, DATABASE, TRANSPARENCY_LOG
from server.config import Auth, Config, LoginPolicy, SessionPolicy
from server.services.devices import expected_credential
from server.services.passwords import PasswordHasher
from server.services.provisioning import create_invite
from server.trust import stored_document

__all__ = ["NO_MFA", "FakeClock", "FastHasher", "Harness", "DeviceKit", "P", "MSGPACK_HEADERS", "T0",
           "PASSWORD", "free_port", "build_app", "serve", "make_config", "sdk_config", "start",
           "register_client", "server_anchor", "anchored_invite", "Homeserver", "LoopbackServer"]

P = CLIENT_PREFIX
MSGPACK_HEADERS = {"Content-Type": "application/msgpack"}
T0 = 1_800_000_000.0
#: The password of every SDK user the harness registers.
PASSWORD = "correct horse battery"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


def build_app(config: Config, clock=time.time, rng=system_rng) -> web.Application:
    """The real application for ``config`` with a fast password hasher."""
    return create_app(config, clock=clock, rng=rng, hasher=FastHasher())


async def serve(app: web.Application, port: int | None = None) -> TestServer:
    """``app`` started on 127.0.0.1 (on ``port``, else on a port the OS picks)."""
    server = TestServer(app, host="127.0.0.1", port=port)
    await server.start_server()
    return server


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
            "invite": code, "user": user, "password": password})
        assert status == 200, body
        return body

    async def login(self, user: str, password: str = "correct horse", **extra) -> tuple[int, dict]:
        return await self.call("POST", "/login", {"user": user, "password": password, **extra})

    async def log_entries(self) -> list:
        await self.app[AUDIT].flush()
        size = self.log.size
        return [decode_entry(e) for e in await self.log.storage.read_opened_range(0, size)]


#: MFA optional for every role: the default (required of admin, clinician and staff) is the
#: subject of tests/security/test_mfa.py and tests/server/test_mfa.py, which set it themselves.
NO_MFA = Auth(mfa_required_roles=())


def make_config(tmp_path: Path, **overrides) -> Config:
    cfg = Config(data_dir=tmp_path / "data", server_name="test.example",
                 login=LoginPolicy(max_failures_per_user=3, max_failures_per_address=5, window=60),
                 sessions=SessionPolicy(idle_timeout=3600, touch_interval=60), auth=NO_MFA)
    return replace(cfg, **overrides)


def sdk_config(tmp_path: Path) -> Config:
    """The default configuration, as the SDK and CLI tests run it (MFA optional)."""
    return Config(data_dir=tmp_path / "data", server_name="test.example", auth=NO_MFA)


async def start(tmp_path: Path, clock: FakeClock | None = None, **overrides) -> Harness:
    clock = clock or FakeClock()
    config = make_config(tmp_path, **overrides)
    client = TestClient(await serve(build_app(config, clock)))
    await client.start_server()
    return Harness(client, clock, config)


async def server_anchor(db) -> str:
    """The trust anchor of the running server whose database is ``db`` (the document it
    recorded at start), as ``confide admin anchor`` prints it."""
    async with db.read() as conn:
        doc = await stored_document(conn)
    assert doc is not None, "the server has not started"
    return anchor_of(doc)


async def anchored_invite(db, role: str = "client") -> str:
    """A new invite with the server's trust anchor, ``CODE#ANCHOR`` (``confide admin invite``)."""
    return format_invite(await create_invite(db, role, 3600, time.time, system_rng),
                         await server_anchor(db))


async def register_client(db, url: str, profile_dir: Path, name: str, *, role: str = "client",
                          device: str = "phone", invite: str | None = None, auto_join: bool = True,
                          **kw) -> Client:
    """A registered SDK user of the server at ``url``: an invite (``invite``, else one made
    in its database ``db``, with the server's anchor), a fresh profile in ``profile_dir``,
    this device's keys and KeyPackages uploaded. ``auto_join`` (the profile option, kept in
    the profile): tests that are not about invitations join every Welcome at once; those that
    are pass False."""
    if invite is None:
        invite = await anchored_invite(db, role)
    profile = Profile.create(profile_dir, "pp", MINIMUM)
    client = await Client.register(profile, url, invite, name, PASSWORD, device_name=device, **kw)
    client.set_auto_join(auto_join)
    return client


@dataclass
class Homeserver:
    """An in-process server for SDK clients; closes the clients it made (``close``)."""

    server: TestServer
    tmp: Path
    clients: list[Client] = field(default_factory=list)

    @classmethod
    async def start(cls, tmp_path: Path) -> Homeserver:
        return cls(await serve(build_app(sdk_config(tmp_path))), tmp_path)

    @property
    def url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    @property
    def app(self):
        return self.server.app

    @property
    def data_dir(self) -> Path:
        return self.tmp / "data"

    async def invite(self, role: str = "client") -> str:
        """An invite with this server's trust anchor (``CODE#ANCHOR``)."""
        return await anchored_invite(self.app[DATABASE], role)

    async def anchor(self) -> str:
        return await server_anchor(self.app[DATABASE])

    async def user(self, name: str, device: str = "phone", **kw) -> Client:
        """A registered user with this device's keys and KeyPackages uploaded."""
        c = await register_client(self.app[DATABASE], self.url, self.tmp / f"profile-{name}-{device}",
                                  name, device=device, **kw)
        self.clients.append(c)
        return c

    async def device(self, name: str, device: str, *, approve: bool = True, **kw) -> Client:
        """Another device of an existing user (password login into a fresh profile), approved
        by that user's latest other client here after comparing codes, unless ``approve`` is False."""
        auto_join = kw.pop("auto_join", True)
        profile = Profile.create(self.tmp / f"profile-{name}-{device}", "pp", MINIMUM)
        kw.setdefault("anchor", await self.anchor())
        c = await Client.login(profile, self.url, name, PASSWORD, device_name=device, **kw)
        c.set_auto_join(auto_join)
        self.clients.append(c)
        if approve:
            approver = next(x for x in reversed(self.clients) if x is not c
                            and x.user_id.split(":")[0] == f"@{name}")
            await approver.approve_device(c.device_id, c.own_code)
        return c

    async def close(self) -> None:
        for c in self.clients:
            await c.close()
        await self.server.close()


class LoopbackServer:
    """The homeserver in its own thread and event loop, on 127.0.0.1 and a free port."""

    def __init__(self, tmp_path: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.app = build_app(sdk_config(tmp_path))
        self.runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self._call(self.runner.setup())
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        self._call(site.start())
        port = self.runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"

    def _call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def invite(self) -> str:
        return self._call(anchored_invite(self.app[DATABASE], "client"))

    def stop(self) -> None:
        self._call(self.runner.cleanup())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


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

    def approval(self, device: str, signature_key: bytes, time_ms: int) -> dict:
        """The body of ``POST /devices/{device}/approve``, this device approving ``device``."""
        entry = sign_device_approval(self.seed, time_ms, self.user, device, signature_key, self.device)
        return {"time": time_ms, "signature": entry.signature}

    def key_package(self, last_resort: bool = False, lifetime: Lifetime | None = None,
                    identity: bytes | None = None, seed: bytes | None = None) -> bytes:
        suite = get_suite(self.suite_id)
        kp, _ = generate_key_package(
            suite, identity or f"{self.user}/{self.device}".encode(), SeededRng(system_rng(16)),
            lifetime=lifetime, last_resort=last_resort, signature_priv=seed or self.seed)
        return MLSMessage(kp).to_bytes()

