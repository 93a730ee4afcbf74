"""The parts behind findings 8 and 10, in process with time injected: the claim limiter's
bucket and windows, the device share's byte meters and build slot, the sync answer's byte
bound paged through to the end, and the sync answer's decoder (Hypothesis).

(The attacks against a real ``confide serve`` are ``tests/security/test_claim_limits.py``,
``test_invite_acceptance.py`` and ``test_inbox_floods.py``.)
"""

from __future__ import annotations

import asyncio
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto.rng import system_rng
from protocol.errors import ApiError, InvalidIdentifier, MalformedBody, RateLimited
from protocol.rooms_api import SyncResponse
from protocol.sealed import seal_to_device
from protocol.txn_ids import new_client_txn_id
from server.config import DeliveryLimits
from server.delivery.fairness import ByteMeter, DeviceShare
from server.delivery.sync import ITEM_OVERHEAD
from server.services.claim_limits import ClaimLimiter, TokenBucket
from server.services.ratelimit import FailureWindow
from tests.harness import FakeClock, start

pytestmark = pytest.mark.timeout(60)


def _limiter(clock, burst=4, per_hour=3600, pair=2, target=3, window=60):
    return ClaimLimiter(TokenBucket(burst, per_hour / 3600, clock), FailureWindow(pair, window, clock),
                        FailureWindow(target, window, clock))


def test_the_claimers_bucket_refills_on_the_injected_clock():
    clock = FakeClock()
    limiter = _limiter(clock, burst=2, per_hour=3600, pair=100, target=100)
    limiter.begin("@a:s", "@t1:s", stranger=False)
    limiter.begin("@a:s", "@t2:s", stranger=False)
    with pytest.raises(RateLimited) as err:
        limiter.begin("@a:s", "@t3:s", stranger=False)
    assert err.value.retry_after_ms == 1000  # one token a second
    clock.advance(1)
    limiter.begin("@a:s", "@t3:s", stranger=False)


def test_pair_and_stranger_windows_and_who_they_spare():
    clock = FakeClock()
    limiter = _limiter(clock, burst=100, pair=2, target=3)
    for _ in range(2):
        limiter.begin("@m:s", "@v:s", stranger=True)
    with pytest.raises(RateLimited):  # the pair is spent
        limiter.begin("@m:s", "@v:s", stranger=True)
    limiter.begin("@n:s", "@v:s", stranger=True)  # a third stranger's claim: the target's last
    with pytest.raises(RateLimited):
        limiter.begin("@o:s", "@v:s", stranger=True)
    limiter.begin("@c:s", "@v:s", stranger=False)  # a contact is not counted against the target
    for _ in range(10):
        limiter.begin("@v:s", "@v:s", stranger=False)  # one's own devices: no pair window
    for _ in range(10):
        limiter.begin("peer:b.test", "@w:s", stranger=False, cost=0.1)  # a peer: no pair window
    clock.advance(61)
    limiter.begin("@o:s", "@v:s", stranger=True)  # the window has passed


def test_a_refused_claim_is_not_counted():
    clock = FakeClock()
    limiter = _limiter(clock, burst=1, per_hour=60, pair=100, target=100)
    limiter.begin("@a:s", "@t:s", stranger=False)
    for _ in range(5):
        with pytest.raises(RateLimited):
            limiter.begin("@a:s", "@t:s", stranger=False)
    clock.advance(60)  # one token a minute: the refusals did not push it further away
    limiter.begin("@a:s", "@t:s", stranger=False)


def test_byte_meter_goes_below_zero_and_comes_back():
    clock = FakeClock()
    meter = ByteMeter(100, 50, clock)
    assert meter.wait("d") == 0
    meter.spend("d", 200)  # 100 - 200 = -100: two seconds at 50 a second
    assert meter.wait("d") == pytest.approx(2.0)
    clock.advance(1)
    assert meter.wait("d") == pytest.approx(1.0)
    clock.advance(1)
    assert meter.wait("d") == 0


async def test_one_build_at_a_time_per_device():
    clock = FakeClock()
    share = DeviceShare(ByteMeter(10**9, 10**9, clock), ByteMeter(10**9, 10**9, clock))
    inside: list[str] = []
    peak = {"a": 0, "b": 0}

    async def build(key: str) -> None:
        async with share.building(key):
            inside.append(key)
            peak[key] = max(peak[key], inside.count(key))
            await asyncio.sleep(0.01)
            inside.remove(key)

    await asyncio.gather(*(build(k) for k in "aaaabbbb"))
    assert peak == {"a": 1, "b": 1}


async def test_admit_push_refuses_past_the_budget():
    clock = FakeClock()
    share = DeviceShare(ByteMeter(100, 100, clock), ByteMeter(100, 100, clock), tarpit=0)
    await share.admit_push("d")
    share.pushed.spend("d", 300)
    with pytest.raises(RateLimited) as err:
        await share.admit_push("d")
    assert err.value.retry_after_ms == 2000


SYNC_BYTES = 64 * 1024


@pytest.fixture
async def hs(tmp_path, clock):
    harness = await start(tmp_path, clock, delivery=DeliveryLimits(max_sync_bytes=SYNC_BYTES))
    yield harness
    await harness.client.close()


async def test_sync_pages_by_bytes_and_loses_nothing(hs):
    sender = await hs.register("sender")
    target = await hs.register("target")
    rng = random.Random(7)
    sizes = [rng.choice([10, 1000, 20_000, 40_000, 70_000]) for _ in range(40)]
    # sealed to-device boxes (finding 9), of padded sizes from 314 bytes to 112 KiB
    boxes = [seal_to_device(system_rng(32), bytes([i]) * n, system_rng) for i, n in enumerate(sizes)]
    for box in boxes:
        status, body = await hs.call("POST", "/sendToDevice", {
            "txn_id": new_client_txn_id(system_rng), "messages": [{
                "user_id": target["user_id"], "device_id": target["device_id"],
                "payload": box}]}, token=sender["access_token"])
        assert status == 200, body
    got: list[bytes] = []
    since = None
    for _ in range(100):
        path = "/sync?limit=1000" + (f"&since={since}" if since else "")
        status, body = await hs.call("GET", path, token=target["access_token"])
        assert status == 200
        payloads = [item["payload"] for item in body["inbox"]]
        assert payloads or not body["more"]
        # within the bound, or a single item larger than it
        assert len(payloads) == 1 or sum(len(p) + ITEM_OVERHEAD for p in payloads) <= SYNC_BYTES
        got.extend(payloads)
        since = body["next"]
        if not body["more"]:
            break
    assert got == boxes


_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2**64, 2**64), st.text(max_size=20),
              st.binary(max_size=20)),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(max_size=8), inner, max_size=3)), max_leaves=8)


@settings(max_examples=200, deadline=None)
@given(obj=st.one_of(_values, st.fixed_dictionaries(
    {"next": st.one_of(st.just("5"), st.text(max_size=4)), "events": st.just([]),
     "inbox": st.just([])}, optional={"more": _values})))
def test_sync_answer_decoder_raises_only_typed_errors(obj):
    try:
        msg = SyncResponse.from_wire(obj)
    except ApiError as exc:
        assert isinstance(exc, MalformedBody | InvalidIdentifier)
        return
    assert isinstance(msg.more, bool)
    assert SyncResponse.from_wire(msg.to_wire()) == msg
