"""A database fault during a request: 503 ``storage_unavailable`` in the normal error body, logged.

The faults are real SQLite failures of the running app's own connections:
another connection to the same file holds the write lock while the app's busy
timeout is 0 ("database is locked"), or the connection is switched to
``query_only`` ("attempt to write a readonly database").
"""

from __future__ import annotations

import sqlite3

import pytest
from structlog.testing import capture_logs

from server.appkeys import TRANSPARENCY_LOG
from tests.harness import P

pytestmark = pytest.mark.timeout(60)

PASSWORD = "a very secret passphrase"


async def _pragma(hs, sql: str) -> None:
    for conn in (hs.db.conn, hs.app[TRANSPARENCY_LOG].storage.conn):
        await conn.execute(sql)


async def _register(hs, code: str) -> tuple[int, dict]:
    status, body = await hs.call("POST", "/register", {
        "invite": code, "user": "alice", "password": PASSWORD})
    return status, body


def _assert_storage_unavailable(status: int, body: dict, logs: list[dict]) -> None:
    assert status == 503
    assert body["error"]["code"] == "storage_unavailable"
    assert set(body["error"]) == {"code", "message"}
    assert "Traceback" not in body["error"]["message"] and "sqlite" not in body["error"]["message"].lower()
    faults = [e for e in logs if e["event"] == "storage_unavailable"]
    assert len(faults) == 1 and faults[0]["log_level"] == "error"
    assert faults[0]["route"] == P + "/register" and faults[0]["error_type"] == "OperationalError"
    text = repr(logs)
    assert PASSWORD not in text and "alice" not in text


async def test_database_locked_answers_storage_unavailable_and_keeps_nothing(hs):
    code = await hs.invite()
    await _pragma(hs, "PRAGMA busy_timeout=0")
    blocker = sqlite3.connect(str(hs.db.path), isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # SQLite's write lock, held by another connection
    try:
        with capture_logs() as logs:
            status, body = await _register(hs, code)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    _assert_storage_unavailable(status, body, logs)
    assert logs[[e["event"] for e in logs].index("storage_unavailable")]["sqlite_error"] == "SQLITE_BUSY"

    await _pragma(hs, "PRAGMA busy_timeout=10000")
    status, body = await _register(hs, code)  # the invite was not used up by the failed request
    assert status == 200, body


async def test_read_only_database_answers_storage_unavailable(hs):
    code = await hs.invite()
    await _pragma(hs, "PRAGMA query_only=ON")
    with capture_logs() as logs:
        status, body = await _register(hs, code)
    _assert_storage_unavailable(status, body, logs)
    await _pragma(hs, "PRAGMA query_only=OFF")
    assert (await _register(hs, code))[0] == 200
