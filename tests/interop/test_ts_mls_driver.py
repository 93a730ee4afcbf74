"""The ts-mls driver speaks spec/mls-driver.md, and the interop runner plays the IETF scripts.

Needs node and npm (ts-mls is installed into tests/interop/node_modules by
tests/interop/install.sh from the committed lockfile); skipped with the reason
otherwise. Runs that need Confide's own driver skip with "confide mls-driver not
available" until ``confide mls-driver`` exists.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from client.interop import (
    IMPLEMENTATIONS,
    DriverError,
    DriverProcess,
    Interop,
    actors_of,
    assign,
    configs_dir,
    load_script_file,
)

HERE = Path(__file__).resolve().parent
SUITES = (1, 3)


def _install() -> str | None:
    """None when ts-mls is installed, else the reason to skip."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        return "node/npm not available"
    proc = subprocess.run(["sh", str(HERE / "install.sh")], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        return f"tests/interop/install.sh failed: {proc.stderr.strip()[-300:]}"
    return None


_SKIP = _install()
needs_ts_mls = pytest.mark.skipif(_SKIP is not None, reason=_SKIP or "")
needs_configs = pytest.mark.skipif(not configs_dir().is_dir(),
                                   reason=f"interop configs not found at {configs_dir()}")


@pytest.fixture
async def ts():
    d = DriverProcess("ts-mls", IMPLEMENTATIONS["ts-mls"])
    await d.start()
    yield d
    await d.close()


def _wireformat(message_hex: str) -> int:
    data = bytes.fromhex(message_hex)
    assert data[:2] == b"\x00\x01", "MLSMessage version must be mls10"
    return int.from_bytes(data[2:4], "big")


PUBLIC, PRIVATE, WELCOME, GROUP_INFO, KEY_PACKAGE = 1, 2, 3, 4, 5


# ---------------------------------------------------------------- protocol


@needs_ts_mls
async def test_supported_lists_suites_and_core_ops(ts):
    assert set(SUITES) <= set(ts.supported["cipher_suites"])
    for op in ("create_group", "create_key_package", "join_group", "external_join", "group_info",
               "state_auth", "export", "protect", "unprotect", "add_proposal", "remove_proposal",
               "update_proposal", "commit", "handle_commit", "handle_pending_commit", "free"):
        assert op in ts.supported["ops"]


@needs_ts_mls
@pytest.mark.parametrize("suite", SUITES)
@pytest.mark.parametrize("encrypt", [False, True], ids=["public", "private"])
async def test_add_join_protect_agree(ts, suite, encrypt):
    alice = (await ts.request("create_group", cipher_suite=suite, group_id=b"g".hex(),
                              identity=b"alice".hex(), encrypt_handshake=encrypt))["state_id"]
    kp = await ts.request("create_key_package", cipher_suite=suite, identity=b"bob".hex())
    assert _wireformat(kp["key_package"]) == KEY_PACKAGE
    proposal = (await ts.request("add_proposal", state_id=alice, key_package=kp["key_package"]))["proposal"]
    assert _wireformat(proposal) == (PRIVATE if encrypt else PUBLIC)
    c = await ts.request("commit", state_id=alice, by_reference=[proposal], by_value=[],
                         force_path=False, external_tree=True)
    assert _wireformat(c["commit"]) == (PRIVATE if encrypt else PUBLIC)
    assert _wireformat(c["welcome"]) == WELCOME
    pending = await ts.request("handle_pending_commit", state_id=alice)
    bob = await ts.request("join_group", transaction_id=kp["transaction_id"], welcome=c["welcome"],
                           ratchet_tree=c["ratchet_tree"], encrypt_handshake=encrypt)
    assert bob["epoch_authenticator"] == pending["epoch_authenticator"]
    a_auth = await ts.request("state_auth", state_id=alice)
    b_auth = await ts.request("state_auth", state_id=bob["state_id"])
    assert a_auth["epoch_authenticator"] == b_auth["epoch_authenticator"]
    assert a_auth["epoch"] == b_auth["epoch"] == 1

    ct = (await ts.request("protect", state_id=alice, authenticated_data="0a0b", plaintext="68656c6c6f"))["ciphertext"]
    assert _wireformat(ct) == PRIVATE
    out = await ts.request("unprotect", state_id=bob["state_id"], ciphertext=ct)
    assert (out["authenticated_data"], out["plaintext"]) == ("0a0b", "68656c6c6f")

    ex_a = await ts.request("export", state_id=alice, label=b"x".hex(), context="00", key_length=32)
    ex_b = await ts.request("export", state_id=bob["state_id"], label=b"x".hex(), context="00", key_length=32)
    assert ex_a["exported_secret"] == ex_b["exported_secret"] and len(ex_a["exported_secret"]) == 64

    # an update from bob, committed by alice: bob adopts his new leaf key
    upd = (await ts.request("update_proposal", state_id=bob["state_id"]))["proposal"]
    c2 = await ts.request("commit", state_id=alice, by_reference=[upd], by_value=[],
                          force_path=False, external_tree=False)
    assert c2["welcome"] is None
    p2 = await ts.request("handle_pending_commit", state_id=alice)
    h2 = await ts.request("handle_commit", state_id=bob["state_id"], proposals=[upd], commit=c2["commit"])
    assert h2["epoch_authenticator"] == p2["epoch_authenticator"] != pending["epoch_authenticator"]


@needs_ts_mls
@pytest.mark.parametrize("suite", SUITES)
async def test_external_join_and_remove(ts, suite):
    alice = (await ts.request("create_group", cipher_suite=suite, group_id=b"g2".hex(),
                              identity=b"alice".hex(), encrypt_handshake=False))["state_id"]
    gi = await ts.request("group_info", state_id=alice, external_tree=True)
    assert _wireformat(gi["group_info"]) == GROUP_INFO
    bob = await ts.request("external_join", group_info=gi["group_info"], ratchet_tree=gi["ratchet_tree"],
                           identity=b"bob".hex(), encrypt_handshake=False, remove_prior=False, psks=[])
    assert _wireformat(bob["commit"]) == PUBLIC
    h = await ts.request("handle_commit", state_id=alice, proposals=[], commit=bob["commit"])
    assert h["epoch_authenticator"] == bob["epoch_authenticator"]
    c = await ts.request("commit", state_id=alice, by_reference=[],
                         by_value=[{"proposal_type": "remove", "removed_identity": b"bob".hex()}],
                         force_path=False, external_tree=False)
    assert _wireformat(c["commit"]) == PUBLIC and c["welcome"] is None
    p = await ts.request("handle_pending_commit", state_id=alice)
    assert p["epoch_authenticator"] != h["epoch_authenticator"]
    assert (await ts.request("state_auth", state_id=alice))["epoch"] == 2


@needs_ts_mls
async def test_errors_are_typed(ts):
    with pytest.raises(DriverError) as e:
        await ts.request("no_such_op")
    assert e.value.code == "unsupported"
    with pytest.raises(DriverError) as e:
        await ts.request("create_group", cipher_suite=2, group_id="00", identity="00", encrypt_handshake=False)
    assert e.value.code == "unsupported"
    with pytest.raises(DriverError) as e:
        await ts.request("state_auth", state_id=987654)
    assert e.value.code == "unknown_state"
    with pytest.raises(DriverError) as e:
        await ts.request("create_key_package", cipher_suite=1, identity="XYZ")
    assert e.value.code == "bad_request"
    with pytest.raises(DriverError) as e:
        await ts.request("join_group", transaction_id=987654, welcome="00")
    assert e.value.code == "unknown_state"


# ---------------------------------------------------------------- runner


def test_actor_order_and_assignments():
    steps = [{"action": "createGroup", "actor": "alice", "members": ["bob", "carol"]},
             {"action": "externalJoin", "actor": "carol", "joiner": "dave", "members": ["alice"]}]
    actors = actors_of(steps)
    assert actors == ["alice", "bob", "carol", "dave"]
    assert assign("alternating", actors) == {"alice": "confide", "bob": "ts-mls",
                                             "carol": "confide", "dave": "ts-mls"}
    assert assign("ts-mls-as-creator", actors) == {"alice": "ts-mls", "bob": "confide",
                                                   "carol": "confide", "dave": "confide"}
    assert set(assign("all-ts-mls", actors).values()) == {"ts-mls"}
    with pytest.raises(ValueError):
        assign("random", actors)


# Runs the ts-mls driver cannot do, with why (ts-mls 1.6.4 limits, see the driver).
EXPECTED_UNSUPPORTED = {
    "commit": {"group_context_extensions", "all_together_alice_proposes", "all_together_bob_proposes"},
    "external_join": {"with_psk"},
    "branch": {"with_extensions"},
}


@needs_ts_mls
@needs_configs
@pytest.mark.parametrize("suite", SUITES)
@pytest.mark.parametrize("script", ["welcome_join", "commit", "application", "external_join", "branch",
                                    "external_proposals/joiner_signed_add"])
async def test_runner_all_ts_mls(script, suite):
    interop = Interop()
    try:
        results = await interop.run([script], ["all-ts-mls"], [suite])
    finally:
        await interop.close()
    cell = results[script]["all-ts-mls"][str(suite)]
    file, _, only = script.partition("/")
    subscripts = {only} if only else set(load_script_file(configs_dir(), file))
    unsupported = {u.split("[", 1)[0] for u in cell["unsupported"]}
    assert cell["failures"] == [] and cell["failed"] == 0
    assert unsupported == EXPECTED_UNSUPPORTED.get(script, set())
    assert cell["passed"] == len(subscripts - unsupported) > 0


@needs_ts_mls
async def test_runner_reports_failures_and_unavailable_drivers(tmp_path):
    (tmp_path / "broken.json").write_text(json.dumps({"scripts": {
        "unprotect_before_join": [
            {"action": "createGroup", "actor": "alice"},
            {"action": "protect", "actor": "alice", "authenticatedData": "a", "plaintext": "p"},
            {"action": "unprotect", "actor": "bob", "ciphertext": 1}],
        "dangling_reference": [
            {"action": "createGroup", "actor": "alice"},
            {"action": "addProposal", "actor": "alice", "keyPackage": 7}],
        "unknown_action": [{"action": "createGroup", "actor": "alice"}, {"action": "dance", "actor": "alice"}],
    }}))
    impls = {"ts-mls": IMPLEMENTATIONS["ts-mls"], "confide": ["sh", "-c", "exit 3"]}
    interop = Interop(implementations=impls, folder=tmp_path)
    try:
        results = await interop.run(["broken"], ["all-ts-mls", "all-confide"], [1])
    finally:
        await interop.close()
    cell = results["broken"]["all-ts-mls"]["1"]
    assert cell["failed"] == 2 and cell["passed"] == 0
    assert any("step 2 (unprotect)" in f and "bob has no group state" in f for f in cell["failures"])
    assert any("step 1 (addProposal)" in f and "step 7" in f for f in cell["failures"])
    assert cell["unsupported"] == ["unknown_action[public]: step 1 (dance): runner does not know this action"]
    down = results["broken"]["all-confide"]["1"]
    assert down["failed"] == 0 and down["passed"] == 0 and len(down["unsupported"]) == 3
    assert all("confide mls-driver not available" in u for u in down["unsupported"])


# ---------------------------------------------------------------- with Confide's driver


@pytest.fixture(scope="module")
def confide_available() -> str | None:
    """None if `confide mls-driver` answers `supported`, else why not."""
    import asyncio

    async def probe():
        d = DriverProcess("confide", IMPLEMENTATIONS["confide"])
        try:
            await d.start()
            return None
        except Exception as exc:  # noqa: BLE001 - any failure means "not available"
            return str(exc)
        finally:
            await d.close()

    return asyncio.run(probe())


@needs_ts_mls
@needs_configs
@pytest.mark.parametrize("suite", SUITES)
@pytest.mark.parametrize("assignment", ["all-confide", "alternating", "ts-mls-as-creator"])
@pytest.mark.parametrize("script", ["welcome_join", "commit", "application", "external_join"])
async def test_runner_with_confide(script, assignment, suite, confide_available):
    if confide_available is not None:
        pytest.skip("confide mls-driver not available")
    interop = Interop()
    try:
        results = await interop.run([script], [assignment], [suite])
    finally:
        await interop.close()
    cell = results[script][assignment][str(suite)]
    assert cell["failures"] == [] and cell["failed"] == 0
    assert cell["passed"] > 0
