"""Multi-factor sign-in from the SDK: enrol a TOTP authenticator, turn MFA off.

:class:`MfaCalls` speaks the three routes of ``spec/client-server.md`` 3.1 with
the device's token (an enrolment-only one included). A login with a second
factor is :meth:`client.sdk.Client.login` with ``totp=`` or ``recovery_code=``;
an account whose role requires MFA and has none gets an enrolment-only session
(:attr:`client.sdk.Client.mfa_enrolment_required`), which can call only these
routes until :meth:`client.sdk.Client.mfa_confirm` succeeds. Errors are the
server's, as :class:`~client.sdk.errors.ServerError` (``mfa_invalid``,
``mfa_already_enabled``, ``mfa_not_enabled``, ``mfa_not_started``, ``rate_limited``).
"""

from __future__ import annotations

from protocol.api import Empty
from protocol.mfa import MfaBeginResponse, MfaCodeRequest, MfaConfirmResponse, MfaDisableRequest

from .http import Http

__all__ = ["MfaCalls"]


class MfaCalls:
    def __init__(self, http: Http) -> None:
        self.http = http

    async def begin(self) -> MfaBeginResponse:
        """A new secret (base32) and its ``otpauth://`` URI, for the authenticator app."""
        return await self.http.request("POST", "/account/mfa/totp/begin", Empty(), MfaBeginResponse)

    async def confirm(self, code: str) -> tuple[str, ...]:
        """MFA on, with a current code of the new secret; the ten recovery codes (shown once)."""
        out = await self.http.request("POST", "/account/mfa/totp/confirm", MfaCodeRequest(code),
                                      MfaConfirmResponse)
        return out.recovery_codes

    async def disable(self, code: str | None = None, recovery_code: str | None = None) -> None:
        await self.http.request("POST", "/account/mfa/disable",
                                MfaDisableRequest(code, recovery_code), Empty)
