"""Registration from an invite, password login, logout: the account side of sessions.

Errors (all typed, see ``spec/client-server.md``): :class:`InviteInvalid`,
:class:`UserExists`, :class:`InvalidLogin`, :class:`RateLimited`,
:class:`~protocol.mfa.MfaRequired` and :class:`~protocol.mfa.MfaInvalid` (the
password was right, the second factor missing or wrong: :mod:`.mfa`),
:class:`InvalidIdentifier`, :class:`NotFound` (re-login into a device that
does not exist). The registering device is the account's root (for an account created
without a device, the first device that logs in); any later device created by login is pending (``spec/client-server.md`` 4.6). A failed registration writes nothing: the invite, account,
device and token are one transaction.
"""

from __future__ import annotations

import base64

from crypto.rng import Rng
from protocol.api import LoginRequest, RegisterRequest, SessionResponse
from protocol.audit import AccessAction, AccessEvent
from protocol.errors import (
    ApiError,
    BadRequest,
    InvalidIdentifier,
    InviteInvalid,
    NotFound,
    UserExists,
)
from protocol.ids import DeviceId, UserId
from protocol.mfa import MfaInvalid
from server.storage import (
    Database,
    InviteUnusable,
    UserAlreadyExists,
    accounts,
    device_trust,
    devices,
    invites,
    tokens,
)

from .audit import AuditTrail
from .clock import Clock, now_ms
from .login_failures import FailedLoginCounter
from .mfa import LoginFactor, Mfa
from .passwords import PasswordHasher
from .provisioning import invite_hash
from .ratelimit import LoginLimiter
from .sessions import Sessions

__all__ = ["Accounts", "InvalidLogin", "new_device_id"]


class InvalidLogin(ApiError):
    """Unknown user or wrong password (one answer for both)."""

    code = "invalid_login"
    status = 403


def new_device_id(rng: Rng) -> str:
    """13 characters of base32 (64 random bits)."""
    return base64.b32encode(rng(8)).decode().rstrip("=")


class Accounts:
    def __init__(
        self, db: Database, sessions: Sessions, hasher: PasswordHasher, limiter: LoginLimiter,
        audit: AuditTrail, mfa: Mfa, server_name: str, clock: Clock, rng: Rng,
        failures: FailedLoginCounter | None = None,
    ) -> None:
        """``failures`` counts failed logins per window (none are logged without it)."""
        self.failures = failures
        self.db = db
        self.mfa = mfa
        self.sessions = sessions
        self.hasher = hasher
        self.limiter = limiter
        self.audit = audit
        self.server_name = server_name
        self.clock = clock
        self.rng = rng

    def _user_id(self, text: str) -> UserId:
        """A localpart or a full user id of this server."""
        user = UserId.parse(text) if text.startswith("@") else UserId.of(text, self.server_name)
        if user.server != self.server_name:
            raise BadRequest("that user id belongs to another server")
        return user

    async def register(self, req: RegisterRequest, address: str = "-") -> SessionResponse:
        """Counted per address before anything else; the invite (and the name) are checked
        before the password is hashed, so a bad invite costs no Argon2 work."""
        user = UserId.of(req.user, self.server_name)
        self.limiter.begin(None, address)
        code_hash = invite_hash(req.invite)
        async with self.db.read() as conn:
            if not await invites.usable(conn, code_hash, now_ms(self.clock)):
                raise InviteInvalid("invite code unknown, used or expired")
            if await accounts.exists(conn, str(user)):
                raise UserExists(f"{user} is taken")
        password_hash = await self.hasher.hash(req.password)
        device_id = new_device_id(self.rng)
        now = now_ms(self.clock)
        try:
            async with self.db.transaction() as tx:
                role = await invites.consume(tx, code_hash, str(user), now)
                await accounts.create(tx, str(user), role, password_hash, now)
                await devices.create(tx, str(user), device_id, now)
                await device_trust.create(tx, str(user), device_id, device_trust.TrustState.ROOT)
                scope = self.mfa.scope_without_factor(role)
                token = await self.sessions.issue(tx, str(user), device_id, scope)
                await self.audit.record(tx, AccessEvent(now, AccessAction.ACCOUNT_CREATED, str(user)))
                await self.audit.record(tx, AccessEvent(now, AccessAction.LOGIN, str(user), device_id))
        except InviteUnusable:  # used by a concurrent registration meanwhile
            raise InviteInvalid("invite code unknown, used or expired") from None
        except UserAlreadyExists:
            raise UserExists(f"{user} is taken") from None
        self.limiter.succeeded(None, address)
        await self.audit.flush()
        return SessionResponse(user, DeviceId(device_id), token, scope != tokens.FULL)

    async def login(self, req: LoginRequest, address: str) -> SessionResponse:
        try:
            user = self._user_id(req.user)
        except InvalidIdentifier:
            raise InvalidLogin("wrong user id or password") from None
        self.limiter.begin(str(user), address)  # counted before the check (see ratelimit)
        async with self.db.read() as conn:
            account = await accounts.get(conn, str(user))
        ok = await self.hasher.verify(account.password_hash if account else None, req.password)
        now = now_ms(self.clock)
        if not ok or account is None:
            # The same work for an unknown user as for a wrong password: one check (of a
            # dummy hash), one counted failure in one transaction (spec/security.md, findings
            # 12 and 1); no entry names the attempted user.
            await self._failed()
            raise InvalidLogin("wrong user id or password")
        # The second factor, only once the password is right (so that it says nothing about
        # an account to someone without its password). A failure stays counted in the limiter.
        try:
            factor = await self.mfa.login_factor(str(user), account.role, req.totp, req.recovery_code)
            answer = await self._log_in(user, req, factor, now)
        except MfaInvalid:
            await self._failed()
            raise
        self.limiter.succeeded(str(user), address)
        await self.audit.flush()
        return answer

    async def _failed(self) -> None:
        """One failed login, counted in the current window (no entry names the user)."""
        async with self.db.transaction() as tx:
            if self.failures is not None:
                await self.failures.count(tx)

    async def _log_in(self, user: UserId, req: LoginRequest, factor: LoginFactor, now: int) -> SessionResponse:
        """The device (new, or ``req.device_id`` again) and its token, in one transaction that
        also uses up the second factor; nothing is written if any part fails."""
        async with self.db.transaction() as tx:
            if req.device_id is not None:
                device_id = str(req.device_id)
                if await devices.get(tx, str(user), device_id) is None:
                    raise NotFound("no such device")
                await tokens.delete_for_device(tx, str(user), device_id)
                await devices.touch(tx, str(user), device_id, now)
            else:
                device_id = new_device_id(self.rng)
                await devices.create(tx, str(user), device_id, now)
                # Pending until an approved device of the user signs its key (finding 2); the
                # first device ever of an account made without one (admin create-user) is its root.
                first = not await device_trust.for_user(tx, str(user), limit=1)
                state = device_trust.TrustState.ROOT if first else device_trust.TrustState.PENDING
                await device_trust.create(tx, str(user), device_id, state)
            await self.mfa.use(tx, str(user), device_id, factor)
            token = await self.sessions.issue(tx, str(user), device_id, factor.scope)
            await self.audit.record(tx, AccessEvent(now, AccessAction.LOGIN, str(user), device_id))
        return SessionResponse(user, DeviceId(device_id), token, factor.scope != tokens.FULL)
