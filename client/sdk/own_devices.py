"""This account's devices as this device sees them: pending ones, approval, alerts.

* :func:`pending_devices`: the account's devices waiting for approval, with the short
  code each must show (``GET /devices/pending``).
* :func:`approve_device`: after the person compared the codes, sign the pending device's
  key with this device's key (``POST /devices/{device}/approve``); refuses a code that
  does not match (:class:`CodeMismatch`).
* :func:`watch_own_devices`: alerts for a pending device (with its code), a loud one
  for an active device without a valid approval chain, and one for a device registered
  in the log that the server lists neither as active nor as pending: each device watches
  its account's own log entries (``GET /log/mine``, each ``device_added`` opened and
  checked against the proven public entry; ``spec/security.md`` finding 2).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from client.audit import AuditFailure
from protocol.api import DevicesResponse
from protocol.audit import DeviceAdded, DeviceRemoved, sign_device_approval
from protocol.device_approval import (
    ApproveDeviceRequest,
    ApproveDeviceResponse,
    PendingDevicesResponse,
    same_code,
    short_code,
)

from .device_trust import ghost_alert, pending_alert
from .errors import VerificationFailed
from .http import Http, quote_path
from .keys import Keys
from .log_openings import open_entry, own_entries
from .store import Store

__all__ = ["Pending", "CodeMismatch", "pending_devices", "approve_device", "watch_own_devices",
           "account_devices"]


class CodeMismatch(VerificationFailed):
    """The code typed is not the one the pending device shows: it is not approved."""

    code = "code_mismatch"


@dataclass(frozen=True)
class Pending:
    device_id: str
    signature_key: bytes
    code: str
    created_at: int


async def pending_devices(http: Http, store: Store) -> list[Pending]:
    acct = store.account()
    out = await http.request("GET", "/devices/pending", None, PendingDevicesResponse)
    return [Pending(str(p.device_id), p.signature_key, short_code(acct.user_id, p.signature_key),
                    p.created_at)
            for p in out.devices if str(p.device_id) != acct.device_id]


async def approve_device(http: Http, store: Store, device_id: str, code: str,
                         now_ms: int | None = None) -> int:
    """Approve pending ``device_id`` if ``code`` is its short code; returns the log index of
    the ``device_approved`` entry. Raises :class:`CodeMismatch`, ServerError
    (``device_not_pending``, ``not_found``, ``approver_not_approved``, ``approval_invalid``)."""
    acct = store.account()
    match = [p for p in await pending_devices(http, store) if p.device_id == device_id]
    if not match:
        raise CodeMismatch(f"{device_id} is not a pending device of {acct.user_id}")
    if not same_code(code, match[0].code):
        raise CodeMismatch(f"the code does not match the one {device_id} shows: not approved")
    t = int(time.time() * 1000) if now_ms is None else now_ms
    entry = sign_device_approval(acct.signature_seed, t, acct.user_id, device_id,
                                 match[0].signature_key, acct.device_id)
    out = await http.request("POST", f"/devices/{quote_path(device_id)}/approve",
                             ApproveDeviceRequest(t, entry.signature), ApproveDeviceResponse)
    store.clear_alerts(f"pending device {device_id} ")
    return out.log_index


async def account_devices(http: Http) -> DevicesResponse:
    """Every device of this account as the server lists it (``GET /devices``)."""
    return await http.request("GET", "/devices", None, DevicesResponse)


async def watch_own_devices(http: Http, store: Store, keys: Keys) -> list[str]:
    """Check this account's devices; returns the alerts raised now (each recorded once).
    Alerts about devices no longer pending are dropped."""
    acct = store.account()
    pending = await pending_devices(http, store)
    new = [pending_alert(p.device_id, p.code) for p in pending]
    for old in store.alerts():
        if old.startswith("pending device ") and old not in new:
            store.clear_alerts(old)
    listed = {p.device_id for p in pending} | {acct.device_id}
    for d in await keys.user_devices(acct.user_id):
        listed.add(str(d.device_id))
        if str(d.device_id) == acct.device_id:
            continue
        try:
            await keys.verify_device(acct.user_id, str(d.device_id), d.signature_key, device=d)
        except VerificationFailed as exc:
            new.append(ghost_alert(str(d.device_id), str(exc)))
    new += await _unlisted_in_log(http, store, keys, listed)
    return [a for a in new if store.add_alert(a)]


async def _unlisted_in_log(http: Http, store: Store, keys: Keys, listed: set[str]) -> list[str]:
    """Alerts for devices this account's log entries register (and do not remove) that the
    server lists neither as active nor as pending: a device it hides from the lists. Only
    entries not looked at before are fetched (``Store.own_log``)."""
    acct = store.account()
    mark, devices = store.own_log()
    indexes = await own_entries(http, mark)
    for index in indexes:
        try:
            _, entry = await open_entry(http, index, keys.trust().log_key)
        except AuditFailure as exc:
            raise VerificationFailed(f"log entry {index} of this account: {exc}") from None
        if isinstance(entry, DeviceAdded) and entry.user == acct.user_id:
            devices[entry.device] = index
        elif isinstance(entry, DeviceRemoved) and entry.user == acct.user_id:
            devices.pop(entry.device, None)
    if indexes:
        store.set_own_log(indexes[-1] + 1, devices)
    return [ghost_alert(device, f"log entry {index} registers it, and the server lists it "
                                f"neither as active nor as pending")
            for device, index in devices.items() if device not in listed]
