"""Register, login, logout, whoami, sessions and failed-login limits over the HTTP API."""

from __future__ import annotations

from protocol.audit import AccessAction, AccessEvent
from server.storage import accounts


async def test_register_returns_a_working_token(hs):
    reg = await hs.register("alice")
    assert reg["user_id"] == "@alice:test.example"
    status, me = await hs.call("GET", "/account/whoami", token=reg["access_token"])
    assert status == 200
    assert me == {"user_id": "@alice:test.example", "device_id": reg["device_id"], "role": "client"}


async def test_register_uses_the_invite_role(hs):
    reg = await hs.register("carol", role="clinician")
    _, me = await hs.call("GET", "/account/whoami", token=reg["access_token"])
    assert me["role"] == "clinician"


async def test_register_logs_account_created_and_login(hs):
    reg = await hs.register("alice")
    entries = [e for e in await hs.log_entries() if isinstance(e, AccessEvent)]
    assert [(e.action, e.user, e.device) for e in entries] == [
        (AccessAction.ACCOUNT_CREATED, "@alice:test.example", None),
        (AccessAction.LOGIN, "@alice:test.example", reg["device_id"]),
    ]


async def test_replayed_invite_is_refused(hs):
    code = await hs.invite()
    body = {"invite": code, "user": "alice", "password": "password1"}
    assert (await hs.call("POST", "/register", body))[0] == 200
    status, err = await hs.call("POST", "/register", {**body, "user": "bob"})
    assert status == 403 and err["error"]["code"] == "invite_invalid"
    async with hs.db.read() as conn:
        assert not await accounts.exists(conn, "@bob:test.example")


async def test_unknown_and_expired_invites_are_refused(hs):
    status, err = await hs.call("POST", "/register", {
        "invite": "AAAA-BBBB-CCCC-DDDD", "user": "alice", "password": "password1"})
    assert (status, err["error"]["code"]) == (403, "invite_invalid")
    code = await hs.invite()
    hs.clock.advance(3601)
    status, err = await hs.call("POST", "/register", {
        "invite": code, "user": "alice", "password": "password1"})
    assert (status, err["error"]["code"]) == (403, "invite_invalid")


async def test_invite_code_ignores_case_and_dashes(hs):
    code = await hs.invite()
    status, _ = await hs.call("POST", "/register", {
        "invite": code.lower().replace("-", ""), "user": "alice", "password": "password1"})
    assert status == 200


async def test_duplicate_user_leaves_nothing_half_written(hs):
    await hs.register("alice")
    size_before = hs.log.size
    code = await hs.invite()
    body = {"invite": code, "user": "alice", "password": "password2"}
    status, err = await hs.call("POST", "/register", body)
    assert (status, err["error"]["code"]) == (409, "user_exists")
    # the invite is still unused, no device or token was added, nothing was logged
    status, reg = await hs.call("POST", "/register", {**body, "user": "bob"})
    assert status == 200
    async with hs.db.read() as conn:
        rows = await conn.execute_fetchall("SELECT COUNT(*) FROM devices WHERE user_id = ?",
                                           ("@alice:test.example",))
    assert rows[0][0] == 1
    assert hs.log.size == size_before + 2  # only bob's account_created and login


async def test_register_rejects_bad_user_and_short_password(hs):
    code = await hs.invite()
    status, err = await hs.call("POST", "/register", {
        "invite": code, "user": "Alice!", "password": "password1"})
    assert (status, err["error"]["code"]) == (400, "invalid_identifier")
    status, err = await hs.call("POST", "/register", {
        "invite": code, "user": "alice", "password": "short"})
    assert (status, err["error"]["code"]) == (400, "malformed_body")


async def test_login_gives_a_new_device(hs):
    reg = await hs.register("alice")
    status, login = await hs.login("alice")
    assert status == 200 and login["device_id"] != reg["device_id"]
    status, login2 = await hs.login("@alice:test.example")
    assert status == 200
    _, devs = await hs.call("GET", "/devices", token=login2["access_token"])
    assert len(devs["devices"]) == 3


async def test_login_into_an_existing_device_replaces_its_token(hs):
    reg = await hs.register("alice")
    status, again = await hs.login("alice", device_id=reg["device_id"])
    assert status == 200 and again["device_id"] == reg["device_id"]
    assert (await hs.call("GET", "/account/whoami", token=reg["access_token"]))[0] == 401
    assert (await hs.call("GET", "/account/whoami", token=again["access_token"]))[0] == 200
    status, err = await hs.login("alice", device_id="NOSUCHDEVICE")
    assert (status, err["error"]["code"]) == (404, "not_found")


async def test_wrong_password_and_unknown_user_get_the_same_answer(hs):
    await hs.register("alice")
    s1, e1 = await hs.login("alice", "wrong password")
    s2, e2 = await hs.login("nobody", "wrong password")
    s3, e3 = await hs.login("@alice:elsewhere.example", "x")
    assert s1 == s2 == 403 and e1 == e2
    assert (s3, e3["error"]["code"]) == (400, "bad_request")
    # the same work for an unknown user (finding 12): both counted in the open window, and
    # no entry names either attempted user (finding 1)
    async with hs.db.read() as conn, conn.execute("SELECT SUM(count) FROM failed_login_windows") as cur:
        assert (await cur.fetchone())[0] == 2
    assert not [e for e in await hs.log_entries() if isinstance(e, AccessEvent) and
                e.user == "@nobody:test.example"]


