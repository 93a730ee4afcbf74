"""``confide demo``: the messages show in both client columns and never in the server's."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from client.demo import MESSAGES
from tests.harness import confide

pytestmark = pytest.mark.e2e


def test_demo_shows_plaintext_on_clients_and_ciphertext_on_the_server():
    result = confide("demo", timeout=120)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    rows = [line.split(" | ") for line in out.splitlines()
            if re.match(r"^\s*\d+ \| ", line)]
    assert rows and all(len(r) == 4 for r in rows), out
    clinician = " ".join(r[1] for r in rows)
    client = " ".join(r[2] for r in rows)
    server_column = "\n".join(r[3] for r in rows)
    server_side = server_column + out.split("transparency log checkpoint", 1)[1]
    for _, text in MESSAGES:
        assert text in clinician and text in client, text
        assert text not in server_side, text
        for word in text.split():
            if len(word) > 4:
                assert word not in server_column, word
    app = [r for r in rows if " application " in r[3]]
    assert len(app) == len(MESSAGES)
    assert all(re.search(r"\d+ B ciphertext [0-9a-f]{24}…$", r[3]) for r in app), app
    seqs = [int(r[0]) for r in rows]
    assert seqs == list(range(len(rows)))
    # the checkpoint: origin, size, base64 root hash, a blank line, a signature line
    note = out.split("transparency log checkpoint", 1)[1].splitlines()[1:6]
    assert note[0].strip() == "localhost" and note[1].strip().isdigit() and note[3] == ""
    assert note[4].strip().startswith("— localhost ")
    assert f"for the {len(MESSAGES)} message texts: none found" in out
    tmp = re.search(r"removed (\S+)\n?$", out).group(1)
    assert "confide-demo-" in tmp and not Path(tmp).exists()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):  # the demo's server is gone too
        try:
            assert tmp.encode() not in cmdline.read_bytes(), cmdline
        except OSError:
            continue
