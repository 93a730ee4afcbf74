"""``Group.claimed_sender`` and ``Group.leaf_identity`` (finding 4 of issue 10): a member reads
the sender leaf of any message of its group, its own included, without using a ratchet key;
a message whose SenderData does not open is ``decrypt_failed``, and nothing else."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crypto.errors import CryptoError
from crypto.mls.message import MLSMessage

from .group_harness import SUITES, Harness


@pytest.mark.parametrize("suite_id", SUITES)
def test_sender_leaf_of_own_others_and_past_messages(suite_id):
    h = Harness(suite_id, "claimed")
    h.add(0, 2)
    a, b = h.members[0], h.members[1]
    own = a.protect(b"from a", rng=h.rng)
    assert a.claimed_sender(own) == a.own_leaf_index  # a cannot decrypt it, but knows it is its own
    theirs = b.protect(b"from b", rng=h.rng)
    assert a.claimed_sender(theirs) == b.own_leaf_index
    identity = next(m.identity for m in a.members if m.leaf_index == b.own_leaf_index)
    assert a.leaf_identity(int(b.own_leaf_index)) == identity
    # claiming consumed nothing: the message still decrypts, once
    assert a.process_message(theirs).application_data == b"from b"
    old_epoch = a.epoch
    late = b.protect(b"late", rng=h.rng)
    h.empty_commit(0)
    assert a.epoch == old_epoch + 1
    assert a.claimed_sender(late) == b.own_leaf_index  # a retained past epoch
    assert a.leaf_identity(int(b.own_leaf_index), old_epoch) == a.leaf_identity(int(b.own_leaf_index))
    assert a.leaf_identity(99) is None and a.leaf_identity(0, old_epoch + 5) is None


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(min_size=1, max_size=80))
def test_mutated_sender_data_is_decrypt_failed(data):
    h = Harness(3, "claimed-fuzz")
    h.add(0, 1)
    msg = h.members[1].protect(b"x", rng=h.rng)
    body = dataclasses.replace(msg.body, encrypted_sender_data=data)
    if data == msg.body.encrypted_sender_data:
        return
    with pytest.raises(CryptoError):
        h.members[0].claimed_sender(MLSMessage(body))
