"""Smoke test of scripts/alignment_experiment.py --quick (the full pipeline on the project's scene data)."""

from __future__ import annotations

import csv
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "alignment_experiment.py"


@pytest.mark.skipif(importlib.util.find_spec("semantic_models.data") is None, reason="scene generator not present")
def test_quick_run_writes_csv_and_figures(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--out", str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    with (tmp_path / "alignment_results.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    sweeps = {r["sweep"] for r in rows}
    assert sweeps == {"snr", "compression", "flops"}
    methods = {r["method"] for r in rows if r["sweep"] == "snr"}
    assert {"admm", "admm_complex", "neural", "first_k", "top_k", "eigen_k", "admm_unaware"} <= methods
    for r in rows:
        assert 0.0 <= float(r["acc_mean"]) <= 1.0
        assert float(r["acc_std"]) >= 0.0
    for name in ("accuracy_vs_snr", "accuracy_vs_compression", "accuracy_vs_flops"):
        assert (tmp_path / f"alignment_{name}.png").stat().st_size > 10_000
