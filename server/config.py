"""The homeserver's configuration: a frozen dataclass, loaded from TOML and validated once.

Every key has a safe default, so an empty file (or none) gives a loopback
server named ``localhost`` with its data in ``./var``. Unknown keys, wrong
types and out-of-range values raise :class:`ConfigError` at start, naming
the key. The TOML layout (all keys optional)::

    server_name = "localhost"          # the :server part of user and room ids
    data_dir = "./var"                 # database, keys (created on first start)

    [listen]
    host = "127.0.0.1"
    port = 8480

    [limits]
    max_body = 1048576                 # bytes of one request body

    [sessions]
    idle_timeout = 604800              # seconds without use before a token expires (7 days)
    touch_interval = 300               # seconds: last use is written at most this often

    [login]
    max_failures_per_user = 5          # failed logins in `window` before rate limiting
    max_failures_per_address = 20
    window = 900                       # seconds
    password_hash = "interactive"      # Argon2id limits: "interactive" or "moderate"
    max_concurrent_hashes = 2          # Argon2 runs at once (1..64); the rest wait in line

    [auth]
    mfa_required_roles = ["admin", "clinician", "staff"]   # roles that must sign in with TOTP
                                       # (spec/security.md "MFA"); [] makes MFA optional for all

    [invites]
    lifetime = 604800                  # seconds an invite code stays valid

    [key_packages]
    max_one_time_per_device = 200      # one-time KeyPackages kept per device
    claim_burst = 30                   # claims one claimer may make at once (token bucket)
    claims_per_hour = 120              # the bucket's refill rate per claimer
    claims_per_pair = 5                # claims of one target by one claimer per claim_window
    stranger_claims_per_target = 10    # claims of one target per claim_window by claimers
                                       # who share no room with it
    claim_window = 3600                # seconds

    [delivery]
    max_inbox_items = 10000            # items waiting in one device's inbox
    max_inbox_bytes = 67108864         # payload bytes waiting in one device's inbox (64 MiB)
    max_sync_bytes = 1048576           # payload bytes of one /sync answer (1 MiB)
    pull_rate = 4194304                # bytes a second one device may sync (bursts of 4x)
    push_rate = 1048576                # bytes a second one device may send to devices (4x)

    [attachments]
    max_size = 10485760                # bytes of one encrypted attachment (10 MiB)

    [federation]                       # spec/server-server.md
    enabled = true                     # false: every peer is refused, nothing is sent
    max_clock_skew = 300               # seconds between a request's ts and our clock
    allow = []                         # if non-empty, only these servers are peers (else: the peers table)
    deny = []                          # always refused (peer_denied)
    public_base_url = ""               # served at /.well-known/confide/server if set
    request_timeout = 30               # seconds per federation request
    connect_timeout = 10
    batch_items = 50                   # items per outbound transaction (1..100)
    retry_initial_ms = 1000            # first backoff step; doubles per failure
    retry_max_ms = 3600000             # backoff cap
    max_txn_attempts = 20              # tries before a transaction is parked (1..1000)
    key_cache_ttl = 3600               # seconds a peer's key document is trusted
    key_refetch_interval = 30          # min seconds between fetches of one peer's keys
    discovery_ttl = 3600               # seconds a discovered base URL is cached
    replay_cache_size = 65536          # (origin, signature) pairs remembered
    max_outbound = 16                  # concurrent outbound federation requests (the pool)
    key_cache_servers = 1024           # servers whose key documents are kept (LRU)

    [federation.peers]                 # static discovery: server name -> base URL
    "b.example" = "http://127.0.0.1:8481"

    [log]                              # the trust document (spec/security.md, finding 3)
    witnesses = []                     # cosigner keys ("b.example/witness+id+key") clients require
    witness_quorum = 0                 # how many of them must cosign a checkpoint a client accepts

    [log.peer_log_keys]                # peers' log keys, anchored in the invite
    "b.example" = "b.example+1a2b3c4d+AQ..."
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from protocol.errors import InvalidIdentifier, MalformedBody
from protocol.federation import parse_base_url
from protocol.ids import parse_server_name

__all__ = [
    "ConfigError",
    "Listen",
    "Limits",
    "SessionPolicy",
    "LoginPolicy",
    "Auth",
    "DeliveryLimits",
    "Invites",
    "KeyPackageLimits",
    "Attachments",
    "Federation",
    "LogPolicy",
    "Config",
    "load_config",
    "config_from_dict",
]

DAY = 86400


class ConfigError(Exception):
    """The configuration file is unreadable, has unknown keys or invalid values."""

    code = "config_error"


def _check(cond: bool, key: str, msg: str) -> None:
    if not cond:
        raise ConfigError(f"{key}: {msg}")


def _int(v: Any, key: str, lo: int, hi: int) -> None:
    _check(type(v) is int and lo <= v <= hi, key, f"must be an integer {lo}..{hi}")


@dataclass(frozen=True)
class Listen:
    host: str = "127.0.0.1"
    port: int = 8480

    def validate(self) -> None:
        _check(isinstance(self.host, str) and 0 < len(self.host) <= 255, "listen.host", "must be a host")
        _int(self.port, "listen.port", 0, 65535)


@dataclass(frozen=True)
class Limits:
    max_body: int = 1024 * 1024

    def validate(self) -> None:
        _int(self.max_body, "limits.max_body", 1024, 64 * 1024 * 1024)


@dataclass(frozen=True)
class SessionPolicy:
    idle_timeout: int = 7 * DAY
    touch_interval: int = 300

    def validate(self) -> None:
        _int(self.idle_timeout, "sessions.idle_timeout", 60, 365 * DAY)
        _int(self.touch_interval, "sessions.touch_interval", 1, 3600)
        _check(self.touch_interval < self.idle_timeout, "sessions.touch_interval",
               "must be shorter than idle_timeout")


@dataclass(frozen=True)
class LoginPolicy:
    max_failures_per_user: int = 5
    max_failures_per_address: int = 20
    window: int = 900
    password_hash: str = "interactive"
    max_concurrent_hashes: int = 2
    #: Seconds per window of the failed-login count in the log (one ``failed_logins`` entry each).
    failure_log_window: int = 600

    def validate(self) -> None:
        _int(self.max_failures_per_user, "login.max_failures_per_user", 1, 1000)
        _int(self.max_failures_per_address, "login.max_failures_per_address", 1, 100000)
        _int(self.window, "login.window", 1, DAY)
        _int(self.max_concurrent_hashes, "login.max_concurrent_hashes", 1, 64)
        _int(self.failure_log_window, "login.failure_log_window", 1, DAY)
        _check(self.password_hash in ("interactive", "moderate"), "login.password_hash",
               'must be "interactive" or "moderate"')


#: Roles that may be made to use a second factor (every role can).
_MFA_ROLES = ("admin", "clinician", "staff", "client")


@dataclass(frozen=True)
class Auth:
    """``[auth]``: the roles whose accounts must sign in with a second factor. An account of
    such a role without MFA gets only a token that can enrol one (spec/security.md, "MFA")."""

    mfa_required_roles: tuple[str, ...] = ("admin", "clinician", "staff")

    def __post_init__(self) -> None:
        if isinstance(self.mfa_required_roles, list):
            object.__setattr__(self, "mfa_required_roles", tuple(self.mfa_required_roles))

    def validate(self) -> None:
        roles = self.mfa_required_roles
        _check(isinstance(roles, tuple) and all(r in _MFA_ROLES for r in roles)
               and len(set(roles)) == len(roles), "auth.mfa_required_roles",
               f"must be a list of distinct roles out of {', '.join(_MFA_ROLES)}")


@dataclass(frozen=True)
class Invites:
    lifetime: int = 7 * DAY

    def validate(self) -> None:
        _int(self.lifetime, "invites.lifetime", 60, 365 * DAY)


@dataclass(frozen=True)
class KeyPackageLimits:
    """``[key_packages]``: what a device keeps, and who may claim how fast (finding 8)."""

    max_one_time_per_device: int = 200
    claim_burst: int = 30
    claims_per_hour: int = 120
    claims_per_pair: int = 5
    stranger_claims_per_target: int = 10
    claim_window: int = 3600

    def validate(self) -> None:
        _int(self.max_one_time_per_device, "key_packages.max_one_time_per_device", 1, 10000)
        _int(self.claim_burst, "key_packages.claim_burst", 1, 100_000)
        _int(self.claims_per_hour, "key_packages.claims_per_hour", 1, 1_000_000)
        _int(self.claims_per_pair, "key_packages.claims_per_pair", 1, 10_000)
        _int(self.stranger_claims_per_target, "key_packages.stranger_claims_per_target", 1, 100_000)
        _int(self.claim_window, "key_packages.claim_window", 1, 7 * DAY)


@dataclass(frozen=True)
class DeliveryLimits:
    """``[delivery]``: per-device inbox quotas and the size of one sync answer (finding 10)."""

    max_inbox_items: int = 10_000
    max_inbox_bytes: int = 64 * 1024 * 1024
    max_sync_bytes: int = 1024 * 1024
    pull_rate: int = 4 * 1024 * 1024
    push_rate: int = 1024 * 1024

    def validate(self) -> None:
        _int(self.max_inbox_items, "delivery.max_inbox_items", 1, 10_000_000)
        _int(self.max_inbox_bytes, "delivery.max_inbox_bytes", 64 * 1024, 64 * 1024 * 1024 * 1024)
        _int(self.max_sync_bytes, "delivery.max_sync_bytes", 64 * 1024, 256 * 1024 * 1024)
        _int(self.pull_rate, "delivery.pull_rate", 64 * 1024, 1024 * 1024 * 1024)
        _int(self.push_rate, "delivery.push_rate", 16 * 1024, 1024 * 1024 * 1024)


@dataclass(frozen=True)
class Attachments:
    max_size: int = 10 * 1024 * 1024

    def validate(self) -> None:
        _int(self.max_size, "attachments.max_size", 1024, 1024 * 1024 * 1024)


@dataclass(frozen=True)
class Federation:
    """``[federation]``: peers, limits and the outbound queue's schedule.

    ``allow``/``deny`` (lists in TOML) become tuples and ``peers`` (a table)
    becomes a tuple of ``(name, base_url)`` pairs; :attr:`peer_table` is the dict.
    """

    enabled: bool = True
    max_clock_skew: int = 300
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    peers: Any = ()
    public_base_url: str = ""
    request_timeout: int = 30
    connect_timeout: int = 10
    batch_items: int = 50
    retry_initial_ms: int = 1000
    retry_max_ms: int = 3_600_000
    max_txn_attempts: int = 20
    key_cache_ttl: int = 3600
    key_refetch_interval: int = 30
    discovery_ttl: int = 3600
    replay_cache_size: int = 65536
    max_outbound: int = 16
    key_cache_servers: int = 1024

    def __post_init__(self) -> None:
        for name in ("allow", "deny"):
            if isinstance(getattr(self, name), list):
                object.__setattr__(self, name, tuple(getattr(self, name)))
        if isinstance(self.peers, dict):
            object.__setattr__(self, "peers", tuple(sorted(self.peers.items())))

    @property
    def peer_table(self) -> dict[str, str]:
        return dict(self.peers)

    def validate(self) -> None:
        _check(type(self.enabled) is bool, "federation.enabled", "must be a boolean")
        _int(self.max_clock_skew, "federation.max_clock_skew", 1, DAY)
        for name in ("allow", "deny"):
            names = getattr(self, name)
            _check(isinstance(names, tuple) and all(_is_server_name(n) for n in names),
                   f"federation.{name}", "must be a list of server names")
        _check(isinstance(self.peers, tuple) and all(
            isinstance(p, tuple) and len(p) == 2 and _is_server_name(p[0]) and _is_base_url(p[1])
            for p in self.peers), "federation.peers", "must map server names to http(s)://host[:port]")
        _check(self.public_base_url == "" or _is_base_url(self.public_base_url),
               "federation.public_base_url", "must be empty or http(s)://host[:port]")
        _int(self.request_timeout, "federation.request_timeout", 1, 600)
        _int(self.connect_timeout, "federation.connect_timeout", 1, 600)
        _int(self.batch_items, "federation.batch_items", 1, 100)
        _int(self.retry_initial_ms, "federation.retry_initial_ms", 1, DAY * 1000)
        _int(self.retry_max_ms, "federation.retry_max_ms", 1, 7 * DAY * 1000)
        _check(self.retry_initial_ms <= self.retry_max_ms, "federation.retry_initial_ms",
               "must not exceed retry_max_ms")
        _int(self.max_txn_attempts, "federation.max_txn_attempts", 1, 1000)
        _int(self.key_cache_ttl, "federation.key_cache_ttl", 1, 30 * DAY)
        _int(self.key_refetch_interval, "federation.key_refetch_interval", 0, DAY)
        _int(self.discovery_ttl, "federation.discovery_ttl", 1, 30 * DAY)
        _int(self.replay_cache_size, "federation.replay_cache_size", 16, 10_000_000)
        _int(self.max_outbound, "federation.max_outbound", 1, 1024)
        _int(self.key_cache_servers, "federation.key_cache_servers", 1, 1_000_000)


@dataclass(frozen=True)
class LogPolicy:
    """``[log]``: what the trust document adds to the log key (``protocol.trust``).

    ``witnesses`` (cosigner vkeys, type 0x04) and ``witness_quorum``: clients accept a
    checkpoint only with that many valid cosignatures of those keys. ``peer_log_keys``
    (a table: server name -> its log vkey) become pairs; a client checks a remote device
    against the key listed here only.
    """

    witnesses: tuple[str, ...] = ()
    witness_quorum: int = 0
    peer_log_keys: Any = ()

    def __post_init__(self) -> None:
        if isinstance(self.witnesses, list):
            object.__setattr__(self, "witnesses", tuple(self.witnesses))
        if isinstance(self.peer_log_keys, dict):
            object.__setattr__(self, "peer_log_keys", tuple(sorted(self.peer_log_keys.items())))

    def validate(self) -> None:
        from protocol.trust import MAX_PEERS, MAX_WITNESSES, TrustDocument, TrustDocumentInvalid

        _check(isinstance(self.witnesses, tuple) and all(isinstance(w, str) for w in self.witnesses)
               and len(self.witnesses) <= MAX_WITNESSES, "log.witnesses",
               f"must be a list of at most {MAX_WITNESSES} witness keys")
        _int(self.witness_quorum, "log.witness_quorum", 0, len(self.witnesses))
        _check(isinstance(self.peer_log_keys, tuple) and len(self.peer_log_keys) <= MAX_PEERS
               and all(isinstance(p, tuple) and len(p) == 2 and all(isinstance(x, str) for x in p)
                       for p in self.peer_log_keys),
               "log.peer_log_keys", "must map server names to log keys")
        try:  # each key parses and has the right type (a stand-in for the server's own key)
            TrustDocument.of("invalid.example", _PLACEHOLDER_KEY, self.witness_quorum,
                             self.witnesses, self.peer_log_keys)
        except TrustDocumentInvalid as exc:
            raise ConfigError(f"log: {exc}") from None


#: A syntactically valid log key, only to check ``[log]`` before the server's key is known.
_PLACEHOLDER_KEY = "invalid.example+deb53616+AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"


def _is_server_name(v: Any) -> bool:
    try:
        parse_server_name(v)
    except InvalidIdentifier:
        return False
    return True


def _is_base_url(v: Any) -> bool:
    try:
        parse_base_url(v)
    except MalformedBody:
        return False
    return True


_SECTIONS: dict[str, type] = {
    "listen": Listen, "limits": Limits, "sessions": SessionPolicy, "login": LoginPolicy,
    "auth": Auth, "invites": Invites, "key_packages": KeyPackageLimits, "attachments": Attachments,
    "federation": Federation, "log": LogPolicy, "delivery": DeliveryLimits,
}


@dataclass(frozen=True)
class Config:
    server_name: str = "localhost"
    data_dir: Path = Path("./var")
    listen: Listen = field(default_factory=Listen)
    limits: Limits = field(default_factory=Limits)
    sessions: SessionPolicy = field(default_factory=SessionPolicy)
    login: LoginPolicy = field(default_factory=LoginPolicy)
    auth: Auth = field(default_factory=Auth)
    invites: Invites = field(default_factory=Invites)
    key_packages: KeyPackageLimits = field(default_factory=KeyPackageLimits)
    attachments: Attachments = field(default_factory=Attachments)
    federation: Federation = field(default_factory=Federation)
    log: LogPolicy = field(default_factory=LogPolicy)
    delivery: DeliveryLimits = field(default_factory=DeliveryLimits)

    def __post_init__(self) -> None:
        try:
            parse_server_name(self.server_name)
        except InvalidIdentifier as exc:
            raise ConfigError(f"server_name: {exc.message}") from None
        _check(isinstance(self.data_dir, Path), "data_dir", "must be a path")
        for name in _SECTIONS:
            getattr(self, name).validate()

    @property
    def database_path(self) -> Path:
        return self.data_dir / "confide.sqlite"

    @property
    def keys_dir(self) -> Path:
        return self.data_dir / "keys"

    @property
    def attachments_dir(self) -> Path:
        return self.data_dir / "attachments"


def _section(cls: type, raw: Any, key: str) -> Any:
    _check(isinstance(raw, dict), key, "must be a table")
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(raw) - names)
    _check(not unknown, key, f"unknown keys {', '.join(unknown)}")
    return cls(**raw)


def config_from_dict(raw: dict[str, Any], base_dir: Path | None = None) -> Config:
    """Build and validate a :class:`Config`; raises :class:`ConfigError`.

    A relative ``data_dir`` is taken relative to ``base_dir`` (the config
    file's directory) when given, else to the working directory.
    """
    allowed = {"server_name", "data_dir", *_SECTIONS}
    unknown = sorted(set(raw) - allowed)
    _check(not unknown, "config", f"unknown keys {', '.join(unknown)}")
    kwargs: dict[str, Any] = {}
    if "server_name" in raw:
        _check(isinstance(raw["server_name"], str), "server_name", "must be a string")
        kwargs["server_name"] = raw["server_name"]
    if "data_dir" in raw:
        _check(isinstance(raw["data_dir"], str) and raw["data_dir"], "data_dir", "must be a path string")
        path = Path(raw["data_dir"])
        kwargs["data_dir"] = base_dir / path if base_dir is not None and not path.is_absolute() else path
    for name, cls in _SECTIONS.items():
        if name in raw:
            kwargs[name] = _section(cls, raw[name], name)
    return Config(**kwargs)


def load_config(path: Path | None) -> Config:
    """The config in ``path`` (TOML), or the defaults when ``path`` is None."""
    if path is None:
        return Config()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return config_from_dict(raw, path.parent)
