"""Transparency log benchmark: appends, proofs and a full audit.

Run: ``.venv/bin/python -m bench.translog [--quick] [--dir DIR]``.

Grows one log (SQLite in WAL mode, ``synchronous=FULL``) through the sizes
10^3, 10^5 and 10^6 (``--quick``: 10^3, 10^4, 2*10^4), with the devserver's
mix of entries (one signed device registration in ten, logins, room events).
Reports:

- appends per second, batched: ``append_many`` of 10,000 entries (4,096 per
  transaction, one signed checkpoint each), and group-committed concurrent
  single ``append`` calls;
- at each size, the mean time to generate an inclusion proof (random index,
  latest checkpoint) and a consistency proof (random old size) from SQLite, and
  to verify each with the pure verifiers;
- the wall time of ``audit verify`` over HTTP (devserver in a subprocess, the
  auditor here) for the largest size: fetch every tile and bundle, decode and
  check every entry and its carried signatures, recompute the root.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from client.audit import AuditState, HttpSource, verify_log
from crypto import merkle
from server.translog.devserver import demo_entries, open_log

T0 = 1_700_000_000_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _grow(log, target: int, chunk: int = 10_000) -> tuple[int, float]:
    """Append up to ``target`` entries; returns (entries appended, seconds spent appending)."""
    done, spent = 0, 0.0
    while log.size < target:
        n = min(chunk, target - log.size)
        entries = _entries_from(log.size, n)
        t = time.perf_counter()
        await log.append_many(entries)
        spent += time.perf_counter() - t
        done += n
    return done, spent


def _entries_from(start: int, n: int):
    return demo_entries(start + n, T0, first=start)


async def _proof_times(log, rounds: int = 200) -> dict[str, float]:
    rng = random.Random(log.size)
    size = log.size
    root = await log.root_at(size)
    gen_i = gen_c = ver_i = ver_c = 0.0
    for _ in range(rounds):
        i = rng.randrange(size)
        t = time.perf_counter()
        p = await log.inclusion_proof(i)
        gen_i += time.perf_counter() - t
        leaf = merkle.leaf_hash(p.entry)
        t = time.perf_counter()
        merkle.verify_inclusion(i, size, leaf, p.proof, root)
        ver_i += time.perf_counter() - t
        old = rng.randrange(1, size)
        old_root = await log.root_at(old)
        t = time.perf_counter()
        c = await log.consistency_proof(old, size)
        gen_c += time.perf_counter() - t
        t = time.perf_counter()
        merkle.verify_consistency(old, size, old_root, root, c)
        ver_c += time.perf_counter() - t
    us = 1e6 / rounds
    return {"incl_gen_us": gen_i * us, "incl_ver_us": ver_i * us,
            "cons_gen_us": gen_c * us, "cons_ver_us": ver_c * us}


async def _concurrent_appends(log, n: int = 2000) -> float:
    entries = _entries_from(log.size, n)
    t = time.perf_counter()
    await asyncio.gather(*(log.append(e) for e in entries))
    return n / (time.perf_counter() - t)


async def _audit_over_http(directory: Path, size: int) -> float:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "server.translog.devserver", str(directory), "--name", "bench.example",
         "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as session:
            for _ in range(100):
                try:
                    async with session.get(base + "/_confide/log/v1/vkey") as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.1)
            t = time.perf_counter()
            report, _ = await verify_log(HttpSource(session, base), AuditState())
            elapsed = time.perf_counter() - t
        assert report.checkpoint.size == size
        return elapsed
    finally:
        proc.terminate()
        proc.wait(10)


async def run(sizes: list[int], directory: Path) -> list[str]:
    log = await open_log(directory, "bench.example")
    lines = [f"# bench.translog ({platform.python_implementation()} {platform.python_version()}, "
             f"{os.cpu_count()} cpus, SQLite WAL synchronous=FULL)", ""]
    rows = []
    appended_total, append_time_total = 0, 0.0
    for size in sizes:
        n, spent = await _grow(log, size)
        appended_total += n
        append_time_total += spent
        rows.append((size, await _proof_times(log)))
        print(f"size {size}: built", flush=True)
    conc = await _concurrent_appends(log)
    lines.append(f"appends, batched (append_many, 4096 per transaction): "
                 f"{appended_total / append_time_total:,.0f} entries/s over {appended_total:,} entries")
    lines.append(f"appends, 2000 concurrent append() calls (group commit): {conc:,.0f} entries/s")
    lines.append("")
    lines.append("| entries | inclusion proof gen | inclusion verify | consistency proof gen | consistency verify |")
    lines.append("| ---: | ---: | ---: | ---: | ---: |")
    for size, t in rows:
        lines.append(f"| {size:,} | {t['incl_gen_us']:.0f} µs | {t['incl_ver_us']:.0f} µs | "
                     f"{t['cons_gen_us']:.0f} µs | {t['cons_ver_us']:.0f} µs |")
    final = log.size
    await log.flush()
    await log.storage.conn.close()
    elapsed = await _audit_over_http(directory, final)
    lines.append("")
    lines.append(f"audit verify over HTTP of {final:,} entries: {elapsed:.1f} s "
                 f"({final / elapsed:,.0f} entries/s, {final // 10:,} device signatures checked)")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.translog")
    parser.add_argument("--quick", action="store_true", help="sizes 10^3, 10^4, 2*10^4")
    parser.add_argument("--dir", type=Path, help="log directory (default: a temp dir, removed after)")
    args = parser.parse_args(argv)
    sizes = [1_000, 10_000, 20_000] if args.quick else [1_000, 100_000, 1_000_000]
    directory = args.dir or Path(tempfile.mkdtemp(prefix="bench-translog-"))
    try:
        lines = asyncio.run(run(sizes, directory))
    finally:
        if args.dir is None:
            shutil.rmtree(directory, ignore_errors=True)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
