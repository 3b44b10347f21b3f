"""benchmarks/bench_training.py: the end-to-end row parses the run's own summary, the README writer replaces only
its block, and a missing marker fails before any timing."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import bench_training as B


def test_markdown_rows_ratios_and_end_to_end_rows() -> None:
    rows = [("VMIMOSB3VecEnv", 256, "MLP", 2, 40_000.0, 10_000.0),
            ("DummyVecEnv(gym.make)", 64, "MLP", 2, 4_000.0, 3_000.0)]
    e2e = [{"steps": 1000, "threads": 2, "train_sps": 900.0, "wall_s": 5.0, "wall_sps": 200.0},
           {"steps": 1000, "threads": 1, "train_sps": 600.0, "wall_s": 6.0, "wall_sps": 166.7}]
    table = B.markdown(rows, e2e)
    assert "| VMIMOSB3VecEnv | 256 | MLP | 2 | 40,000 | 10,000 | 10.0× |" in table
    assert "| DummyVecEnv(gym.make) | 64 | MLP | 2 | 4,000 | 3,000 | 1.0× |" in table
    assert "| `-n 1,000 --torch-threads 2` | 2 | 1,000 | 900 | 1.50× | 5 s | 200 |" in table  # ratio to 1 thread
    assert "| `-n 1,000 --torch-threads 1` | 1 | 1,000 | 600 | 1.00× | 6 s | 167 |" in table
    assert "end to end" not in B.markdown(rows, [])


@pytest.mark.slow
def test_end_to_end_runs_the_shipped_job_and_reads_its_summary() -> None:
    r = B.end_to_end(20_000, 1)
    assert r["threads"] == 1 and r["train_sps"] > 0 and r["wall_s"] > 0
    assert r["wall_sps"] == pytest.approx(20_000 / r["wall_s"])


def test_readme_marker_missing_fails_before_timing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("no markers here\n")
    monkeypatch.setattr(B, "measure", lambda *a, **k: pytest.fail("timed before checking the README"))
    with pytest.raises(ValueError, match="bench_training:start"):
        B.main(["--quick", "--readme", str(readme)])


def test_readme_writer_replaces_only_the_block(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"before\n{B.MARK_START}\nold table\n{B.MARK_END}\nafter\n")
    monkeypatch.setattr(B, "measure", lambda vec_env, n, rollouts, dist, threads: {
        "collect": 1000.0 * n, "learn": 10.0 * n, "kind": vec_env})
    monkeypatch.setattr(B, "end_to_end", lambda steps, threads: {"steps": steps, "threads": threads, "train_sps": 1.0,
                                                                 "wall_s": 2.0, "wall_sps": steps / 2.0})
    B.main(["--quick", "--readme", str(readme)])
    text = readme.read_text()
    assert text.startswith("before\n") and text.endswith(f"{B.MARK_END}\nafter\n") and "old table" not in text
    assert "| `-n 200,000 --torch-threads 2` | 2 | 200,000 |" in text and "| `-n 200,000 --torch-threads 1` |" in text
    assert "Measured by `python benchmarks/bench_training.py --quick" in text
