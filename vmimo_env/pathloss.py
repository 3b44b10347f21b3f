"""Large-scale fading: 3GPP TR 38.901 UMi street canyon (Table 7.4.1-1 and Table 7.4.2-1).

All functions are vectorised: distances may be arrays of any shape (for example ``(N, K)``) and the result has
the broadcast shape. Distances in metres, carrier in Hz (the 3GPP formulas take ``f_c`` in GHz; the conversion is
done here), heights in metres, path loss and shadowing in dB.

Model (TR 38.901 V17, Table 7.4.1-1, UMi street canyon)::

    d'_BP   = 4 h'_BS h'_UT f_c / c,       h'_BS = h_BS - 1 m, h'_UT = h_UT - 1 m (effective environment height 1 m)
    PL1     = 32.4 + 21 log10(d_3D) + 20 log10(f_c/GHz)                         10 m <= d_2D <= d'_BP
    PL2     = 32.4 + 40 log10(d_3D) + 20 log10(f_c/GHz) - 9.5 log10(d'_BP^2 + (h_BS - h_UT)^2)   d'_BP < d_2D <= 5 km
    PL_LOS  = PL1 or PL2
    PL'_NLOS = 35.3 log10(d_3D) + 22.4 + 21.3 log10(f_c/GHz) - 0.3 (h_UT - 1.5)
    PL_NLOS = max(PL_LOS, PL'_NLOS)
    shadowing: log-normal, std 4 dB (LOS) and 7.82 dB (NLOS)

LOS probability (Table 7.4.2-1, UMi street canyon)::

    Pr_LOS = 1                                                  d_2D <= 18 m
           = 18 / d_2D + exp(-d_2D / 36) (1 - 18 / d_2D)        d_2D > 18 m

The formulas are specified for 10 m <= d_2D <= 5 km; distances below 10 m are evaluated at 10 m (the path loss of
a device closer than the model's validity range is clamped rather than extrapolated).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

SPEED_OF_LIGHT_MPS = 299_792_458.0
UMI_MIN_D2D_M = 10.0  # lower end of the model's validity range (TR 38.901 Table 7.4.1-1)
UMI_SHADOW_STD_LOS_DB = 4.0
UMI_SHADOW_STD_NLOS_DB = 7.82


def umi_los_probability(d2d_m: ArrayLike) -> np.ndarray:
    """UMi street-canyon LOS probability for 2D distance ``d2d_m`` (m) (TR 38.901 Table 7.4.2-1)."""
    d = np.maximum(np.asarray(d2d_m, dtype=np.float64), 1e-9)
    p = 18.0 / d + np.exp(-d / 36.0) * (1.0 - 18.0 / d)
    return np.where(d <= 18.0, 1.0, p)


def breakpoint_distance_m(fc_hz: float, h_bs_m: float, h_ut_m: ArrayLike) -> np.ndarray:
    """Breakpoint distance d'_BP = 4 h'_BS h'_UT f_c / c (m) with 1 m effective environment height."""
    return 4.0 * (h_bs_m - 1.0) * (np.asarray(h_ut_m, dtype=np.float64) - 1.0) * fc_hz / SPEED_OF_LIGHT_MPS


def umi_los_pathloss_db(d3d_m: ArrayLike, d2d_m: ArrayLike, fc_hz: float, h_bs_m: float,
                        h_ut_m: ArrayLike) -> np.ndarray:
    """UMi street-canyon LOS path loss PL_LOS (dB): PL1 before the breakpoint, PL2 beyond it."""
    d2d = np.maximum(np.asarray(d2d_m, dtype=np.float64), UMI_MIN_D2D_M)
    d3d = np.maximum(np.asarray(d3d_m, dtype=np.float64), d2d)  # keep d3D >= d2D after clamping d2D
    fc_ghz = fc_hz / 1e9
    d_bp = breakpoint_distance_m(fc_hz, h_bs_m, h_ut_m)
    pl1 = 32.4 + 21.0 * np.log10(d3d) + 20.0 * np.log10(fc_ghz)
    pl2 = (32.4 + 40.0 * np.log10(d3d) + 20.0 * np.log10(fc_ghz)
           - 9.5 * np.log10(d_bp**2 + (h_bs_m - np.asarray(h_ut_m, dtype=np.float64)) ** 2))
    return np.where(d2d <= d_bp, pl1, pl2)


def umi_nlos_pathloss_db(d3d_m: ArrayLike, d2d_m: ArrayLike, fc_hz: float, h_bs_m: float,
                         h_ut_m: ArrayLike) -> np.ndarray:
    """UMi street-canyon NLOS path loss PL_NLOS = max(PL_LOS, PL'_NLOS) (dB)."""
    d2d = np.maximum(np.asarray(d2d_m, dtype=np.float64), UMI_MIN_D2D_M)
    d3d = np.maximum(np.asarray(d3d_m, dtype=np.float64), d2d)
    pl_nlos = (35.3 * np.log10(d3d) + 22.4 + 21.3 * np.log10(fc_hz / 1e9)
               - 0.3 * (np.asarray(h_ut_m, dtype=np.float64) - 1.5))
    return np.maximum(umi_los_pathloss_db(d3d, d2d, fc_hz, h_bs_m, h_ut_m), pl_nlos)


def umi_pathloss_db(d3d_m: ArrayLike, d2d_m: ArrayLike, fc_hz: float, h_bs_m: float, h_ut_m: ArrayLike,
                    los: ArrayLike) -> np.ndarray:
    """UMi street-canyon path loss (dB): LOS formula where ``los`` is true, NLOS formula elsewhere."""
    return np.where(np.asarray(los, dtype=bool),
                    umi_los_pathloss_db(d3d_m, d2d_m, fc_hz, h_bs_m, h_ut_m),
                    umi_nlos_pathloss_db(d3d_m, d2d_m, fc_hz, h_bs_m, h_ut_m))


def umi_shadowing_std_db(los: ArrayLike) -> np.ndarray:
    """Log-normal shadowing standard deviation (dB): 4 dB LOS, 7.82 dB NLOS (TR 38.901 Table 7.4.1-1)."""
    return np.where(np.asarray(los, dtype=bool), UMI_SHADOW_STD_LOS_DB, UMI_SHADOW_STD_NLOS_DB)


def large_scale_gain_db(pathloss_db: ArrayLike, shadowing_db: ArrayLike = 0.0) -> np.ndarray:
    """Large-scale power gain (dB) = -(path loss + shadowing); shadowing is ``std * N(0, 1)`` (dB)."""
    return -(np.asarray(pathloss_db, dtype=np.float64) + np.asarray(shadowing_db, dtype=np.float64))


def umi_large_scale_gain_db(d2d_m: ArrayLike, fc_hz: float, h_bs_m: float, h_ut_m: float, los: ArrayLike,
                            shadow_normal: ArrayLike | None = None) -> np.ndarray:
    """Large-scale gain (dB) of devices at 2D distance ``d2d_m``: path loss plus optional shadowing.

    ``shadow_normal`` holds standard-normal draws (same shape as ``d2d_m``); ``None`` means no shadowing.
    """
    d2d = np.asarray(d2d_m, dtype=np.float64)
    d3d = np.sqrt(d2d**2 + (h_bs_m - h_ut_m) ** 2)
    pl = umi_pathloss_db(d3d, d2d, fc_hz, h_bs_m, h_ut_m, los)
    shadow = 0.0 if shadow_normal is None else umi_shadowing_std_db(los) * np.asarray(shadow_normal)
    return large_scale_gain_db(pl, shadow)
