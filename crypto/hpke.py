"""Hybrid Public Key Encryption, RFC 9180, for the suites Confide uses.

KEM: DHKEM(X25519, HKDF-SHA256) (section 4.1); KDF: HKDF-SHA256; AEAD:
AES-128-GCM, ChaCha20-Poly1305 or export-only (section 7.3). All four modes
(base, psk, auth, auth_psk) are supported, with the single-shot APIs of
section 6. Section numbers below are RFC 9180's.

Randomness enters only through ``rng``: the ephemeral key pair is
``derive_key_pair(rng(32))``, so a test can inject the vectors' ``ikmE``.

Errors: a bad or low-order public key gives :class:`InvalidKey`, a failed
open gives :class:`DecryptError`, an unknown algorithm gives
:class:`UnsupportedCipherSuite`, and misuse of the API (PSK or sender key
inconsistent with the mode, sequence overflow, seal on export-only,
oversized export) gives an :class:`HpkeError` subclass with its own code.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import IntEnum

from . import primitives as _p
from .errors import CryptoError, InvalidKey, UnsupportedCipherSuite

__all__ = [
    "KemId",
    "KdfId",
    "AeadId",
    "Mode",
    "HpkeError",
    "InconsistentPskInputs",
    "PskNotNeeded",
    "MissingPsk",
    "SenderKeyNotNeeded",
    "MissingSenderKey",
    "MessageLimitReached",
    "ExportOnly",
    "WrongRole",
    "ExportTooLong",
    "Role",
    "Context",
    "Hpke",
]


class KemId(IntEnum):
    DHKEM_X25519_HKDF_SHA256 = 0x0020


class KdfId(IntEnum):
    HKDF_SHA256 = 0x0001


class AeadId(IntEnum):
    AES_128_GCM = 0x0001
    CHACHA20_POLY1305 = 0x0003
    EXPORT_ONLY = 0xFFFF


class Mode(IntEnum):
    BASE = 0x00
    PSK = 0x01
    AUTH = 0x02
    AUTH_PSK = 0x03


class Role(IntEnum):
    SENDER = 0
    RECEIVER = 1


# -- errors --------------------------------------------------------------------


class HpkeError(CryptoError):
    """HPKE was used against its rules (section 5); the base of the errors below."""

    code = "hpke_error"


class InconsistentPskInputs(HpkeError):
    """Exactly one of ``psk`` and ``psk_id`` was given (VerifyPSKInputs, section 5.1)."""

    code = "hpke_inconsistent_psk_inputs"


class PskNotNeeded(HpkeError):
    """A PSK was given in base or auth mode (VerifyPSKInputs, section 5.1)."""

    code = "hpke_psk_not_needed"


class MissingPsk(HpkeError):
    """Psk or auth_psk mode without a PSK (VerifyPSKInputs, section 5.1)."""

    code = "hpke_missing_psk"


class SenderKeyNotNeeded(HpkeError):
    """A sender key (``sk_s``/``pk_s``) was given in base or psk mode."""

    code = "hpke_sender_key_not_needed"


class MissingSenderKey(HpkeError):
    """Auth or auth_psk mode without the sender key (sections 5.1.3, 5.1.4)."""

    code = "hpke_missing_sender_key"


class MessageLimitReached(HpkeError):
    """The context's sequence number would overflow (section 5.2)."""

    code = "hpke_message_limit_reached"


class ExportOnly(HpkeError):
    """Seal or open on a context whose AEAD is export-only (0xFFFF)."""

    code = "hpke_export_only"


class WrongRole(HpkeError):
    """A sender context was used to open, or a receiver context to seal (section 5.2)."""

    code = "hpke_wrong_role"


class ExportTooLong(HpkeError):
    """An export length outside 0..255*Nh (section 5.3)."""

    code = "hpke_export_too_long"


# -- algorithm parameters --------------------------------------------------------

_VERSION = b"HPKE-v1"
_NH = 32  # HKDF-SHA256
_NSK = _NPK = _NSECRET = 32  # DHKEM(X25519, HKDF-SHA256)
_NN = 12

_Seal = Callable[[bytes, bytes, bytes, bytes], bytes]

# aead_id -> (Nk, seal, open); export-only has no entry.
_AEADS: dict[AeadId, tuple[int, _Seal, _Seal]] = {
    AeadId.AES_128_GCM: (16, _p.aes128gcm_seal, _p.aes128gcm_open),
    AeadId.CHACHA20_POLY1305: (32, _p.chacha20poly1305_seal, _p.chacha20poly1305_open),
}

_SEQ_LIMIT = (1 << (8 * _NN)) - 1


def _i2osp(value: int, length: int) -> bytes:
    return value.to_bytes(length, "big")


