"""``run_forever``: a failing step is logged with the loop's name and the loop keeps running.

Time is injected: ``sleep`` is a fake that records each interval and ends the
loop (by raising a ``BaseException`` of its own) after a set number of calls,
so nothing waits and nothing is timed.
"""

from __future__ import annotations

import asyncio

import pytest
from structlog.testing import capture_logs

from server.background import run_forever

pytestmark = pytest.mark.timeout(30)


class _Stop(BaseException):
    pass


class FakeSleep:
    def __init__(self, calls: int) -> None:
        self.calls, self.intervals = calls, []

    async def __call__(self, seconds: float) -> None:
        self.intervals.append(seconds)
        if len(self.intervals) > self.calls:
            raise _Stop


async def test_a_failing_step_is_logged_and_the_loop_goes_on():
    ran: list[int] = []

    async def step() -> None:
        ran.append(len(ran))
        if len(ran) in (1, 3):
            raise RuntimeError("step broke")

    sleep = FakeSleep(calls=4)
    with capture_logs() as logs, pytest.raises(_Stop):
        await run_forever("unit_loop", step, 7.5, sleep=sleep)
    assert ran == [0, 1, 2, 3]  # one interval, then a step per interval: failures did not stop it
    assert sleep.intervals == [7.5] * 5
    failures = [e for e in logs if e["event"] == "background_step_failed"]
    assert [(e["loop"], e["error_type"], e["log_level"]) for e in failures] == [
        ("unit_loop", "RuntimeError", "error")] * 2


async def test_first_step_runs_at_once_when_asked():
    ran: list[int] = []

    async def step() -> None:
        ran.append(1)

    sleep = FakeSleep(calls=1)
    with pytest.raises(_Stop):
        await run_forever("unit_loop", step, 2.0, sleep=sleep, first="step")
    assert ran == [1, 1] and sleep.intervals == [2.0, 2.0]


async def test_cancellation_ends_the_loop_and_is_not_logged():
    started = asyncio.Event()

    async def step() -> None:
        started.set()
        await asyncio.Event().wait()  # cancelled while in the step

    with capture_logs() as logs:
        task = asyncio.create_task(run_forever("unit_loop", step, 1.0, sleep=FakeSleep(calls=10), first="step"))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert not [e for e in logs if e["event"] == "background_step_failed"]


async def test_first_must_be_sleep_or_step():
    async def step() -> None:
        pass

    with pytest.raises(ValueError):
        await run_forever("unit_loop", step, 1.0, first="later")
