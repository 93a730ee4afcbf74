"""The load of ``test_inbox_floods.py``, run as its own process (so the test's own
measurements do not share an event loop or an interpreter with it).

``python -m tests.security.flood_load URL SECONDS VICTIM_TOKEN ATTACKER_TOKEN TARGETS``:
for SECONDS, one task floods the devices ``TARGETS`` (``user/device,user/device``) with
``POST /sendToDevice`` (four sealed boxes of 224 KiB a request, like the 100 MB of finding 10)
and four tasks ``GET /sync?limit=1000`` the victim's device at once without acknowledging.
Prints one JSON line: answers by status and code, the largest sync answer in bytes.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections import Counter

import aiohttp
import msgpack

from crypto.rng import system_rng
from protocol.api import CLIENT_PREFIX
from protocol.sealed import seal_to_device
from protocol.txn_ids import new_client_txn_id

PAYLOAD = 200 * 1024  # sealed and padded: 224 KiB a box, four under the 1 MiB body bound


async def main(url: str, seconds: float, victim: str, attacker: str, targets: list[str]) -> dict:
    base = url + CLIENT_PREFIX
    deadline = time.monotonic() + seconds
    sends: Counter[str] = Counter()
    syncs = {"n": 0, "max_bytes": 0, "more": 0}

    async def flood(session: aiohttp.ClientSession) -> None:
        i = 0
        while time.monotonic() < deadline:
            user, device = targets[i % len(targets)].split("/")
            body = {"txn_id": new_client_txn_id(system_rng), "messages": [
                {"user_id": user, "device_id": device,
                 "payload": seal_to_device(os.urandom(32), os.urandom(PAYLOAD), system_rng)}
                for _ in range(4)]}
            i += 1
            async with session.post(base + "/sendToDevice", data=msgpack.packb(body), headers={
                    "Authorization": f"Bearer {attacker}",
                    "Content-Type": "application/msgpack"}) as r:
                answer = msgpack.unpackb(await r.read())
                sends[f"{r.status} {answer.get('error', {}).get('code', 'ok')}"] += 1

    async def sync(session: aiohttp.ClientSession) -> None:
        while time.monotonic() < deadline:
            async with session.get(base + "/sync", params={"limit": "1000"},
                                   headers={"Authorization": f"Bearer {victim}"}) as r:
                raw = await r.read()
                assert r.status == 200, raw[:200]
                syncs["n"] += 1
                syncs["max_bytes"] = max(syncs["max_bytes"], len(raw))
                syncs["more"] += bool(msgpack.unpackb(raw).get("more"))

    async with aiohttp.ClientSession() as session:
        mode = os.environ.get("FLOOD_MODE", "both")
        tasks = ([flood(session)] if mode in ("both", "send") else []) + (
            [sync(session) for _ in range(4)] if mode in ("both", "sync") else [])
        await asyncio.gather(*tasks)
    return {"sends": dict(sends), "syncs": syncs}


if __name__ == "__main__":
    url, seconds, victim, attacker, targets = sys.argv[1:6]
    print(json.dumps(asyncio.run(main(url, float(seconds), victim, attacker, targets.split(",")))),
          flush=True)
