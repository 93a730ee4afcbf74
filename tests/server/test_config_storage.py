"""Config loading and validation; database migrations, transactions, outbox and key files."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from crypto.rng import system_rng
from server.config import Config, ConfigError, config_from_dict, load_config
from server.keyfiles import KeyFileError, load_or_create_seed
from server.storage import MIGRATIONS, Database, SchemaTooNew, accounts, meta


def test_defaults():
    c = load_config(None)
    assert (c.listen.host, c.listen.port, c.server_name) == ("127.0.0.1", 8480, "localhost")
    assert c.data_dir == Path("./var") and c.limits.max_body == 1024 * 1024
    assert c.sessions.idle_timeout == 7 * 86400 and c.login.max_concurrent_hashes == 2


def test_toml_file(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('server_name = "practice.example"\ndata_dir = "d"\n[listen]\nport = 9000\n'
                 '[login]\npassword_hash = "moderate"\n')
    c = load_config(p)
    assert c.server_name == "practice.example" and c.listen.port == 9000
    assert c.data_dir == tmp_path / "d" and c.login.password_hash == "moderate"


@pytest.mark.parametrize("raw", [
    {"bogus": 1}, {"listen": {"portt": 1}}, {"listen": {"port": 70000}}, {"listen": {"port": "80"}},
    {"server_name": "Bad Name"}, {"server_name": 5}, {"limits": {"max_body": 10}},
    {"sessions": {"idle_timeout": 100, "touch_interval": 200}}, {"login": {"password_hash": "weak"}},
    {"listen": 5}, {"data_dir": ""}, {"login": {"max_concurrent_hashes": 0}},
    {"login": {"max_concurrent_hashes": 65}},
])
def test_invalid_configs(raw):
    with pytest.raises(ConfigError):
        config_from_dict(raw)


def test_unreadable_toml(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text("server_name = ")
    with pytest.raises(ConfigError):
        load_config(p)
    with pytest.raises(ConfigError):
        load_config(tmp_path / "missing.toml")


async def test_migrations_are_idempotent_and_versioned(tmp_path):
    path = tmp_path / "db.sqlite"
    db = await Database.open(path)
    await db.close()
    db = await Database.open(path)
    async with db.read() as conn:
        rows = await conn.execute_fetchall("SELECT version FROM schema_version")
        journal = await conn.execute_fetchall("PRAGMA journal_mode")
        fk = await conn.execute_fetchall("PRAGMA foreign_keys")
        tables = {r[0] for r in await conn.execute_fetchall("SELECT name FROM sqlite_master")}
    assert rows == [(len(MIGRATIONS),)] and journal == [("wal",)] and fk == [(1,)]
    assert {"accounts", "devices", "key_packages", "translog_entries"} <= tables
    await db.conn.execute("UPDATE schema_version SET version = 99")
    await db.close()
    with pytest.raises(SchemaTooNew):
        await Database.open(path)


async def test_a_failed_transaction_writes_nothing(tmp_path):
    db = await Database.open(tmp_path / "db.sqlite")
    with pytest.raises(RuntimeError):
        async with db.transaction() as tx:
            await accounts.create(tx, "@a:x", "client", "h", 1)
            raise RuntimeError
    async with db.read() as conn:
        assert not await accounts.exists(conn, "@a:x")
    await db.close()


async def test_server_name_is_pinned(tmp_path):
    db = await Database.open(tmp_path / "db.sqlite")
    async with db.transaction() as tx:
        await meta.pin(tx, "server_name", "a.example")
    with pytest.raises(meta.NameMismatch):
        async with db.transaction() as tx:
            await meta.pin(tx, "server_name", "b.example")
    await db.close()


def test_key_files(tmp_path):
    path = tmp_path / "keys" / "k.key"
    seed = load_or_create_seed(path, system_rng)
    assert len(seed) == 32 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_seed(path, system_rng) == seed
    os.chmod(path, 0o644)
    with pytest.raises(KeyFileError):
        load_or_create_seed(path, system_rng)
    os.chmod(path, 0o600)
    path.write_bytes(b"short")
    with pytest.raises(KeyFileError):
        load_or_create_seed(path, system_rng)


def test_config_dataclass_is_frozen():
    with pytest.raises(AttributeError):
        Config().server_name = "x"  # type: ignore[misc]
