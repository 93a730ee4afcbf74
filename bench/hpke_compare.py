"""Confide's HPKE against the PyPI package ``pyhpke``: ops/s, same process, same run.

Run: ``.venv/bin/python -m bench.hpke_compare [--seconds S] [--rounds N]``.

Suite: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, with ChaCha20-Poly1305 and
AES-128-GCM, base mode. Operations, each single-shot as an application uses it:

- seal 1 KiB: sender setup (encap, key schedule) and one seal of 1,024 bytes;
- open 1 KiB: receiver setup (decap, key schedule) and one open;
- key setup: sender setup plus receiver setup, no AEAD.

pyhpke has no single-shot seal/open (they raise NotImplementedError), so its
single-shot is ``create_sender_context`` + ``seal`` (resp. recipient and
``open``), which is exactly what RFC 9180 section 6 defines. pyhpke's keys are
deserialized once, outside the timed loops (that favours pyhpke: Confide
takes raw bytes on every call). Before timing, the script checks that each
library opens the other's ciphertexts.

Measurements interleave the two libraries round by round and report the
median rate, so a change of load on a shared machine hits both alike.
pyhpke is not a dependency of Confide: install it by hand for this script
(``.venv/bin/pip install pyhpke``); without it, Confide is measured alone.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable

from crypto.hpke import AeadId, Hpke
from crypto.rng import system_rng

try:
    import pyhpke
except ImportError:  # measured alone
    pyhpke = None

__all__ = ["main"]

PT = bytes(range(256)) * 4  # 1 KiB
AAD = b"confide-bench-aad"
INFO = b"confide-bench-info"
AEADS = [("ChaCha20-Poly1305", AeadId.CHACHA20_POLY1305), ("AES-128-GCM", AeadId.AES_128_GCM)]
OPS = ["seal 1 KiB", "open 1 KiB", "key setup"]

Op = Callable[[], object]


def confide_ops(aead: AeadId, sk_r: bytes, pk_r: bytes) -> dict[str, Op]:
    suite = Hpke(aead)
    enc, ct = suite.seal(pk_r, INFO, AAD, PT, rng=system_rng)

    def key_setup() -> None:
        enc, _ = suite.setup_sender(pk_r, INFO, rng=system_rng)
        suite.setup_receiver(enc, sk_r, INFO)

    return {
        "seal 1 KiB": lambda: suite.seal(pk_r, INFO, AAD, PT, rng=system_rng),
        "open 1 KiB": lambda: suite.open(enc, sk_r, INFO, AAD, ct),
        "key setup": key_setup,
    }


def pyhpke_ops(aead: AeadId, sk_r: bytes, pk_r: bytes) -> dict[str, Op]:
    suite = _pyhpke_suite(aead)
    skr = suite.kem.deserialize_private_key(sk_r)
    pkr = suite.kem.deserialize_public_key(pk_r)
    enc, ctx = suite.create_sender_context(pkr, INFO)
    ct = ctx.seal(PT, AAD)

    def seal() -> tuple[bytes, bytes]:
        enc, ctx = suite.create_sender_context(pkr, INFO)
        return enc, ctx.seal(PT, AAD)

    def key_setup() -> None:
        enc, _ = suite.create_sender_context(pkr, INFO)
        suite.create_recipient_context(enc, skr, INFO)

    return {
        "seal 1 KiB": seal,
        "open 1 KiB": lambda: suite.create_recipient_context(enc, skr, INFO).open(ct, AAD),
        "key setup": key_setup,
    }


def _pyhpke_suite(aead: AeadId):
    return pyhpke.CipherSuite.new(
        pyhpke.KEMId.DHKEM_X25519_HKDF_SHA256,
        pyhpke.KDFId.HKDF_SHA256,
        pyhpke.AEADId(int(aead)),
    )


def check_interop(aead: AeadId, sk_r: bytes, pk_r: bytes) -> None:
    """Each library opens the other's ciphertext, and both derive the same key pair."""
    ours, theirs = Hpke(aead), _pyhpke_suite(aead)
    ikm = b"\x42" * 32
    pair = theirs.kem.derive_key_pair(ikm)
    assert ours.derive_key_pair(ikm)[1] == pair.public_key.to_public_bytes()
    skr = theirs.kem.deserialize_private_key(sk_r)
    pkr = theirs.kem.deserialize_public_key(pk_r)
    enc, ct = ours.seal(pk_r, INFO, AAD, PT, rng=system_rng)
    assert theirs.create_recipient_context(enc, skr, INFO).open(ct, AAD) == PT
    enc, ctx = theirs.create_sender_context(pkr, INFO)
    assert ours.open(enc, sk_r, INFO, AAD, ctx.seal(PT, AAD)) == PT


def rate(op: Op, seconds: float) -> float:
    """Calls of ``op`` per second over about ``seconds``."""
    n, start = 0, time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(16):
            op()
        n += 16
        now = time.perf_counter()
        if now >= deadline:
            return n / (now - start)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    import cryptography
    import nacl

    versions = f"PyNaCl {nacl.__version__}, cryptography {cryptography.__version__}"
    if pyhpke is not None:
        versions += f", pyhpke {pyhpke.__version__}"
    return (
        f"{platform.platform()}; Python {platform.python_version()} ({platform.python_implementation()}); "
        f"{os.cpu_count()} CPUs ({cpu}); {versions}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.4, help="time per measurement")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (median taken)")
    args = parser.parse_args(argv)

    sk_r, pk_r = Hpke(AeadId.CHACHA20_POLY1305).generate_key_pair(system_rng)
    libs: dict[str, Callable[[AeadId, bytes, bytes], dict[str, Op]]] = {"Confide": confide_ops}
    if pyhpke is None:
        print("pyhpke is not installed: measuring Confide alone "
              "(`.venv/bin/pip install pyhpke` to compare).\n")
    else:
        libs["pyhpke"] = pyhpke_ops
        for _, aead in AEADS:
            check_interop(aead, sk_r, pk_r)
        print("interop check: each library opens the other's ciphertexts (both AEADs): ok\n")

    ops = {(name, lib): make(aead, sk_r, pk_r) for name, aead in AEADS for lib, make in libs.items()}
    samples: dict[tuple[str, str, str], list[float]] = {}
    for _ in range(args.rounds):
        for (name, lib), table in ops.items():
            for op_name, op in table.items():
                samples.setdefault((name, op_name, lib), []).append(rate(op, args.seconds))

    header = "| AEAD | operation | Confide ops/s |"
    rule = "|---|---|---:|"
    if pyhpke is not None:
        header += " pyhpke ops/s | Confide / pyhpke |"
        rule += "---:|---:|"
    print(header)
    print(rule)
    for name, _ in AEADS:
        for op_name in OPS:
            ours = statistics.median(samples[(name, op_name, "Confide")])
            row = f"| {name} | {op_name} | {ours:,.0f} |"
            if pyhpke is not None:
                theirs = statistics.median(samples[(name, op_name, "pyhpke")])
                row += f" {theirs:,.0f} | {ours / theirs:.2f}x |"
            print(row)
    print(f"\nMachine: {machine()}")
    print(f"Method: median of {args.rounds} interleaved rounds of {args.seconds}s per cell; "
          "base mode; 1 KiB plaintext; fresh ephemeral key per operation.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
