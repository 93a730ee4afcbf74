"""Numbered schema migrations of the homeserver's tables.

:data:`MIGRATIONS` is a list; migration ``n`` (1-based) is ``MIGRATIONS[n-1]``,
a tuple of SQL statements. ``schema_version`` holds the number applied last.
:func:`migrate` applies the missing ones, each in its own transaction together
with the version bump, so a crash leaves a whole migration or none. Later
parts (rooms, delivery, federation) append their migrations here; never edit
one that has shipped.

The transparency log keeps its own ``translog_`` tables in the same file
(:func:`server.translog.migrate`); :func:`migrate` runs that too.

Times are milliseconds since the Unix epoch, except KeyPackage lifetimes
(seconds, as MLS writes them).
"""

from __future__ import annotations

import aiosqlite

from server.translog import migrate as migrate_translog

from .errors import SchemaTooNew

__all__ = ["MIGRATIONS", "migrate", "schema_version"]

_V1 = (
    """CREATE TABLE accounts (
        user_id TEXT PRIMARY KEY,
        role TEXT NOT NULL CHECK (role IN ('admin', 'clinician', 'staff', 'client')),
        password_hash TEXT NOT NULL,
        created_at INTEGER NOT NULL)""",
    """CREATE TABLE devices (
        user_id TEXT NOT NULL REFERENCES accounts (user_id) ON DELETE CASCADE,
        device_id TEXT NOT NULL,
        display_name TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        last_seen INTEGER NOT NULL,
        signature_key BLOB UNIQUE,          -- NULL until the device registers its keys
        credential BLOB,
        key_log_index INTEGER,              -- index of its device_added log entry
        PRIMARY KEY (user_id, device_id),
        CHECK ((signature_key IS NULL) = (credential IS NULL)))""",
    """CREATE TABLE access_tokens (
        token_hash BLOB PRIMARY KEY,        -- SHA-256 of the token; the token itself is never stored
        user_id TEXT NOT NULL,
        device_id TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        last_used INTEGER NOT NULL,
        FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, device_id) ON DELETE CASCADE)""",
    "CREATE INDEX access_tokens_by_device ON access_tokens (user_id, device_id)",
    """CREATE TABLE invites (
        code_hash BLOB PRIMARY KEY,         -- SHA-256 of the normalized code
        role TEXT NOT NULL CHECK (role IN ('clinician', 'staff', 'client')),
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        used_at INTEGER,
        used_by TEXT)""",
    """CREATE TABLE key_packages (
        id INTEGER PRIMARY KEY,             -- upload order: one-time packages go out oldest first
        user_id TEXT NOT NULL,
        device_id TEXT NOT NULL,
        ref BLOB NOT NULL UNIQUE,           -- KeyPackageRef (RFC 9420 section 5.2)
        data BLOB NOT NULL,                 -- the MLSMessage exactly as uploaded
        last_resort INTEGER NOT NULL CHECK (last_resort IN (0, 1)),
        not_before INTEGER NOT NULL,        -- seconds (the leaf's lifetime)
        not_after INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, device_id) ON DELETE CASCADE)""",
    "CREATE INDEX key_packages_by_device ON key_packages (user_id, device_id, last_resort, id)",
    "CREATE UNIQUE INDEX one_last_resort_per_device ON key_packages (user_id, device_id) "
    "WHERE last_resort = 1",
    """CREATE TABLE server_meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL)                -- e.g. server_name, fixed at first start""",
    """CREATE TABLE audit_outbox (
        id INTEGER PRIMARY KEY,
        entry BLOB NOT NULL)                -- encoded protocol.audit entry, written by offline commands""",
)

# Federation (federation/, spec/server-server.md): the server's own signing keys (seeds in
# keys/federation/), the durable outbound queue, per-destination retry state, applied
# inbound transactions (idempotency on (origin, txn_id)).
_V2_FEDERATION = (
    """CREATE TABLE federation_server_keys (
        key_id TEXT PRIMARY KEY,            -- ed25519:<8 base64url>
        public_key BLOB NOT NULL UNIQUE,
        valid_from INTEGER NOT NULL,        -- ms; signatures made at valid_from <= t < valid_until
        valid_until INTEGER)                -- NULL: the current key""",
    """CREATE TABLE federation_outbox (
        id INTEGER PRIMARY KEY,             -- enqueue order = delivery order per destination
        destination TEXT NOT NULL,
        txn_id TEXT,                        -- NULL until batched; then fixed across retries
        kind TEXT NOT NULL,
        payload BLOB NOT NULL,
        created INTEGER NOT NULL)""",
    "CREATE INDEX federation_outbox_by_destination ON federation_outbox (destination, id)",
    """CREATE TABLE federation_destinations (
        destination TEXT PRIMARY KEY,
        attempts INTEGER NOT NULL DEFAULT 0,    -- consecutive failures of the head transaction
        next_attempt INTEGER NOT NULL DEFAULT 0,  -- ms
        last_error TEXT,
        last_success INTEGER)""",
    """CREATE TABLE federation_inbound_txns (
        origin TEXT NOT NULL,
        txn_id TEXT NOT NULL,
        received_at INTEGER NOT NULL,
        results BLOB NOT NULL,              -- the msgpack TransactionResponse first answered
        PRIMARY KEY (origin, txn_id))""",
)

