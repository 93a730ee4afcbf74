"""Background loops: one helper that runs a step forever, logs every failure and keeps going.

:func:`run_forever` is how the server's periodic work runs (the maintenance
pass of :mod:`server.app`, the federation key reload of
:mod:`federation.keyring`, the pruning of :mod:`federation.setup`): a step
that raises is logged as ``background_step_failed`` at error level with the
loop's name, the exception type and its traceback (Confide's exceptions carry
no plaintext; no argument or local variable is logged), and the loop carries
on at its next interval. Nothing is swallowed silently. Cancellation stops the
loop (it is how the app's cleanup ends it). ``sleep`` is injected (tests pass
one that counts calls instead of waiting).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Literal, NoReturn

import structlog

__all__ = ["run_forever"]

log = structlog.get_logger("confide.background")


async def run_forever(
    name: str,
    step: Callable[[], Awaitable[object]],
    interval: float,
    *,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    first: Literal["sleep", "step"] = "sleep",
) -> NoReturn:
    """Await ``step()`` every ``interval`` seconds until cancelled.

    ``first`` is ``"sleep"`` (wait one interval before the first step) or
    ``"step"`` (run a step at once). A failing step (any :class:`Exception`) is
    logged and the loop goes on; :class:`asyncio.CancelledError` and other
    :class:`BaseException`\\ s end it.
    """
    if first not in ("sleep", "step"):
        raise ValueError("first is 'sleep' or 'step'")
    if first == "sleep":
        await sleep(interval)
    while True:
        try:
            await step()
        except Exception as exc:
            log.error("background_step_failed", loop=name, error_type=type(exc).__name__, exc_info=True)
        await sleep(interval)
