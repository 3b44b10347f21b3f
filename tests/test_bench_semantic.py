"""benchmarks/bench_semantic.py: the generated README table has one measured row per batch and names the path."""

from __future__ import annotations

from pathlib import Path

from benchmarks import bench_semantic
from semantic_models.head_kernel import COMPILED_BATCH


def test_table_rows_are_measured_and_name_the_head_path(tmp_path: Path, monkeypatch) -> None:
    batches = (1, COMPILED_BATCH + 1)
    monkeypatch.setattr(bench_semantic, "BATCHES", batches)
    rows = bench_semantic.classify_rows(repeat=1, batches=batches)
    assert [r["n"] for r in rows] == list(batches)
    assert all(r[k] > 0 for r in rows for k in ("hot", "compiled", "numpy", "torch", "naive"))
    table = bench_semantic.markdown_table(rows).splitlines()
    assert len(table) == 2 + len(batches)
    assert ", compiled |" in table[2] and ", numpy |" in table[3]
    ratio = float(table[3].split("|")[5].strip().rstrip("×"))  # compiled vs numpy, from the row's own timings
    assert abs(ratio - rows[1]["numpy"] / rows[1]["compiled"]) < 0.01
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{bench_semantic.MARK_START}\nold\n{bench_semantic.MARK_END}\noutro\n", encoding="utf-8")
    monkeypatch.setattr(bench_semantic, "classify_rows", lambda repeat: rows)
    bench_semantic.main(["--repeat", "1", "--readme", str(readme)])
    text = readme.read_text(encoding="utf-8")
    assert "old" not in text and "| 1 |" in text and "intro" in text and "outro" in text
    assert "python benchmarks/bench_semantic.py --repeat 1 --readme" in text
