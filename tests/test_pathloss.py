"""3GPP TR 38.901 UMi street-canyon path loss and LOS probability against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vmimo_env import pathloss

FC = 3.5e9
H_BS, H_UT = 10.0, 1.5


def d3(d2d: float) -> float:
    return math.hypot(d2d, H_BS - H_UT)


def test_breakpoint_distance() -> None:
    # d'_BP = 4 (10 - 1)(1.5 - 1) 3.5e9 / c = 18 * 3.5e9 / 299792458 = 210.145 m
    assert pathloss.breakpoint_distance_m(FC, H_BS, H_UT) == pytest.approx(210.145, abs=1e-3)


def test_nlos_at_100_m_is_104_6_db() -> None:
    # PL'_NLOS = 35.3 log10(100.3606) + 22.4 + 21.3 log10(3.5) = 70.655 + 22.4 + 11.589 = 104.644 dB,
    # above PL_LOS = 85.31 dB, so the max picks it
    pl = pathloss.umi_pathloss_db(d3(100.0), 100.0, FC, H_BS, H_UT, los=False)
    assert pl == pytest.approx(104.644, abs=5e-3)


def test_los_before_and_after_breakpoint() -> None:
    # 100 m < d'_BP: PL1 = 32.4 + 21 log10(100.3606) + 20 log10(3.5) = 32.4 + 42.033 + 10.881 = 85.314 dB
    assert pathloss.umi_pathloss_db(d3(100.0), 100.0, FC, H_BS, H_UT, los=True) == pytest.approx(85.314, abs=5e-3)
    # 400 m > d'_BP: PL2 = 32.4 + 40 log10(400.0903) + 20 log10(3.5) - 9.5 log10(210.145^2 + 8.5^2)
    #              = 32.4 + 104.086 + 10.881 - 44.135 = 103.233 dB
    assert pathloss.umi_pathloss_db(d3(400.0), 400.0, FC, H_BS, H_UT, los=True) == pytest.approx(103.233, abs=5e-3)


def test_los_formula_is_continuous_at_breakpoint() -> None:
    d_bp = float(pathloss.breakpoint_distance_m(FC, H_BS, H_UT))
    below = pathloss.umi_los_pathloss_db(d3(d_bp - 1e-6), d_bp - 1e-6, FC, H_BS, H_UT)
    above = pathloss.umi_los_pathloss_db(d3(d_bp + 1e-6), d_bp + 1e-6, FC, H_BS, H_UT)
    assert abs(float(above - below)) < 1e-4


def test_nlos_is_max_of_los_and_nlos_prime_and_never_below_los() -> None:
    d = np.geomspace(10.0, 5000.0, 200)
    dd = np.hypot(d, H_BS - H_UT)
    los = pathloss.umi_pathloss_db(dd, d, FC, H_BS, H_UT, True)
    nlos = pathloss.umi_pathloss_db(dd, d, FC, H_BS, H_UT, False)
    prime = 35.3 * np.log10(dd) + 22.4 + 21.3 * np.log10(3.5)
    np.testing.assert_allclose(nlos, np.maximum(los, prime))
    assert np.all(np.diff(los) > 0) and np.all(np.diff(nlos) > 0)


def test_los_probability() -> None:
    assert pathloss.umi_los_probability(10.0) == 1.0
    assert pathloss.umi_los_probability(18.0) == 1.0
    # 18/100 + exp(-100/36) (1 - 18/100) = 0.18 + 0.062177 * 0.82 = 0.230985
    assert pathloss.umi_los_probability(100.0) == pytest.approx(0.230985, abs=1e-6)
    p = pathloss.umi_los_probability(np.geomspace(18.0, 5000.0, 100))
    assert np.all(np.diff(p) < 0) and np.all((p > 0) & (p <= 1))


def test_shadowing_std_and_vectorised_shapes() -> None:
    los = np.array([[True, False, True], [False, False, True]])
    np.testing.assert_array_equal(pathloss.umi_shadowing_std_db(los), np.where(los, 4.0, 7.82))
    d2d = np.full(los.shape, 100.0)
    pl = pathloss.umi_pathloss_db(np.hypot(d2d, 8.5), d2d, FC, H_BS, H_UT, los)
    assert pl.shape == (2, 3)
    np.testing.assert_allclose(pl, np.where(los, 85.314, 104.644), atol=5e-3)
    g = pathloss.umi_large_scale_gain_db(d2d, FC, H_BS, H_UT, los, shadow_normal=np.ones(los.shape))
    np.testing.assert_allclose(g, -(pl + np.where(los, 4.0, 7.82)))
