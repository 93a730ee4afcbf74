"""Device approval on the client: approval chains, the root pin, short codes and alerts.

A user's devices form a tree in their home server's log: the *root* (the device that
registered the account; its ``device_added`` entry) and devices approved by an already
approved device (``device_approved`` entries, each signed by the approver's registered
key). A device list names, for each device, the log indexes of its chain
(:attr:`protocol.api.DeviceKeys.chain`) and, since the public log holds entries sealed
(commitments in place of user, device and key), each entry's opening
(:attr:`protocol.api.DeviceKeys.chain_openings`); :func:`device_entries` fetches them with
their inclusion proofs and checks each opening against the proven entry's commitments,
and :func:`check_approval_chain` (pure) checks the opened entries. A client accepts
another device only if its chain verifies and ends at the user's root it pinned on first
use (``root:@user:server`` in the profile's verified store); a different root is a *new
identity* (:class:`NewIdentity`), refused until the person accepts it
(:meth:`client.sdk.Client.accept_new_identity`).

:func:`device_entries` is the one place the SDK reads the log entries of a user's
devices.

:class:`OwnDevices` watches this device's own account: a pending device gives an alert
with its short code; an active device without a valid chain gives a loud one. Alerts are
kept in the profile (:meth:`client.sdk.store.Store.alerts`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from crypto.errors import CryptoError
from protocol.api import DeviceKeys
from protocol.audit import AuditEntry, DeviceAdded, DeviceApproved
from protocol.device_approval import short_code

from .errors import VerificationFailed

__all__ = [
    "NewIdentity",
    "ProvenEntry",
    "device_entries",
    "check_approval_chain",
    "root_pin_name",
    "pending_alert",
    "ghost_alert",
    "short_code",
]


class NewIdentity(VerificationFailed):
    """The user's root device is not the one pinned: a new identity (account recovery, or a
    server presenting a device tree of its own)."""

    code = "new_identity"


@dataclass(frozen=True)
class ProvenEntry:
    index: int
    entry: AuditEntry


#: ``(user_id, index, opening) -> opened entry``, proven included in that user's home
#: server's log and opened by ``opening`` (None: the fetcher asks for the opening itself).
EntryFetcher = Callable[[str, int, bytes | None], Awaitable[AuditEntry]]


def root_pin_name(user_id: str) -> str:
    return f"root:{user_id}"


async def device_entries(fetch: EntryFetcher, user_id: str, device: DeviceKeys) -> list[ProvenEntry]:
    """The opened log entries proving ``device``'s approval, in the order of
    ``device.chain``, each proven included in the user's home server's log and opened with
    its opening from ``device.chain_openings`` by ``fetch``. Raises
    :class:`VerificationFailed`."""
    openings: tuple[bytes | None, ...] = tuple(device.chain_openings)
    if not openings:
        openings = (None,) * len(device.chain)
    elif len(openings) != len(device.chain):
        raise VerificationFailed(f"{user_id}/{device.device_id}: the device list gives "
                                 f"{len(openings)} openings for a chain of {len(device.chain)}")
    return [ProvenEntry(i, await fetch(user_id, i, o))
            for i, o in zip(device.chain, openings, strict=True)]


def check_approval_chain(user_id: str, device_id: str, signature_key: bytes, added_index: int,
                         chain: list[ProvenEntry]) -> tuple[str, bytes]:
    """Check that ``(device_id, signature_key)``, registered at ``added_index``, is its
    user's root (``chain`` empty) or approved through ``chain``: ``device_approved``
    entries, each for the device the previous one's approver is and signed by that
    approver's key, each earlier in the log than the one before, ending with the root's
    self-signed ``device_added``. Returns ``(root device, root key)``; raises
    :class:`VerificationFailed`."""
    name = f"{user_id}/{device_id}"
    if not chain:
        return device_id, bytes(signature_key)
    current_device, current_key, after = device_id, bytes(signature_key), None
    for pos, item in enumerate(chain):
        e = item.entry
        if pos == len(chain) - 1:
            if not isinstance(e, DeviceAdded) or pos == 0:
                raise VerificationFailed(f"{name}: its approval chain does not end at a root device")
            if (e.user, e.device, e.signature_key) != (user_id, current_device, current_key):
                raise VerificationFailed(f"{name}: the root device in the log is another one")
            if after is not None and item.index >= after:
                raise VerificationFailed(f"{name}: the root was registered after its approval")
            try:
                e.verify_signature()
            except CryptoError:
                raise VerificationFailed(f"{name}: the root's registration is not self-signed") from None
            return e.device, e.signature_key
        if not isinstance(e, DeviceApproved):
            raise VerificationFailed(f"{name}: not approved by another device of {user_id}")
        if (e.user, e.device, e.signature_key) != (user_id, current_device, current_key):
            raise VerificationFailed(f"{name}: an approval in its chain is for another device or key")
        if pos == 0 and item.index <= added_index:
            raise VerificationFailed(f"{name}: approved before it was registered")
        if after is not None and item.index >= after:
            raise VerificationFailed(f"{name}: an approval came before its approver's")
        nxt = chain[pos + 1].entry
        if not isinstance(nxt, DeviceAdded | DeviceApproved) or nxt.device != e.approver_device:
            raise VerificationFailed(f"{name}: the chain does not continue with its approver")
        try:
            e.verify_signature(nxt.signature_key)
        except CryptoError:
            raise VerificationFailed(f"{name}: an approval's signature does not verify") from None
        current_device, current_key, after = e.approver_device, nxt.signature_key, item.index
    raise VerificationFailed(f"{name}: empty approval chain")  # pragma: no cover


def pending_alert(device_id: str, code: str) -> str:
    return (f"pending device {device_id} (code {code}): not approved by you; approve it with "
            f"`confide device approve` only if you just signed in on it, else remove it and "
            f"change your password")


def ghost_alert(device_id: str, reason: str) -> str:
    return (f"ALERT: device {device_id} is active on your account without a valid approval "
            f"chain ({reason}); your server may be compromised")
