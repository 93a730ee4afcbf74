"""Fixtures: two in-process homeservers ``a.test`` and ``b.test`` that know each other."""

from __future__ import annotations

import asyncio

import pytest

from .helpers import make_nodes


@pytest.fixture
async def pair(tmp_path):
    a, b = make_nodes(tmp_path, "a.test", "b.test")
    await a.start()
    await b.start()
    yield a, b
    await a.stop()
    await b.stop()


async def eventually(predicate, timeout: float = 10.0, interval: float = 0.02):
    """Await until ``predicate()`` (sync or async) is true; fails the test after ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(interval)


def pytest_configure(config):
    config.addinivalue_line("markers", "net: opens local sockets or starts processes")
