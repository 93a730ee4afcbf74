"""Fixtures of the client tests: an in-process homeserver on loopback and SDK clients."""

from __future__ import annotations

import pytest

from tests.harness import Homeserver


@pytest.fixture
async def hs(tmp_path):
    h = await Homeserver.start(tmp_path)
    yield h
    await h.close()
