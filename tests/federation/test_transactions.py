"""Two homeservers exchanging transactions: delivery, batching, order, durability across
restarts of either side, idempotency, per-item refusals, wake-up on a peer's return."""

from __future__ import annotations

import asyncio

from federation import FEDERATION_CLIENT, FEDERATION_SENDER, store
from protocol.federation import FEDERATION_PREFIX, Transaction, TransactionItem
from tests.harness import eventually, make_nodes


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


async def _refusing_peer(port: int, refuse: set[bytes]):
    """A peer at ``port`` that refuses as a whole (400 malformed_body) every transaction
    holding an item in ``refuse`` and accepts the others; returns (runner, accepted)."""
    from aiohttp import web

    from protocol.schema import pack_body

    accepted: list[bytes] = []

    async def send(request: web.Request) -> web.Response:
        txn = Transaction.decode(await request.read())
        if any(i.data in refuse for i in txn.items):
            body = pack_body({"error": {"code": "malformed_body", "message": "no"}})
            return web.Response(status=400, body=body, content_type="application/msgpack")
        accepted.extend(i.data for i in txn.items)
        return web.Response(body=pack_body({"results": [{"ok": True, "code": None, "message": None}
                                                        for _ in txn.items], "duplicate": False}),
                            content_type="application/msgpack")

    app = web.Application()
    app.router.add_put(FEDERATION_PREFIX + "/send/{txn_id}", send)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, accepted


async def test_refused_transaction_is_parked_and_the_queue_moves_on(tmp_path, capsys):
    from federation.cli import _run_drop, _run_parked, _run_retry

    a, b = make_nodes(tmp_path, "a.test", "b.test", fed={"batch_items": 1})
    refuse = {b"poison"}
    runner, accepted = await _refusing_peer(b.port, refuse)
    await a.start()
    try:
        sender = a.app[FEDERATION_SENDER]
        for data in (b"poison", b"after-1", b"after-2"):
            await sender.enqueue("b.test", "test.note", data)
        await eventually(lambda: len(accepted) == 2)
        assert accepted == [b"after-1", b"after-2"]
        async with a.db.read() as conn:
            parked = await store.parked_txns(conn)
        assert [(p.destination, p.items, p.reason) for p in parked] == [
            ("b.test", 1, "malformed_body (HTTP 400)")]
        state = (await _states(a))["b.test"]
        assert state.queued == 0 and state.parked == 1
        args = type("Args", (), {"data": a.data, "txn_id": parked[0].txn_id})
        assert await asyncio.to_thread(_run_parked, args) == 0
        assert parked[0].txn_id in capsys.readouterr().out
        refuse.clear()
        assert await asyncio.to_thread(_run_retry, args) == 0
        sender.wake()
        await eventually(lambda: b"poison" in accepted)
        assert accepted == [b"after-1", b"after-2", b"poison"]
        refuse.add(b"poison2")
        await sender.enqueue("b.test", "test.note", b"poison2")
        await eventually(lambda: _parked_count(a, 1))
        async with a.db.read() as conn:
            (second,) = await store.parked_txns(conn)
        args.txn_id = second.txn_id
        assert await asyncio.to_thread(_run_drop, args) == 0
        assert await asyncio.to_thread(_run_drop, args) == 1
        assert await asyncio.to_thread(_run_retry, args) == 1
        assert "no parked transaction" in capsys.readouterr().err
        assert (await _states(a))["b.test"].parked == 0
    finally:
        await a.stop()
        await runner.cleanup()


async def _parked_count(node, n):
    async with node.db.read() as conn:
        return len(await store.parked_txns(conn)) == n


async def test_transaction_parked_after_max_attempts(tmp_path):
    a, b = make_nodes(tmp_path, "a.test", "b.test", fed={"max_txn_attempts": 2})
    await a.start()  # b never starts: unreachable
    try:
        await a.app[FEDERATION_SENDER].enqueue("b.test", "test.note", b"x")
        await eventually(lambda: _parked_count(a, 1))
        async with a.db.read() as conn:
            (p,) = await store.parked_txns(conn)
        assert p.reason == "peer_unreachable" and p.items == 1
    finally:
        await a.stop()
