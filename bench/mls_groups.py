"""MLS groups, Confide against ts-mls: building groups, commits, messages; same run.

Run: ``.venv/bin/python -m bench.mls_groups [--quick] [--suite 3] [--sizes 2,10,50,200]
[--reps 5] [--messages 200]``. ``--quick`` is sizes 2, 10, 50.

For each group size N, both implementations play the same scenario in process
(Confide through :class:`crypto.mls.group.Group`; ts-mls 1.6.4 through
``tests/interop/ts_mls_bench.mjs``, one node process per size, after
``tests/interop/install.sh``). Key packages are generated before any timing;
handshakes are PublicMessages and Welcomes embed the ratchet tree (Confide's
defaults, and what its hub requires).

- **adds, one per commit**: the creator commits N-1 times, each commit adding one
  member, and merges it ("committer" is the sum of those); each new member joins
  from its Welcome ("joins", the sum). Earlier members do not follow (see below).
- **adds, all at once**: one commit adding N-1 members, then the N-1 joins.
- **empty commit with path** (median of ``--reps``): in the all-at-once group, the
  creator commits with no proposal (the path is mandatory) and the last joiner
  processes and merges it. Right after a build by Adds, every parent node is
  blank, so the path secret is encrypted to each other member: the cost a
  committer pays in a freshly built group.
- **protect / unprotect**: ``--messages`` application messages of 1 KiB from the
  creator, opened by the last joiner, per message.

Each scenario checks its outcome (joiners and committer agree on the epoch
authenticator, plaintexts come back). Sizes run in order, Confide then ts-mls for
each, so that a change of load on the shared machine hits both alike. The table
gives milliseconds (or microseconds per message) and ts-mls / Confide: above 1,
Confide is faster.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from crypto.mls.ciphersuite import get_suite
from crypto.mls.group import Group, MessageKind
from crypto.mls.key_package_gen import generate_key_package
from crypto.rng import system_rng

__all__ = ["confide_scenario", "ts_mls_scenario", "main"]

REPO = Path(__file__).resolve().parent.parent
TS_BENCH = REPO / "tests" / "interop" / "ts_mls_bench.mjs"

#: (result key, row label, unit) in table order.
ROWS = [
    ("each_commit_ms", "adds, one per commit: committer (all N-1 commits)", "ms"),
    ("each_join_ms", "adds, one per commit: joins (all N-1)", "ms"),
    ("once_commit_ms", "adds, all at once: committer (one commit)", "ms"),
    ("once_join_ms", "adds, all at once: joins (all N-1)", "ms"),
    ("commit_ms", "empty commit with path: committer", "ms"),
    ("process_ms", "empty commit with path: one receiver processes", "ms"),
    ("protect_us", "protect 1 KiB, per message", "us"),
    ("unprotect_us", "unprotect 1 KiB, per message", "us"),
]


def _key_packages(suite, tag: str, n: int) -> list:
    return [generate_key_package(suite, f"{tag}-{i}".encode(), system_rng) for i in range(n)]


def confide_scenario(suite_id: int, size: int, reps: int, messages: int) -> dict:
    """The scenarios of the module docstring with Confide's Group; timings as ts-mls's script."""
    suite = get_suite(suite_id)
    clock = time.perf_counter
    out: dict = {"name": "confide", "size": size}

    kps = _key_packages(suite, "each", size)
    creator = Group.create(suite, b"bench-each", *kps[0], rng=system_rng)
    commit_s = join_s = 0.0
    for kp, priv in kps[1:]:
        t0 = clock()
        staged = creator.add_members([kp], rng=system_rng)
        creator.merge_staged_commit(staged)
        t1 = clock()
        joined = Group.join(staged.welcome, kp, priv)
        join_s += clock() - t1
        commit_s += t1 - t0
        assert joined.epoch_authenticator == creator.epoch_authenticator
    out["each_commit_ms"], out["each_join_ms"] = commit_s * 1e3, join_s * 1e3

    kps = _key_packages(suite, "once", size)
    creator = Group.create(suite, b"bench-once", *kps[0], rng=system_rng)
    t0 = clock()
    staged = creator.add_members([kp for kp, _ in kps[1:]], rng=system_rng)
    creator.merge_staged_commit(staged)
    t1 = clock()
    members = [Group.join(staged.welcome, kp, priv) for kp, priv in kps[1:]]
    out["once_commit_ms"], out["once_join_ms"] = (t1 - t0) * 1e3, (clock() - t1) * 1e3
    receiver = members[-1] if members else None

    if receiver is not None:
        commits, processes = [], []
        for _ in range(reps):
            c0 = clock()
            staged = creator.stage_commit(rng=system_rng)
            creator.merge_staged_commit(staged)
            c1 = clock()
            processed = receiver.process_message(staged.commit)
            receiver.merge_staged_commit(processed.staged_commit)
            c2 = clock()
            commits.append(c1 - c0)
            processes.append(c2 - c1)
        assert receiver.epoch_authenticator == creator.epoch_authenticator
        out["commit_ms"] = statistics.median(commits) * 1e3
        out["process_ms"] = statistics.median(processes) * 1e3

        payload = bytes(i & 0xFF for i in range(1024))
        p0 = clock()
        sent = [creator.protect(payload, rng=system_rng) for _ in range(messages)]
        p1 = clock()
        for msg in sent:
            got = receiver.process_message(msg)
            assert got.kind == MessageKind.APPLICATION and got.application_data == payload
        p2 = clock()
        out["protect_us"] = (p1 - p0) * 1e6 / messages
        out["unprotect_us"] = (p2 - p1) * 1e6 / messages
    return out


def ts_mls_scenario(suite_id: int, size: int, reps: int, messages: int) -> dict | str:
    """ts-mls's figures for the same scenario, or why they are missing."""
    if shutil.which("node") is None:
        return "node not found"
    install = subprocess.run(["sh", str(REPO / "tests" / "interop" / "install.sh")], capture_output=True,
                             text=True)
    if install.returncode != 0:
        return f"tests/interop/install.sh failed: {install.stderr.strip()[-200:]}"
    config = json.dumps({"suite": suite_id, "size": size, "reps": reps, "messages": messages})
    proc = subprocess.run(["node", str(TS_BENCH), config], capture_output=True, text=True, cwd=REPO)
    if proc.returncode != 0:
        return f"ts-mls bench failed: {proc.stderr.strip()[-300:]}"
    return json.loads(proc.stdout)


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip() \
        if shutil.which("node") else "no node"
    return (f"{platform.system()} {platform.release()} {platform.machine()}, {os.cpu_count()} CPUs ({cpu}), "
            f"Python {platform.python_version()}, node {node}")


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}" if value >= 10 else f"{value:,.2f}"