async def test_failed_logins_are_logged_as_one_count_per_closed_window(hs):
    from protocol.audit import FailedLogins
    from server.appkeys import ACCOUNTS

    counter = hs.app[ACCOUNTS].failures
    await hs.register("alice")
    for _ in range(3):
        await hs.login("alice", "wrong")
    assert await counter.log_closed_windows() == 0  # the window is still open
    assert not [e for e in await hs.log_entries() if isinstance(e, FailedLogins)]
    hs.clock.advance(counter.window_ms / 1000)
    await hs.login("nobody", "wrong")  # counted in the next window
    assert await counter.log_closed_windows() == 1
    [entry] = [e for e in await hs.log_entries() if isinstance(e, FailedLogins)]
    assert entry.count == 3 and entry.time - entry.window_start == counter.window_ms
    assert await counter.log_closed_windows() == 0  # logged once
    hs.clock.advance(counter.window_ms / 1000)
    assert await counter.log_closed_windows() == 1
    assert [e.count for e in await hs.log_entries() if isinstance(e, FailedLogins)] == [3, 1]


async def test_failed_logins_are_rate_limited_per_user(hs):
    await hs.register("alice")
    for _ in range(3):
        status, err = await hs.login("alice", "wrong")
        assert err["error"]["code"] == "invalid_login"
    status, err = await hs.login("alice")  # even the right password waits
    assert status == 429 and err["error"]["code"] == "rate_limited"
    assert 0 < err["error"]["retry_after_ms"] <= 60_000
    hs.clock.advance(61)
    status, _ = await hs.login("alice")
    assert status == 200


async def test_rate_limit_sends_retry_after_header(hs):
    for _ in range(3):
        await hs.login("alice", "wrong")
    resp = await hs.client.post("/_confide/client/v1/login", data=b"\x82\xa4user\xa5alice\xa8password"
                                b"\xa1x", headers={"Content-Type": "application/msgpack"})
    assert resp.status == 429 and 1 <= int(resp.headers["Retry-After"]) <= 60


async def test_failed_logins_are_rate_limited_per_address(hs):
    for i in range(5):
        await hs.login(f"user{i}", "wrong")
    status, err = await hs.login("someone-else", "wrong")
    assert (status, err["error"]["code"]) == (429, "rate_limited")


async def test_logout_revokes_the_token(hs):
    reg = await hs.register("alice")
    status, body = await hs.call("POST", "/logout", token=reg["access_token"])
    assert (status, body) == (200, {})
    status, err = await hs.call("GET", "/account/whoami", token=reg["access_token"])
    assert (status, err["error"]["code"]) == (401, "unauthorized")
    actions = [e.action for e in await hs.log_entries() if isinstance(e, AccessEvent)]
    assert actions[-1] == AccessAction.LOGOUT


async def test_logout_accepts_an_empty_map_body(hs):
    reg = await hs.register("alice")
    assert (await hs.call("POST", "/logout", {}, token=reg["access_token"]))[0] == 200
    reg = await hs.register("bob")
    status, err = await hs.call("POST", "/logout", {"x": 1}, token=reg["access_token"])
    assert (status, err["error"]["code"]) == (400, "malformed_body")


async def test_unknown_missing_and_malformed_tokens(hs):
    for headers in ({}, {"Authorization": "Bearer " + "A" * 43}, {"Authorization": "Basic abc"},
                    {"Authorization": "Bearer !!!"}, {"Authorization": "Bearer " + "A" * 44}):
        status, err = await hs.call("GET", "/devices", headers=headers)
        assert (status, err["error"]["code"]) == (401, "unauthorized"), headers


async def test_session_expires_after_idle_time_and_is_logged(hs):
    reg = await hs.register("alice")
    token = reg["access_token"]
    hs.clock.advance(3000)
    assert (await hs.call("GET", "/account/whoami", token=token))[0] == 200  # touches
    hs.clock.advance(3000)
    assert (await hs.call("GET", "/account/whoami", token=token))[0] == 200  # idle 3000 < 3600
    hs.clock.advance(3601)
    status, err = await hs.call("GET", "/account/whoami", token=token)
    assert (status, err["error"]["code"]) == (401, "unauthorized")
    assert "expired" in err["error"]["message"]
    actions = [e.action for e in await hs.log_entries() if isinstance(e, AccessEvent)]
    assert actions[-1] == AccessAction.SESSION_EXPIRED
    # and the device can log in again
    status, _ = await hs.login("alice", device_id=reg["device_id"])
    assert status == 200


async def test_use_is_recorded_coarsely(hs):
    reg = await hs.register("alice")
    async def last_used():
        async with hs.db.read() as conn:
            return (await conn.execute_fetchall("SELECT last_used FROM access_tokens"))[0][0]
    first = await last_used()
    hs.clock.advance(30)
    await hs.call("GET", "/account/whoami", token=reg["access_token"])
    assert await last_used() == first  # within touch_interval: no write
    hs.clock.advance(31)
    await hs.call("GET", "/account/whoami", token=reg["access_token"])
    assert await last_used() == first + 61_000
