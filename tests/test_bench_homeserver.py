"""bench.homeserver's report: figures from matrix_load results, targets, and the RESULTS.md section.

The benchmark itself starts servers and is run by ``make bench``; these tests check
the arithmetic and the file handling on made-up results.
"""

from __future__ import annotations

import pytest

from bench import homeserver as hs


def _run(conc_eps: float, p99: float, rss_kb: int, seq_ok: int = 10) -> dict:
    return {
        "sequential": {"ok": seq_ok, "errors": 0, "events_per_s": 50.0,
                       "latency": {"p50_ms": 5.0, "p99_ms": 9.0}},
        "concurrent": {"ok": 20, "errors": 1, "events_per_s": conc_eps,
                       "latency": {"p50_ms": 50.0, "p99_ms": 90.0},
                       "server_cpu_ms_per_event": 2.0},
        "e2e": {"sent": 5, "missing": 0, "send_errors": 0,
                "delivery": {"p50_ms": p99 / 2, "p95_ms": p99 * 0.9, "p99_ms": p99}},
        "server_after": {"rss_kb": rss_kb},
        "db_before": {"total_bytes": 1000},
        "db_after": {"total_bytes": 1000 + 35 * 100},
    }


def test_figures_per_run_and_database_growth_per_event() -> None:
    f = hs.figures({"runs": [_run(100, 30, 150_000), _run(120, 40, 160_000)]})
    assert f["conc_eps"] == [100, 120]
    assert f["e2e_p99"] == [30, 40]
    assert f["db_per_event"] == [100.0, 100.0]  # 3500 bytes over 10 + 20 + 5 events
    assert f["errors"] == [1, 1]


def _section(confide_runs: list[dict]) -> str:
    syn = {"version": hs.SYNAPSE_VERSION, "same_run": True, "idle": {"VmRSS": 100_000},
           "runs": [_run(100, 30, 150_000), _run(110, 30, 160_000), _run(120, 30, 170_000)]}
    con = {"idle": {"VmRSS": 40_000}, "runs": confide_runs,
           "verified": {"decrypted_by_bob": 35, "seconds": 1.0}}
    info = {"date": "d", "kernel": "k", "cpus": 2, "cpu": "c", "load_at_start": (0.0, 0.0, 0.0),
            "versions": {"python": "3", "aiohttp": "a"}, "confide_commit": "x"}
    return hs.section(syn, con, info, quick=False)


def _met(text: str, figure: str) -> str:
    line = next(ln for ln in text.splitlines() if ln.startswith(f"| {figure}"))
    return line.rstrip(" |").rsplit("|", 1)[1].strip()


def test_targets_met_against_the_median_and_the_last_memory_reading() -> None:
    text = _section([_run(550, 6.0, 56_000)])  # 5x of 110, 1/5 of 30, 1/3 of 170,000 kB
    assert _met(text, "16 in flight: events/s") == "yes"
    assert _met(text, "delivery to bob's sync: p99 ms") == "yes"
    assert _met(text, "server RSS after the runs") == "yes"
    assert "35 of the 35 messages sent" in text


@pytest.mark.parametrize(("eps", "p99", "rss", "figure"), [
    (549, 6.0, 56_000, "16 in flight: events/s"),
    (550, 6.1, 56_000, "delivery to bob's sync: p99 ms"),
    (550, 6.0, 57_000, "server RSS after the runs"),
])
def test_a_missed_target_is_reported(eps: float, p99: float, rss: int, figure: str) -> None:
    assert _met(_section([_run(eps, p99, rss)]), figure) == "no"


def test_write_section_replaces_only_its_own_markers(tmp_path, monkeypatch) -> None:
    results = tmp_path / "RESULTS.md"
    results.write_text(f"# Results\n\nbefore\n\n{hs.BEGIN}\nold\n{hs.END}\n\nafter\n")
    monkeypatch.setattr(hs, "RESULTS", results)
    hs.write_section(f"{hs.BEGIN}\nnew\n{hs.END}")
    assert results.read_text() == f"# Results\n\nbefore\n\n{hs.BEGIN}\nnew\n{hs.END}\n\nafter\n"


def test_write_section_appends_when_absent(tmp_path, monkeypatch) -> None:
    results = tmp_path / "RESULTS.md"
    results.write_text("# Results\n\nother section\n")
    monkeypatch.setattr(hs, "RESULTS", results)
    hs.write_section(f"{hs.BEGIN}\nnew\n{hs.END}")
    assert results.read_text() == f"# Results\n\nother section\n\n{hs.BEGIN}\nnew\n{hs.END}\n"