def table(results: dict[int, tuple[dict, dict | str]]) -> str:
    lines = ["| scenario | N | Confide | ts-mls 1.6.4 | ts-mls / Confide |", "|---|---:|---:|---:|---:|"]
    for key, label, unit in ROWS:
        for size, (ours, theirs) in results.items():
            a = ours.get(key)
            b = theirs.get(key) if isinstance(theirs, dict) else None
            if a is None and b is None:
                continue
            ratio = f"{b / a:.2f}" if a and b else "-"
            lines.append(f"| {label} ({unit}) | {size} | {_fmt(a)} | {_fmt(b)} | {ratio} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.mls_groups", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="sizes 2, 10, 50")
    p.add_argument("--sizes", default=None, help="comma-separated group sizes (default 2,10,50,200)")
    p.add_argument("--suite", type=int, default=3, choices=(1, 3))
    p.add_argument("--reps", type=int, default=5, help="empty commits per size (median)")
    p.add_argument("--messages", type=int, default=200, help="application messages per size")
    args = p.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else [2, 10, 50] if args.quick else [2, 10, 50, 200]
    results: dict[int, tuple[dict, dict | str]] = {}
    missing = []
    confide_scenario(args.suite, 3, 1, 5)  # warm-up, untimed (ts-mls's script warms up likewise)
    for size in sizes:
        ours = confide_scenario(args.suite, size, args.reps, args.messages)
        theirs = ts_mls_scenario(args.suite, size, args.reps, args.messages)
        if isinstance(theirs, str):
            missing.append(f"N={size}: {theirs}")
        results[size] = (ours, theirs)
        print(f"N={size} done", file=sys.stderr)
    print(f"MLS groups, suite {args.suite} ({get_suite(args.suite).name}); {_machine()}; "
          f"{time.strftime('%Y-%m-%d')}; empty commits: median of {args.reps}; {args.messages} messages.\n")
    print(table(results))
    for m in missing:
        print(f"\nts-mls missing: {m}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
