"""Fixtures of the homeserver tests: a started in-process server per test."""

from __future__ import annotations

import pytest

from tests.harness import FakeClock, start


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
async def hs(tmp_path, clock):
    harness = await start(tmp_path, clock)
    yield harness
    await harness.client.close()
