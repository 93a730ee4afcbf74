"""Multi-factor sign-in over the HTTP API, in process with an injected clock (server/services/mfa.py).

The attacks on a real ``confide serve`` are in tests/security/test_mfa.py; here the clock is a
:class:`FakeClock`, so steps, the ±1 window and replays within one step are exact.
"""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto.totp import hotp, totp, totp_step
from protocol.audit import AccessAction, AccessEvent
from protocol.errors import MalformedBody
from protocol.mfa import (
    MfaBeginResponse,
    MfaConfirmResponse,
    MfaDisableRequest,
    MfaInvalid,
    normalize_recovery_code,
)
from protocol.schema import decode_body, pack_body
from server.config import Auth
from server.storage import mfa as mfa_store
from tests.harness import NO_MFA, start

PASSWORD = "correct horse"
REQUIRED = Auth(mfa_required_roles=("admin", "clinician", "staff"))


@pytest.fixture
async def hs_required(tmp_path, clock):
    harness = await start(tmp_path, clock, auth=REQUIRED)
    yield harness
    await harness.client.close()


def _key(secret: str) -> bytes:
    return base64.b32decode(secret + "=" * (-len(secret) % 8))


async def _enrol(hs, token: str) -> tuple[bytes, list[str]]:
    status, begun = await hs.call("POST", "/account/mfa/totp/begin", {}, token=token)
    assert status == 200, begun
    key = _key(begun["secret"])
    assert begun["otpauth_uri"].startswith("otpauth://totp/") and begun["digits"] == 6
    status, done = await hs.call("POST", "/account/mfa/totp/confirm",
                                 {"code": totp(key, hs.clock())}, token=token)
    assert status == 200, done
    return key, done["recovery_codes"]


async def _tokens(hs) -> int:
    async with hs.db.read() as conn:
        return (await conn.execute_fetchall("SELECT COUNT(*) FROM access_tokens"))[0][0]


def _code(status_body) -> str:
    return status_body[1]["error"]["code"]


async def test_login_needs_the_second_factor_once_enabled(hs):
    reg = await hs.register("alice", PASSWORD)
    key, codes = await _enrol(hs, reg["access_token"])
    assert len(codes) == 10 and len(set(codes)) == 10
    before = await _tokens(hs)
    assert _code(await hs.login("alice")) == "mfa_required"
    hs.clock.advance(30)
    wrong = hotp(key, totp_step(hs.clock()) + 5)
    assert _code(await hs.login("alice", totp=wrong)) == "mfa_invalid"
    assert await _tokens(hs) == before  # neither refusal made a device or a token
    status, body = await hs.login("alice", totp=totp(key, hs.clock()))
    assert status == 200 and body["mfa_enrolment_required"] is False
    assert await _tokens(hs) == before + 1


async def test_a_code_is_single_use_even_in_its_own_step(hs):
    reg = await hs.register("alice", PASSWORD)
    key, _ = await _enrol(hs, reg["access_token"])
    # the confirm code's step is used: the same code cannot log in
    assert _code(await hs.login("alice", totp=totp(key, hs.clock()))) == "mfa_invalid"
    hs.clock.advance(30)
    code = totp(key, hs.clock())
    assert (await hs.login("alice", totp=code))[0] == 200
    assert _code(await hs.login("alice", totp=code)) == "mfa_invalid"
    # an earlier step inside the window is refused too once a later one was used
    assert _code(await hs.login("alice", totp=hotp(key, totp_step(hs.clock()) - 1))) == "mfa_invalid"
    # the next step (clock drift, one step ahead) is accepted
    assert (await hs.login("alice", totp=hotp(key, totp_step(hs.clock()) + 1)))[0] == 200


async def test_window_is_one_step_each_way(hs):
    reg = await hs.register("alice", PASSWORD)
    key, _ = await _enrol(hs, reg["access_token"])
    hs.clock.advance(300)
    step = totp_step(hs.clock())
    assert _code(await hs.login("alice", totp=hotp(key, step - 2))) == "mfa_invalid"
    assert _code(await hs.login("alice", totp=hotp(key, step + 2))) == "mfa_invalid"
    assert (await hs.login("alice", totp=hotp(key, step - 1)))[0] == 200


