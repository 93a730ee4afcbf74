"""Federation benchmark: cross-server delivery next to single-server delivery.

Run: ``.venv/bin/python -m bench.federation [--samples N] [--burst K]``.

Starts two ``confide serve`` processes on loopback (``a.test``, the hub, and
``b.test``) with a static peer table, and SDK clients in this process: alice
and carol on A, bob on B. Room *local* (hub A) holds alice and carol; room
*cross* (hub A) holds alice and bob. For each room:

- **latency**: alice sends one text message; the clock stops when the
  recipient's long-poll sync returns it decrypted (so both include the SDK's
  MLS protect and unprotect and the hub's accept, log and store; *cross* adds
  A's queue, a signed transaction to B, B's verification of the hub's signature,
  chain and view, and B's store); p50 / p99 / mean over ``--samples`` messages;
- **throughput**: alice sends ``--burst`` messages back to back; messages per
  second until the recipient has read all of them.

The two servers and the client share this machine's cores, so the figures are
upper bounds of the costs, not of a deployment.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from client.profile import MINIMUM, Profile
from client.sdk import Client, TextMessage

REPO = Path(__file__).resolve().parents[1]
CONFIDE = [sys.executable, "-m", "server.cli"]
PASSWORD = "correct horse battery"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, tmp: Path, name: str, port: int, peers: dict[str, str]) -> None:
        self.tmp, self.name, self.port, self.data = tmp, name, port, tmp / name
        table = "\n".join(f'"{k}" = "{v}"' for k, v in peers.items())
        self.cfg = tmp / f"{name}.toml"
        self.cfg.write_text(f'server_name = "{name}"\ndata_dir = "{self.data}"\n[listen]\nport = {port}\n'
                            "[auth]\nmfa_required_roles = []\n"
                            f"[federation.peers]\n{table}\n")
        self.proc = subprocess.Popen([*CONFIDE, "serve", "--config", str(self.cfg)], cwd=REPO,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                     env={**os.environ, "CONFIDE_LOG_LEVEL": "warning"})
        line = self.proc.stdout.readline()
        if not line.startswith(f"Confide {name} listening"):
            raise RuntimeError(f"{name} did not start: {line!r}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)

    async def user(self, name: str) -> Client:
        out = subprocess.run([*CONFIDE, "admin", "invite", "--data", str(self.data), "--role", "clinician"],
                             cwd=REPO, capture_output=True, text=True, check=True)
        profile = Profile.create(self.tmp / f"p-{self.name}-{name}", "pp", MINIMUM)
        return await Client.register(profile, self.url, out.stdout.strip().split()[-1], name, PASSWORD,
                                     auto_add_own_devices=False)


async def _until_read(client: Client, room: str, text: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if any(isinstance(m, TextMessage) and m.body == text for m in client.messages(room)[-50:]):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{text!r} not delivered")
        await client.sync(timeout_ms=5000)


async def _room(alice: Client, other: Client) -> str:
    room = await alice.create_room()
    await alice.invite(room, other.user_id)
    deadline = time.monotonic() + 30
    while not other.store.has_room(room):
        if time.monotonic() > deadline:
            raise TimeoutError("the invite did not arrive")
        await other.sync(timeout_ms=2000)
    return room


async def _measure(alice: Client, other: Client, room: str, samples: int, burst: int) -> dict:
    for i in range(3):  # warm-up
        await alice.send_text(room, f"warm {i}")
        await _until_read(other, room, f"warm {i}")
    lat = []
    for i in range(samples):
        text = f"lat {i}"
        t0 = time.perf_counter()
        await alice.send_text(room, text)
        await _until_read(other, room, text)
        lat.append((time.perf_counter() - t0) * 1000)
    lat.sort()
    t0 = time.perf_counter()
    for i in range(burst):
        await alice.send_text(room, f"burst {i}")
    await _until_read(other, room, f"burst {burst - 1}", timeout=120)
    elapsed = time.perf_counter() - t0
    got = [m for m in other.messages(room) if isinstance(m, TextMessage) and m.body.startswith("burst ")]
    assert [m.body for m in got] == [f"burst {i}" for i in range(burst)], "lost or reordered"
    return {"p50": lat[len(lat) // 2], "p99": lat[min(len(lat) - 1, int(len(lat) * 0.99))],
            "mean": statistics.fmean(lat), "throughput": burst / elapsed}


async def run(samples: int, burst: int) -> dict[str, dict]:
    tmp = Path(tempfile.mkdtemp(prefix="confide-bench-fed-"))
    pa, pb = _port(), _port()
    a = Server(tmp, "a.test", pa, {"b.test": f"http://127.0.0.1:{pb}"})
    b = Server(tmp, "b.test", pb, {"a.test": f"http://127.0.0.1:{pa}"})
    clients: list[Client] = []
    try:
        alice, carol, bob = await a.user("alice"), await a.user("carol"), await b.user("bob")
        clients += [alice, carol, bob]
        local = await _room(alice, carol)
        cross = await _room(alice, bob)
        return {"single server (A to A)": await _measure(alice, carol, local, samples, burst),
                "cross-server (A to B)": await _measure(alice, bob, cross, samples, burst)}
    finally:
        for c in clients:
            await c.close()
        a.stop()
        b.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.federation")
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--burst", type=int, default=200)
    args = parser.parse_args(argv)
    results = asyncio.run(run(args.samples, args.burst))
    print(f"Federation delivery, {platform.python_implementation()} {platform.python_version()}, "
          f"{os.cpu_count()} CPUs; {args.samples} latency samples, bursts of {args.burst}")
    print(f"{'path':26} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8} {'msg/s':>8}")
    for name, r in results.items():
        print(f"{name:26} {r['p50']:8.1f} {r['p99']:8.1f} {r['mean']:8.1f} {r['throughput']:8.1f}")


if __name__ == "__main__":
    main()
