"""``confide conformance``: run every IETF vector file Confide knows, case by case.

A *family* is one vector file (path relative to the vectors folder) and the
function that checks one element of its top-level array. A case of a cipher
suite Confide does not implement is skipped with the reason ("suite 5 not
supported"); so is every case of a family whose checker is not built yet.
The pytest suite runs the same checkers, one test per case
(``tests/crypto/test_vectors.py``).

The vectors folder is ``--vectors DIR``, else ``$CONFIDE_VECTORS``, else
``../shared/vectors`` beside the repository, else ``./shared/vectors``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from crypto.mls.ciphersuite import SUPPORTED_SUITES

from ._expect import CaseUnsupported

__all__ = ["Family", "FAMILIES", "FileReport", "run_family", "run_all", "default_vectors_dir", "register"]


@dataclass(frozen=True)
class Family:
    path: str
    checker: str  # "module:function", imported when first run

    def load_checker(self) -> Callable[[dict], None] | None:
        module, _, func = self.checker.partition(":")
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name and module.startswith(exc.name):
                return None
            raise
        return getattr(mod, func, None)


_C = "client.conformance"
FAMILIES: tuple[Family, ...] = (
    Family("hpke/test-vectors-x25519-sha256.json", f"{_C}.hpke:check_hpke"),
    Family("mls/tree-math.json", f"{_C}.mls_crypto:check_tree_math"),
    Family("mls/deserialization.json", f"{_C}.mls_crypto:check_deserialization"),
    Family("mls/crypto-basics.json", f"{_C}.mls_crypto:check_crypto_basics"),
    Family("mls/secret-tree.json", f"{_C}.mls_crypto:check_secret_tree"),
    Family("mls/key-schedule.json", f"{_C}.mls_crypto:check_key_schedule"),
    Family("mls/psk_secret.json", f"{_C}.mls_crypto:check_psk_secret"),
    Family("mls/transcript-hashes.json", f"{_C}.mls_framing:check_transcript_hashes"),
    Family("mls/message-protection.json", f"{_C}.mls_framing:check_message_protection"),
    Family("mls/messages.json", f"{_C}.mls_messages:check_messages"),
    Family("mls/welcome.json", f"{_C}.mls_messages:check_welcome"),
    Family("mls/tree-operations.json", f"{_C}.mls_tree:check_tree_operations"),
    Family("mls/tree-validation.json", f"{_C}.mls_tree:check_tree_validation"),
    Family("mls/treekem.json", f"{_C}.mls_tree:check_treekem"),
    Family("mls/passive-client-welcome.json", f"{_C}.mls_group:check_passive_client"),
    Family("mls/passive-client-handling-commit.json", f"{_C}.mls_group:check_passive_client"),
    Family("mls/passive-client-random.json", f"{_C}.mls_group:check_passive_client"),
)


def default_vectors_dir() -> Path | None:
    env = os.environ.get("CONFIDE_VECTORS")
    if env:
        return Path(env)
    repo = Path(__file__).resolve().parents[2]
    for candidate in (repo.parent / "shared" / "vectors", Path.cwd() / "shared" / "vectors", Path.cwd().parent / "shared" / "vectors"):
        if candidate.is_dir():
            return candidate
    return None


def skip_reason(family: Family, case: object, checker: Callable | None) -> str | None:
    """Why this case is not run, or None when it runs."""
    if checker is None:
        return f"checker {family.checker} not implemented"
    suite = case.get("cipher_suite") if isinstance(case, dict) else None
    if suite is not None and suite not in SUPPORTED_SUITES:
        return f"suite {suite} not supported"
    return None


@dataclass
class FileReport:
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    skip_reasons: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    def as_json(self) -> dict:
        out = {"passed": self.passed, "failed": self.failed, "skipped": self.skipped}
        if self.skip_reasons:
            out["skip_reasons"] = dict(self.skip_reasons)
        if self.failures:
            out["failures"] = self.failures
        return out


def run_family(family: Family, cases: list) -> FileReport:
    report = FileReport()
    checker = family.load_checker()
    for index, case in enumerate(cases):
        reason = skip_reason(family, case, checker)
        if reason is None:
            try:
                checker(case)
            except CaseUnsupported as exc:
                reason = str(exc)
            except Exception as exc:  # noqa: BLE001 - every failure is reported, none stops the run
                report.failed += 1
                report.failures.append(f"case {index}: {type(exc).__name__}: {exc}")
                continue
            else:
                report.passed += 1
                continue
        report.skipped += 1
        report.skip_reasons[reason] += 1
    return report


def run_all(root: Path) -> dict[str, FileReport]:
    reports = {}
    for family in FAMILIES:
        path = root / family.path
        if not path.is_file():
            continue
        reports[family.path] = run_family(family, json.loads(path.read_text()))
    return reports


def _print_table(reports: dict[str, FileReport], out) -> None:
    width = max((len(p) for p in reports), default=10)
    print(f"{'vector file':<{width}}  {'passed':>6}  {'failed':>6}  {'skipped':>7}", file=out)
    for path, r in reports.items():
        print(f"{path:<{width}}  {r.passed:>6}  {r.failed:>6}  {r.skipped:>7}", file=out)
        for reason, count in sorted(r.skip_reasons.items()):
            print(f"{'':<{width}}    skipped {count}: {reason}", file=out)
        for failure in r.failures[:10]:
            print(f"{'':<{width}}    FAILED {failure}", file=out)
    total = [sum(getattr(r, k) for r in reports.values()) for k in ("passed", "failed", "skipped")]
    print(f"{'total':<{width}}  {total[0]:>6}  {total[1]:>6}  {total[2]:>7}", file=out)


def _cmd(args: argparse.Namespace) -> int:
    root = Path(args.vectors) if args.vectors else default_vectors_dir()
    if root is None or not root.is_dir():
        print("conformance: no vectors folder (use --vectors DIR or set CONFIDE_VECTORS)", file=sys.stderr)
        return 2
    reports = run_all(root)
    if args.json:
        json.dump({p: r.as_json() for p, r in reports.items()}, sys.stdout, indent=1)
        print()
    else:
        print(f"Confide conformance against {root}")
        _print_table(reports, sys.stdout)
    return 1 if any(r.failed for r in reports.values()) else 0


def register(sub) -> None:
    p = sub.add_parser("conformance", help="run the IETF MLS and HPKE test vectors")
    p.add_argument("--vectors", metavar="DIR", help="vectors folder (default: $CONFIDE_VECTORS or ../shared/vectors)")
    p.add_argument("--json", action="store_true", help="print one JSON object keyed by vector file")
    p.set_defaults(func=_cmd)
