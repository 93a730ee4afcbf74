"""Multi-factor sign-in: TOTP enrolment, the second factor of a login, recovery codes.

The rules (``spec/security.md``, "MFA"):

- ``begin`` makes a new secret (20 random bytes) and stores it *sealed*
  (XChaCha20-Poly1305 under a key derived from ``keys/mfa.key``, the user id as
  associated data, so a sealed secret moved to another account does not open);
  the secret is shown to the caller once. ``confirm`` with a code of it turns
  MFA on, uses that code's step, and makes ten recovery codes, shown once and
  kept as HMAC-SHA256 under a second key derived from ``keys/mfa.key``.
- A TOTP code is accepted at the steps ``T-1..T+1`` of the server clock, and
  only for a step later than the last one accepted for the account (a code
  cannot be replayed, not even in its own step). A recovery code works once.
  Both single-use checks are conditional ``UPDATE``\\ s in the login's own
  transaction (:mod:`server.storage.mfa`).
- Every code check of a signed-in device (``confirm``, ``disable``) is counted
  in the login limiter before the code is checked, per user and per address,
  like a login attempt (a request refused for the enrolment's state, which
  checks no code, is not counted).
- An account whose role is in ``[auth] mfa_required_roles`` and has no MFA
  gets an *enrolment-only* session at login and registration; ``confirm`` makes
  that session a full one. Disabling MFA on such an account turns all its
  sessions into enrolment-only ones.

Errors: :class:`~protocol.mfa.MfaRequired`, :class:`~protocol.mfa.MfaInvalid`,
:class:`~protocol.mfa.MfaAlreadyEnabled`, :class:`~protocol.mfa.MfaNotEnabled`,
:class:`~protocol.mfa.MfaNotStarted`, :class:`~protocol.errors.BadRequest`
(both or neither factor given to ``disable``), and the limiter's
:class:`~protocol.errors.RateLimited`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

import aiosqlite
import nacl.bindings
import nacl.exceptions

from crypto.rng import Rng
from crypto.totp import DIGITS, PERIOD, SECRET_BYTES, encode_secret, match_step, otpauth_uri
from protocol.audit import AccessAction, AccessEvent
from protocol.errors import BadRequest
from protocol.mfa import (
    RECOVERY_CODE_CHARS,
    RECOVERY_CODES,
    MfaAlreadyEnabled,
    MfaBeginResponse,
    MfaCodeRequest,
    MfaConfirmResponse,
    MfaDisableRequest,
    MfaInvalid,
    MfaNotEnabled,
    MfaNotStarted,
    MfaRequired,
    normalize_recovery_code,
)
from server.storage import Database, mfa, tokens

from .audit import AuditTrail
from .clock import Clock, now_ms
from .ratelimit import LoginLimiter
from .sessions import Session

__all__ = ["MfaKeys", "Mfa", "LoginFactor", "SealedSecretInvalid"]

_NONCE = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES


class SealedSecretInvalid(Exception):
    """A stored TOTP secret does not open under this server's ``keys/mfa.key`` (a bug or a
    replaced key file; never an answer to a client)."""

    code = "mfa_secret_unreadable"


class MfaKeys:
    """The two keys derived from the 32-byte ``keys/mfa.key``: one seals TOTP secrets, one
    MACs recovery codes."""

    def __init__(self, root: bytes, rng: Rng) -> None:
        self._seal = hmac.new(root, b"confide mfa v1 totp seal", hashlib.sha256).digest()
        self._mac = hmac.new(root, b"confide mfa v1 recovery mac", hashlib.sha256).digest()
        self._rng = rng

    @staticmethod
    def _aad(user_id: str) -> bytes:
        return b"confide mfa v1 totp\x00" + user_id.encode()

    def seal(self, user_id: str, secret: bytes) -> bytes:
        nonce = self._rng(_NONCE)
        return nonce + nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(
            secret, self._aad(user_id), nonce, self._seal)

    def open(self, user_id: str, sealed: bytes) -> bytes:
        try:
            return nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
                sealed[_NONCE:], self._aad(user_id), sealed[:_NONCE], self._seal)
        except nacl.exceptions.CryptoError:
            raise SealedSecretInvalid("a stored TOTP secret does not open") from None

    def recovery_mac(self, user_id: str, normalized_code: str) -> bytes:
        return hmac.new(self._mac, user_id.encode() + b"\x00" + normalized_code.encode(),
                        hashlib.sha256).digest()


@dataclass(frozen=True)
class LoginFactor:
    """What a login proved beyond its password: ``scope`` of the session to issue, and the
    TOTP ``step`` or recovery code ``mac`` to use up in the login's transaction."""

    scope: str
    step: int | None = None
    mac: bytes | None = None


