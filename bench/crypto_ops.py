"""Operations per second of the MLS core's hot paths.

Run: ``make bench`` or ``.venv/bin/python -m bench.crypto_ops [--seconds S]``.

- ExpandWithLabel (32-byte output), the KDF step under every MLS secret;
- HPKE single-shot seal and open of 1 KiB (suite 3: ChaCha20-Poly1305; suite 1: AES-128-GCM);
- PrivateMessage protect and unprotect of 1 KiB of application data
  (sign + two AEAD layers; verify + two AEAD layers), suites 3 and 1.

Each figure is the median of several rounds; the machine is printed with it.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable

from crypto.mls.ciphersuite import get_suite
from crypto.mls.framing import ContentType, FramedContent, Sender
from crypto.mls.group_context import GroupContext
from crypto.mls.protection import EpochKeys, protect_private, unprotect_private
from crypto.mls.secret_tree import SecretTree
from crypto.rng import system_rng

PAYLOAD = os.urandom(1024)


def rate(fn: Callable[[], object], seconds: float, rounds: int = 5) -> float:
    results = []
    for _ in range(rounds):
        n, start = 0, time.perf_counter()
        deadline = start + seconds / rounds
        while True:
            fn()
            n += 1
            if n % 16 == 0 and time.perf_counter() >= deadline:
                break
        results.append(n / (time.perf_counter() - start))
    return statistics.median(results)


def machine() -> str:
    cpu = "unknown cpu"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{platform.platform()}; Python {platform.python_version()}; {os.cpu_count()} CPUs ({cpu})"


def bench_suite(suite_id: int, seconds: float) -> list[tuple[str, float]]:
    s = get_suite(suite_id)
    out = [(f"ExpandWithLabel (suite {suite_id})", rate(lambda: s.expand_with_label(b"k" * 32, "key", b"ctx", 32), seconds))]
    sk, pk = s.generate_hpke_key_pair()
    enc, ct = s.hpke.seal(pk, b"info", b"", PAYLOAD, rng=system_rng)
    out.append((f"HPKE seal 1 KiB (suite {suite_id})", rate(lambda: s.hpke.seal(pk, b"info", b"", PAYLOAD, rng=system_rng), seconds)))
    out.append((f"HPKE open 1 KiB (suite {suite_id})", rate(lambda: s.hpke.open(enc, sk, b"info", b"", ct), seconds)))

    ctx = GroupContext(suite_id, b"g" * 16, 1, b"t" * 32, b"c" * 32)
    sig_sk, sig_pk = s.generate_signature_key_pair()
    content = FramedContent(ctx.group_id, 1, Sender.member(0), b"", ContentType.APPLICATION, PAYLOAD)
    # generous windows: the benchmark sends many messages in one epoch
    sender = EpochKeys(s, ctx, b"m" * 32, b"s" * 32, SecretTree(s, b"e" * 32, 2, max_forward=1 << 30))
    out.append((f"PrivateMessage protect 1 KiB (suite {suite_id})", rate(lambda: protect_private(sender, sig_sk, content), seconds)))
    pre_sender = EpochKeys(s, ctx, b"m" * 32, b"s" * 32, SecretTree(s, b"e" * 32, 2))
    messages = [protect_private(pre_sender, sig_sk, content) for _ in range(4000)]
    receiver = EpochKeys(s, ctx, b"m" * 32, b"s" * 32, SecretTree(s, b"e" * 32, 2))
    it = iter(messages)
    out.append((f"PrivateMessage unprotect 1 KiB (suite {suite_id})", rate(lambda: unprotect_private(receiver, sig_pk, next(it)), min(seconds, 0.2))))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time per operation (default 1)")
    args = parser.parse_args()
    print(f"machine: {machine()}\n")
    print("| operation | ops/s |\n|---|---:|")
    for suite_id in (3, 1):
        for name, r in bench_suite(suite_id, args.seconds):
            print(f"| {name} | {r:,.0f} |")


if __name__ == "__main__":
    main()
