"""No plaintext of the run anywhere on the server: data dir (database, WAL, SHM,
attachments, keys) and the server's log output, raw and in common encodings.

Runs after every other e2e test (``conftest.LAST``) on the session's server: once while it
runs (the WAL and SHM files are there) and once more after a graceful stop (the WAL
checkpointed into the database). If it is run alone, it first holds a short
conversation itself so that the search has something to look for. The checker itself
is tested: it finds a plaintext planted in each encoding, in a file, in a SQLite
database and its WAL, and in a log line.
"""

from __future__ import annotations

import base64
import json
import sqlite3

import pytest

from .plaintext_scan import encodings, files_under, scan

pytestmark = pytest.mark.e2e


def _places(practice):
    return [practice.server.data, practice.server.log]


def test_checker_finds_planted_plaintexts(tmp_path):
    secret = "Planted: patient reports panic attacks, é and ü"
    raw = secret.encode()
    forms = encodings(secret)
    assert {"raw", "utf-16-le", "utf-16-be", "json", "hex", "HEX", "base64@0", "base64url@2"} <= set(forms)
    clean = tmp_path / "clean"
    clean.mkdir()
    (clean / "noise.bin").write_bytes(bytes(range(256)) * 64)
    assert scan([clean], [secret]) == []

    for name, blob in {
        "raw": b"xx" + raw + b"yy",
        "utf-16-le": b"\xff\xfe" + secret.encode("utf-16-le"),
        "utf-16-be": b"\xfe\xff" + secret.encode("utf-16-be"),
        "hex": b"id=" + raw.hex().encode() + b";",
        "HEX": raw.hex().upper().encode(),
        **{f"base64@{k}": b"v:" + base64.b64encode(b"p" * k + raw + b"tail") for k in range(3)},
        **{f"base64url@{k}": base64.urlsafe_b64encode(b"\xfb" * k + raw) for k in range(3)},
    }.items():
        d = tmp_path / name
        d.mkdir()
        (d / "f").write_bytes(blob)
        assert any(f.encoding == name for f in scan([d], [secret])), name

    log = tmp_path / "serve.log"
    log.write_text(json.dumps({"event": "request", "body": secret}) + "\n")  # ASCII-escaped
    assert {f.encoding for f in scan([log], [secret])} == {"json"}

    data = tmp_path / "db"
    data.mkdir()
    db = sqlite3.connect(data / "x.sqlite")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE t (v TEXT)")
    db.commit()
    db.execute("PRAGMA wal_autocheckpoint=0")
    db.execute("INSERT INTO t VALUES (?)", (secret,))
    db.commit()
    found = scan([data], [secret])
    assert any(f.path.name == "x.sqlite-wal" for f in found), found
    db.close()
    assert any(f.path.name == "x.sqlite" for f in scan([data], [secret]))
    with pytest.raises(ValueError):
        encodings("short")


def test_no_plaintext_in_data_dir_or_logs(practice, carl, pat, tmp_path):
    if len(practice.plaintexts) < 10:  # run alone: make a conversation to search for
        room = carl.create_room(practice.unique("Standalone plaintext check room"))
        carl.invite(room, pat)
        for i in range(5):
            (carl if i % 2 else pat).send(room, practice.unique(f"Standalone message {i}"))
        f = tmp_path / "att.txt"
        f.write_bytes(practice.unique("Standalone attachment body").encode())
        carl.send_file(room, f)
    assert len(practice.plaintexts) >= 7
    files = files_under(_places(practice))
    names = {p.name for p in files}
    assert {"confide.sqlite", "serve.log", "log.key"} <= names, names
    assert practice.server.running
    assert {"confide.sqlite-wal", "confide.sqlite-shm"} <= names
    assert any(p.parent.name != "tmp" and "attachments" in p.parts for p in files), \
        "no attachment blob on disk: the search would miss that store"

    found = scan(_places(practice), practice.plaintexts)
    assert found == [], found[:10]

    assert practice.server.stop() == 0  # graceful: the WAL goes into the database
    found = scan(_places(practice), practice.plaintexts)
    assert found == [], found[:10]
    print(f"searched {len(files)} files for {len(practice.plaintexts)} plaintexts, "
          f"{sum(p.stat().st_size for p in files_under(_places(practice)))} bytes")