def _labeled_extract(suite_id: bytes, salt: bytes, label: bytes, ikm: bytes) -> bytes:
    """LabeledExtract (section 4)."""
    return _p.hkdf_extract(salt, _VERSION + suite_id + label + ikm)


def _labeled_expand(suite_id: bytes, prk: bytes, label: bytes, info: bytes, length: int) -> bytes:
    """LabeledExpand (section 4)."""
    return _p.hkdf_expand(prk, _i2osp(length, 2) + _VERSION + suite_id + label + info, length)


def _check_public_key(name: str, pk: bytes) -> bytes:
    """DeserializePublicKey for X25519: the identity on 32 bytes, else InvalidKey."""
    if not isinstance(pk, (bytes, bytearray, memoryview)) or len(pk) != _NPK:
        raise InvalidKey(f"{name} must be {_NPK} bytes")
    return bytes(pk)


# -- context ---------------------------------------------------------------------


class Context:
    """An HPKE encryption context (section 5.2): one role, one direction.

    ``key``, ``base_nonce`` and ``exporter_secret`` are the key schedule's
    outputs (``key`` and ``base_nonce`` are empty for export-only); ``seq`` is
    the number of messages sealed or opened so far.
    """

    def __init__(
        self,
        aead: AeadId,
        suite_id: bytes,
        role: Role,
        key: bytes,
        base_nonce: bytes,
        exporter_secret: bytes,
    ) -> None:
        self.aead = aead
        self.role = role
        self.key = key
        self.base_nonce = base_nonce
        self.exporter_secret = exporter_secret
        self.seq = 0
        self._suite_id = suite_id
        self._base_nonce_int = int.from_bytes(base_nonce, "big") if base_nonce else 0

    def _next_nonce(self, role: Role) -> tuple[bytes, _Seal]:
        """This message's nonce and the AEAD function; raises before a bad context is used."""
        if self.aead == AeadId.EXPORT_ONLY:
            raise ExportOnly("export-only context: seal and open are not available")
        if self.role != role:
            raise WrongRole(f"a {self.role.name.lower()} context cannot do this")
        if self.seq >= _SEQ_LIMIT:
            raise MessageLimitReached("HPKE sequence number would overflow")
        _, seal, open_ = _AEADS[self.aead]
        nonce = _i2osp(self._base_nonce_int ^ self.seq, _NN)
        return nonce, (seal if role == Role.SENDER else open_)

    def seal(self, aad: bytes, pt: bytes) -> bytes:
        """ContextS.Seal: encrypt ``pt`` at the current sequence number, then advance it.

        Raises :class:`ExportOnly`, :class:`WrongRole` or :class:`MessageLimitReached`.
        """
        nonce, seal = self._next_nonce(Role.SENDER)
        ct = seal(self.key, nonce, aad, pt)
        self.seq += 1
        return ct

    def open(self, aad: bytes, ct: bytes) -> bytes:
        """ContextR.Open: decrypt ``ct``; the sequence number advances only on success.

        Raises :class:`DecryptError` when authentication fails, and
        :class:`ExportOnly`, :class:`WrongRole` or :class:`MessageLimitReached`.
        """
        nonce, open_ = self._next_nonce(Role.RECEIVER)
        pt = open_(self.key, nonce, aad, ct)
        self.seq += 1
        return pt

    def export(self, exporter_context: bytes, length: int) -> bytes:
        """Context.Export (section 5.3); raises :class:`ExportTooLong` unless 0 <= length <= 255*Nh."""
        if not 0 <= length <= 255 * _NH:
            raise ExportTooLong(f"export length must be 0..{255 * _NH}")
        return _labeled_expand(self._suite_id, self.exporter_secret, b"sec", exporter_context, length)


# -- HPKE ------------------------------------------------------------------------


