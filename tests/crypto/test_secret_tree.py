"""Secret tree ratchet windows: out-of-order keys, replays, far-ahead generations."""

from __future__ import annotations

import pytest

from crypto.mls.ciphersuite import get_suite
from crypto.mls.secret_tree import (
    GenerationExpired,
    GenerationTooFarAhead,
    KeyAlreadyUsed,
    RatchetType,
    SecretTree,
)


def test_secret_tree_windows_and_replay():
    s = get_suite(3)
    sender = SecretTree(s, bytes(32), 4)
    receiver = SecretTree(s, bytes(32), 4, max_forward=10, out_of_order=3)
    sent = [sender.next_key(1, RatchetType.APPLICATION) for _ in range(12)]
    assert receiver.key_for(1, RatchetType.APPLICATION, 5) == sent[5]
    assert receiver.key_for(1, RatchetType.APPLICATION, 3) == sent[3]  # out of order, kept
    with pytest.raises(KeyAlreadyUsed):
        receiver.key_for(1, RatchetType.APPLICATION, 5)
    with pytest.raises(GenerationTooFarAhead):
        receiver.key_for(1, RatchetType.APPLICATION, 17)
    assert receiver.key_for(1, RatchetType.APPLICATION, 9) == sent[9]
    with pytest.raises(GenerationExpired):
        receiver.key_for(1, RatchetType.APPLICATION, 2)  # dropped from the window
    # other leaves and ratchet types are independent
    assert receiver.key_for(0, RatchetType.HANDSHAKE, 0) == sender.next_key(0, RatchetType.HANDSHAKE)
