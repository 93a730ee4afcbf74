"""The secret tree and its per-sender hash ratchets (RFC 9420 sections 9 and 9.1).

The tree derives one handshake and one application ratchet per leaf from the
epoch's ``encryption_secret``. Secrets are derived lazily and deleted as soon
as their children or next generation exist, for forward secrecy.

A receiver may need a key for a generation ahead of its ratchet (messages
lost or reordered). :class:`SecretTree` ratchets forward at most
``max_forward`` generations in one step (:class:`GenerationTooFarAhead`
beyond) and keeps the keys it skipped for at most ``out_of_order`` past
generations (:class:`GenerationExpired` for older ones). A key is handed out
once: asking for it again raises :class:`KeyAlreadyUsed`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from ..errors import CryptoError
from . import tree_math as tm
from .ciphersuite import CipherSuite

__all__ = [
    "RatchetType",
    "SecretTree",
    "RatchetKey",
    "SecretTreeError",
    "GenerationTooFarAhead",
    "GenerationExpired",
    "KeyAlreadyUsed",
    "sender_data_key_nonce",
    "DEFAULT_MAX_FORWARD",
    "DEFAULT_OUT_OF_ORDER",
]

DEFAULT_MAX_FORWARD = 1024
DEFAULT_OUT_OF_ORDER = 32


class SecretTreeError(CryptoError):
    code = "secret_tree"


class GenerationTooFarAhead(SecretTreeError):
    """The requested generation is beyond the configured forward window."""

    code = "generation_too_far_ahead"


class GenerationExpired(SecretTreeError):
    """The requested generation is older than the out-of-order window kept."""

    code = "generation_expired"


class KeyAlreadyUsed(SecretTreeError):
    """The key for this generation was already consumed (a replay)."""

    code = "key_already_used"


class RatchetType(Enum):
    HANDSHAKE = "handshake"
    APPLICATION = "application"


@dataclass(frozen=True, slots=True)
class RatchetKey:
    generation: int
    key: bytes
    nonce: bytes


@dataclass(slots=True)
class _Ratchet:
    secret: bytes
    generation: int = 0
    skipped: dict[int, RatchetKey] = field(default_factory=dict)


def sender_data_key_nonce(suite: CipherSuite, sender_data_secret: bytes, ciphertext: bytes) -> tuple[bytes, bytes]:
    """Key and nonce that protect a PrivateMessage's sender data (section 6.3.2)."""
    sample = ciphertext[: suite.hash_len]
    return (
        suite.expand_with_label(sender_data_secret, "key", sample, suite.aead_key_len),
        suite.expand_with_label(sender_data_secret, "nonce", sample, suite.aead_nonce_len),
    )


class SecretTree:
    """Per-epoch secret tree with lazily derived, forward-secure ratchets."""

    def __init__(
        self,
        suite: CipherSuite,
        encryption_secret: bytes,
        n_leaves: int,
        *,
        max_forward: int = DEFAULT_MAX_FORWARD,
        out_of_order: int = DEFAULT_OUT_OF_ORDER,
    ) -> None:
        self.suite = suite
        self.n_leaves = n_leaves
        self.max_forward = max_forward
        self.out_of_order = out_of_order
        self._nodes: dict[int, bytes] = {int(tm.root(n_leaves)): encryption_secret}
        self._ratchets: dict[tuple[int, RatchetType], _Ratchet] = {}

    def _leaf_secret(self, leaf: int) -> bytes:
        if not 0 <= leaf < self.n_leaves:
            raise SecretTreeError(f"leaf {leaf} outside a tree of {self.n_leaves} leaves")
        target = 2 * leaf
        path = [target] + [int(x) for x in tm.direct_path(target, self.n_leaves)]
        # find the lowest node on the path whose secret is still held
        start = next((i for i, node in enumerate(path) if node in self._nodes), None)
        if start is None:
            raise SecretTreeError(f"secrets for leaf {leaf} were already consumed")
        for i in range(start, 0, -1):
            node = path[i]
            secret = self._nodes.pop(node)
            lft, rgt = int(tm.left(node)), int(tm.right(node))
            self._nodes[lft] = self.suite.expand_with_label(secret, "tree", b"left", self.suite.hash_len)
            self._nodes[rgt] = self.suite.expand_with_label(secret, "tree", b"right", self.suite.hash_len)
        return self._nodes.pop(target)

    def _ratchet(self, leaf: int, kind: RatchetType) -> _Ratchet:
        key = (leaf, kind)
        ratchet = self._ratchets.get(key)
        if ratchet is None:
            leaf_secret = self._leaf_secret(leaf)
            for k in RatchetType:
                secret = self.suite.expand_with_label(leaf_secret, k.value, b"", self.suite.hash_len)
                self._ratchets[(leaf, k)] = _Ratchet(secret)
            ratchet = self._ratchets[key]
        return ratchet

    def _derive(self, ratchet: _Ratchet) -> RatchetKey:
        """Key and nonce of the ratchet's current generation, then advance it."""
        s, g = self.suite, ratchet.generation
        out = RatchetKey(
            g,
            s.derive_tree_secret(ratchet.secret, "key", g, s.aead_key_len),
            s.derive_tree_secret(ratchet.secret, "nonce", g, s.aead_nonce_len),
        )
        ratchet.secret = s.derive_tree_secret(ratchet.secret, "secret", g, s.hash_len)
        ratchet.generation = g + 1
        return out

    def next_key(self, leaf: int, kind: RatchetType) -> RatchetKey:
        """The next key for sending from ``leaf``; it is consumed."""
        return self._derive(self._ratchet(leaf, kind))

    def key_for(self, leaf: int, kind: RatchetType, generation: int) -> RatchetKey:
        """The key for receiving ``generation`` from ``leaf``; it is consumed.

        Raises :class:`GenerationTooFarAhead`, :class:`GenerationExpired` or
        :class:`KeyAlreadyUsed` as described in the module docstring.
        """
        key, consume = self.prepare_key(leaf, kind, generation)
        consume()
        return key

    def prepare_key(self, leaf: int, kind: RatchetType, generation: int) -> tuple[RatchetKey, Callable[[], None]]:
        """Like :meth:`key_for`, but the ratchet moves only when the returned ``consume()`` is called.

        A receiver calls ``consume`` once the message has decrypted and verified,
        so that a forged message cannot burn a key or advance the ratchet.
        """
        current = self._ratchet(leaf, kind)
        ratchet = _Ratchet(current.secret, current.generation, dict(current.skipped))
        if generation < ratchet.generation:
            kept = ratchet.skipped.pop(generation, None)
            if kept is None:
                if generation < ratchet.generation - self.out_of_order:
                    raise GenerationExpired(f"generation {generation} is older than the window")
                raise KeyAlreadyUsed(f"generation {generation} already used")
            out = kept
        else:
            if generation - ratchet.generation > self.max_forward:
                raise GenerationTooFarAhead(
                    f"generation {generation} is {generation - ratchet.generation} ahead (max {self.max_forward})"
                )
            while ratchet.generation < generation:
                skipped = self._derive(ratchet)
                ratchet.skipped[skipped.generation] = skipped
            out = self._derive(ratchet)
            floor = ratchet.generation - self.out_of_order
            for g in [g for g in ratchet.skipped if g < floor]:
                del ratchet.skipped[g]

        def consume() -> None:
            self._ratchets[(leaf, kind)] = ratchet

        return out, consume
