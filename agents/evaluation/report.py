"""Reports of an evaluation: the comparison rows (paired differences, fraction of the clairvoyant oracle's return: a
reference that knows the future, not an upper bound), the text table and
the CSV files (``summary.csv``, ``episodes.csv``)."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import numpy as np

from agents.common.stats import paired_difference
from agents.evaluation.runner import PolicyResult

TABLE_METRICS = (("return", "return", 1.0), ("accuracy", "accuracy %", 100.0),
                 ("energy_per_scene_mj", "energy/scene mJ", 1.0), ("expired_frac", "expired %", 100.0))
def best_heuristic(results: dict[str, PolicyResult]) -> str | None:
    """Name of the heuristic (not the planner or the clairvoyant oracle, not a model) with the highest mean return."""
    cands = [r for r in results.values() if r.kind == "heuristic"]
    if not cands:
        return None
    return max(cands, key=lambda r: r.episodes["return"].mean()).name


def comparison_rows(results: dict[str, PolicyResult], reference: str | None = None) -> list[dict[str, Any]]:
    """One summary row per policy, with the paired return difference against ``reference`` (default: best
    heuristic) and the fraction of the clairvoyant oracle's mean return when it was run."""
    reference = reference or best_heuristic(results)
    ref = results.get(reference) if reference else None
    oracle = next((r for r in results.values() if r.kind == "oracle"), None)
    rows = []
    for res in results.values():
        row: dict[str, Any] = {"policy": res.name, "kind": res.kind, **res.summary()}
        if ref is not None and np.array_equal(ref.seeds, res.seeds):
            d, h, t = paired_difference(res.episodes["return"], ref.episodes["return"])
            row.update({"reference": ref.name, "diff_vs_reference": d, "diff_ci95": h, "diff_t": t})
        if oracle is not None and np.array_equal(oracle.seeds, res.seeds):
            om = oracle.episodes["return"].mean()
            row["fraction_of_oracle"] = res.episodes["return"].mean() / om if om != 0 else math.nan
        rows.append(row)
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    """Plain-text table of :func:`comparison_rows` (mean ± 95% CI)."""
    cols = ["policy"] + [label for _, label, _ in TABLE_METRICS] + ["Δ return vs ref (95% CI)", "of clairvoyant"]
    lines = []
    for row in rows:
        cells = [row["policy"]]
        for metric, _, scale in TABLE_METRICS:
            m, h = row.get(f"{metric}_mean", math.nan), row.get(f"{metric}_ci95", math.nan)
            cells.append(f"{m * scale:.2f} ± {h * scale:.2f}" if not math.isnan(m) else "-")
        if "diff_vs_reference" in row:
            d, h = row["diff_vs_reference"], row["diff_ci95"]
            mark = "ref" if row["policy"] == row["reference"] else (
                "+" if d - h > 0 else ("-" if d + h < 0 else "~"))
            cells.append(f"{d:+.2f} ± {h:.2f} {mark}" if row["policy"] != row["reference"] else "(reference)")
        else:
            cells.append("-")
        frac = row.get("fraction_of_oracle")
        cells.append(f"{100 * frac:.1f}%" if frac is not None and not math.isnan(frac) else "-")
        lines.append(cells)
    widths = [max(len(str(c)) for c in col) for col in zip(cols, *lines, strict=True)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [fmt.format(*cols), fmt.format(*("-" * w for w in widths))]
    out += [fmt.format(*cells) for cells in lines]
    return "\n".join(out)


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """Markdown table of :func:`comparison_rows`: mean ± 95% CI of each metric, the paired difference of the return
    against the reference with its 95% CI, and the fraction of the clairvoyant oracle's return where it was run."""
    ref = next((row["reference"] for row in rows if "reference" in row), None)
    with_oracle = any("fraction_of_oracle" in row for row in rows)
    head = ["policy"] + [label for _, label, _ in TABLE_METRICS]
    head += [f"Δ return vs {ref} (paired 95% CI)"] if ref else []
    head += ["of clairvoyant"] if with_oracle else []
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for row in rows:
        cells = [f"`{row['policy']}`" if row["kind"] != "model" else row["policy"]]
        for metric, _, scale in TABLE_METRICS:
            m, h = row.get(f"{metric}_mean", math.nan), row.get(f"{metric}_ci95", math.nan)
            cells.append(f"{m * scale:.2f} ± {h * scale:.2f}" if not math.isnan(m) else "–")
        if ref:
            if row["policy"] == ref:
                cells.append("reference")
            elif "diff_vs_reference" in row:
                cells.append(f"{row['diff_vs_reference']:+.2f} ± {row['diff_ci95']:.2f}")
            else:
                cells.append("–")
        if with_oracle:
            frac = row.get("fraction_of_oracle")
            cells.append(f"{100 * frac:.1f} %" if frac is not None and not math.isnan(frac) else "–")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_csvs(results: dict[str, PolicyResult], rows: list[dict[str, Any]], out_dir: str | Path) -> list[Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = out_dir / "summary.csv"
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    with open(summary, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
    episodes = out_dir / "episodes.csv"
    with open(episodes, "w", newline="", encoding="utf-8") as fh:
        metrics = sorted({m for r in results.values() for m in r.episodes})
        writer = csv.writer(fh)
        writer.writerow(["policy", "seed", *metrics])
        for res in results.values():
            for j, seed in enumerate(res.seeds):
                writer.writerow([res.name, int(seed)] + [float(res.episodes[m][j]) if m in res.episodes else ""
                                                        for m in metrics])
    return [summary, episodes]
