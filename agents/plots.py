"""Matplotlib figures for evaluation and the W&B dashboard (Agg backend, no display needed).

- :func:`learning_curve_figure`: evaluation return of the learning agent vs env steps (95% CI band), with every
  heuristic's mean return on the same seeds as a horizontal reference line.
- :func:`accuracy_energy_figure`: each policy as a point (mean energy per scene, mean accuracy) with CI bars: the
  trade-off the reward weighs, and where the agent sits relative to the heuristics.
- :func:`allocation_figure`: per-device allocation heatmaps (rows: policies, columns: devices) of the fraction of
  slots a device transmits, latents it sends per slot, its mean prefix and mean power.
- :func:`returns_figure`: mean return ± 95% CI per policy (bar chart).
- :func:`forest_figure`: paired differences against a reference policy, one row per policy or training seed,
  each a point with its 95% CI and a zero line (``agents.benchmark``): no bars from zero, so differences of a
  fraction of a point stay visible.
- :func:`delta_curves_figure`: the return difference against a reference over env steps, one thin line per
  training seed and their mean, one panel per algorithm (``agents.benchmark``).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from agents.common.stats import mean_ci

if TYPE_CHECKING:
    from agents.evaluation.runner import PolicyResult

KIND_COLOURS = {"heuristic": "tab:gray", "planner": "tab:orange", "oracle": "tab:green", "model": "tab:blue",
                "user": "tab:purple"}


def learning_curve_figure(steps: Sequence[int], means: Sequence[float], cis: Sequence[float],
                          baselines: dict[str, float], title: str = "Evaluation return on held-out seeds") -> Any:
    fig, ax = plt.subplots(figsize=(7, 4.2))
    steps_a, m, h = np.asarray(steps), np.asarray(means, dtype=float), np.nan_to_num(np.asarray(cis, dtype=float))
    ax.plot(steps_a, m, "o-", color="tab:blue", label="agent")
    ax.fill_between(steps_a, m - h, m + h, color="tab:blue", alpha=0.2)
    cmap = plt.get_cmap("tab10")
    for j, (name, value) in enumerate(sorted(baselines.items(), key=lambda kv: -kv[1])):
        ax.axhline(value, ls="--", lw=1, color=cmap((j + 1) % 10), label=name)
    ax.set_xlabel("environment steps")
    ax.set_ylabel("episode return")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best", ncol=2)
    fig.tight_layout()
    return fig


def accuracy_energy_figure(results: dict[str, PolicyResult], highlight: str | None = None) -> Any:
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for res in results.values():
        if "accuracy" not in res.episodes:
            continue
        e, eh = mean_ci(res.episodes["energy_per_scene_mj"])
        a, ah = mean_ci(100 * res.episodes["accuracy"])
        colour = "tab:red" if res.name == highlight else KIND_COLOURS.get(res.kind, "k")
        ax.errorbar(e, a, xerr=np.nan_to_num(eh), yerr=np.nan_to_num(ah), fmt="o", color=colour, capsize=2)
        ax.annotate(res.name, (e, a), textcoords="offset points", xytext=(4, 3), fontsize=7)
    ax.set_xlabel("energy per scene (mJ)")
    ax.set_ylabel("scenes classified correctly (%)")
    ax.set_title("Accuracy vs energy (mean ± 95% CI)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def allocation_figure(results: dict[str, PolicyResult]) -> Any:
    with_dev = [r for r in results.values() if r.per_device]
    stats = (("tx_frac", "fraction of slots transmitting"), ("latents_per_slot", "latents sent per slot"),
             ("prefix", "mean prefix (reals)"), ("power_dbm", "mean power (dBm)"))
    fig, axes = plt.subplots(1, len(stats), figsize=(4 * len(stats), 0.45 * max(len(with_dev), 2) + 1.6))
    for ax, (key, label) in zip(np.atleast_1d(axes), stats, strict=True):
        if not with_dev:
            ax.set_axis_off()
            continue
        with warnings.catch_warnings():  # a device that never transmitted has no mean prefix/power: NaN, blank
            warnings.simplefilter("ignore", RuntimeWarning)
            data = np.stack([np.nanmean(r.per_device[key], axis=0) for r in with_dev])
        im = ax.imshow(data, aspect="auto", cmap="viridis")
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("device")
        ax.set_xticks(range(data.shape[1]))
        ax.set_yticks(range(len(with_dev)))
        ax.set_yticklabels([r.name for r in with_dev] if ax is np.atleast_1d(axes)[0] else [], fontsize=7)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.suptitle("Per-device allocation")
    fig.tight_layout()
    return fig


def returns_figure(results: dict[str, PolicyResult]) -> Any:
    names = list(results)
    stats = [mean_ci(results[n].episodes["return"]) for n in names]
    fig, ax = plt.subplots(figsize=(max(5.0, 0.6 * len(names) + 2), 4))
    colours = [KIND_COLOURS.get(results[n].kind, "k") for n in names]
    ax.bar(range(len(names)), [m for m, _ in stats], yerr=[np.nan_to_num(h) for _, h in stats], color=colours,
           capsize=3)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=35, ha="right", fontsize=8)
    ax.set_ylabel("episode return (mean ± 95% CI)")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def forest_figure(rows: Sequence[dict[str, Any]], reference: str, title: str = "") -> Any:
    """Paired-difference forest plot. ``rows``: dicts with ``label``, ``delta`` and either ``ci`` (half-width, NaN:
    none) or ``lo``/``hi`` (an asymmetric interval), ``kind`` (a :data:`KIND_COLOURS` key) and optionally
    ``aggregate`` (drawn as a larger diamond) and ``indent`` (a training seed under its agent); listed top to
    bottom."""
    fig, ax = plt.subplots(figsize=(7.5, 0.32 * max(len(rows), 3) + 1.4))
    y = np.arange(len(rows))[::-1]
    for yi, row in zip(y, rows, strict=True):
        colour = KIND_COLOURS.get(row.get("kind", ""), "k")
        marker, size = ("D", 7) if row.get("aggregate") else ("o", 5)
        if "lo" in row:
            xerr: Any = [[row["delta"] - row["lo"]], [row["hi"] - row["delta"]]]
        else:
            xerr = None if np.isnan(row["ci"]) else row["ci"]
        ax.errorbar(row["delta"], yi, xerr=xerr, fmt=marker, color=colour, ms=size, capsize=3, lw=1.2)
    ax.axvline(0.0, color="k", lw=1)
    ax.set_yticks(y)
    ax.set_yticklabels([("    " if r.get("indent") else "") + r["label"] for r in rows], fontsize=8)
    ax.set_xlabel(f"Δ episode return vs {reference} (paired 95% CI, same test seeds)")
    ax.set_title(title or f"Paired difference against {reference}", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


def delta_curves_figure(curves: dict[str, list[tuple[str, np.ndarray, np.ndarray]]], reference: str,
                        title: str = "") -> Any:
    """Δ return vs ``reference`` over env steps: ``curves[algo]`` lists ``(seed label, steps, delta)``; every seed
    thin, the mean over seeds (at the steps every seed evaluated) thick, a zero line."""
    algos = list(curves) or ["(none)"]
    fig, axes = plt.subplots(1, len(algos), figsize=(6.0 * len(algos), 4.0), squeeze=False)
    cmap = plt.get_cmap("tab10")
    for ax, algo in zip(axes[0], algos, strict=True):
        runs = curves.get(algo, [])
        for j, (label, steps, delta) in enumerate(runs):
            ax.plot(steps, delta, "-", lw=0.9, alpha=0.6, color=cmap(j % 10), label=label)
        common = sorted(set.intersection(*[set(np.asarray(s).tolist()) for _, s, _ in runs])) if runs else []
        if len(runs) > 1 and common:
            mean = np.mean([[dict(zip(np.asarray(s).tolist(), d, strict=True))[c] for c in common]
                            for _, s, d in runs], axis=0)
            ax.plot(common, mean, "o-", lw=2.2, ms=3, color="k", label=f"mean of {len(runs)} seeds")
        if not runs:
            ax.text(0.5, 0.5, "no evaluations during training", ha="center", va="center", transform=ax.transAxes)
        ax.axhline(0.0, color="k", lw=1, ls="--")
        ax.set_xlabel("environment steps")
        ax.set_ylabel(f"Δ mean return vs {reference} (validation seeds)")
        ax.set_title(algo.upper(), fontsize=10)
        ax.grid(alpha=0.3)
        if runs:
            ax.legend(fontsize=7, loc="best")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def save_evaluation_figures(results: dict[str, PolicyResult], out_dir: str | Path) -> list[Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = []
    figs = {"returns.png": returns_figure(results)}
    if any("accuracy" in r.episodes for r in results.values()):
        figs["accuracy_energy.png"] = accuracy_energy_figure(results)
        figs["allocation.png"] = allocation_figure(results)
    for fname, fig in figs.items():
        fig.savefig(out_dir / fname, dpi=110)
        plt.close(fig)
        files.append(out_dir / fname)
    return files
