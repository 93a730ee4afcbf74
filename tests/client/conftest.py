"""Fixtures of the client tests: an in-process homeserver on loopback and SDK clients."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from client.profile import MINIMUM, Profile
from client.sdk import Client
from crypto.rng import system_rng
from server.app import create_app
from server.appkeys import DATABASE
from server.config import Config
from server.services.provisioning import create_invite
from tests.server.helpers import FastHasher

PASSWORD = "correct horse battery"


@dataclass
class Homeserver:
    server: TestServer
    tmp: Path
    clients: list[Client] = field(default_factory=list)

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
        return await create_invite(self.app[DATABASE], role, 3600, time.time, system_rng)

    async def user(self, name: str, device: str = "phone", **kw) -> Client:
        """A registered user with this device's keys and KeyPackages uploaded."""
        profile = Profile.create(self.tmp / f"profile-{name}-{device}", "pp", MINIMUM)
        c = await Client.register(profile, self.url, await self.invite(), name, PASSWORD,
                                  device_name=device, **kw)
        self.clients.append(c)
        return c

    async def device(self, name: str, device: str, **kw) -> Client:
        """Another device of an existing user (password login into a fresh profile)."""
        profile = Profile.create(self.tmp / f"profile-{name}-{device}", "pp", MINIMUM)
        c = await Client.login(profile, self.url, name, PASSWORD, device_name=device, **kw)
        self.clients.append(c)
        return c


def make_config(tmp_path: Path) -> Config:
    return replace(Config(data_dir=tmp_path / "data", server_name="test.example"))


@pytest.fixture
async def hs(tmp_path):
    app = create_app(make_config(tmp_path), hasher=FastHasher())
    server = TestServer(app)
    await server.start_server()
    h = Homeserver(server, tmp_path)
    yield h
    for c in h.clients:
        await c.close()
    await server.close()


def pytest_configure(config):
    config.addinivalue_line("markers", "net: opens local sockets or starts processes")