# Rooms (server/rooms: the hub side), the delivery stream and device inboxes (server/delivery).
# One stream position orders room events and inbox items together; sync tokens are positions.
_V3_ROOMS = (
    """CREATE TABLE stream_position (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        pos INTEGER NOT NULL)               -- last position handed out""",
    "INSERT INTO stream_position (id, pos) VALUES (1, 0)",
    """CREATE TABLE rooms (
        room_id TEXT PRIMARY KEY,
        group_id BLOB NOT NULL UNIQUE,
        cipher_suite INTEGER NOT NULL,
        epoch INTEGER NOT NULL,
        last_seq INTEGER NOT NULL,
        last_event_id BLOB NOT NULL,        -- SHA-256 of the last event's signed bytes
        view BLOB NOT NULL,                 -- crypto.mls.PublicGroup.to_bytes(): public only
        group_info BLOB NOT NULL,           -- latest GroupInfo MLSMessage uploaded by a member
        group_info_epoch INTEGER NOT NULL,
        created_at INTEGER NOT NULL)""",
    """CREATE TABLE room_events (
        stream_pos INTEGER PRIMARY KEY,     -- position in the delivery stream
        room_id TEXT NOT NULL REFERENCES rooms (room_id),
        seq INTEGER NOT NULL,
        prev BLOB NOT NULL,
        epoch INTEGER NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('create', 'commit', 'proposal', 'application')),
        sender_user TEXT NOT NULL,
        sender_device TEXT NOT NULL,
        ts INTEGER NOT NULL,
        message BLOB NOT NULL,              -- the MLSMessage as submitted (never plaintext)
        event_id BLOB NOT NULL UNIQUE,
        hub_signature BLOB NOT NULL,
        UNIQUE (room_id, seq))""",
    "CREATE INDEX room_events_by_room_pos ON room_events (room_id, stream_pos)",
    """CREATE TABLE room_members (
        room_id TEXT NOT NULL REFERENCES rooms (room_id),
        user_id TEXT NOT NULL,
        device_id TEXT NOT NULL,
        first_seq INTEGER NOT NULL,         -- first event the device may read
        last_seq INTEGER,                   -- the last (the commit removing it); NULL while a member
        PRIMARY KEY (room_id, user_id, device_id, first_seq))""",
    "CREATE INDEX room_members_by_device ON room_members (user_id, device_id, room_id)",
    """CREATE TABLE txn_ids (
        user_id TEXT NOT NULL,
        device_id TEXT NOT NULL,
        scope TEXT NOT NULL,                -- 'create', 'send:<room_id>', 'to_device'
        txn_id TEXT NOT NULL,
        response BLOB NOT NULL,             -- the msgpack answer given the first time
        created_at INTEGER NOT NULL,
        PRIMARY KEY (user_id, device_id, scope, txn_id))""",
    "CREATE INDEX txn_ids_by_age ON txn_ids (created_at)",
    """CREATE TABLE inbox (
        stream_pos INTEGER PRIMARY KEY,
        user_id TEXT NOT NULL,
        device_id TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('welcome', 'to_device')),
        sender_user TEXT,
        sender_device TEXT,
        room_id TEXT,
        payload BLOB NOT NULL,
        created_at INTEGER NOT NULL,
        FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, device_id) ON DELETE CASCADE)""",
    "CREATE INDEX inbox_by_device ON inbox (user_id, device_id, stream_pos)",
)

#: Migration n is MIGRATIONS[n - 1].
_V4_HUB_KEY_ID = (
    # The federation key id that signed each event (spec/client-server.md section 7).
    "ALTER TABLE room_events ADD COLUMN hub_key_id TEXT NOT NULL DEFAULT 'ed25519:unnamed'",
)