async def test_recovery_code_works_once(hs):
    reg = await hs.register("alice", PASSWORD)
    _, codes = await _enrol(hs, reg["access_token"])
    status, _ = await hs.login("alice", recovery_code=codes[3].lower().replace("-", " "))
    assert status == 200  # case and separators do not matter
    assert _code(await hs.login("alice", recovery_code=codes[3])) == "mfa_invalid"
    assert _code(await hs.login("alice", recovery_code="AAAAA-AAAAA")) == "mfa_invalid"
    assert _code(await hs.login("alice", recovery_code="not a code")) == "mfa_invalid"
    used = [e for e in await hs.log_entries()
            if isinstance(e, AccessEvent) and e.action == AccessAction.RECOVERY_CODE_USED]
    assert len(used) == 1 and used[0].user == "@alice:test.example"
    async with hs.db.read() as conn:
        assert await mfa_store.recovery_codes_left(conn, "@alice:test.example") == 9


async def test_second_factor_failures_are_counted_by_the_limiter(hs):
    # make_config: 3 failures per user per 60 s
    reg = await hs.register("alice", PASSWORD)
    key, _ = await _enrol(hs, reg["access_token"])
    hs.clock.advance(30)
    for _ in range(3):
        assert _code(await hs.login("alice", totp="000000")) in ("mfa_invalid",)
    status, body = await hs.login("alice", totp=totp(key, hs.clock()))
    assert status == 429 and body["error"]["code"] == "rate_limited"


async def test_wrong_password_with_a_code_says_nothing_about_mfa(hs):
    reg = await hs.register("alice", PASSWORD)
    key, _ = await _enrol(hs, reg["access_token"])
    hs.clock.advance(30)
    with_mfa = await hs.login("alice", "wrong password", totp=totp(key, hs.clock()))
    unknown = await hs.login("nobody", "wrong password", totp=totp(key, hs.clock()))
    assert with_mfa == unknown and _code(with_mfa) == "invalid_login"


async def test_enrolment_errors(hs):
    token = (await hs.register("alice", PASSWORD))["access_token"]
    status, body = await hs.call("POST", "/account/mfa/totp/confirm", {"code": "123456"}, token=token)
    assert (status, body["error"]["code"]) == (409, "mfa_not_started")
    status, body = await hs.call("POST", "/account/mfa/disable", {"code": "123456"}, token=token)
    assert (status, body["error"]["code"]) == (409, "mfa_not_enabled")
    status, begun = await hs.call("POST", "/account/mfa/totp/begin", {}, token=token)
    key = _key(begun["secret"])
    status, body = await hs.call("POST", "/account/mfa/totp/confirm",
                                 {"code": hotp(key, totp_step(hs.clock()) + 3)}, token=token)
    assert (status, body["error"]["code"]) == (403, "mfa_invalid")
    await hs.call("POST", "/account/mfa/totp/confirm", {"code": totp(key, hs.clock())}, token=token)
    status, body = await hs.call("POST", "/account/mfa/totp/begin", {}, token=token)
    assert (status, body["error"]["code"]) == (409, "mfa_already_enabled")
    status, body = await hs.call("POST", "/account/mfa/disable", {}, token=token)
    assert (status, body["error"]["code"]) == (400, "bad_request")
    status, _ = await hs.call("POST", "/account/mfa/totp/begin", token=None)
    assert status == 401


