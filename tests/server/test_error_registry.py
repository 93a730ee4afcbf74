"""One error registry: the log's and witness's codes sit beside the client API's, one middleware
answers all of them, msgpack on the client API and the C2SP text body on the log/witness routes."""

from __future__ import annotations

import msgpack
import pytest

import protocol.tlog_errors  # noqa: F401  (the codes are registered by importing)
from protocol.errors import REGISTRY, status_for_code
from server.translog import http as log_http

pytestmark = pytest.mark.timeout(60)


def test_log_and_witness_codes_are_registered_with_the_tlog_witness_statuses():
    expected = {"malformed": 400, "invalid_tree_size": 400, "old_size_too_large": 400, "bad_request": 400,
                "unverified_note": 403, "note_signature_invalid": 403, "not_found": 404,
                "unknown_origin": 404, "size_conflict": 409, "inconsistent": 422, "bad_empty_root": 422,
                "unexpected_proof": 422, "storage_unavailable": 503}
    assert {code: status_for_code(code) for code in expected} == expected
    assert all(code in REGISTRY for code in expected)


def test_the_log_routes_keep_no_mapping_of_their_own():
    assert not hasattr(log_http, "_status_of") and not hasattr(log_http, "_error")


@pytest.mark.parametrize(("path", "status", "code"), [
    ("/_confide/log/v1/tile/entries/999", 404, "not_found"),
    ("/_confide/log/v1/tile/x/y", 400, "malformed"),
    ("/_confide/log/v1/proof/inclusion?index=01", 400, "malformed"),
    ("/_confide/log/v1/proof/inclusion", 400, "bad_request"),
    ("/_confide/log/v1/proof/consistency?old=5&new=1", 400, "bad_request"),
    ("/_confide/witness/v1/" + "0" * 64 + "/checkpoint", 404, "not_found"),
])
async def test_log_route_errors_get_the_text_body(hs, path, status, code):
    resp = await hs.client.get(path)
    assert resp.status == status and resp.content_type == "text/plain"
    assert resp.headers["X-Confide-Error"] == code
    assert (await resp.text()).startswith(f"{code}: ")


async def test_client_api_errors_stay_msgpack(hs):
    resp = await hs.client.get("/_confide/client/v1/no-such-endpoint")
    assert resp.status == 404 and resp.content_type == "application/msgpack"
    assert msgpack.unpackb(await resp.read())["error"]["code"] == "not_found"
