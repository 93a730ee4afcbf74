"""The client-server API's error codes: one registry, each code with its HTTP status hint.

Every error a client can be answered with is a subclass of :class:`ApiError`
that sets a stable ``code`` and a ``status`` hint. Defining the subclass
registers it (:func:`error_for_code`, :data:`REGISTRY`); a second class with
the same code is refused at import time, so codes stay unique. Later parts of
the protocol (rooms, delivery, attachments) add their codes by subclassing
:class:`ApiError` in their own module; nothing here needs editing.

The server answers every error as the msgpack body
``{"error": {"code": <code>, "message": <text>}}`` (plus ``"retry_after_ms"``
for :class:`RateLimited`) with the code's status. The shell translates, the
protocol only names (``spec/client-server.md``, section "Errors").
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, ClassVar

__all__ = [
    "ApiError",
    "REGISTRY",
    "error_for_code",
    "status_for_code",
    "BadRequest",
    "MalformedBody",
    "BodyTooLarge",
    "UnsupportedMediaType",
    "Unauthorized",
    "Forbidden",
    "NotFound",
    "MethodNotAllowed",
    "RateLimited",
    "InviteInvalid",
    "UserExists",
    "InvalidIdentifier",
    "KeyPackageInvalid",
    "KeyPackageExhausted",
    "KeyPackageLimit",
    "DeviceKeysMissing",
    "DeviceKeysInvalid",
    "Conflict",
    "StorageUnavailable",
    "Internal",
]

_registry: dict[str, type[ApiError]] = {}

#: Every registered code and its class (read-only view, grows as modules define codes).
REGISTRY = MappingProxyType(_registry)


class ApiError(Exception):
    """Base of every error the API answers. Subclasses set ``code`` and ``status``.

    ``message`` is for people (never parsed by clients); ``details`` is extra
    msgpack-able data placed beside ``code`` and ``message`` in the error body.
    """

    code: ClassVar[str] = "internal"
    status: ClassVar[int] = 500

    def __init__(self, message: str = "", **details: Any) -> None:
        super().__init__(message or self.code)
        self.message = message or self.code
        self.details = details

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        code = cls.__dict__.get("code")
        if code is None:
            return  # an abstract grouping class inherits its parent's code
        if code in _registry and _registry[code] is not cls:
            raise TypeError(f"API error code {code!r} is defined twice")
        if not 400 <= cls.status <= 599:
            raise TypeError(f"{cls.__name__}: status {cls.status} is not an error status")
        _registry[code] = cls

    def to_wire(self) -> dict[str, Any]:
        """The error body: ``{"error": {"code", "message", **details}}``."""
        return {"error": {"code": self.code, "message": self.message, **self.details}}


def error_for_code(code: str) -> type[ApiError]:
    """The class registered for ``code``; :class:`Internal` for an unknown code."""
    return _registry.get(code, Internal)


def status_for_code(code: str) -> int:
    """The HTTP status hint of ``code`` (500 for an unknown code)."""
    return error_for_code(code).status


class BadRequest(ApiError):
    """The request is well-formed msgpack but asks for something impossible."""

    code = "bad_request"
    status = 400


class MalformedBody(BadRequest):
    """The body is not msgpack, or not the request's schema (field names, types, bounds)."""

    code = "malformed_body"
    status = 400


class InvalidIdentifier(BadRequest):
    """A user id, device id, room id or server name breaks its grammar or size bound."""

    code = "invalid_identifier"
    status = 400


class BodyTooLarge(ApiError):
    code = "body_too_large"
    status = 413


class UnsupportedMediaType(ApiError):
    """A request body without ``Content-Type: application/msgpack``."""

    code = "unsupported_media_type"
    status = 415


class Unauthorized(ApiError):
    """No access token, an unknown one, or one whose session expired."""

    code = "unauthorized"
    status = 401


class Forbidden(ApiError):
    code = "forbidden"
    status = 403


class NotFound(ApiError):
    code = "not_found"
    status = 404


class MethodNotAllowed(ApiError):
    code = "method_not_allowed"
    status = 405


class Conflict(ApiError):
    """The request contradicts the stored state (e.g. device keys already registered)."""

    code = "conflict"
    status = 409


class RateLimited(ApiError):
    """Too many attempts; ``retry_after_ms`` says when to try again."""

    code = "rate_limited"
    status = 429

    def __init__(self, message: str, retry_after_ms: int) -> None:
        super().__init__(message, retry_after_ms=max(0, int(retry_after_ms)))
        self.retry_after_ms = max(0, int(retry_after_ms))


class InviteInvalid(ApiError):
    """The invite code is unknown, already used or expired (one answer for all three)."""

    code = "invite_invalid"
    status = 403


class UserExists(ApiError):
    code = "user_exists"
    status = 409


class KeyPackageInvalid(BadRequest):
    """An uploaded KeyPackage does not decode, verify or match the device (see the message)."""

    code = "key_package_invalid"
    status = 400


class DeviceKeysInvalid(BadRequest):
    """Device keys whose credential is not the device's, or whose self-signature fails."""

    code = "device_keys_invalid"
    status = 400


class KeyPackageExhausted(ApiError):
    """No device of the user has a KeyPackage that could be handed out."""

    code = "key_package_exhausted"
    status = 404


class KeyPackageLimit(ApiError):
    """The upload would leave the device more one-time KeyPackages than the server keeps."""

    code = "key_package_limit"
    status = 409


class DeviceKeysMissing(ApiError):
    """The device must register its signature key and credential first."""

    code = "device_keys_missing"
    status = 409


class StorageUnavailable(ApiError):
    """The server's database failed the request (locked beyond the busy timeout, an I/O
    error, a read-only file); nothing of the request was kept. Retrying later may work."""

    code = "storage_unavailable"
    status = 503


class Internal(ApiError):
    """A bug or an outage on the server; the body carries no details."""

    code = "internal"
    status = 500
