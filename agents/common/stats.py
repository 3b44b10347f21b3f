"""Confidence intervals for evaluation results (normal/Student-t, no SciPy dependency on the hot path)."""

from __future__ import annotations

import math

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
