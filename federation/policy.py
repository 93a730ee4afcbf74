"""Which peers this server federates with: ``[federation]`` ``enabled``, ``allow``, ``deny``."""

from __future__ import annotations

from collections.abc import Iterable

from protocol.federation import PeerDenied

__all__ = ["PeerPolicy"]


class PeerPolicy:
    """``check(name)`` raises :class:`~protocol.federation.PeerDenied` when federation is
    disabled, ``name`` is deny-listed, or an allow-list exists without ``name``."""

    def __init__(self, enabled: bool, allow: Iterable[str] = (), deny: Iterable[str] = ()) -> None:
        self.enabled = enabled
        self.allow = frozenset(allow)
        self.deny = frozenset(deny)

    def allowed(self, name: str) -> bool:
        if not self.enabled or name in self.deny:
            return False
        return not self.allow or name in self.allow

    def check(self, name: str) -> None:
        if not self.allowed(name):
            raise PeerDenied("this server does not federate with that server")
