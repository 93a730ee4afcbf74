"""Which peers this server federates with: ``[federation]`` ``enabled``, ``allow``, ``deny``, ``peers``.

A server federates only with servers its configuration names (``spec/security.md``,
finding 6): the ``allow`` list when it is non-empty, else the ``[federation.peers]``
table; a ``deny``-listed name never. Nothing else is ever contacted or fetched
(no key document, no well-known discovery): an allow-listed name without a peer-table
entry is found by discovery, and only because it was allowed first. Inbound requests
from any other origin are refused (``peer_denied``) before their key is looked up.
"""

from __future__ import annotations

from collections.abc import Iterable

from protocol.federation import PeerDenied

__all__ = ["PeerPolicy"]


class PeerPolicy:
    """``check(name)`` raises :class:`~protocol.federation.PeerDenied` when federation is
    disabled, ``name`` is deny-listed, or ``name`` is not a configured peer (in the
    allow-list if there is one, else in the peer table)."""

    def __init__(self, enabled: bool, allow: Iterable[str] = (), deny: Iterable[str] = (),
                 peers: Iterable[str] = ()) -> None:
        self.enabled = enabled
        self.allow = frozenset(allow)
        self.deny = frozenset(deny)
        self.peers = frozenset(peers)

    def allowed(self, name: object) -> bool:
        if not self.enabled or type(name) is not str or name in self.deny:
            return False
        return name in (self.allow or self.peers)

    def check(self, name: object) -> None:
        if not self.allowed(name):
            raise PeerDenied("this server does not federate with that server")
