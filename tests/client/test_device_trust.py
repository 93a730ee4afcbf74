"""The approval-chain check (client/sdk/device_trust.py), the short code and the server's chain
(server/storage/device_trust.py): pure functions over log entries."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from client.sdk.device_trust import ProvenEntry, check_approval_chain, device_entries
from client.sdk.errors import VerificationFailed
from crypto.primitives import ed25519_public_key
from protocol.api import DeviceKeys
from protocol.audit import sign_device_approval, sign_device_registration
from protocol.audit_seal import Opening, OpeningMismatch, decode_opening, salts_for, seal
from protocol.device_approval import same_code, short_code
from protocol.ids import DeviceId
from server.storage.device_trust import Trust, TrustState, chain

U = "@pat:a.test"
ROOT, PHONE, TABLET = bytes([1]) * 32, bytes([2]) * 32, bytes([3]) * 32
T = 1_800_000_000_000


def _pk(seed):
    return ed25519_public_key(seed)


def _tree():
    """root (index 0) approves PHONE (added 1, approved 2); PHONE approves TABLET (3, 4)."""
    root = sign_device_registration(ROOT, T, U, "ROOT", b"c")
    phone = sign_device_approval(ROOT, T + 2, U, "PHONE", _pk(PHONE), "ROOT")
    tablet = sign_device_approval(PHONE, T + 4, U, "TABLET", _pk(TABLET), "PHONE")
    return root, phone, tablet


def test_root_and_chains_verify():
    root, phone, tablet = _tree()
    assert check_approval_chain(U, "ROOT", _pk(ROOT), 0, []) == ("ROOT", _pk(ROOT))
    assert check_approval_chain(U, "PHONE", _pk(PHONE), 1,
                                [ProvenEntry(2, phone), ProvenEntry(0, root)]) == ("ROOT", _pk(ROOT))
    got = check_approval_chain(U, "TABLET", _pk(TABLET), 3,
                               [ProvenEntry(4, tablet), ProvenEntry(2, phone), ProvenEntry(0, root)])
    assert got == ("ROOT", _pk(ROOT))


@pytest.mark.parametrize("case", ["only_root", "own_added", "wrong_key", "wrong_device", "order",
                                  "approval_before_added", "forged", "no_root", "other_user"])
def test_broken_chains_are_refused(case):
    root, phone, tablet = _tree()
    device, key, added = "TABLET", _pk(TABLET), 3
    items = [ProvenEntry(4, tablet), ProvenEntry(2, phone), ProvenEntry(0, root)]
    if case == "only_root":  # a server naming the root as the only link
        items = [ProvenEntry(0, root)]
    elif case == "own_added":
        items = [ProvenEntry(3, sign_device_registration(TABLET, T, U, "TABLET", b"c")),
                 ProvenEntry(0, root)]
    elif case == "wrong_key":
        key = _pk(bytes([9]) * 32)
    elif case == "wrong_device":
        device = "OTHER"
    elif case == "order":  # the approver approved after approving
        items = [ProvenEntry(1, tablet), ProvenEntry(2, phone), ProvenEntry(0, root)]
    elif case == "approval_before_added":
        added = 5
    elif case == "forged":  # signed by the server's own key, not PHONE's
        items[0] = ProvenEntry(4, sign_device_approval(bytes([7]) * 32, T, U, "TABLET", key, "PHONE"))
    elif case == "no_root":
        items = items[:2]
    elif case == "other_user":
        items[2] = ProvenEntry(0, sign_device_registration(ROOT, T, "@eve:a.test", "ROOT", b"c"))
    with pytest.raises(VerificationFailed):
        check_approval_chain(U, device, key, added, items)


def test_short_code_known_answer():
    """The example of spec/client-server.md 4.6."""
    key = bytes.fromhex("03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8")
    assert key == _pk(bytes(range(32)))
    assert short_code("@ann:hub.example", key) == "41977 70849 12275 71769 44189 66797"


def test_short_code():
    code = short_code(U, _pk(PHONE))
    groups = code.split(" ")
    assert len(groups) == 6 and all(len(g) == 5 and g.isdigit() for g in groups)
    assert code == short_code(U, _pk(PHONE))
    assert code != short_code(U, _pk(TABLET)) and code != short_code("@eve:a.test", _pk(PHONE))
    assert same_code(code.replace(" ", "-"), code) and same_code(code.replace(" ", ""), code)
    assert not same_code(code[:-1] + str((int(code[-1]) + 1) % 10), code)


def _row(device, state, approver=None, approval=None, added=None):
    return Trust(U, device, TrustState(state), None, added, approver, approval)


def test_server_chain():
    rows = {"R": _row("R", "root", added=0), "P": _row("P", "approved", "R", 2, 1),
            "T": _row("T", "approved", "P", 4, 3), "G": _row("G", "pending", added=5),
            "L1": _row("L1", "approved", "L2", 7), "L2": _row("L2", "approved", "L1", 8)}
    assert chain(rows, "R") == ()
    assert chain(rows, "P") == (2, 0)
    assert chain(rows, "T") == (4, 2, 0)
    assert chain(rows, "G") is None and chain(rows, "L1") is None and chain(rows, "nobody") is None


@given(st.lists(st.tuples(st.sampled_from(["A", "B", "C", "D"]),
                          st.sampled_from(["root", "pending", "approved"]),
                          st.sampled_from(["A", "B", "C", "D", None]),
                          st.integers(0, 9)), max_size=8))
def test_server_chain_never_loops(rows):
    table = {d: _row(d, s, a, i, i) for d, s, a, i in rows}
    for d in table:
        out = chain(table, d)
        assert out is None or len(out) <= len(table)


@given(st.data())
def test_any_substituted_link_is_refused(data):
    """A valid chain with one link swapped for another entry (of the same tree or forged by a
    key outside it) never verifies."""
    root, phone, tablet = _tree()
    good = [ProvenEntry(4, tablet), ProvenEntry(2, phone), ProvenEntry(0, root)]
    pool = [root, phone, tablet,
            sign_device_registration(PHONE, T, U, "PHONE", b"c"),
            sign_device_registration(bytes([8]) * 32, T, U, "ROOT", b"c"),
            sign_device_approval(bytes([8]) * 32, T + 4, U, "TABLET", _pk(TABLET), "PHONE"),
            sign_device_approval(ROOT, T + 4, U, "TABLET", _pk(TABLET), "ROOT")]
    pos = data.draw(st.integers(0, 2))
    swap = data.draw(st.sampled_from(pool))
    index = data.draw(st.integers(0, 5))
    if swap == good[pos].entry:
        return  # the same entry at another index is the same chain
    items = list(good)
    items[pos] = ProvenEntry(index, swap)
    with pytest.raises(VerificationFailed):
        check_approval_chain(U, "TABLET", _pk(TABLET), 3, items)


async def test_device_entries_open_each_link_with_its_own_opening():
    """The device list's ``chain_openings`` (finding 1: the log holds sealed entries) go to the
    fetcher with their index, in chain order; a list whose openings do not match the chain
    one for one is refused before anything is fetched."""
    root, phone, tablet = _tree()
    key = bytes(range(32))
    by_index = {0: root, 2: phone, 4: tablet}
    public = {i: seal(e, salts_for(key, i, e)).to_bytes() for i, e in by_index.items()}
    seen = []

    async def fetch(user, index, opening):
        seen.append(index)
        return decode_opening(opening).verify(public[index])  # what Keys.proven_entry checks

    openings = tuple(Opening(i, by_index[i], salts_for(key, i, by_index[i])).to_bytes()
                     for i in (4, 2, 0))
    dk = DeviceKeys(DeviceId("TABLET"), _pk(TABLET), b"c", 3, b"o", (4, 2, 0), openings)
    chain = await device_entries(fetch, U, dk)
    assert seen == [4, 2, 0]
    assert check_approval_chain(U, "TABLET", _pk(TABLET), 3, chain) == ("ROOT", _pk(ROOT))
    seen.clear()
    with pytest.raises(VerificationFailed):
        await device_entries(fetch, U, replace(dk, chain_openings=openings[:2]))
    assert seen == []
    # a server that swaps two openings: each one is checked against its own index's entry
    with pytest.raises(OpeningMismatch):
        await device_entries(fetch, U, replace(dk, chain_openings=(openings[1], openings[0],
                                                                   openings[2])))