class Hpke:
    """One HPKE ciphersuite: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256 and ``aead``.

    Raises :class:`UnsupportedCipherSuite` for any other algorithm identifier.
    """

    def __init__(
        self,
        aead: AeadId,
        kem: KemId = KemId.DHKEM_X25519_HKDF_SHA256,
        kdf: KdfId = KdfId.HKDF_SHA256,
    ) -> None:
        try:
            self.kem, self.kdf, self.aead = KemId(kem), KdfId(kdf), AeadId(aead)
        except ValueError as exc:
            raise UnsupportedCipherSuite(
                f"HPKE suite kem={kem!r} kdf={kdf!r} aead={aead!r}"
            ) from exc
        self._kem_suite_id = b"KEM" + _i2osp(self.kem, 2)
        self._suite_id = b"HPKE" + _i2osp(self.kem, 2) + _i2osp(self.kdf, 2) + _i2osp(self.aead, 2)

    # -- KEM (section 4.1, 7.1.3) --

    def derive_key_pair(self, ikm: bytes) -> tuple[bytes, bytes]:
        """DeriveKeyPair for X25519 (section 7.1.3): ``(sk, pk)``, sk unclamped as in the vectors."""
        dkp_prk = _labeled_extract(self._kem_suite_id, b"", b"dkp_prk", ikm)
        sk = _labeled_expand(self._kem_suite_id, dkp_prk, b"sk", b"", _NSK)
        return sk, _p.x25519_public_key(sk)

    def generate_key_pair(self, rng: Callable[[int], bytes]) -> tuple[bytes, bytes]:
        """GenerateKeyPair as DeriveKeyPair(random(Nsk)) (section 4)."""
        return self.derive_key_pair(rng(_NSK))

    def _extract_and_expand(self, dh: bytes, kem_context: bytes) -> bytes:
        eae_prk = _labeled_extract(self._kem_suite_id, b"", b"eae_prk", dh)
        return _labeled_expand(self._kem_suite_id, eae_prk, b"shared_secret", kem_context, _NSECRET)

    def _encap(
        self, pk_r: bytes, *, rng: Callable[[int], bytes], sk_s: bytes | None = None
    ) -> tuple[bytes, bytes]:
        """Encap, or AuthEncap when ``sk_s`` is given: ``(shared_secret, enc)``.

        Raises :class:`InvalidKey` for a malformed or low-order ``pk_r``.
        """
        pk_r = _check_public_key("recipient public key", pk_r)
        sk_e, enc = self.generate_key_pair(rng)
        dh = _p.x25519(sk_e, pk_r)
        kem_context = enc + pk_r
        if sk_s is not None:
            dh += _p.x25519(sk_s, pk_r)
            kem_context += _p.x25519_public_key(sk_s)
        return self._extract_and_expand(dh, kem_context), enc

    def _decap(self, enc: bytes, sk_r: bytes, *, pk_s: bytes | None = None) -> bytes:
        """Decap, or AuthDecap when ``pk_s`` is given: the shared secret.

        Raises :class:`InvalidKey` for a malformed or low-order ``enc`` or ``pk_s``.
        """
        enc = _check_public_key("encapsulated key", enc)
        dh = _p.x25519(sk_r, enc)
        kem_context = enc + _p.x25519_public_key(sk_r)
        if pk_s is not None:
            pk_s = _check_public_key("sender public key", pk_s)
            dh += _p.x25519(sk_r, pk_s)
            kem_context += pk_s
        return self._extract_and_expand(dh, kem_context)

    # -- key schedule (section 5.1) --

    @staticmethod
    def _verify_inputs(mode: Mode, psk: bytes, psk_id: bytes, sender_key: bytes | None) -> Mode:
        """VerifyPSKInputs (section 5.1), plus the sender key that auth modes need."""
        try:
            mode = Mode(mode)
        except ValueError as exc:
            raise HpkeError(f"unknown HPKE mode {mode!r}") from exc
        got_psk, got_psk_id = psk != b"", psk_id != b""
        if got_psk != got_psk_id:
            raise InconsistentPskInputs("psk and psk_id must be given together")
        if got_psk and mode in (Mode.BASE, Mode.AUTH):
            raise PskNotNeeded(f"PSK input provided in mode {mode.name.lower()}")
        if not got_psk and mode in (Mode.PSK, Mode.AUTH_PSK):
            raise MissingPsk(f"mode {mode.name.lower()} needs a PSK")
        auth = mode in (Mode.AUTH, Mode.AUTH_PSK)
        if auth and sender_key is None:
            raise MissingSenderKey(f"mode {mode.name.lower()} needs the sender key")
        if not auth and sender_key is not None:
            raise SenderKeyNotNeeded(f"sender key provided in mode {mode.name.lower()}")
        return mode

    def _schedule_secrets(
        self, mode: Mode, shared_secret: bytes, info: bytes, psk: bytes, psk_id: bytes
    ) -> tuple[bytes, bytes]:
        """``(key_schedule_context, secret)`` of KeySchedule (section 5.1)."""
        sid = self._suite_id
        psk_id_hash = _labeled_extract(sid, b"", b"psk_id_hash", psk_id)
        info_hash = _labeled_extract(sid, b"", b"info_hash", info)
        key_schedule_context = bytes([mode]) + psk_id_hash + info_hash
        secret = _labeled_extract(sid, shared_secret, b"secret", psk)
        return key_schedule_context, secret

    def _key_schedule(
        self, role: Role, mode: Mode, shared_secret: bytes, info: bytes, psk: bytes, psk_id: bytes
    ) -> Context:
        """KeySchedule<ROLE> (section 5.1); inputs already verified."""
        sid = self._suite_id
        ksc, secret = self._schedule_secrets(mode, shared_secret, info, psk, psk_id)
        key = base_nonce = b""
        if self.aead != AeadId.EXPORT_ONLY:
            nk = _AEADS[self.aead][0]
            key = _labeled_expand(sid, secret, b"key", ksc, nk)
            base_nonce = _labeled_expand(sid, secret, b"base_nonce", ksc, _NN)
        exporter_secret = _labeled_expand(sid, secret, b"exp", ksc, _NH)
        return Context(self.aead, sid, role, key, base_nonce, exporter_secret)

    # -- setup (sections 5.1.1 to 5.1.4) --

    def setup_sender(
        self,
        pk_r: bytes,
        info: bytes = b"",
        *,
        rng: Callable[[int], bytes],
        mode: Mode = Mode.BASE,
        psk: bytes = b"",
        psk_id: bytes = b"",
        sk_s: bytes | None = None,
    ) -> tuple[bytes, Context]:
        """Setup<MODE>S: ``(enc, sender context)``.

        Raises an :class:`HpkeError` subclass when psk/psk_id/sk_s do not fit
        ``mode``, :class:`InvalidKey` for a bad ``pk_r`` or ``sk_s``.
        """
        mode = self._verify_inputs(mode, psk, psk_id, sk_s)
        shared_secret, enc = self._encap(pk_r, rng=rng, sk_s=sk_s)
        return enc, self._key_schedule(Role.SENDER, mode, shared_secret, info, psk, psk_id)

    def setup_receiver(
        self,
        enc: bytes,
        sk_r: bytes,
        info: bytes = b"",
        *,
        mode: Mode = Mode.BASE,
        psk: bytes = b"",
        psk_id: bytes = b"",
        pk_s: bytes | None = None,
    ) -> Context:
        """Setup<MODE>R: the receiver context.

        Raises an :class:`HpkeError` subclass when psk/psk_id/pk_s do not fit
        ``mode``, :class:`InvalidKey` for a bad ``enc``, ``sk_r`` or ``pk_s``.
        """
        mode = self._verify_inputs(mode, psk, psk_id, pk_s)
        shared_secret = self._decap(enc, sk_r, pk_s=pk_s)
        return self._key_schedule(Role.RECEIVER, mode, shared_secret, info, psk, psk_id)

    # -- single-shot APIs (section 6) --

    def seal(
        self,
        pk_r: bytes,
        info: bytes,
        aad: bytes,
        pt: bytes,
        *,
        rng: Callable[[int], bytes],
        mode: Mode = Mode.BASE,
        psk: bytes = b"",
        psk_id: bytes = b"",
        sk_s: bytes | None = None,
    ) -> tuple[bytes, bytes]:
        """Seal<MODE> (section 6.1): ``(enc, ct)``; raises as :meth:`setup_sender` and :meth:`Context.seal`."""
        enc, ctx = self.setup_sender(pk_r, info, rng=rng, mode=mode, psk=psk, psk_id=psk_id, sk_s=sk_s)
        return enc, ctx.seal(aad, pt)

    def open(
        self,
        enc: bytes,
        sk_r: bytes,
        info: bytes,
        aad: bytes,
        ct: bytes,
        *,
        mode: Mode = Mode.BASE,
        psk: bytes = b"",
        psk_id: bytes = b"",
        pk_s: bytes | None = None,
    ) -> bytes:
        """Open<MODE> (section 6.1); raises :class:`DecryptError` when ``ct`` does not authenticate."""
        ctx = self.setup_receiver(enc, sk_r, info, mode=mode, psk=psk, psk_id=psk_id, pk_s=pk_s)
        return ctx.open(aad, ct)

    def send_export(
        self,
        pk_r: bytes,
        info: bytes,
        exporter_context: bytes,
        length: int,
        *,
        rng: Callable[[int], bytes],
        mode: Mode = Mode.BASE,
        psk: bytes = b"",
        psk_id: bytes = b"",
        sk_s: bytes | None = None,
    ) -> tuple[bytes, bytes]:
        """SendExport<MODE> (section 6.2): ``(enc, exported secret)``."""
        enc, ctx = self.setup_sender(pk_r, info, rng=rng, mode=mode, psk=psk, psk_id=psk_id, sk_s=sk_s)
        return enc, ctx.export(exporter_context, length)

    def receive_export(
        self,
        enc: bytes,
        sk_r: bytes,
        info: bytes,
        exporter_context: bytes,
        length: int,
        *,
        mode: Mode = Mode.BASE,
        psk: bytes = b"",
        psk_id: bytes = b"",
        pk_s: bytes | None = None,
    ) -> bytes:
        """ReceiveExport<MODE> (section 6.2): the exported secret."""
        ctx = self.setup_receiver(enc, sk_r, info, mode=mode, psk=psk, psk_id=psk_id, pk_s=pk_s)
        return ctx.export(exporter_context, length)
