"""``ServerKeyring.reload_forever``: a failed reload is logged and the next one picks up the keys.

The failure is real: the key table is renamed away while the loop runs, so
``refresh`` fails in SQLite; it comes back with a rotated key, and the next
reload serves that key. ``sleep`` is injected (no waiting, no timing).
"""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from crypto.rng import SeededRng
from federation.keyring import RELOAD_INTERVAL, ServerKeyring, rotate
from server.storage import Database
from tests.harness import FakeClock

pytestmark = pytest.mark.timeout(60)


class _Stop(BaseException):
    pass


async def test_failed_reload_is_logged_and_the_loop_keeps_reloading(tmp_path):
    db = await Database.open(tmp_path / "db.sqlite")
    clock = FakeClock()
    keys = tmp_path / "keys"
    try:
        ring = await ServerKeyring.open(db, keys, "a.test", clock, SeededRng(1))
        first = ring.current()
        rotated: list[str] = []

        async def sleep(seconds: float) -> None:
            assert seconds == RELOAD_INTERVAL
            calls = len(rotated) + 1
            if calls == 1:  # before the first reload: the key table disappears
                async with db.statement() as conn:
                    await conn.execute("ALTER TABLE federation_server_keys RENAME TO hidden_keys")
                rotated.append("")
            elif calls == 2:  # after the failed reload: the table is back, with a new key
                async with db.statement() as conn:
                    await conn.execute("ALTER TABLE hidden_keys RENAME TO federation_server_keys")
                clock.advance(60)
                rotated.append(await rotate(db, keys, SeededRng(2), int(clock() * 1000), 10_000))
            else:
                raise _Stop

        with capture_logs() as logs, pytest.raises(_Stop):
            await ring.reload_forever(sleep=sleep)
    finally:
        await db.close()
    failures = [e for e in logs if e["event"] == "background_step_failed"]
    assert [(e["loop"], e["error_type"]) for e in failures] == [("federation_key_reload", "OperationalError")]
    assert ring.current().key_id == rotated[1] != first.key_id  # the reload after the failure worked
