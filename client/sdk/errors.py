"""The SDK's typed errors.

Every error the SDK raises is a :class:`SdkError` with a stable ``code``:

* :class:`ServerError`: the server answered ``{"error": {"code", "message", ...}}``;
  ``code`` is the server's code, ``status`` the HTTP status, ``details`` the other fields
  (e.g. ``current_epoch`` of ``stale_epoch``, ``retry_after_ms`` of ``rate_limited``).
  :class:`StaleEpoch` is the one the SDK branches on (it catches up and retries).
* :class:`TransportError`: no answer (connection refused, timeout, a non-msgpack body).
* :class:`NotSignedIn`, :class:`UnknownRoom`, :class:`NotAMember`: local state forbids the call.
* :class:`VerificationFailed`: a peer device's keys are not proven in its server's
  transparency log, or a claimed KeyPackage does not match the registered keys.
  :class:`TrustAnchorMismatch` (a subclass): the server's trust document is not the one
  the invite's anchor names, or no anchor was given for a new device.
  :class:`LogInconsistent` (a subclass): a checkpoint that does not extend the one this
  device accepted before (a rollback or a fork), or one without the witness quorum.
* :class:`InvalidPayload`: an application message that is not a Confide payload.
* :class:`RetriesExhausted`: a commit kept losing the race for its epoch.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "SdkError",
    "ServerError",
    "StaleEpoch",
    "TransportError",
    "NotSignedIn",
    "UnknownRoom",
    "NotAMember",
    "VerificationFailed",
    "TrustAnchorMismatch",
    "LogInconsistent",
    "InvalidPayload",
    "RetriesExhausted",
]


class SdkError(Exception):
    """Base of the SDK's errors; ``code`` is stable."""

    code = "sdk_error"


class ServerError(SdkError):
    """The server refused the request with an error body."""

    def __init__(self, status: int, code: str, message: str, details: dict[str, Any] | None = None):
        super().__init__(f"{code} ({status}): {message}")
        self.status = status
        self.code = code  # the server's stable code
        self.message = message
        self.details = dict(details or {})

    @staticmethod
    def from_body(status: int, body: Any) -> ServerError:
        err = body.get("error") if isinstance(body, dict) else None
        if not isinstance(err, dict) or not isinstance(err.get("code"), str):
            return ServerError(status, f"http_{status}", "the server's error body is not a Confide error")
        code, message = err["code"], str(err.get("message", ""))
        details = {k: v for k, v in err.items() if k not in ("code", "message")}
        cls = StaleEpoch if code == "stale_epoch" else ServerError
        return cls(status, code, message, details)


class StaleEpoch(ServerError):
    """The hub refused a message for an epoch that is not current (``current_epoch`` in details)."""

    @property
    def current_epoch(self) -> int | None:
        v = self.details.get("current_epoch")
        return v if isinstance(v, int) else None


class TransportError(SdkError):
    code = "transport_error"


class NotSignedIn(SdkError):
    code = "not_signed_in"


class UnknownRoom(SdkError):
    code = "unknown_room"


class NotAMember(SdkError):
    code = "not_a_member"


class VerificationFailed(SdkError):
    code = "verification_failed"


class TrustAnchorMismatch(VerificationFailed):
    code = "trust_anchor_mismatch"


class LogInconsistent(VerificationFailed):
    code = "log_inconsistent"


class InvalidPayload(SdkError):
    code = "invalid_payload"


class RetriesExhausted(SdkError):
    code = "retries_exhausted"
