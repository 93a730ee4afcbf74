"""Which devices a handshake message brings into a room, and whether each is the registered one.

Finding 5 of issue 10 (``spec/security.md``): a member's credential names a device
``@user:server/DEVICE``, but the name alone proves nothing; the signature key in the leaf
must be the one that device registered with its user's home server. This module is the
pure half of that rule, used by the hub (:mod:`server.rooms.device_proof`) and testable
alone:

* :func:`added_devices`: the devices an accepted proposal or commit adds to the group,
  from its public processing: the KeyPackage of an Add proposal; for a commit, every
  KeyPackage it adds (inline or by reference); for an external join, the joiner's own leaf
  (the UpdatePath's leaf node);
* :func:`check_registered`: one added device against what its home server lists for it
  (``None``: not listed). It raises :class:`~protocol.room_errors.UnknownDevice` or
  :class:`~protocol.room_errors.DeviceKeyMismatch`. It is the one place where a device
  counts as "proven"; a stricter rule (an approval chain) goes beside its checks.
"""

from __future__ import annotations

from dataclasses import dataclass

from crypto.mls.credential import Credential
from crypto.mls.framing import PublicMessage, SenderType
from crypto.mls.group_results import MessageKind
from crypto.mls.proposals import Add
from crypto.mls.public_group import PublicProcessed

from .api import DeviceKeys
from .ids import DeviceId, UserId
from .room_errors import DeviceKeyMismatch, UnknownDevice
from .room_messages import parse_device_identity

__all__ = ["AddedDevice", "added_devices", "check_registered"]


@dataclass(frozen=True)
class AddedDevice:
    """A device a handshake brings in: its name (from its credential) and the leaf's keys."""

    user: UserId
    device: DeviceId
    signature_key: bytes
    credential: bytes  # the leaf's Credential, encoded

    @property
    def identity(self) -> str:
        return f"{self.user}/{self.device}"


def _device(credential: Credential, signature_key: bytes) -> AddedDevice:
    user, device = parse_device_identity(credential)
    return AddedDevice(user, device, signature_key, credential.to_bytes())


def added_devices(processed: PublicProcessed, body: PublicMessage) -> tuple[AddedDevice, ...]:
    """The devices ``processed`` (the public view's result for ``body``) adds; raises
    :class:`~protocol.room_errors.MemberIdentityInvalid` for a credential that names none."""
    out: list[AddedDevice] = []
    if processed.kind == MessageKind.PROPOSAL:
        proposal = processed.proposal
        if proposal is not None and isinstance(proposal.body, Add):
            leaf = proposal.body.key_package.leaf_node
            out.append(_device(leaf.credential, leaf.signature_key))
        return tuple(out)
    for _, kp in processed.added:
        out.append(_device(kp.leaf_node.credential, kp.leaf_node.signature_key))
    if processed.sender_type == SenderType.NEW_MEMBER_COMMIT:
        path = getattr(body.content.content, "path", None)
        if path is not None:
            out.append(_device(path.leaf_node.credential, path.leaf_node.signature_key))
    return tuple(out)


def check_registered(added: AddedDevice, registered: DeviceKeys | None) -> None:
    """``added`` must be a device its home server lists (``registered``) with exactly that
    signature key and credential. Raises :class:`UnknownDevice` (not listed) or
    :class:`DeviceKeyMismatch`."""
    if registered is None or registered.device_id != added.device:
        raise UnknownDevice(f"{added.identity} is not a device registered with its home server")
    if registered.signature_key != added.signature_key:
        raise DeviceKeyMismatch(f"{added.identity} is added with a signature key other than its "
                                "registered one")
    if registered.credential != added.credential:
        raise DeviceKeyMismatch(f"{added.identity} is added with a credential other than its "
                                "registered one")