_V5_FEDERATION_STATE = (
    # Witness state that must survive restarts (spec/server-server.md section 16): each peer
    # log's key, pinned on first use, and the split views recorded (at most 100 per origin).
    "CREATE TABLE federation_witness_log_keys (origin TEXT PRIMARY KEY, vkey TEXT NOT NULL, "
    "pinned_at INTEGER NOT NULL)",
    "CREATE TABLE federation_witness_alerts (id INTEGER PRIMARY KEY AUTOINCREMENT, "
    "origin TEXT NOT NULL, size INTEGER NOT NULL, checkpoint TEXT NOT NULL, "
    "recorded_at INTEGER NOT NULL)",
    "CREATE INDEX federation_witness_alerts_origin ON federation_witness_alerts (origin, id)",
    # Followed rooms whose hub history does not apply here (section 11.4).
    "CREATE TABLE federation_stuck_rooms (room_id TEXT PRIMARY KEY, seq INTEGER NOT NULL, "
    "event_id BLOB, code TEXT NOT NULL, reason TEXT NOT NULL, since INTEGER NOT NULL, "
    "last_attempt INTEGER NOT NULL, attempts INTEGER NOT NULL)",
)

_V6_PARKED_TXNS = (
    # Outbound transactions parked after a permanent refusal or too many tries
    # (spec/server-server.md section 6.1): the rows stay, out of the queue, until the
    # operator retries or drops them. The reason is the refusal's code and status only.
    "ALTER TABLE federation_outbox ADD COLUMN parked_at INTEGER",
    "ALTER TABLE federation_outbox ADD COLUMN parked_reason TEXT",
)

_V7_ATTACHMENT_ACCESS = (
    # Who may read an attachment (spec/client-server.md 11.3): the users who uploaded its
    # bytes, and the rooms where a message of the linking device announced it.
    """CREATE TABLE attachment_uploads (
        content_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        PRIMARY KEY (content_id, user_id))""",
    """CREATE TABLE attachment_links (
        content_id TEXT NOT NULL,
        room_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        user_id TEXT NOT NULL,
        device_id TEXT NOT NULL,
        PRIMARY KEY (content_id, room_id, seq))""",
)

_V8_MFA = (
    # Multi-factor sign-in (spec/security.md, "MFA"). The TOTP secret is sealed under
    # keys/mfa.key (never stored in the clear); enabled_at is NULL while an enrolment waits for
    # its first code; last_step is the last TOTP step accepted (a code of it or earlier is
    # refused: no replay). Recovery codes are kept as HMAC-SHA256 under a key derived from
    # keys/mfa.key, each usable once.
    """CREATE TABLE mfa_totp (
        user_id TEXT PRIMARY KEY REFERENCES accounts (user_id) ON DELETE CASCADE,
        sealed_secret BLOB NOT NULL,
        created_at INTEGER NOT NULL,
        enabled_at INTEGER,
        last_step INTEGER NOT NULL DEFAULT -1)""",
    """CREATE TABLE mfa_recovery_codes (
        user_id TEXT NOT NULL REFERENCES accounts (user_id) ON DELETE CASCADE,
        code_mac BLOB NOT NULL,
        used_at INTEGER,
        PRIMARY KEY (user_id, code_mac))""",
    # 'full', or 'mfa_enrolment': a session that may only enrol a second factor.
    "ALTER TABLE access_tokens ADD COLUMN scope TEXT NOT NULL DEFAULT 'full'",
)

#: Finding 9 (spec/security.md): the server keeps no device name, and transaction ids only
#: as hashes (protocol.txn_ids.txn_key); the ids stored before in the clear are dropped (they
#: only served retries of the last minutes).
_V9_NO_PLAINTEXT_CHANNELS = (
    "ALTER TABLE devices DROP COLUMN display_name",
    "DELETE FROM txn_ids",
)

