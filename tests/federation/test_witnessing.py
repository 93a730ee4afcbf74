"""Servers witness each other's logs over federation; a split view is caught.

a.test submits its checkpoints to b.test's witness (signed), stores the cosignatures
next to its checkpoint, and grows with consistency proofs. When a.test signs a second,
different checkpoint of a size b.test already cosigned, b.test refuses it
(``witness_inconsistent``), records it, and ``confide audit verify --witness`` fails
with "split view"; an old size that is not the last cosigned gets
``witness_size_conflict`` with ``current_size``.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from crypto.checkpoint import Checkpoint, sign_checkpoint
from crypto.note import Signer
from federation.appkeys import FEDERATION_WITNESSING
from server.appkeys import TRANSPARENCY_LOG
from tests.harness import signed_call, user_on

REPO = Path(__file__).resolve().parents[2]


async def audit(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "server.cli", "audit", "verify", *args, cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    return proc.returncode, out.decode() + err.decode()


async def test_peers_cosign_and_a_split_view_is_caught(people):
    a, b, alice, bob, clients = people
    tlog = a.app[TRANSPARENCY_LOG]
    witnessing = a.app[FEDERATION_WITNESSING]
    size = await witnessing.submit("b.test")
    assert size == tlog.size > 0
    assert b"b.test/witness" in await tlog.checkpoint()
    await user_on(a, "carol", clients=clients)  # the log grows: a consistency proof goes along
    assert await witnessing.submit("b.test") == tlog.size > size
    code, out = await audit(a.url, "--witness", b.url)
    assert code == 0 and "consistent" in out, out

    # a wrong old size: 409 with the size b last cosigned
    cp_note = (await tlog.storage.checkpoint_note(tlog.size))[1]
    status, body = await signed_call(a, b, "POST", "/_confide/federation/v1/witness/add-checkpoint",
                                     {"request": b"old 1\n\n" + cp_note})
    assert (status, body["error"]["code"], body["error"]["current_size"]) == (
        409, "witness_size_conflict", tlog.size)

    # a signs another checkpoint of the same size for b: refused, recorded, reported
    seed = (a.data / "keys" / "log.key").read_bytes()
    forged = sign_checkpoint(Checkpoint("a.test", tlog.size, b"\x07" * 32), Signer("a.test", seed))
    status, body = await signed_call(a, b, "POST", "/_confide/federation/v1/witness/add-checkpoint",
                                     {"request": f"old {tlog.size}\n\n".encode() + forged})
    assert (status, body["error"]["code"]) == (422, "witness_inconsistent")
    assert [x["size"] for x in b.app[FEDERATION_WITNESSING].alerts] == [tlog.size]
    code, out = await audit(a.url, "--witness", b.url)
    assert code == 1 and "split view" in out, out
    # b only witnesses a's own log when a submits it
    status, body = await signed_call(b, a, "POST", "/_confide/federation/v1/witness/add-checkpoint",
                                     {"request": f"old {tlog.size}\n\n".encode() + forged})
    assert (status, body["error"]["code"]) == (403, "not_your_user")


async def test_pinned_log_keys_and_split_view_alerts_survive_a_restart(people):
    a, b, alice, bob, clients = people
    tlog = a.app[TRANSPARENCY_LOG]
    assert await a.app[FEDERATION_WITNESSING].submit("b.test") == tlog.size
    pinned = b.app[FEDERATION_WITNESSING].witness.logs["a.test"][0].vkey()
    seed = (a.data / "keys" / "log.key").read_bytes()
    forged = sign_checkpoint(Checkpoint("a.test", tlog.size, b"\x07" * 32), Signer("a.test", seed))
    status, _ = await signed_call(a, b, "POST", "/_confide/federation/v1/witness/add-checkpoint",
                                  {"request": f"old {tlog.size}\n\n".encode() + forged})
    assert status == 422
    await b.stop()
    await b.start()
    w = b.app[FEDERATION_WITNESSING]
    assert [x["size"] for x in w.alerts] == [tlog.size]  # the alert is still served
    assert w.witness.logs["a.test"][0].vkey() == pinned  # pinned without asking a again
    code, out = await audit(a.url, "--witness", b.url)
    assert code == 1 and "split view" in out, out
    # a checkpoint signed by another key for a.test is refused: the pin is not replaced
    other = sign_checkpoint(Checkpoint("a.test", tlog.size + 1, b"\x08" * 32), Signer("a.test", bytes(32)))
    status, body = await signed_call(a, b, "POST", "/_confide/federation/v1/witness/add-checkpoint",
                                     {"request": f"old {tlog.size}\n\n".encode() + other})
    assert (status, body["error"]["code"]) == (400, "witness_refused")
    assert w.witness.logs["a.test"][0].vkey() == pinned


async def test_a_pinned_peer_log_is_cosigned_over_the_c2sp_endpoint_too(people):
    """One witness: the log key b pinned over federation is trusted by b's C2SP
    add-checkpoint endpoint, which a generic tlog-witness client can use."""
    import aiohttp

    a, b, alice, bob, clients = people
    tlog = a.app[TRANSPARENCY_LOG]
    assert await a.app[FEDERATION_WITNESSING].submit("b.test") == tlog.size
    note = (await tlog.storage.checkpoint_note(tlog.size))[1]
    async with aiohttp.ClientSession() as session:
        async with session.post(b.url + "/_confide/witness/v1/add-checkpoint",
                                data=f"old {tlog.size}\n\n".encode() + note) as resp:
            assert resp.status == 200, await resp.text()
            assert (await resp.text()).startswith("\u2014 b.test/witness ")
        async with session.post(b.url + "/_confide/witness/v1/add-checkpoint",
                                data=b"old 0\n\n" + note) as resp:
            assert (resp.status, resp.content_type, await resp.text()) == (
                409, "text/x.tlog.size", f"{tlog.size}\n")
