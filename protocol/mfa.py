"""Multi-factor sign-in on the wire: the MFA bodies and error codes (``spec/client-server.md`` 3.1).

A second factor is a TOTP code (RFC 6238: SHA-1, 6 digits, 30 s) or one of ten
single-use recovery codes. Enrolment is two calls of a signed-in device:
``POST /account/mfa/totp/begin`` (a fresh secret) and
``POST /account/mfa/totp/confirm`` (a current code: MFA on, recovery codes
shown once); ``POST /account/mfa/disable`` needs a current code or a recovery
code. ``/login`` carries the factor in the optional ``totp`` or
``recovery_code`` field of :class:`protocol.api.LoginRequest`.

:func:`normalize_recovery_code` gives the one form a recovery code is hashed in
(upper case, no separators), or raises :class:`MfaInvalid`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .errors import ApiError
from .schema import Message, list_of, nullable, text, uint

__all__ = [
    "MAX_CODE",
    "MAX_RECOVERY_CODE",
    "RECOVERY_CODES",
    "RECOVERY_CODE_CHARS",
    "MfaBeginResponse",
    "MfaCodeRequest",
    "MfaDisableRequest",
    "MfaConfirmResponse",
    "MfaRequired",
    "MfaInvalid",
    "MfaEnrolmentRequired",
    "MfaAlreadyEnabled",
    "MfaNotEnabled",
    "MfaNotStarted",
    "normalize_recovery_code",
    "MFA_REQUEST_TYPES",
]

MAX_CODE = 16
MAX_RECOVERY_CODE = 32
#: Recovery codes made at each enrolment.
RECOVERY_CODES = 10
#: Characters of a recovery code (base32, 50 bits), shown as ``XXXXX-XXXXX``.
RECOVERY_CODE_CHARS = 10
_BASE32 = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")


class MfaRequired(ApiError):
    """The password was right and the account has MFA on: send ``totp`` or ``recovery_code``."""

    code = "mfa_required"
    status = 403


class MfaInvalid(ApiError):
    """The second factor is wrong, used already (a replayed TOTP step or a used recovery code),
    or not a code at all."""

    code = "mfa_invalid"
    status = 403


class MfaEnrolmentRequired(ApiError):
    """This session may only enrol a second factor (the account's role requires MFA)."""

    code = "mfa_enrolment_required"
    status = 403


class MfaAlreadyEnabled(ApiError):
    code = "mfa_already_enabled"
    status = 409


class MfaNotEnabled(ApiError):
    code = "mfa_not_enabled"
    status = 409


class MfaNotStarted(ApiError):
    """``confirm`` without a ``begin`` before it."""

    code = "mfa_not_started"
    status = 409


def normalize_recovery_code(raw: str) -> str:
    """``raw`` without spaces and dashes, in upper case; :class:`MfaInvalid` unless it is then
    exactly :data:`RECOVERY_CODE_CHARS` base32 characters."""
    code = raw.replace("-", "").replace(" ", "").upper()
    if len(code) != RECOVERY_CODE_CHARS or not set(code) <= _BASE32:
        raise MfaInvalid("not a recovery code")
    return code


@dataclass(frozen=True)
class MfaBeginResponse(Message):
    """The new TOTP secret (base32) and its ``otpauth://`` URI; not active until confirmed."""

    SCHEMA: ClassVar = {"secret": text(64, 16), "otpauth_uri": text(512), "digits": uint(10),
                        "period": uint(300)}
    secret: str
    otpauth_uri: str
    digits: int
    period: int


@dataclass(frozen=True)
class MfaCodeRequest(Message):
    """``confirm``: a current TOTP code of the secret ``begin`` gave."""

    SCHEMA: ClassVar = {"code": text(MAX_CODE)}
    code: str


@dataclass(frozen=True)
class MfaDisableRequest(Message):
    """``disable``: a current TOTP code, or an unused recovery code (exactly one of them)."""

    SCHEMA: ClassVar = {"code": nullable(text(MAX_CODE)),
                        "recovery_code": nullable(text(MAX_RECOVERY_CODE))}
    code: str | None = None
    recovery_code: str | None = None


@dataclass(frozen=True)
class MfaConfirmResponse(Message):
    """MFA is on; the recovery codes, shown this once (the server keeps only their MACs)."""

    SCHEMA: ClassVar = {"recovery_codes": list_of(text(MAX_RECOVERY_CODE), RECOVERY_CODES,
                                                  RECOVERY_CODES)}
    recovery_codes: tuple[str, ...]


#: The MFA request bodies (in :data:`protocol.api.REQUEST_TYPES` for the decoder property tests).
MFA_REQUEST_TYPES: tuple[type[Message], ...] = (MfaCodeRequest, MfaDisableRequest)
