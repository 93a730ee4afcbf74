"""Finding 10 over federation: a ``to_device`` item for a device whose inbox is at its quota
is refused by the receiving server (``inbox_full``, final: nothing stored), and once the
device has room again the next one is delivered (``spec/server-server.md`` 11.2,
``spec/client-server.md`` 9.1). The quota is reached by writing the device's usage row
in the receiver's database, as a flood would leave it.
"""

from __future__ import annotations

from crypto.rng import system_rng
from protocol.sealed import seal_to_device
from protocol.txn_ids import new_client_txn_id
from server.delivery.inbox import DEFAULT_QUOTA
from tests.harness import eventually

REFUSED, DELIVERED = (seal_to_device(system_rng(32), text, system_rng) for text in (b"refused", b"delivered"))


async def _send(alice, bob, box: bytes) -> None:
    """A sealed to-device box (finding 9) from alice to bob's device; her server takes it
    (a refusal would raise ServerError)."""
    await alice.http.call("POST", "/sendToDevice", {"txn_id": new_client_txn_id(system_rng), "messages": [
        {"user_id": bob.user_id, "device_id": bob.device_id, "payload": box}]})


async def _queued(node, destination: str) -> int:
    async with node.db.read() as conn:
        rows = await conn.execute_fetchall(
            "SELECT COUNT(*) FROM federation_outbox WHERE destination = ?", (destination,))
    return rows[0][0]


async def _to_device_rows(node, user: str) -> list[bytes]:
    async with node.db.read() as conn:
        rows = await conn.execute_fetchall(
            "SELECT payload FROM inbox WHERE user_id = ? AND kind = 'to_device'", (user,))
    return [bytes(r[0]) for r in rows]


async def test_a_full_inbox_refuses_federated_to_device_items(people):
    a, b, alice, bob, _ = people
    await alice.http.call("POST", "/keys/claim", {"user": bob.user_id})  # a contact now
    async with b.db.transaction() as tx:  # bob's device inbox at its item quota
        await tx.execute("INSERT INTO inbox_usage (user_id, device_id, items, bytes) VALUES (?, ?, ?, 0)",
                         (bob.user_id, bob.device_id, DEFAULT_QUOTA.max_items))
    await _send(alice, bob, REFUSED)

    async def sent() -> bool:
        return await _queued(a, "b.test") == 0
    await eventually(sent)
    assert await _to_device_rows(b, bob.user_id) == []  # refused, nothing stored

    async with b.db.transaction() as tx:  # the device synced: room again
        await tx.execute("DELETE FROM inbox_usage WHERE user_id = ?", (bob.user_id,))
    await _send(alice, bob, DELIVERED)

    async def delivered() -> bool:
        return await _to_device_rows(b, bob.user_id) == [DELIVERED]
    await eventually(delivered)
