"""Two homeservers exchanging transactions: delivery, batching, order, durability across
restarts of either side, idempotency, per-item refusals, wake-up on a peer's return."""

from __future__ import annotations

from federation import FEDERATION_CLIENT, FEDERATION_SENDER, store
from protocol.federation import FEDERATION_PREFIX, Transaction, TransactionItem

from .conftest import eventually
from .helpers import make_nodes


async def _states(node):
    async with node.db.read() as conn:
        return {s.destination: s for s in await store.destination_states(conn)}


async def test_two_servers_exchange_transactions(pair):
    a, b = pair
    await a.app[FEDERATION_SENDER].enqueue("b.test", "test.note", b"hello b")
    await b.app[FEDERATION_SENDER].enqueue("a.test", "test.note", b"hello a")
    await eventually(lambda: b.applied and a.applied)
    assert b.applied == [("a.test", b"hello b")] and a.applied == [("b.test", b"hello a")]
    await eventually(lambda: _queue_empty(a, "b.test"))
    state = (await _states(a))["b.test"]
    assert state.queued == 0 and state.attempts == 0 and state.last_success is not None


async def _queue_empty(node, destination):
    return (await _states(node))[destination].queued == 0


async def test_signed_synchronous_call(pair):
    a, b = pair
    answer = await a.app[FEDERATION_CLIENT].call("GET", "b.test", FEDERATION_PREFIX + "/ping")
    assert answer == {"server_name": "b.test", "origin": "a.test"}


async def test_batches_in_order(pair):
    a, b = pair
    async with a.db.transaction() as tx:
        for i in range(120):
            await store.enqueue(tx, "b.test", "test.note", b"n%03d" % i, 0)
    a.app[FEDERATION_SENDER].wake()
    await eventually(lambda: len(b.applied) == 120)
    assert [d for _, d in b.applied] == [b"n%03d" % i for i in range(120)]
    assert await b.inbound_txns() == 3  # 50 + 50 + 20 (batch_items = 50)


async def test_receiver_down_then_back_gets_everything_once_in_order(pair):
    a, b = pair
    await b.stop()
    sender = a.app[FEDERATION_SENDER]
    for i in range(10):
        await sender.enqueue("b.test", "test.note", b"m%d" % i)
    await eventually(lambda: _attempts_at_least(a, "b.test", 2))
    state = (await _states(a))["b.test"]
    assert state.queued == 10 and state.last_error == "peer_unreachable"
    await b.start()
    await eventually(lambda: len(b.applied) == 10)
    # A destination's transactions go in order, each acknowledged before the next: once
    # a later item is applied, no earlier transaction can come again.
    await sender.enqueue("b.test", "test.note", b"last")
    await eventually(lambda: len(b.applied) >= 11)
    assert [d for _, d in b.applied] == [b"m%d" % i for i in range(10)] + [b"last"]
    assert await b.stored_notes() == [b"m%d" % i for i in range(10)] + [b"last"]
    assert (await _states(a))["b.test"].attempts == 0


async def _attempts_at_least(node, destination, n):
    s = (await _states(node)).get(destination)
    return s is not None and s.attempts >= n


async def test_queue_survives_sender_restart(tmp_path):
    a, b = make_nodes(tmp_path, "a.test", "b.test")
    await a.start()
    for i in range(5):
        await a.app[FEDERATION_SENDER].enqueue("b.test", "test.note", b"r%d" % i)
    await eventually(lambda: _attempts_at_least(a, "b.test", 1))
    await a.stop()
    await b.start()
    await a.start()
    try:
        await eventually(lambda: len(b.applied) == 5)
        assert [d for _, d in b.applied] == [b"r%d" % i for i in range(5)]
    finally:
        await a.stop()
        await b.stop()


async def test_transaction_delivered_twice_is_applied_once(pair):
    a, b = pair
    client = a.app[FEDERATION_CLIENT]
    txn = Transaction((TransactionItem("test.note", b"once"),))
    first = await client.send_transaction("b.test", "dup-1", txn)
    second = await client.send_transaction("b.test", "dup-1", txn)
    assert not first.duplicate and second.duplicate
    assert first.results == second.results and first.results[0].ok
    assert b.applied == [("a.test", b"once")] and await b.stored_notes() == [b"once"]
    assert await b.inbound_txns() == 1
    # the same txn id from another origin is another transaction
    third = await b.app[FEDERATION_CLIENT].send_transaction("a.test", "dup-1", txn)
    assert not third.duplicate and a.applied == [("b.test", b"once")]


async def test_refused_items_roll_back_alone(pair):
    a, b = pair
    txn = Transaction((TransactionItem("test.note", b"one"), TransactionItem("test.note", b"refuse me"),
                       TransactionItem("no.such.kind", b"?"), TransactionItem("test.note", b"two")))
    resp = await a.app[FEDERATION_CLIENT].send_transaction("b.test", "t-items", txn)
    assert [(r.ok, r.code) for r in resp.results] == [
        (True, None), (False, "forbidden"), (False, "unknown_item_kind"), (True, None)]
    assert await b.stored_notes() == [b"one", b"two"]
    assert [d for _, d in b.applied] == [b"one", b"two"]


async def test_queue_drains_past_refused_items_and_reports_results(pair):
    a, b = pair
    sender = a.app[FEDERATION_SENDER]
    outcomes = []

    async def listener(destination, item_id, result):
        outcomes.append((destination, item_id, result.ok, result.code))

    sender.on_result("test.note", listener)
    first = await sender.enqueue("b.test", "test.note", b"refuse this")
    second = await sender.enqueue("b.test", "test.note", b"after")
    await eventually(lambda: _queue_empty(a, "b.test"))
    await eventually(lambda: len(outcomes) == 2)
    assert b.applied == [("a.test", b"after")]
    assert outcomes == [("b.test", first, False, "forbidden"), ("b.test", second, True, None)]


async def test_a_returning_peer_is_served_at_once(tmp_path):
    a, b = make_nodes(tmp_path, "a.test", "b.test", fed={"retry_initial_ms": 60_000, "retry_max_ms": 600_000})
    await a.start()
    try:
        await a.app[FEDERATION_SENDER].enqueue("b.test", "test.note", b"waiting")
        await eventually(lambda: _attempts_at_least(a, "b.test", 1))
        await b.start()
        state = (await _states(a))["b.test"]  # still backing off (>= 30 s)
        assert state.queued == 1 and state.next_attempt > a.clock() * 1000 + 20_000
        assert b.applied == []
        await b.app[FEDERATION_CLIENT].call("GET", "a.test", FEDERATION_PREFIX + "/ping")
        await eventually(lambda: b.applied == [("a.test", b"waiting")], timeout=5)
    finally:
        await a.stop()
        await b.stop()
