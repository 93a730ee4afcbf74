"""Driver processes of ``confide interop``: one subprocess per implementation, speaking the
JSON-lines protocol of ``spec/mls-driver.md``, and the errors of a run.

:class:`DriverProcess` sends requests in order and reads their responses;
:class:`DriverError` is a driver's ``ok: false`` answer, :class:`DriverUnavailable` a
process that could not start, died or timed out. :class:`Unsupported` and
:class:`StepFailure` are what a run (:mod:`client.interop_run`) ends with.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Sequence
from pathlib import Path

__all__ = ["REPO", "RPC_TIMEOUT", "START_TIMEOUT", "DriverError", "DriverUnavailable",
           "Unsupported", "StepFailure", "DriverProcess"]

REPO = Path(__file__).resolve().parent.parent

RPC_TIMEOUT = 120.0  # seconds, as the upstream runner
START_TIMEOUT = 20.0


# ---------------------------------------------------------------- errors


class DriverError(Exception):
    """A driver answered ``ok: false``; ``code`` is its error code."""

    def __init__(self, impl: str, op: str, code: str, message: str) -> None:
        super().__init__(f"{impl} {op}: {code}: {message}")
        self.impl, self.op, self.code, self.message = impl, op, code, message


class DriverUnavailable(Exception):
    """A driver process could not be started or did not answer ``supported``."""


class Unsupported(Exception):
    """The run needs something an assigned implementation does not support."""


class StepFailure(Exception):
    """A check of the runner failed (mismatch, missing output, protocol violation)."""


# ---------------------------------------------------------------- driver process


class DriverProcess:
    """One driver subprocess: requests in, responses out, strictly in order.

    ``request`` raises :class:`DriverError` when the driver answers ``ok: false``
    (code ``"unsupported"`` included), and :class:`DriverUnavailable` when the
    process died, timed out or answered something that is not a response.
    """

    def __init__(self, name: str, argv: Sequence[str], cwd: Path = REPO) -> None:
        self.name, self.argv, self.cwd = name, list(argv), cwd
        self.proc: asyncio.subprocess.Process | None = None
        self.supported: dict = {}
        self._next_id = 0

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def start(self) -> None:
        """Start the process and ask ``supported``; raises DriverUnavailable with the reason."""
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *self.argv, cwd=self.cwd, stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                limit=64 * 1024 * 1024)
        except OSError as exc:
            raise DriverUnavailable(f"{self.name}: cannot start {self.argv[0]}: {exc}") from exc
        try:
            self.supported = await self.request("supported", timeout=START_TIMEOUT)
        except (DriverError, DriverUnavailable) as exc:
            await self.close()
            raise DriverUnavailable(str(exc)) from exc

    async def request(self, op: str, timeout: float = RPC_TIMEOUT, **fields) -> dict:
        if not self.alive:
            raise DriverUnavailable(f"{self.name} driver is not running")
        assert self.proc is not None and self.proc.stdin is not None and self.proc.stdout is not None
        self._next_id += 1
        rid = self._next_id
        line = json.dumps({"id": rid, "op": op, **fields}, separators=(",", ":")) + "\n"
        try:
            self.proc.stdin.write(line.encode())
            await self.proc.stdin.drain()
            raw = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        except (TimeoutError, ConnectionError, BrokenPipeError) as exc:
            await self.close()
            raise DriverUnavailable(f"{self.name} {op}: no answer ({type(exc).__name__})") from exc
        if not raw:
            detail = await self._stderr_tail()
            await self.close()
            raise DriverUnavailable(f"{self.name} {op}: driver exited{detail}")
        try:
            resp = json.loads(raw)
        except ValueError as exc:
            await self.close()
            raise DriverUnavailable(f"{self.name} {op}: not a JSON response: {raw[:200]!r}") from exc
        if not isinstance(resp, dict) or resp.get("id") != rid:
            await self.close()
            raise DriverUnavailable(f"{self.name} {op}: response id mismatch: {raw[:200]!r}")
        if resp.get("ok") is True:
            return resp
        err = resp.get("error") or {}
        raise DriverError(self.name, op, str(err.get("code", "error")), str(err.get("message", "")))

    async def _stderr_tail(self) -> str:
        if self.proc is None or self.proc.stderr is None:
            return ""
        with contextlib.suppress(Exception):
            data = await asyncio.wait_for(self.proc.stderr.read(), 2.0)
            lines = data.decode(errors="replace").strip().splitlines()
            return f": {lines[-1][-300:]}" if lines else ""
        return ""

    async def close(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.returncode is None:
            with contextlib.suppress(Exception):
                assert proc.stdin is not None
                proc.stdin.close()
            try:
                await asyncio.wait_for(proc.wait(), 3.0)
            except TimeoutError:
                proc.kill()
                await proc.wait()

