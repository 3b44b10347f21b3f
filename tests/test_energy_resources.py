"""Energy formulas and the seed's log-domain AR(1) compute/memory resource process."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from vmimo_env import energy, resources
from vmimo_env.config import ScenarioConfig


def test_energy_formulas() -> None:
    # 0.2 W radiated at PA efficiency 0.35 for 5 ms: 0.2 / 0.35 * 0.005 = 2.857 mJ
    assert energy.transmit_energy_j(0.2, 0.005, 0.35) == pytest.approx(2.857142857e-3)
    assert energy.circuit_energy_j(0.005, 0.1) == pytest.approx(5e-4)
    assert energy.encode_energy_j(3, 2.5, 1e-4) == pytest.approx(7.5e-4)  # 3 latents x 2.5 MFLOPs x 0.1 mJ
    assert energy.d2d_energy_j(1000, 1e-7) == pytest.approx(1e-4)
    # 128 channel uses in a 6.4 kHz band take 20 ms; no band, no air time
    np.testing.assert_allclose(energy.channel_airtime_s([128, 128], [6400.0, 0.0]), [0.02, 0.0])
    p = np.array([[0.2, 0.0], [0.05, 0.1]])
    t = np.array([[0.005, 0.0], [0.01, 0.002]])
    n = np.array([[3, 0], [1, 2]])
    f = np.array([2.5, 1.0])
    total = energy.device_energy_j(p, t, n, f, pa_efficiency=0.35, circuit_power_w=0.1, j_per_mflop=1e-4,
                                   d2d_symbols=np.array([[10, 0], [0, 5]]), j_per_symbol=1e-7)
    parts = (energy.transmit_energy_j(p, t, 0.35) + energy.circuit_energy_j(t, 0.1)
             + energy.encode_energy_j(n, f, 1e-4) + energy.d2d_energy_j(np.array([[10, 0], [0, 5]]), 1e-7))
    np.testing.assert_allclose(total, parts)
    assert total[0, 1] == 0.0 and np.all(total >= 0)


CFG = ScenarioConfig()


def test_ar1_stationary_std_and_cross_covariance() -> None:
    rng = np.random.default_rng(0)
    x = np.zeros((400, 50, 2))
    for _ in range(80):  # 0.9^80 = 2e-4: the start is forgotten
        x = resources.ar1_step(x, rng.standard_normal(x.shape), CFG)
    flat = x.reshape(-1, 2)
    sigma, phi = np.array([0.15, 0.10]), np.array([0.85, 0.90])
    np.testing.assert_allclose(resources.stationary_std(CFG), sigma / np.sqrt(1 - phi**2))
    np.testing.assert_allclose(flat.std(axis=0), sigma / np.sqrt(1 - phi**2), rtol=0.02)
    cross = 0.3 * 0.15 * 0.10 / (1 - 0.85 * 0.90)
    assert np.cov(flat.T)[0, 1] == pytest.approx(cross, rel=0.06)
    # the stationary sampler draws the same law
    s = resources.stationary_state(rng, (20000,), CFG)
    np.testing.assert_allclose(np.cov(s.T), resources.stationary_cov(CFG), rtol=0.05)


def test_innovations_are_correlated_with_rho() -> None:
    rng = np.random.default_rng(1)
    z = rng.standard_normal((50000, 2))
    eps = resources.ar1_step(np.zeros((50000, 2)), z, CFG) / np.array([0.15, 0.10])
    assert np.corrcoef(eps.T)[0, 1] == pytest.approx(0.3, abs=0.015)
    np.testing.assert_allclose(eps.std(axis=0), 1.0, atol=0.015)


def test_p_joint_closed_form_and_monte_carlo() -> None:
    x = np.array([[[0.0, 0.0], [-0.3, 0.1], [0.4, -0.5]]])  # (1, 3, 2)
    phi, sigma, a = np.array([0.85, 0.9]), np.array([0.15, 0.1]), np.array([-0.30, -0.20])
    closed = norm.sf((a - phi * x) / sigma)  # 1 - Phi((a - phi X) / sigma)
    np.testing.assert_allclose(resources.availability_probs(x, CFG), closed, rtol=1e-12)
    np.testing.assert_allclose(resources.p_joint(x, CFG), closed.prod(-1), rtol=1e-12)
    # p_x is the probability that next slot's availability exceeds the threshold
    rng = np.random.default_rng(2)
    m = 200000
    nxt = resources.ar1_step(np.broadcast_to(x, (m, 3, 2)), rng.standard_normal((m, 3, 2)), CFG)
    frac = (nxt > a).mean(axis=0)
    np.testing.assert_allclose(frac, closed[0], atol=4 * np.sqrt(0.25 / m))


def test_p_joint_typical_range() -> None:
    pj = resources.p_joint(resources.stationary_state(np.random.default_rng(3), (50000,), CFG), CFG)
    q25, q50, q75 = np.percentile(pj, [25, 50, 75])
    assert 0.3 < q25 < 0.6 and 0.75 < q50 < 0.95 and q75 > 0.95
    assert np.all((pj >= 0) & (pj <= 1))
    assert resources.p_joint(np.zeros(2), CFG) == pytest.approx(norm.cdf(2.0) ** 2)


def test_resource_params_from_config_and_direct() -> None:
    cfg = CFG.replace(resource_phi_compute=0.5, resource_threshold_memory=0.0)
    p = resources.ResourceParams.from_config(cfg)
    assert p.phi_compute == 0.5 and p.threshold_memory == 0.0
    x = np.array([0.1, -0.2])
    assert resources.p_joint(x, cfg) == resources.p_joint(x, p)
