"""The hub proves every device a handshake adds before the event is stored (finding 5).

:meth:`DeviceProof.check` takes the devices :func:`protocol.room_rules.accept` found
(:attr:`~protocol.room_rules.Accepted.added_devices`: Add proposals, a commit's Adds,
an external joiner) and, for each, asks its user's home server what it registered:

* a user of this server: the ``devices`` row, which counts only with registered keys
  (signature key, credential and log index set);
* a user of another server: that server's device list over federation
  (``GET /_confide/federation/v1/users/{user_id}/devices``, :class:`RemoteDeviceLists`).
  Proven (user, device, key) triples are kept in a bounded cache (:data:`CACHE_SIZE`
  entries for :data:`CACHE_TTL_S` seconds); a miss always asks again, so a device
  registered a moment ago is found. Only an authenticated member's handshake reaches
  here, so no anonymous request causes an outbound one.

The verdict itself is :func:`protocol.member_devices.check_registered`
(``unknown_device``, ``device_key_mismatch``); a home server that cannot be reached
refuses the message with the federation error (``peer_unreachable``, ``peer_denied``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import Protocol

from protocol.api import DeviceKeys, UserDevicesResponse
from protocol.ids import DeviceId, UserId
from protocol.member_devices import AddedDevice, check_registered
from server.services.clock import Clock, now_s
from server.storage import Database, devices

__all__ = ["DeviceProof", "RemoteDeviceLists", "CACHE_SIZE", "CACHE_TTL_S"]

#: Remote devices proven recently, kept at most this many ...
CACHE_SIZE = 4096
#: ... for this many seconds.
CACHE_TTL_S = 300

_Key = tuple[str, str, bytes, bytes]


class RemoteDeviceLists(Protocol):
    """A user's registered devices as their home server lists them (room federation)."""

    async def user_devices(self, user: UserId) -> UserDevicesResponse: ...


class DeviceProof:
    def __init__(self, db: Database, server_name: str, remote: RemoteDeviceLists,
                 clock: Clock) -> None:
        self.db = db
        self.server_name = server_name
        self.remote = remote
        self.clock = clock
        self._proven: OrderedDict[_Key, int] = OrderedDict()

    async def check(self, added: Iterable[AddedDevice]) -> None:
        """Raise the refusal of the first device in ``added`` that is not proven."""
        for device in added:
            await self.check_one(device)

    async def check_one(self, device: AddedDevice) -> None:
        """One device against its home server's registration (see the module docstring)."""
        if device.user.server == self.server_name:
            check_registered(device, await self._local(device.user, device.device))
            return
        key = (str(device.user), str(device.device), device.signature_key, device.credential)
        seen = self._proven.get(key)
        now = now_s(self.clock)
        if seen is not None and now - seen < CACHE_TTL_S:
            return
        listed = await self.remote.user_devices(device.user)
        found = next((d for d in listed.devices if d.device_id == device.device), None)
        check_registered(device, found if listed.user_id == device.user else None)
        self._proven[key] = now
        self._proven.move_to_end(key)
        while len(self._proven) > CACHE_SIZE:
            self._proven.popitem(last=False)

    async def _local(self, user: UserId, device: DeviceId) -> DeviceKeys | None:
        async with self.db.read() as conn:
            row = await devices.get(conn, str(user), str(device))
        if row is None or row.signature_key is None or row.credential is None \
                or row.key_log_index is None:
            return None
        return DeviceKeys(device, row.signature_key, row.credential, row.key_log_index)
