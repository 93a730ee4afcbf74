"""Who invited this device: the facts a Welcome carries, verified by MLS (finding 8).

A Welcome's GroupInfo is signed by a member (its ``signer`` leaf); :meth:`Group.join`
verifies that signature against the signer's leaf in the tree it shows. The inviter an
invitation names is that member's credential identity, never a field the server wrote
(the inbox item's sender is the server's word only).
"""

from __future__ import annotations

from crypto.mls import Group, KeyPackage, KeyPackagePrivate, Welcome, get_suite
from crypto.mls.group_errors import UnknownPsk
from crypto.mls.group_welcome import open_welcome

__all__ = ["welcome_inviter"]


def _no_psk(_psk_id) -> bytes:
    raise UnknownPsk("the Welcome needs a PSK this client does not hold")


def welcome_inviter(welcome: Welcome, kp: KeyPackage, priv: KeyPackagePrivate,
                    group: Group) -> tuple[str, bytes] | None:
    """The identity (``@user:server/DEVICE``) and signature key of the member who signed
    ``welcome``'s GroupInfo, for a ``group`` that :meth:`Group.join` made from it (so the
    signature has verified with that key); None if that leaf shows no identity. Raises what
    :func:`open_welcome` raises. The identity is the member's claim until the key is
    proven in its server's transparency log (:meth:`~client.sdk.keys.Keys.verify_device`)."""
    _, info, _ = open_welcome(get_suite(kp.cipher_suite), welcome, kp, priv, _no_psk)
    for m in group.members:
        if int(m.leaf_index) == int(info.signer) and m.identity:
            return m.identity.decode(errors="replace"), m.signature_key
    return None
