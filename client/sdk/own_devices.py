"""This account's devices as this device sees them: pending ones, approval, alerts.

* :func:`pending_devices`: the account's devices waiting for approval, with the short
  code each must show (``GET /devices/pending``).
* :func:`approve_device`: after the person compared the codes, sign the pending device's
  key with this device's key (``POST /devices/{device}/approve``); refuses a code that
  does not match (:class:`CodeMismatch`).
* :func:`watch_own_devices`: alerts for a pending device (with its code) and a loud one
  for an active device without a valid approval chain (``spec/security.md`` finding 2).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from protocol.api import DevicesResponse
from protocol.audit import sign_device_approval
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
    new = [pending_alert(p.device_id, p.code) for p in await pending_devices(http, store)]
    for old in store.alerts():
        if old.startswith("pending device ") and old not in new:
            store.clear_alerts(old)
    for d in await keys.user_devices(acct.user_id):
        if str(d.device_id) == acct.device_id:
            continue
        try:
            await keys.verify_device(acct.user_id, str(d.device_id), d.signature_key, device=d)
        except VerificationFailed as exc:
            new.append(ghost_alert(str(d.device_id), str(exc)))
    return [a for a in new if store.add_alert(a)]
