"""``confide interop``: play the IETF MLS interop scripts against driver processes.

The scripts are the upstream ``interop/configs/*.json`` of mlswg/mls-implementations
(see ``../shared/vectors/mls-interop/README.md``). Each implementation runs as one
driver process speaking the JSON-lines protocol of ``spec/mls-driver.md``:

- ``confide``: ``python -m server.cli mls-driver`` (i.e. ``confide mls-driver``);
- ``ts-mls``: ``node tests/interop/ts_mls_driver.mjs`` (after ``tests/interop/install.sh``).

A *run* is one script played for one cipher suite, one handshake wire format and one
mapping of actors to implementations (an *assignment*):

- ``all-confide`` / ``all-ts-mls``: every actor on one implementation;
- ``alternating``: actors, in order of first appearance, alternate confide, ts-mls, ...;
- ``ts-mls-as-creator``: the creator (first actor) on ts-mls, everyone else on confide.

Checks, beyond the upstream runner's (which compares epoch authenticators only where
a step says so): after every step every current group member answers ``state_auth``
and all must agree; every ``protect`` is also unprotected by every other current
member that the script does not itself ask to unprotect it later. A driver that
answers ``unsupported`` (or is not available, or lacks the suite) makes the run
*unsupported* with its reason; it is not a failure.

Key spelling follows the Go runner: keys match case-insensitively but underscores
must match, so ``fullCommit``/``branch`` read ``force_path``/``external_tree`` while
``externalJoin``/``reinit`` read ``externalTree``/``forcePath`` (branch.json's
``externalTree``/``forcePath`` are therefore ignored, as upstream).

Modules: :mod:`client.interop_driver` (driver processes, errors),
:mod:`client.interop_scripts` (loading scripts, assignments),
:mod:`client.interop_run` (one run and its checks); this one keeps the pool of
drivers (:class:`Interop`) and the command line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from .interop_driver import (
    REPO,
    DriverError,
    DriverProcess,
    DriverUnavailable,
    StepFailure,
    Unsupported,
)
from .interop_run import Run, RunOutcome
from .interop_scripts import ASSIGNMENTS, actors_of, assign, configs_dir, load_script_file

__all__ = [
    "ASSIGNMENTS",
    "IMPLEMENTATIONS",
    "DriverError",
    "DriverProcess",
    "DriverUnavailable",
    "Interop",
    "RunOutcome",
    "StepFailure",
    "Unsupported",
    "actors_of",
    "assign",
    "configs_dir",
    "load_script_file",
    "register",
]


#: Implementation name -> argv of its driver process (run with cwd = repository root).
IMPLEMENTATIONS: dict[str, list[str]] = {
    "confide": [sys.executable, "-m", "server.cli", "mls-driver"],
    "ts-mls": ["node", str(REPO / "tests" / "interop" / "ts_mls_driver.mjs")],
}


DEFAULT_SCRIPTS = ("welcome_join", "commit", "application", "external_join",
                   "external_proposals", "branch", "reinit")

# ---------------------------------------------------------------- session


class Interop:
    """A pool of driver processes (started lazily, restarted after a crash) and the run loop."""

    def __init__(self, implementations: dict[str, list[str]] | None = None,
                 folder: Path | None = None) -> None:
        self.implementations = implementations or IMPLEMENTATIONS
        self.folder = folder or configs_dir()
        self.drivers: dict[str, DriverProcess] = {}
        self.unavailable: dict[str, str] = {}

    async def driver(self, impl: str) -> DriverProcess:
        """A running driver for ``impl``; raises Unsupported with the reason if it cannot start."""
        if impl in self.unavailable:
            raise Unsupported(self.unavailable[impl])
        d = self.drivers.get(impl)
        if d is not None and d.alive:
            return d
        d = DriverProcess(impl, self.implementations[impl])
        try:
            await d.start()
        except DriverUnavailable as exc:
            reason = f"{impl} mls-driver not available" if impl == "confide" else f"{impl} driver not available"
            self.unavailable[impl] = f"{reason}: {exc}"
            raise Unsupported(self.unavailable[impl]) from exc
        self.drivers[impl] = d
        return d

    async def available(self, impl: str) -> tuple[bool, str]:
        try:
            await self.driver(impl)
            return True, ""
        except Unsupported as exc:
            return False, str(exc)

    async def run_one(self, steps: list[dict], assignment: str, suite: int, encrypt: bool) -> RunOutcome:
        mapping = assign(assignment, actors_of(steps))
        drivers: dict[str, DriverProcess] = {}
        try:
            for impl in sorted(set(mapping.values())):
                drivers[impl] = await self.driver(impl)
                suites = drivers[impl].supported.get("cipher_suites", [])
                if suite not in suites:
                    return RunOutcome("unsupported", f"{impl}: cipher suite {suite} not supported")
        except Unsupported as exc:
            return RunOutcome("unsupported", str(exc))

        def common_suites() -> list[int]:
            sets = [set(d.supported.get("cipher_suites", [])) for d in drivers.values()]
            return sorted(set.intersection(*sets)) if sets else []

        run = Run(drivers=drivers, mapping=mapping, suite=suite, encrypt=encrypt, steps=steps,
                   all_suites=common_suites)
        outcome = await run.play()
        await run.free_all()
        return outcome

    async def run(self, scripts: Sequence[str], assignments: Sequence[str], suites: Sequence[int],
                  handshakes: Sequence[str] = ("public",)) -> dict:
        """{script: {assignment: {suite: {"passed", "failed", "unsupported", "failures"}}}}."""
        results: dict = {}
        for name in scripts:
            script_results = results.setdefault(name, {})
            try:
                subscripts = self._subscripts(name)
            except (OSError, ValueError, KeyError) as exc:
                for assignment in assignments:
                    for suite in suites:
                        script_results.setdefault(assignment, {})[str(suite)] = {
                            "passed": 0, "failed": 1, "unsupported": [],
                            "failures": [f"cannot load script {name}: {exc}"]}
                continue
            for assignment in assignments:
                for suite in suites:
                    cell = {"passed": 0, "failed": 0, "unsupported": [], "failures": []}
                    script_results.setdefault(assignment, {})[str(suite)] = cell
                    for sub, steps in subscripts.items():
                        for hs in handshakes:
                            outcome = await self.run_one(steps, assignment, suite, hs == "private")
                            label = f"{sub}[{hs}]"
                            if outcome.status == "passed":
                                cell["passed"] += 1
                            elif outcome.status == "unsupported":
                                cell["unsupported"].append(f"{label}: {outcome.detail}")
                            else:
                                cell["failed"] += 1
                                cell["failures"].append(f"{label}: {outcome.detail}")
        return results

    def _subscripts(self, name: str) -> dict[str, list[dict]]:
        file, _, only = name.partition("/")
        scripts = load_script_file(self.folder, file)
        if only:
            return {only: scripts[only]}
        return scripts

    async def close(self) -> None:
        for d in self.drivers.values():
            await d.close()
        self.drivers.clear()


# ---------------------------------------------------------------- command line


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _print_table(results: dict, out) -> None:
    for script, by_assignment in results.items():
        for assignment, by_suite in by_assignment.items():
            for suite, cell in by_suite.items():
                print(f"{script:20} {assignment:18} suite {suite}: passed {cell['passed']}, "
                      f"failed {cell['failed']}, unsupported {len(cell['unsupported'])}", file=out)
                for f in cell["failures"]:
                    print(f"    FAIL {f}", file=out)
                reasons = dict.fromkeys(u.split(": ", 1)[-1] for u in cell["unsupported"])
                for r in reasons:
                    print(f"    unsupported: {r}", file=out)


async def _main(args) -> int:
    interop = Interop(folder=Path(args.configs) if args.configs else None)
    handshakes = ("public", "private") if args.handshake == "both" else (args.handshake,)
    try:
        results = await interop.run(_csv(args.scripts), _csv(args.assignments),
                                    [int(s) for s in _csv(args.suites)], handshakes)
    finally:
        await interop.close()
    if args.json:
        json.dump(results, sys.stdout, indent=2)
        print()
    else:
        _print_table(results, sys.stdout)
    failed = any(cell["failed"] for a in results.values() for s in a.values() for cell in s.values())
    return 1 if failed else 0


def _run_command(args) -> int:
    bad = [a for a in _csv(args.assignments) if a not in ASSIGNMENTS]
    if bad:
        print(f"confide interop: unknown assignment(s) {bad}; choose from {list(ASSIGNMENTS)}", file=sys.stderr)
        return 2
    return asyncio.run(_main(args))


def register(subparsers) -> None:
    """Add ``confide interop``."""
    p = subparsers.add_parser("interop", help="play the IETF MLS interop scripts against MLS drivers",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--scripts", default=",".join(DEFAULT_SCRIPTS),
                   help="config names (file stems), or file/script, comma-separated")
    p.add_argument("--suites", default="1,3", help="cipher suites, comma-separated")
    p.add_argument("--assignments", default=",".join(ASSIGNMENTS),
                   help=f"comma-separated, from {', '.join(ASSIGNMENTS)}")
    p.add_argument("--handshake", choices=("public", "private", "both"), default="public",
                   help="handshake wire format (Confide's hub requires public)")
    p.add_argument("--configs", default=None, help="folder of the interop configs")
    p.set_defaults(func=_run_command)
