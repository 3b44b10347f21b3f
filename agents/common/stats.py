"""Confidence intervals for evaluation results (normal/Student-t, no SciPy dependency on the hot path), and the
aggregates over training seeds of the benchmark: the interquartile mean and its stratified bootstrap interval."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

# two-sided 97.5% Student-t quantiles for small samples; beyond 30 degrees of freedom the normal 1.96 is within 2%
_T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
         11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110, 18: 2.101, 19: 2.093,
         20: 2.086, 21: 2.080, 22: 2.074, 23: 2.069, 24: 2.064, 25: 2.060, 26: 2.056, 27: 2.052, 28: 2.048,
         29: 2.045, 30: 2.042}


def t975(dof: int) -> float:
    """97.5% quantile of Student's t with ``dof`` degrees of freedom (1.96 beyond 30; table lookup below)."""
    if dof <= 0:
        return math.nan
    if dof in _T975:
        return _T975[dof]
    # Cornish-Fisher style correction keeps the error < 0.1% for dof > 30
    z = 1.959964
    return z + (z**3 + z) / (4 * dof)


def mean_ci(x: np.ndarray) -> tuple[float, float]:
    """Mean and half-width of its two-sided 95% confidence interval (Student t, i.i.d. samples)."""
    x = np.asarray(x, dtype=np.float64).ravel()
    n = x.size
    if n == 0:
        return math.nan, math.nan
    if n == 1:
        return float(x[0]), math.nan
    return float(x.mean()), float(t975(n - 1) * x.std(ddof=1) / math.sqrt(n))


def paired_difference(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """Mean of ``a - b`` over paired samples (same seeds), its 95% CI half-width and the t statistic.

    Common random numbers make the pairs strongly correlated, so the paired interval is much narrower than the
    difference of two independent intervals: the reason every evaluation runs all policies on the same seeds.
    """
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    m, h = mean_ci(d)
    sd = d.std(ddof=1) if d.size > 1 else math.nan
    t = m / (sd / math.sqrt(d.size)) if d.size > 1 and sd > 0 else math.nan
    return m, h, float(t)


# ====================================================================== aggregates over training seeds (rliable)
def iqm(x: np.ndarray, axis: int | None = None) -> np.ndarray | float:
    """Interquartile mean: the mean of the middle half of the values (``axis=None``: of all of them, flattened).

    The rliable convention (Agarwal et al. 2021, ``scipy.stats.trim_mean(x, 0.25)``): ``floor(n / 4)`` values are
    cut from each end of the sorted sample, the rest averaged. Robust to an outlying run like the median, but
    far less noisy, since half the values count.
    """
    a = np.asarray(x, dtype=np.float64)
    if axis is None:
        a, axis = a.ravel(), 0
    a = np.sort(np.moveaxis(a, axis, -1), axis=-1)
    n = a.shape[-1]
    if n == 0:
        return math.nan
    k = n // 4
    out = a[..., k:n - k].mean(axis=-1)
    return float(out) if out.ndim == 0 else out


def stratified_bootstrap_ci(scores: np.ndarray, statistic: Any = iqm, reps: int = 2000, confidence: float = 0.95,
                            seed: int = 0) -> tuple[float, float, float]:
    """Point estimate and percentile bootstrap interval of ``statistic`` over a (runs × tasks) score matrix.

    The stratified bootstrap of rliable: each replicate resamples the runs (rows: training seeds) with replacement
    *independently within every task* (column: one test episode, the same for every run under common random
    numbers), so every replicate keeps one score per (run, task) cell and the task mix stays fixed; only the
    randomness of training is resampled. ``statistic(array, axis=1)`` maps a (reps, n) array to (reps,) values
    (:func:`iqm`, ``np.mean``, ``np.median``). Deterministic for a given ``seed``.

    Returns ``(statistic of scores, lower, upper)``.
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim == 1:
        s = s[:, None]
    if s.ndim != 2 or s.size == 0:
        raise ValueError(f"scores must be a non-empty (runs, tasks) matrix, got shape {np.shape(scores)}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    runs, tasks = s.shape
    point = float(statistic(s.reshape(1, -1), axis=1)[0])
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, runs, size=(reps, runs, tasks))
    samples = s[rows, np.arange(tasks)].reshape(reps, -1)  # (reps, runs * tasks)
    values = np.asarray(statistic(samples, axis=1), dtype=np.float64)
    alpha = 100 * (1 - confidence) / 2
    lo, hi = np.percentile(values, [alpha, 100 - alpha])
    return point, float(lo), float(hi)


def two_way_bootstrap_ci(scores: np.ndarray, reps: int = 2000, confidence: float = 0.95,
                         seed: int = 0) -> tuple[float, float, float]:
    """Mean and percentile bootstrap interval of a (runs × tasks) matrix, both axes resampled.

    Each replicate draws the runs (rows: training seeds) and, independently, the tasks (columns: test episodes)
    with replacement and takes the mean of the resampled grid (the pigeonhole bootstrap). It answers "what would
    another set of training seeds *and* another set of test episodes give", which the stratified bootstrap does not:
    under common random numbers every run meets the same few episodes, so their luck is shared by all runs and a
    spread over runs alone cannot show it. With as few as five runs the percentile interval falls a little short
    of its level (the resampled runs spread less than the population), so read it as close to 95 %, not above.
    Deterministic for a given ``seed``. Returns ``(mean of scores, lower, upper)``.
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim == 1:
        s = s[None, :]
    if s.ndim != 2 or s.size == 0:
        raise ValueError(f"scores must be a non-empty (runs, tasks) matrix, got shape {np.shape(scores)}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    runs, tasks = s.shape
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, runs, size=(reps, runs))
    cols = rng.integers(0, tasks, size=(reps, tasks))
    values = s[rows[:, :, None], cols[:, None, :]].mean(axis=(1, 2))
    alpha = 100 * (1 - confidence) / 2
    lo, hi = np.percentile(values, [alpha, 100 - alpha])
    return float(s.mean()), float(lo), float(hi)
