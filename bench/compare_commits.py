"""The homeserver load scenario against two commits of Confide, same run (``python -m bench.compare_commits BASE``).

A change on the hot path shows its before and after. This checks out ``BASE``
(a commit, tag or branch) into ``bench/out/base-tree`` (a detached git
worktree, replaced on each run) and runs the scenario of
:mod:`bench.homeserver` (sequential sends, 16 in flight, delivery to the other
user's sync) against ``confide serve`` started from that tree and from this
checkout, alternating rounds (base, head, base, head, ...), each round a fresh
server and data directory, so that drift of the machine weighs on both alike.
The client side (adapter and SDK) is this checkout's for both servers; with
``--own-client`` each commit runs the scenario with its own adapter and SDK (in a
process started in its tree), for a base whose protocol this checkout's client no
longer speaks.

Results: ``bench/out/compare-*.json`` and, unless ``--no-write``, the section
between this module's markers in ``bench/RESULTS.md`` (medians, ranges and the
head/base ratios).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.homeserver import (
    OUT,
    REPO,
    _cell,
    _med,
    bench_confide,
    figures,
    log,
    machine,
    write_section,
)

__all__ = ["main"]

BEGIN = "<!-- bench.compare_commits: begin (written by python -m bench.compare_commits) -->"
END = "<!-- bench.compare_commits: end -->"

#: (figure key, label, digits, higher is better)
ROWS = [
    ("conc_eps", "16 in flight: events/s", 1, True),
    ("conc_p99", "16 in flight: send p99 ms", 1, False),
    ("seq_eps", "sequential: events/s", 1, True),
    ("seq_p99", "sequential: send p99 ms", 2, False),
    ("e2e_p50", "delivery to bob's sync: p50 ms", 2, False),
    ("e2e_p99", "delivery to bob's sync: p99 ms", 2, False),
    ("conc_cpu", "server CPU ms per event (16 in flight)", 2, False),
    ("rss_after", "server RSS after the run, KiB", 0, False),
]


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO, check=True, capture_output=True,
                          text=True).stdout.strip()


def base_tree(rev: str) -> Path:
    """A detached worktree of ``rev`` in bench/out/base-tree (made anew)."""
    tree = OUT / "base-tree"
    if tree.exists():
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO,
                       capture_output=True)
        shutil.rmtree(tree, ignore_errors=True)
    subprocess.run(["git", "worktree", "prune"], cwd=REPO, check=True)
    _git("worktree", "add", "--detach", str(tree), rev)
    return tree


def section(base: dict[str, Any], head: dict[str, Any], info: dict[str, Any]) -> str:
    fb, fh = figures(base), figures(head)
    lines = [
        BEGIN,
        f"## Before and after: {info['base']} against {info['head']} (`python -m bench.compare_commits "
        f"{info['base_arg']}{' --own-client' if info.get('own_client') else ''}`)",
        "",
        f"Machine: {info['machine']['cpu']}, {info['machine']['cpus']} cores, "
        f"{info['machine']['kernel']}; {info['rounds']} alternating rounds per commit, "
        f"each a fresh `confide serve`"
        f"{'; each commit with its own client (adapter and SDK)' if info.get('own_client') else ''}; "
        f"{info['date']}. Medians (range).",
        "",
        f"| figure | {info['base']} (before) | {info['head']} (after) | after / before |",
        "| --- | --- | --- | --- |",
    ]
    for key, label, digits, _ in ROWS:
        b, h = _med(fb.get(key)), _med(fh.get(key))
        ratio = f"{h / b:.3f}" if b and h is not None else "n/a"
        lines.append(f"| {label} | {_cell(fb.get(key), digits)} | {_cell(fh.get(key), digits)} | {ratio} |")
    errs = sum(fb.get("errors", [])) + sum(fh.get("errors", []))
    lines += ["", f"Send errors over all rounds: {int(errs)}.", END]
    return "\n".join(lines)


def _in_tree(root: Path, quick: bool) -> dict[str, Any]:
    """One round of the scenario run entirely by the checkout at ``root`` (its server, its
    adapter and SDK): ``bench_confide``'s result, from the last line the process prints."""
    code = ("import json, sys; from bench.homeserver import OUT, bench_confide; "
            "OUT.mkdir(parents=True, exist_ok=True); "
            "print(json.dumps(bench_confide(1, sys.argv[1] == 'quick', verify=False)))")
    env = {**os.environ, "PYTHONPATH": str(root), "CONFIDE_SHARED": str(REPO.parent / "shared")}
    out = subprocess.run([sys.executable, "-c", code, "quick" if quick else "full"], cwd=root,
                         env=env, capture_output=True, text=True, check=True, timeout=1800)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("base", help="the commit to compare this checkout against (e.g. HEAD~3)")
    p.add_argument("--rounds", type=int, default=3, help="rounds per commit (default 3)")
    p.add_argument("--quick", action="store_true", help="short rounds (a smoke test, not figures)")
    p.add_argument("--no-write", action="store_true", help="do not touch bench/RESULTS.md")
    p.add_argument("--own-client", action="store_true",
                   help="each commit with its own client (the base's protocol differs)")
    args = p.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    try:
        tree = base_tree(args.base)
    except subprocess.CalledProcessError as e:
        print(f"compare_commits: cannot check out {args.base!r}: {e.stderr.strip()}", file=sys.stderr)
        return 2
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no"))
    info = {"base_arg": args.base, "base": _git("rev-parse", "--short", args.base),
            "head": _git("rev-parse", "--short", "HEAD") + ("+changes" if dirty else ""),
            "rounds": args.rounds, "machine": machine(), "date": time.strftime("%Y-%m-%d"),
            "own_client": args.own_client}
    base: dict[str, Any] = {"runs": []}
    head: dict[str, Any] = {"runs": []}
    for i in range(1, args.rounds + 1):
        for label, root, acc in (("base", tree, base), ("head", REPO, head)):
            log(f"round {i}: {label}")
            if args.own_client and label == "base":
                res = _in_tree(root, args.quick)
            else:
                res = bench_confide(1, args.quick, verify=False, server_root=root, tag=f"cmp-{label}")
            acc["runs"].extend(res["runs"])
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (OUT / f"compare-{stamp}.json").write_text(json.dumps({"info": info, "base": base, "head": head},
                                                          indent=1))
    text = section(base, head, info)
    print(text)
    if not args.no_write:
        write_section(text, BEGIN, END)
    return 0


if __name__ == "__main__":
    sys.exit(main())
