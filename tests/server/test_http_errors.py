"""Bad input at the HTTP layer: every case gets its typed code, never a 500."""

from __future__ import annotations

import msgpack
import pytest

from server.appkeys import ACCOUNTS
from tests.harness import P, start

REGISTER = P + "/register"


async def _post(hs, data, headers):
    resp = await hs.client.post(REGISTER, data=data, headers=headers)
    body = msgpack.unpackb(await resp.read())
    return resp.status, body["error"]["code"]


@pytest.mark.parametrize("data", [b"", b"\xc1", b"\x81", b"\x80\x80", b"\xd4\x01\x00", b"\x92\x01\x02",
                                  b"\xa3abc", b"\x81\x01\x02", b"\x81\xc4\x01a\x01", b"\xdd\xff\xff\xff\xff"])
async def test_malformed_msgpack(hs, data):
    assert await _post(hs, data, {"Content-Type": "application/msgpack"}) == (400, "malformed_body")


@pytest.mark.parametrize("ctype", [None, "application/json", "text/plain", "application/msgpackx"])
async def test_wrong_content_type(hs, ctype):
    headers = {} if ctype is None else {"Content-Type": ctype}
    assert await _post(hs, msgpack.packb({}), headers) == (415, "unsupported_media_type")


async def test_content_type_parameters_are_allowed(hs):
    status, code = await _post(hs, msgpack.packb({}), {"Content-Type": "Application/MsgPack; x=y"})
    assert (status, code) == (400, "malformed_body")  # past the content type check


async def test_oversize_body_declared(tmp_path):
    from server.config import Limits

    hs = await start(tmp_path, limits=Limits(max_body=1024))
    try:
        big = msgpack.packb({"invite": "x" * 2000})
        assert await _post(hs, big, {"Content-Type": "application/msgpack"}) == (413, "body_too_large")
    finally:
        await hs.client.close()


async def test_oversize_body_streamed_without_length(tmp_path):
    from server.config import Limits

    hs = await start(tmp_path, limits=Limits(max_body=1024))

    async def chunks():
        for _ in range(10):
            yield b"\x00" * 500

    try:
        assert await _post(hs, chunks(), {"Content-Type": "application/msgpack"}) == (413, "body_too_large")
    finally:
        await hs.client.close()


async def test_unknown_and_missing_fields(hs):
    code = await hs.invite()
    base = {"invite": code, "user": "alice", "password": "password1"}
    status, err = await hs.call("POST", "/register", {**base, "admin": True})
    assert (status, err["error"]["code"]) == (400, "malformed_body")
    assert "unknown field" in err["error"]["message"]
    status, err = await hs.call("POST", "/register", {k: v for k, v in base.items() if k != "invite"})
    assert (status, err["error"]["code"]) == (400, "malformed_body")
    status, err = await hs.call("POST", "/register", {**base, "user": b"alice"})
    assert (status, err["error"]["code"]) == (400, "malformed_body")
    # none of that used the invite
    assert (await hs.call("POST", "/register", base))[0] == 200


async def test_unknown_route_and_wrong_method(hs):
    status, err = await hs.call("GET", "/no/such/thing")
    assert (status, err["error"]["code"]) == (404, "not_found")
    status, err = await hs.call("GET", "/register")
    assert (status, err["error"]["code"]) == (405, "method_not_allowed")


async def test_unexpected_exception_is_internal_without_details(hs, monkeypatch):
    async def boom(*a, **k):
        raise RuntimeError("secret detail @alice:test.example")

    monkeypatch.setattr(hs.app[ACCOUNTS], "register", boom)
    code = await hs.invite()
    status, err = await hs.call("POST", "/register", {
        "invite": code, "user": "alice", "password": "password1"})
    assert status == 500
    assert err == {"error": {"code": "internal", "message": "internal error"}}


async def test_bad_path_identifiers(hs):
    reg = await hs.register("alice")
    status, err = await hs.call("GET", "/users/not-a-user/devices", token=reg["access_token"])
    assert (status, err["error"]["code"]) == (400, "invalid_identifier")
    status, err = await hs.call("DELETE", "/devices/bad%20id", token=reg["access_token"])
    assert (status, err["error"]["code"]) == (400, "invalid_identifier")


async def test_log_routes_are_mounted(hs):
    await hs.register("alice")
    resp = await hs.client.get("/_confide/log/v1/checkpoint")
    text = await resp.text()
    assert resp.status == 200 and text.startswith("test.example\n")
    assert text.splitlines()[1] == "2"