async def test_disable_needs_a_fresh_code_and_is_logged(hs):
    token = (await hs.register("alice", PASSWORD))["access_token"]
    key, _ = await _enrol(hs, token)
    status, body = await hs.call("POST", "/account/mfa/disable", {"code": totp(key, hs.clock())},
                                 token=token)
    assert (status, body["error"]["code"]) == (403, "mfa_invalid")  # the confirm code, replayed
    hs.clock.advance(30)
    status, _ = await hs.call("POST", "/account/mfa/disable", {"code": totp(key, hs.clock())},
                              token=token)
    assert status == 200
    assert (await hs.login("alice"))[0] == 200  # the password alone again
    actions = [e.action for e in await hs.log_entries() if isinstance(e, AccessEvent)]
    assert AccessAction.MFA_ENABLED in actions and AccessAction.MFA_DISABLED in actions


async def test_mandatory_role_gets_an_enrolment_only_session(hs_required):
    hs = hs_required
    reg = await hs.register("carol", PASSWORD, role="clinician")
    assert reg["mfa_enrolment_required"] is True
    token = reg["access_token"]
    status, body = await hs.call("GET", "/devices", token=token)
    assert (status, body["error"]["code"]) == (403, "mfa_enrolment_required")
    status, me = await hs.call("GET", "/account/whoami", token=token)
    assert status == 200 and me["role"] == "clinician"
    _, login = await hs.login("carol")
    assert login["mfa_enrolment_required"] is True
    status, _ = await hs.call("GET", "/devices", token=login["access_token"])
    assert status == 403
    key, _ = await _enrol(hs, token)
    assert (await hs.call("GET", "/devices", token=token))[0] == 200  # confirm made it full
    assert (await hs.call("GET", "/devices", token=login["access_token"]))[0] == 403
    # clients are not required: a client account is a full one at once
    client = await hs.register("dana", PASSWORD, role="client")
    assert client["mfa_enrolment_required"] is False
    assert (await hs.call("GET", "/devices", token=client["access_token"]))[0] == 200
    # disabling MFA on a mandatory role makes every session of the account enrolment-only
    hs.clock.advance(30)
    assert (await hs.call("POST", "/account/mfa/disable", {"code": totp(key, hs.clock())},
                          token=token))[0] == 200
    status, body = await hs.call("GET", "/devices", token=token)
    assert (status, body["error"]["code"]) == (403, "mfa_enrolment_required")


async def test_secret_at_rest_is_sealed(hs):
    token = (await hs.register("alice", PASSWORD))["access_token"]
    _, begun = await hs.call("POST", "/account/mfa/totp/begin", {}, token=token)
    key = _key(begun["secret"])
    async with hs.db.read() as conn:
        row = await mfa_store.get(conn, "@alice:test.example")
    assert key not in row.sealed_secret and begun["secret"].encode() not in row.sealed_secret
    key_file = hs.config.keys_dir / "mfa.key"
    assert key_file.stat().st_mode & 0o777 == 0o600


def test_default_requires_mfa_of_staff_roles():
    from server.config import Config

    assert set(Config().auth.mfa_required_roles) == {"admin", "clinician", "staff"}
    assert NO_MFA.mfa_required_roles == ()


@settings(max_examples=200, deadline=None)
@given(raw=st.text(max_size=40))
def test_recovery_code_normalizer_raises_only_mfa_invalid(raw):
    try:
        code = normalize_recovery_code(raw)
    except MfaInvalid:
        return
    assert len(code) == 10 and set(code) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
    assert normalize_recovery_code(code) == code


@pytest.mark.parametrize("msg", [
    MfaBeginResponse("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", "otpauth://totp/x", 6, 30),
    MfaConfirmResponse(tuple(f"AAAA{i}-BBBBB" for i in range(2, 12))),
    MfaDisableRequest(code="123456"),
    MfaDisableRequest(recovery_code="AAAAA-BBBBB"),
], ids=lambda m: type(m).__name__)
def test_mfa_bodies_round_trip(msg):
    assert decode_body(pack_body(msg), type(msg)) == msg


def test_confirm_response_holds_exactly_ten_codes():
    with pytest.raises(MalformedBody):
        MfaConfirmResponse.from_wire({"recovery_codes": ["AAAAA-BBBBB"] * 9})
