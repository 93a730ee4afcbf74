"""The drivers speak spec/mls-driver.md, and the interop runner plays the IETF scripts.

Three parts:

- ts-mls's driver (``tests/interop/ts_mls_driver.mjs``) at the protocol level;
- Confide's driver (``confide mls-driver``, :mod:`client.mls_driver`) at the protocol
  level, in process (:class:`~client.mls_driver.MlsDriver`) and as a process, and
  against ts-mls message by message;
- the runner playing the upstream scripts in the four assignments. The drivers are
  long-lived: one :class:`~client.interop.Interop` (one process per implementation)
  plays every run of a module-scoped fixture, and each test checks one cell.

Needs node and npm (ts-mls is installed into tests/interop/node_modules by
tests/interop/install.sh from the committed lockfile); the ts-mls parts skip with the
reason otherwise.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
from client.mls_driver import OPS, MlsDriver
from crypto.mls.extensions import ExtensionType, find_extension
from crypto.mls.message import MLSMessage

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




# ---------------------------------------------------------------- Confide's driver, in process


class _Confide:
    """:class:`MlsDriver` called like a driver process: ``request`` returns the success
    response or raises DriverError with the error code."""

    def __init__(self) -> None:
        self.driver = MlsDriver()
        self.n = 0

    def request(self, op: str, **fields) -> dict:
        self.n += 1
        resp = self.driver.handle({"id": self.n, "op": op, **fields})
        assert resp["id"] == self.n
        if resp["ok"] is not True:
            raise DriverError("confide", op, resp["error"]["code"], resp["error"]["message"])
        return resp

    def new_group(self, suite: int, name: str, encrypt: bool = False) -> int:
        return self.request("create_group", cipher_suite=suite, group_id=f"group-{name}".encode().hex(),
                            identity=name.encode().hex(), encrypt_handshake=encrypt)["state_id"]

    def ea(self, state_id: int) -> str:
        return self.request("state_auth", state_id=state_id)["epoch_authenticator"]


@pytest.fixture
def confide() -> _Confide:
    return _Confide()


def test_confide_supported_lists_every_op(confide):
    r = confide.request("supported")
    assert r["cipher_suites"] == [1, 3] and r["name"] == "confide"
    assert set(r["ops"]) == set(OPS)
    for op in ("create_group", "join_group", "external_join", "commit", "handle_commit", "reinit_welcome",
               "create_branch", "external_signer_proposal", "new_member_add_proposal"):
        assert op in r["ops"]


@pytest.mark.parametrize("suite", SUITES)
@pytest.mark.parametrize("encrypt", [False, True], ids=["public", "private"])
def test_confide_add_join_protect_agree(confide, suite, encrypt):
    alice = confide.new_group(suite, "alice", encrypt)
    kp = confide.request("create_key_package", cipher_suite=suite, identity=b"bob".hex())
    assert _wireformat(kp["key_package"]) == KEY_PACKAGE
    proposal = confide.request("add_proposal", state_id=alice, key_package=kp["key_package"])["proposal"]
    assert _wireformat(proposal) == (PRIVATE if encrypt else PUBLIC)
    c = confide.request("commit", state_id=alice, by_reference=[proposal], by_value=[], force_path=False,
                        external_tree=True)
    assert _wireformat(c["commit"]) == (PRIVATE if encrypt else PUBLIC) and _wireformat(c["welcome"]) == WELCOME
    before = confide.ea(alice)
    pending = confide.request("handle_pending_commit", state_id=alice)
    assert pending["state_id"] == alice and pending["epoch_authenticator"] != before
    bob = confide.request("join_group", transaction_id=kp["transaction_id"], welcome=c["welcome"],
                          ratchet_tree=c["ratchet_tree"], encrypt_handshake=encrypt)
    assert bob["epoch_authenticator"] == pending["epoch_authenticator"]
    assert confide.request("state_auth", state_id=bob["state_id"])["epoch"] == 1
    with pytest.raises(DriverError) as e:  # the key package is consumed
        confide.request("join_group", transaction_id=kp["transaction_id"], welcome=c["welcome"])
    assert e.value.code == "unknown_state"

    ct = confide.request("protect", state_id=alice, authenticated_data="0a0b", plaintext="68656c6c6f")["ciphertext"]
    assert _wireformat(ct) == PRIVATE
    out = confide.request("unprotect", state_id=bob["state_id"], ciphertext=ct)
    assert (out["authenticated_data"], out["plaintext"]) == ("0a0b", "68656c6c6f")
    ex = [confide.request("export", state_id=s, label=b"x".hex(), context="00", key_length=32)["exported_secret"]
          for s in (alice, bob["state_id"])]
    assert ex[0] == ex[1] and len(ex[0]) == 64

    # bob's update, committed by alice by reference; bob adopts his new leaf key
    upd = confide.request("update_proposal", state_id=bob["state_id"])["proposal"]
    c2 = confide.request("commit", state_id=alice, by_reference=[upd], by_value=[], force_path=False,
                         external_tree=False)
    assert c2["welcome"] is None
    p2 = confide.request("handle_pending_commit", state_id=alice)
    h2 = confide.request("handle_commit", state_id=bob["state_id"], proposals=[upd], commit=c2["commit"])
    assert h2["epoch_authenticator"] == p2["epoch_authenticator"] != pending["epoch_authenticator"]
    # an application message of the previous epoch still opens
    late = confide.request("protect", state_id=bob["state_id"], authenticated_data="", plaintext="01")
    assert confide.request("unprotect", state_id=alice, ciphertext=late["ciphertext"])["plaintext"] == "01"


@pytest.mark.parametrize("suite", SUITES)
def test_confide_external_join_resync_and_remove(confide, suite):
    alice = confide.new_group(suite, "alice")
    gi = confide.request("group_info", state_id=alice, external_tree=True)
    assert _wireformat(gi["group_info"]) == GROUP_INFO
    info = MLSMessage.from_bytes(bytes.fromhex(gi["group_info"])).body
    assert find_extension(info.extensions, ExtensionType.RATCHET_TREE) is None
    pub = find_extension(info.extensions, ExtensionType.EXTERNAL_PUB)
    assert pub is not None and pub.extension_data[0] == 32 and len(pub.extension_data) == 33  # HPKEPublicKey<V>
    bob = confide.request("external_join", group_info=gi["group_info"], ratchet_tree=gi["ratchet_tree"],
                          identity=b"bob".hex(), encrypt_handshake=False, remove_prior=False, psks=[])
    assert _wireformat(bob["commit"]) == PUBLIC
    h = confide.request("handle_commit", state_id=alice, proposals=[], commit=bob["commit"])
    assert h["epoch_authenticator"] == bob["epoch_authenticator"]
    # bob resyncs: a new external join removing his old leaf, with an external PSK
    gi2 = confide.request("group_info", state_id=alice, external_tree=False)
    psk = {"psk_id": "11" * 32, "psk_secret": "22" * 32}
    confide.request("store_psk", state_id=alice, **psk)
    bob2 = confide.request("external_join", group_info=gi2["group_info"], identity=b"bob".hex(),
                           encrypt_handshake=False, remove_prior=True, psks=[psk])
    h2 = confide.request("handle_commit", state_id=alice, proposals=[], commit=bob2["commit"])
    assert h2["epoch_authenticator"] == bob2["epoch_authenticator"] == confide.ea(bob2["state_id"])
    # alice removes bob by identity: one member left, epoch 3
    c = confide.request("commit", state_id=alice, by_reference=[],
                        by_value=[{"proposal_type": "remove", "removed_identity": b"bob".hex()}],
                        force_path=False, external_tree=False)
    assert c["welcome"] is None
    confide.request("handle_pending_commit", state_id=alice)
    handled = confide.request("handle_commit", state_id=bob2["state_id"], proposals=[], commit=c["commit"])
    assert handled["state_id"] == bob2["state_id"]
    assert confide.request("state_auth", state_id=alice)["epoch"] == 3
    with pytest.raises(DriverError) as e:  # bob was removed
        confide.request("protect", state_id=bob2["state_id"], authenticated_data="", plaintext="00")
    assert e.value.code == "mls_error" and e.value.message.startswith("mls_group_inactive:")


def test_confide_errors_are_typed(confide):
    def code(op, **fields) -> tuple[str, str]:
        with pytest.raises(DriverError) as e:
            confide.request(op, **fields)
        return e.value.code, e.value.message

    assert code("no_such_op")[0] == "unsupported"
    assert code("create_group", cipher_suite=2, group_id="00", identity="00", encrypt_handshake=False)[0] == "unsupported"
    assert code("state_auth", state_id=987654)[0] == "unknown_state"
    assert code("join_group", transaction_id=987654, welcome="00")[0] == "unknown_state"
    assert code("create_key_package", cipher_suite=1, identity="XYZ")[0] == "bad_request"
    assert code("create_key_package", cipher_suite=1)[0] == "bad_request"
    alice, other = confide.new_group(1, "alice"), confide.new_group(1, "zed")
    kp = confide.request("create_key_package", cipher_suite=1, identity=b"bob".hex())
    assert code("join_group", transaction_id=kp["transaction_id"], welcome=kp["key_package"])[0] == "bad_request"
    assert code("commit", state_id=alice, by_reference=["00"], by_value=[])[0] == "bad_request"
    assert code("commit", state_id=alice, by_reference=[], by_value=[{"proposal_type": "dance"}])[0] == "unsupported"
    assert code("handle_pending_commit", state_id=alice)[0] == "bad_request"
    assert code("remove_proposal", state_id=alice, removed_identity=b"nobody".hex())[0] == "bad_request"
    # engine refusals carry the typed error's stable code first
    ct = confide.request("protect", state_id=alice, authenticated_data="", plaintext="00")["ciphertext"]
    c, message = code("unprotect", state_id=other, ciphertext=ct)
    assert c == "mls_error" and message.startswith("mls_wrong_group:")
    c, message = code("commit", state_id=alice, by_reference=[],
                      by_value=[{"proposal_type": "resumption_psk", "epoch_id": 7}])
    assert c == "mls_error" and re.match(r"^mls_unknown_psk: ", message)
    assert confide.request("free", state_id=987654) == {"id": confide.n, "ok": True}


@pytest.mark.parametrize("suite", SUITES)
def test_confide_proposals_of_others_by_reference(confide, suite):
    """bob proposes (PrivateMessage), alice commits it by reference, bob handles the commit
    naming his own proposal; a PSK stored on the pending key package lets carol join."""
    alice = confide.new_group(suite, "alice", encrypt=True)
    kp_b = confide.request("create_key_package", cipher_suite=suite, identity=b"bob".hex())
    c = confide.request("commit", state_id=alice, by_reference=[],
                        by_value=[{"proposal_type": "add", "key_package": kp_b["key_package"]}],
                        force_path=True, external_tree=False)
    confide.request("handle_pending_commit", state_id=alice)
    bob = confide.request("join_group", transaction_id=kp_b["transaction_id"], welcome=c["welcome"],
                          encrypt_handshake=True)["state_id"]
    kp_c = confide.request("create_key_package", cipher_suite=suite, identity=b"carol".hex())
    psk = {"psk_id": "ab" * 32, "psk_secret": "cd" * 32}
    for target in ({"state_id": alice}, {"state_id": bob}, {"transaction_id": kp_c["transaction_id"]}):
        confide.request("store_psk", **target, **psk)
    add = confide.request("add_proposal", state_id=bob, key_package=kp_c["key_package"])["proposal"]
    use_psk = confide.request("external_psk_proposal", state_id=bob, psk_id=psk["psk_id"])["proposal"]
    assert _wireformat(add) == PRIVATE
    c2 = confide.request("commit", state_id=alice, by_reference=[add, use_psk], by_value=[], force_path=False,
                         external_tree=False)
    ea = confide.request("handle_pending_commit", state_id=alice)["epoch_authenticator"]
    assert confide.request("handle_commit", state_id=bob, proposals=[add, use_psk],
                           commit=c2["commit"])["epoch_authenticator"] == ea
    carol = confide.request("join_group", transaction_id=kp_c["transaction_id"], welcome=c2["welcome"],
                            encrypt_handshake=True)
    assert carol["epoch_authenticator"] == ea


@pytest.mark.parametrize("suite", SUITES)
def test_confide_branch_and_reinit(confide, suite):
    alice = confide.new_group(suite, "alice")
    kp = confide.request("create_key_package", cipher_suite=suite, identity=b"bob".hex())
    c = confide.request("commit", state_id=alice, by_reference=[],
                        by_value=[{"proposal_type": "add", "key_package": kp["key_package"]}],
                        force_path=False, external_tree=False)
    confide.request("handle_pending_commit", state_id=alice)
    bob = confide.request("join_group", transaction_id=kp["transaction_id"], welcome=c["welcome"],
                          encrypt_handshake=False)["state_id"]
    # branch: bob's new key package, alice's subgroup, bob joins it from his old state
    kp2 = confide.request("create_key_package", cipher_suite=suite, identity=b"bob".hex())
    br = confide.request("create_branch", state_id=alice, group_id=b"sub".hex(), extensions=[],
                         key_packages=[kp2["key_package"]], force_path=False, external_tree=True)
    hb = confide.request("handle_branch", state_id=bob, transaction_id=kp2["transaction_id"],
                         welcome=br["welcome"], ratchet_tree=br["ratchet_tree"])
    assert hb["epoch_authenticator"] == br["epoch_authenticator"] == confide.ea(br["state_id"])
    # reinit of the old group into the other suite under a new group id
    other = 3 if suite == 1 else 1
    prop = confide.request("reinit_proposal", state_id=bob, group_id=b"re".hex(), cipher_suite=other,
                           extensions=[])["proposal"]
    rc = confide.request("reinit_commit", state_id=alice, proposal=prop)
    pa = confide.request("handle_pending_reinit_commit", state_id=alice)
    pb = confide.request("handle_reinit_commit", state_id=bob, proposals=[prop], commit=rc["commit"])
    assert pa["epoch_authenticator"] == pb["epoch_authenticator"]
    assert MLSMessage.from_bytes(bytes.fromhex(pb["key_package"])).body.cipher_suite == other
    w = confide.request("reinit_welcome", reinit_id=pa["reinit_id"], key_packages=[pb["key_package"]],
                        force_path=True, external_tree=False)
    hw = confide.request("handle_reinit_welcome", reinit_id=pb["reinit_id"], welcome=w["welcome"])
    assert hw["epoch_authenticator"] == w["epoch_authenticator"]
    assert confide.request("state_auth", state_id=hw["state_id"])["epoch"] == 1


def test_confide_external_signers_and_new_member_add(confide):
    alice = confide.new_group(1, "alice")
    signer = confide.request("create_external_signer", cipher_suite=1, identity=b"ds".hex())
    gce = confide.request("add_external_signer", state_id=alice, external_sender=signer["external_sender"])
    confide.request("commit", state_id=alice, by_reference=[gce["proposal"]], by_value=[], force_path=False,
                    external_tree=False)
    confide.request("handle_pending_commit", state_id=alice)
    gi = confide.request("group_info", state_id=alice, external_tree=True)
    kp = confide.request("create_key_package", cipher_suite=1, identity=b"bob".hex())
    ext_add = confide.request("external_signer_proposal", signer_id=signer["signer_id"], group_info=gi["group_info"],
                              ratchet_tree=gi["ratchet_tree"],
                              description={"proposal_type": "add", "key_package": kp["key_package"]})["proposal"]
    c = confide.request("commit", state_id=alice, by_reference=[ext_add], by_value=[], force_path=False,
                        external_tree=False)
    confide.request("handle_pending_commit", state_id=alice)
    bob = confide.request("join_group", transaction_id=kp["transaction_id"], welcome=c["welcome"],
                          encrypt_handshake=False)
    assert bob["epoch_authenticator"] == confide.ea(alice)
    gi2 = confide.request("group_info", state_id=alice, external_tree=False)
    nm = confide.request("new_member_add_proposal", group_info=gi2["group_info"], identity=b"carol".hex())
    c2 = confide.request("commit", state_id=bob["state_id"], by_reference=[nm["proposal"]], by_value=[],
                         force_path=False, external_tree=False)
    ea = confide.request("handle_pending_commit", state_id=bob["state_id"])["epoch_authenticator"]
    assert confide.request("handle_commit", state_id=alice, proposals=[nm["proposal"]],
                           commit=c2["commit"])["epoch_authenticator"] == ea
    carol = confide.request("join_group", transaction_id=nm["transaction_id"], welcome=c2["welcome"],
                            encrypt_handshake=False)
    assert carol["epoch_authenticator"] == ea


def test_confide_driver_process_framing():
    """`confide mls-driver` as a process: blank lines ignored, bad JSON answered, one flushed
    line per request, exit 0 at end of input."""
    lines = ['{"id": 1, "op": "supported"}', "", "not json",
             '{"id": "x", "op": "create_group", "cipher_suite": 3, "group_id": "00", "identity": "61",'
             ' "encrypt_handshake": false}', '{"id": 2, "op": "state_auth", "state_id": 1}']
    proc = subprocess.run([sys.executable, "-m", "server.cli", "mls-driver"], input="\n".join(lines) + "\n",
                          capture_output=True, text=True, timeout=60, cwd=HERE.parent.parent)
    assert proc.returncode == 0, proc.stderr
    out = [json.loads(x) for x in proc.stdout.splitlines()]
    assert [r["id"] for r in out] == [1, None, "x", 2]
    assert out[1]["error"]["code"] == "bad_request"
    assert out[2] == {"id": "x", "ok": True, "state_id": 1}
    assert out[3]["ok"] and out[3]["epoch"] == 0 and len(out[3]["epoch_authenticator"]) == 64


# ---------------------------------------------------------------- Confide and ts-mls, message by message


@pytest.fixture
async def confide_proc():
    d = DriverProcess("confide", IMPLEMENTATIONS["confide"])
    await d.start()
    yield d
    await d.close()


@needs_ts_mls
@pytest.mark.parametrize("suite", SUITES)
async def test_external_pub_is_rfc_encoded_both_ways(ts, confide_proc, suite):
    """RFC 9420 12.4.3.2: external_pub is an HPKEPublicKey<V>. ts-mls 1.6.4 writes the bare key;
    its driver signs a conformant GroupInfo and unwraps the prefix before joining."""
    t_alice = (await ts.request("create_group", cipher_suite=suite, group_id=b"gx".hex(),
                                identity=b"alice".hex(), encrypt_handshake=False))["state_id"]
    gi = await ts.request("group_info", state_id=t_alice, external_tree=False)
    info = MLSMessage.from_bytes(bytes.fromhex(gi["group_info"])).body
    pub = find_extension(info.extensions, ExtensionType.EXTERNAL_PUB)
    assert pub is not None and pub.extension_data[0] == 32 and len(pub.extension_data) == 33
    bob = await confide_proc.request("external_join", group_info=gi["group_info"], identity=b"bob".hex(),
                                     encrypt_handshake=False, remove_prior=False, psks=[])
    h = await ts.request("handle_commit", state_id=t_alice, proposals=[], commit=bob["commit"])
    assert h["epoch_authenticator"] == bob["epoch_authenticator"]
    gi2 = await confide_proc.request("group_info", state_id=bob["state_id"], external_tree=True)
    carol = await ts.request("external_join", group_info=gi2["group_info"], ratchet_tree=gi2["ratchet_tree"],
                             identity=b"carol".hex(), encrypt_handshake=False, remove_prior=False, psks=[])
    for driver, sid in ((ts, t_alice), (confide_proc, bob["state_id"])):
        r = await driver.request("handle_commit", state_id=sid, proposals=[], commit=carol["commit"])
        assert r["epoch_authenticator"] == carol["epoch_authenticator"]


# ---------------------------------------------------------------- runner, every assignment

CORE_SCRIPTS = ("welcome_join", "commit", "application", "external_join")
MORE_SCRIPTS = ("branch", "reinit", "external_proposals")
ALL_ASSIGNMENTS = ("all-confide", "all-ts-mls", "alternating", "ts-mls-as-creator")

_GCE = {"group_context_extensions", "all_together_alice_proposes", "all_together_bob_proposes"}
#: (script, assignment) -> scripts a driver answers "unsupported" to (ts-mls 1.6.4 limits:
#: external_senders decoded as one ExternalSender, no PSKs in external commits).
EXPECTED_UNSUPPORTED: dict[tuple[str, str], set[str]] = {
    ("commit", "all-ts-mls"): _GCE, ("commit", "alternating"): _GCE, ("commit", "ts-mls-as-creator"): _GCE,
    ("external_join", "all-ts-mls"): {"with_psk"}, ("external_join", "alternating"): {"with_psk"},
    ("branch", "all-ts-mls"): {"with_extensions"}, ("branch", "ts-mls-as-creator"): {"with_extensions"},
    ("reinit", "all-ts-mls"): {"change_extensions"}, ("reinit", "ts-mls-as-creator"): {"change_extensions"},
    **{("external_proposals", a): {"external_add", "external_remove", "external_psk", "resumption_psk",
                                   "group_context_extensions", "multiple_external", "external_reinit"}
       for a in ("all-ts-mls", "alternating", "ts-mls-as-creator")},
}
def _play(scripts, handshakes) -> dict:
    async def main() -> dict:
        interop = Interop()
        try:
            return await interop.run(list(scripts), list(ALL_ASSIGNMENTS), list(SUITES), handshakes)
        finally:
            await interop.close()

    return asyncio.run(main())


@pytest.fixture(scope="module")
def core_results() -> dict:
    """The four core scripts, every assignment, suites 1 and 3, public and private handshakes."""
    if _SKIP is not None:
        pytest.skip(_SKIP)
    if not configs_dir().is_dir():
        pytest.skip(f"interop configs not found at {configs_dir()}")
    return _play(CORE_SCRIPTS, ("public", "private"))


@pytest.fixture(scope="module")
def more_results() -> dict:
    """branch, reinit and external_proposals, every assignment, suites 1 and 3, public."""
    if _SKIP is not None:
        pytest.skip(_SKIP)
    if not configs_dir().is_dir():
        pytest.skip(f"interop configs not found at {configs_dir()}")
    return _play(MORE_SCRIPTS, ("public",))


def _check_cell(cell: dict, script: str, assignment: str, handshakes: int) -> None:
    names = set(load_script_file(configs_dir(), script))
    unsupported = {u.split("[", 1)[0] for u in cell["unsupported"]}
    assert cell["failures"] == [] and cell["failed"] == 0
    assert unsupported == EXPECTED_UNSUPPORTED.get((script, assignment), set()), cell["unsupported"]
    assert cell["passed"] == len(names - unsupported) * handshakes > 0


@pytest.mark.parametrize("suite", SUITES)
@pytest.mark.parametrize("assignment", ALL_ASSIGNMENTS)
@pytest.mark.parametrize("script", CORE_SCRIPTS)
def test_runner_core_scripts(core_results, script, assignment, suite):
    _check_cell(core_results[script][assignment][str(suite)], script, assignment, handshakes=2)


@pytest.mark.parametrize("suite", SUITES)
@pytest.mark.parametrize("assignment", ALL_ASSIGNMENTS)
@pytest.mark.parametrize("script", MORE_SCRIPTS)
def test_runner_more_scripts(more_results, script, assignment, suite):
    _check_cell(more_results[script][assignment][str(suite)], script, assignment, handshakes=1)


# ---------------------------------------------------------------- bench/mls_groups.py


def test_bench_scenarios_measure_the_same_things():
    """The bench's two sides play their scenario on a small group and report every figure."""
    from bench.mls_groups import ROWS, confide_scenario, table, ts_mls_scenario

    ours = confide_scenario(3, 3, reps=1, messages=2)
    assert {k for k, _, _ in ROWS} <= set(ours) and all(ours[k] > 0 for k, _, _ in ROWS)
    if _SKIP is None:
        theirs = ts_mls_scenario(3, 3, reps=1, messages=2)
        assert isinstance(theirs, dict), theirs
        assert {k for k, _, _ in ROWS} <= set(theirs)
        assert "| empty commit with path: committer (ms) | 3 |" in table({3: (ours, theirs)})