def _recovery_code(rng: Rng) -> str:
    chars = base64.b32encode(rng(7)).decode()[:RECOVERY_CODE_CHARS]
    return f"{chars[:5]}-{chars[5:]}"


class Mfa:
    def __init__(self, db: Database, audit: AuditTrail, limiter: LoginLimiter, keys: MfaKeys,
                 required_roles: tuple[str, ...], server_name: str, clock: Clock, rng: Rng) -> None:
        self.db = db
        self.audit = audit
        self.limiter = limiter
        self.keys = keys
        self.required_roles = frozenset(required_roles)
        self.server_name = server_name
        self.clock = clock
        self.rng = rng

    def scope_without_factor(self, role: str) -> str:
        """The session scope of an account of ``role`` that has no MFA."""
        return tokens.MFA_ENROLMENT if role in self.required_roles else tokens.FULL

    # -- login -----------------------------------------------------------------------------

    async def login_factor(self, user_id: str, role: str, totp: str | None,
                           recovery_code: str | None) -> LoginFactor:
        """Check the second factor of a login whose password was right. An account without
        MFA needs none (the factor fields are ignored); with MFA, :class:`MfaRequired` when
        neither is given and :class:`MfaInvalid` when the one given is wrong or used."""
        async with self.db.read() as conn:
            row = await mfa.get(conn, user_id)
        if row is None or not row.enabled:
            return LoginFactor(self.scope_without_factor(role))
        if totp is None and recovery_code is None:
            raise MfaRequired("this account needs a second factor: a TOTP code or a recovery code")
        if totp is not None and recovery_code is not None:
            raise MfaInvalid("send a TOTP code or a recovery code, not both")
        if totp is not None:
            return LoginFactor(tokens.FULL, step=self._step(row, totp))
        async with self.db.read() as conn:
            mac = await self._unused_recovery(conn, user_id, recovery_code or "")
        return LoginFactor(tokens.FULL, mac=mac)

    async def use(self, tx: aiosqlite.Connection, user_id: str, device_id: str | None,
                  factor: LoginFactor) -> None:
        """Use up ``factor`` in the caller's transaction (:class:`MfaInvalid` if a concurrent
        request used it first); a recovery code's use is a log entry."""
        if factor.step is not None and not await mfa.use_step(tx, user_id, factor.step):
            raise MfaInvalid("that code was used already; wait for the next one")
        if factor.mac is not None:
            now = now_ms(self.clock)
            if not await mfa.use_recovery_code(tx, user_id, factor.mac, now):
                raise MfaInvalid("that recovery code is unknown or used")
            await self.audit.record(tx, AccessEvent(now, AccessAction.RECOVERY_CODE_USED, user_id,
                                                    device_id))

    def _step(self, row: mfa.TotpRow, code: str) -> int:
        secret = self.keys.open(row.user_id, row.sealed_secret)
        step = match_step(secret, code, self.clock())
        if step is None:
            raise MfaInvalid("wrong TOTP code")
        if step <= row.last_step:
            raise MfaInvalid("that code was used already; wait for the next one")
        return step

    async def _unused_recovery(self, conn: aiosqlite.Connection, user_id: str, raw: str) -> bytes:
        mac = self.keys.recovery_mac(user_id, normalize_recovery_code(raw))
        rows = await conn.execute_fetchall(
            "SELECT 1 FROM mfa_recovery_codes WHERE user_id = ? AND code_mac = ? AND used_at IS NULL",
            (user_id, mac))
        if not rows:
            raise MfaInvalid("that recovery code is unknown or used")
        return mac

    # -- enrolment (a signed-in device) -----------------------------------------------------

    async def begin(self, session: Session) -> MfaBeginResponse:
        """A new pending TOTP secret for the caller (replacing a pending one)."""
        user = str(session.user_id)
        async with self.db.read() as conn:
            row = await mfa.get(conn, user)
        if row is not None and row.enabled:
            raise MfaAlreadyEnabled("MFA is on already; disable it first to enrol a new authenticator")
        secret = self.rng(SECRET_BYTES)
        async with self.db.transaction() as tx:
            await mfa.begin(tx, user, self.keys.seal(user, secret), now_ms(self.clock))
        return MfaBeginResponse(encode_secret(secret), otpauth_uri(secret, user, self.server_name),
                                DIGITS, PERIOD)

    async def confirm(self, session: Session, req: MfaCodeRequest, address: str) -> MfaConfirmResponse:
        """Turn MFA on with a current code of the pending secret; returns the recovery codes.
        An enrolment-only session becomes a full one."""
        user = str(session.user_id)
        async with self.db.read() as conn:
            row = await mfa.get(conn, user)
        if row is None:
            raise MfaNotStarted("start with POST /account/mfa/totp/begin")
        if row.enabled:
            raise MfaAlreadyEnabled("MFA is on already")
        self.limiter.begin(user, address)  # counted before the code is checked
        step = match_step(self.keys.open(user, row.sealed_secret), req.code, self.clock())
        if step is None:
            raise MfaInvalid("wrong TOTP code")
        codes = [_recovery_code(self.rng) for _ in range(RECOVERY_CODES)]
        macs = [self.keys.recovery_mac(user, normalize_recovery_code(c)) for c in codes]
        now = now_ms(self.clock)
        async with self.db.transaction() as tx:
            if not await mfa.enable(tx, user, step, macs, now):
                raise MfaAlreadyEnabled("MFA was turned on meanwhile")
            if session.scope != tokens.FULL:
                await tokens.set_scope(tx, session.token_hash, tokens.FULL)
            await self.audit.record(tx, AccessEvent(now, AccessAction.MFA_ENABLED, user,
                                                    str(session.device_id)))
        self.limiter.succeeded(user, address)
        await self.audit.flush()
        return MfaConfirmResponse(tuple(codes))

    async def disable(self, session: Session, req: MfaDisableRequest, address: str) -> None:
        """Turn MFA off with a current code or an unused recovery code. On an account whose role
        requires MFA every session then becomes enrolment-only."""
        if (req.code is None) == (req.recovery_code is None):
            raise BadRequest("send exactly one of code and recovery_code")
        user = str(session.user_id)
        async with self.db.read() as conn:
            row = await mfa.get(conn, user)
            if row is None or not row.enabled:
                raise MfaNotEnabled("MFA is not on for this account")
            self.limiter.begin(user, address)  # counted before the code is checked
            if req.code is not None:
                factor = LoginFactor(tokens.FULL, step=self._step(row, req.code))
            else:
                factor = LoginFactor(tokens.FULL,
                                     mac=await self._unused_recovery(conn, user, req.recovery_code or ""))
        async with self.db.transaction() as tx:
            await self.use(tx, user, str(session.device_id), factor)
            await mfa.disable(tx, user)
            if session.role in self.required_roles:
                await tokens.restrict_user(tx, user)
            await self.audit.record(tx, AccessEvent(now_ms(self.clock), AccessAction.MFA_DISABLED,
                                                    user, str(session.device_id)))
        self.limiter.succeeded(user, address)
        await self.audit.flush()
