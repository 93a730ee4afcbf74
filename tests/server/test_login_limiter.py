"""The login limiter's rule (spec/security.md, finding 7) with an injected clock."""

from __future__ import annotations

import pytest

from protocol.errors import RateLimited
from server.services.ratelimit import KNOWN_ADDRESS_TTL, FailureWindow, LoginLimiter
from tests.harness import FakeClock


def _limiter(clock, per_user=3, per_address=10, window=60):
    return LoginLimiter(FailureWindow(per_user, window, clock),
                        FailureWindow(per_address, window, clock), clock)


def test_attempts_are_counted_when_they_begin():
    clock = FakeClock()
    limiter = _limiter(clock)
    for _ in range(3):
        limiter.begin("@a:x", "1.1.1.1")  # none finished yet: all counted
    with pytest.raises(RateLimited) as exc:
        limiter.begin("@a:x", "1.1.1.1")
    assert 0 < exc.value.retry_after_ms <= 60_000


def test_refused_attempts_do_not_extend_the_window():
    clock = FakeClock()
    limiter = _limiter(clock)
    for _ in range(3):
        limiter.begin("@a:x", "1.1.1.1")
    for _ in range(50):
        clock.advance(1)
        with pytest.raises(RateLimited):
            limiter.begin("@a:x", "2.2.2.2")
    clock.advance(11)  # 61 s after the counted ones
    limiter.begin("@a:x", "2.2.2.2")


def test_a_success_takes_its_attempt_back_and_clears_the_account():
    clock = FakeClock()
    limiter = _limiter(clock, per_address=2)
    limiter.begin("@a:x", "1.1.1.1")
    limiter.succeeded("@a:x", "1.1.1.1")
    limiter.begin(None, "1.1.1.1")  # a registration
    limiter.succeeded(None, "1.1.1.1")
    limiter.begin("@b:x", "1.1.1.1")
    limiter.begin("@b:x", "1.1.1.1")
    with pytest.raises(RateLimited):  # only the two failures are counted for the address
        limiter.begin("@c:x", "1.1.1.1")


def test_a_known_address_has_a_window_of_its_own():
    clock = FakeClock()
    limiter = _limiter(clock)
    limiter.begin("@a:x", "1.1.1.1")
    limiter.succeeded("@a:x", "1.1.1.1")  # the owner's address is now known
    for _ in range(3):
        limiter.begin("@a:x", "6.6.6.6")  # a flood from elsewhere fills the account's window
    with pytest.raises(RateLimited):
        limiter.begin("@a:x", "7.7.7.7")
    limiter.begin("@a:x", "1.1.1.1")  # the owner is not locked out
    clock.advance(KNOWN_ADDRESS_TTL + 1)  # known for 30 days only
    for _ in range(3):
        limiter.begin("@a:x", "6.6.6.6")
    with pytest.raises(RateLimited):
        limiter.begin("@a:x", "1.1.1.1")
