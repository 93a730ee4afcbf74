"""End-to-end fixtures: one ``confide serve`` process for the session, CLI clients as processes.

The session's :class:`~tests.e2e.harness.Practice` holds the server (started once, on a
fixed port; the crash scenario kills and restarts it on the same data dir) and records
every plaintext sent. ``test_no_plaintext.py`` runs last (see
:func:`pytest_collection_modifyitems`) and searches the data dir and the server's log
for all of them.
"""

from __future__ import annotations

import pytest

from tests.harness import Practice, ServerProcess

#: Modules that must run after every scenario (they inspect what the scenarios left behind).
LAST = ("test_no_plaintext.py",)


def pytest_configure(config):
    config.addinivalue_line("markers", "e2e: end-to-end: a real server process and CLI processes")


def pytest_collection_modifyitems(session, config, items):
    items.sort(key=lambda item: item.path.name in LAST)  # stable: others keep their order


@pytest.fixture(scope="session")
def practice(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    server = ServerProcess(root)
    server.start()
    p = Practice(server, root)
    yield p
    server.stop()


@pytest.fixture(scope="session")
def carl(practice):
    """A clinician, made by ``confide admin create-user``, on his laptop."""
    return practice.create_user("carl", "clinician")


@pytest.fixture(scope="session")
def pat(practice):
    """A client, registered from an invite, on her phone."""
    return practice.register("pat", "client")