# ---------------------------------------------------------------- hostile requests

_CODES = {"bad_request", "unknown_state", "unsupported", "mls_error"}


@pytest.fixture(scope="module")
def two_member_flow() -> tuple[MlsDriver, dict]:
    """A driver with alice and bob in one group, and one message of each kind to mutate."""
    d = _Confide()
    alice = d.new_group(3, "alice")
    kp = d.request("create_key_package", cipher_suite=3, identity=b"bob".hex())
    c = d.request("commit", state_id=alice, by_reference=[],
                  by_value=[{"proposal_type": "add", "key_package": kp["key_package"]}], force_path=True,
                  external_tree=False)
    d.request("handle_pending_commit", state_id=alice)
    bob = d.request("join_group", transaction_id=kp["transaction_id"], welcome=c["welcome"],
                    encrypt_handshake=False)["state_id"]
    upd = d.request("update_proposal", state_id=bob)["proposal"]
    c2 = d.request("commit", state_id=alice, by_reference=[upd], by_value=[], force_path=False,
                   external_tree=False)
    ct = d.request("protect", state_id=alice, authenticated_data="", plaintext="00")["ciphertext"]
    gi = d.request("group_info", state_id=alice, external_tree=False)["group_info"]
    kp2 = d.request("create_key_package", cipher_suite=3, identity=b"carol".hex())
    return d.driver, {"alice": alice, "bob": bob, "proposal": upd, "commit": c2["commit"], "ciphertext": ct,
                      "group_info": gi, "welcome": c["welcome"], "key_package": kp2["key_package"],
                      "transaction_id": kp2["transaction_id"]}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_confide_hostile_requests_get_typed_errors(two_member_flow, data):
    """Mutated messages and junk fields: the driver answers every request, never with
    ``internal``, and a refused request leaves bob's epoch authenticator as it was."""
    driver, f = two_member_flow
    bob = f["bob"]
    kind = data.draw(st.sampled_from(["proposal", "commit", "ciphertext", "group_info", "welcome", "key_package"]))
    raw = bytearray(bytes.fromhex(f[kind]))
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] = data.draw(st.integers(0, 255))
    raw = raw[:data.draw(st.integers(0, len(raw)))] if data.draw(st.booleans()) else raw
    blob = bytes(raw).hex()
    junk = data.draw(st.one_of(st.none(), st.integers(-3, 10**6), st.text(max_size=8), st.lists(st.integers(), max_size=3)))
    requests = [
        {"op": "handle_commit", "state_id": bob, "proposals": [blob], "commit": f["commit"]},
        {"op": "handle_commit", "state_id": bob, "proposals": [f["proposal"]], "commit": blob},
        {"op": "unprotect", "state_id": bob, "ciphertext": blob},
        {"op": "external_join", "group_info": blob, "identity": "6464", "remove_prior": False, "psks": []},
        {"op": "join_group", "transaction_id": f["transaction_id"], "welcome": blob},
        {"op": "add_proposal", "state_id": bob, "key_package": blob},
        {"op": data.draw(st.sampled_from(OPS)), "state_id": junk, "transaction_id": junk, "welcome": junk,
         "commit": junk, "cipher_suite": junk, "identity": junk, "proposals": junk, "extensions": junk},
    ]
    before = driver.handle({"id": 0, "op": "state_auth", "state_id": bob})["epoch_authenticator"]
    for req in requests:
        resp = driver.handle({"id": 1, **req})
        assert resp["id"] == 1
        if not resp["ok"]:
            assert resp["error"]["code"] in _CODES, resp
        json.dumps(resp)
    after = driver.handle({"id": 0, "op": "state_auth", "state_id": bob})
    assert after["ok"]
    assert after["epoch_authenticator"] == before or after["epoch"] == 2
