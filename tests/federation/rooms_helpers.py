"""SDK clients on the in-process federation nodes of :mod:`tests.federation.helpers`."""

from __future__ import annotations

import time

import pytest

from client.profile import MINIMUM, Profile
from client.sdk import Client, TextMessage
from crypto.rng import system_rng
from server.services.provisioning import create_invite

from .helpers import Node

__all__ = ["PASSWORD", "user_on", "texts", "sync_all", "people_fixture"]

PASSWORD = "correct horse battery"


async def user_on(node: Node, name: str, role: str = "clinician", clients: list | None = None) -> Client:
    """A registered user of ``node`` (keys and KeyPackages uploaded)."""
    invite = await create_invite(node.db, role, 3600, time.time, system_rng)
    profile = Profile.create(node.data.parent / f"profile-{node.name}-{name}", "pp", MINIMUM)
    c = await Client.register(profile, node.url, invite, name, PASSWORD, device_name="phone",
                              auto_add_own_devices=False)
    if clients is not None:
        clients.append(c)
    return c


def texts(client: Client, room: str) -> list[str]:
    return [m.body for m in client.messages(room) if isinstance(m, TextMessage)]


async def sync_all(*clients: Client, rounds: int = 1) -> None:
    for _ in range(rounds):
        for c in clients:
            await c.sync()


@pytest.fixture(name="people")
async def people_fixture(pair):
    """Nodes a.test (hub) and b.test with alice on a and bob on b; the clients list."""
    a, b = pair
    clients: list = []
    alice = await user_on(a, "alice", clients=clients)
    bob = await user_on(b, "bob", clients=clients)
    yield a, b, alice, bob, clients
    for c in clients:
        await c.close()
