"""Fixtures: two in-process homeservers ``a.test`` and ``b.test`` that know each other."""

from __future__ import annotations

import pytest

from tests.harness import make_nodes, user_on


@pytest.fixture
async def pair(tmp_path):
    a, b = make_nodes(tmp_path, "a.test", "b.test")
    await a.start()
    await b.start()
    yield a, b
    await a.stop()
    await b.stop()


@pytest.fixture
async def people(pair):
    """Nodes a.test (hub) and b.test with alice on a and bob on b; the clients list."""
    a, b = pair
    clients: list = []
    alice = await user_on(a, "alice", clients=clients)
    bob = await user_on(b, "bob", clients=clients)
    yield a, b, alice, bob, clients
    for c in clients:
        await c.close()