_V10_DEVICE_TRUST = (
    # Device approval (spec/client-server.md 4.6, spec/security.md finding 2): the root
    # device of each account (the one that registered), pending devices (created by login)
    # and approved ones with the approver and the index of the device_approved entry. Rows
    # outlive their device, so an approval chain through a removed approver still resolves.
    """CREATE TABLE device_trust (
        user_id TEXT NOT NULL,
        device_id TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('root', 'pending', 'approved')),
        signature_key BLOB,
        added_index INTEGER,
        approver TEXT,
        approval_index INTEGER,
        PRIMARY KEY (user_id, device_id))""",
    # Devices of an older database: the first of each user is its root, the others wait
    # for an approval like a fresh login.
    """INSERT INTO device_trust (user_id, device_id, state, signature_key, added_index)
        SELECT d.user_id, d.device_id,
            CASE WHEN d.device_id = (SELECT e.device_id FROM devices e WHERE e.user_id = d.user_id
                                     ORDER BY e.created_at, e.device_id LIMIT 1)
                 THEN 'root' ELSE 'pending' END,
            d.signature_key, d.key_log_index
        FROM devices d""",
)

_V11_INBOX_USAGE = (
    # Per-device inbox quotas (finding 10, spec/security.md): what each device's inbox
    # holds, kept by triggers (a removed device's rows go by the inbox's cascade).
    """CREATE TABLE inbox_usage (
        user_id TEXT NOT NULL,
        device_id TEXT NOT NULL,
        items INTEGER NOT NULL,
        bytes INTEGER NOT NULL,
        PRIMARY KEY (user_id, device_id))""",
    "INSERT INTO inbox_usage (user_id, device_id, items, bytes) SELECT user_id, device_id, "
    "COUNT(*), SUM(length(payload)) FROM inbox GROUP BY user_id, device_id",
    """CREATE TRIGGER inbox_usage_insert AFTER INSERT ON inbox BEGIN
        INSERT INTO inbox_usage (user_id, device_id, items, bytes)
        VALUES (NEW.user_id, NEW.device_id, 1, length(NEW.payload))
        ON CONFLICT (user_id, device_id) DO UPDATE SET items = items + 1,
            bytes = bytes + length(NEW.payload);
    END""",
    """CREATE TRIGGER inbox_usage_delete AFTER DELETE ON inbox BEGIN
        UPDATE inbox_usage SET items = items - 1, bytes = bytes - length(OLD.payload)
        WHERE user_id = OLD.user_id AND device_id = OLD.device_id;
        DELETE FROM inbox_usage WHERE user_id = OLD.user_id AND device_id = OLD.device_id
            AND items <= 0;
    END""",
)

# Issue 10 finding 1: auditor credentials (only the token's hash) and the failed-login
# count of each open window (logged as one ``failed_logins`` entry when the window closes).
_V12_LOG_PRIVACY = (
    """CREATE TABLE log_auditors (
        name TEXT PRIMARY KEY,
        token_hash BLOB NOT NULL UNIQUE,    -- SHA-256 of the credential; the credential is never stored
        created_at INTEGER NOT NULL,        -- ms
        revoked_at INTEGER)                 -- ms; NULL while valid""",
    """CREATE TABLE failed_login_windows (
        window_start INTEGER PRIMARY KEY,   -- ms, a multiple of the window length
        count INTEGER NOT NULL)""",
)

MIGRATIONS: list[tuple[str, ...]] = [_V1, _V2_FEDERATION, _V3_ROOMS, _V4_HUB_KEY_ID,
                                     _V5_FEDERATION_STATE, _V6_PARKED_TXNS, _V7_ATTACHMENT_ACCESS,
                                     _V8_MFA, _V9_NO_PLAINTEXT_CHANNELS, _V10_DEVICE_TRUST,
                                     _V11_INBOX_USAGE, _V12_LOG_PRIVACY]


async def schema_version(conn: aiosqlite.Connection) -> int:
    await conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    async with conn.execute("SELECT version FROM schema_version") as cur:
        row = await cur.fetchone()
    return 0 if row is None else int(row[0])


async def migrate(conn: aiosqlite.Connection) -> int:
    """Apply every missing migration (autocommit connection); returns the version reached.

    Raises :class:`SchemaTooNew` when the database is newer than this code.
    """
    await conn.execute("BEGIN IMMEDIATE")
    try:
        current = await schema_version(conn)
        if current > len(MIGRATIONS):
            raise SchemaTooNew(f"database schema {current}, this Confide knows {len(MIGRATIONS)}")
        for number in range(current + 1, len(MIGRATIONS) + 1):
            for stmt in MIGRATIONS[number - 1]:
                await conn.execute(stmt)
            if number == 1:
                await conn.execute("INSERT INTO schema_version (version) VALUES (1)")
            else:
                await conn.execute("UPDATE schema_version SET version = ?", (number,))
        await conn.execute("COMMIT")
    except BaseException:
        await conn.execute("ROLLBACK")
        raise
    await migrate_translog(conn)
    return len(MIGRATIONS)
