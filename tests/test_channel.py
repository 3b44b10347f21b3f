"""Small-scale fading: Doppler correlation, Gauss-Markov statistics, Rician LOS, spatial correlation."""

from __future__ import annotations

import numpy as np
import pytest

from vmimo_env import channel

FC, SLOT = 3.5e9, 0.01


def bessel_j0_by_quadrature(x: float) -> float:
    """J0(x) = (1/pi) int_0^pi cos(x sin t) dt, independent of scipy."""
    t = np.linspace(0.0, np.pi, 200_001)
    return float(np.trapezoid(np.cos(x * np.sin(t)), t) / np.pi)


@pytest.mark.parametrize("speed", [0.5, 1.0, 3.0])
def test_doppler_rho_is_clarke_j0(speed: float) -> None:
    fd = speed * FC / 299_792_458.0
    assert channel.doppler_hz(speed, FC) == pytest.approx(fd)
    assert channel.doppler_rho(speed, FC, SLOT) == pytest.approx(bessel_j0_by_quadrature(2 * np.pi * fd * SLOT),
                                                                 abs=1e-9)


def test_doppler_rho_clipped_to_unit_interval() -> None:
    assert 0.999 < channel.doppler_rho(0.0, FC, SLOT) < 1.0  # static device: rho < 1 keeps the process ergodic
    # 5 m/s: 2 pi f_d T = 3.67, J0 < 0 there -> clipped to 0 (independent slots)
    assert bessel_j0_by_quadrature(2 * np.pi * 5.0 * FC / 299_792_458.0 * SLOT) < 0
    assert channel.doppler_rho(5.0, FC, SLOT) == 0.0
    rho = channel.doppler_rho(np.array([0.0, 1.0, 5.0, 30.0]), FC, SLOT)
    assert rho.shape == (4,) and np.all((rho >= 0) & (rho < 1))


def simulate(rng: np.random.Generator, rho: float, shape: tuple[int, ...], steps: int,
             corr_sqrt: np.ndarray | None = None) -> np.ndarray:
    s = channel.correlate(channel.sample_rayleigh(rng, shape), corr_sqrt)
    out = np.empty((steps, *shape), dtype=np.complex128)
    for t in range(steps):
        out[t] = s
        s = channel.gauss_markov_step(s, rho, channel.correlate(channel.sample_rayleigh(rng, shape), corr_sqrt))
    return out


def lag1_and_se(x: np.ndarray) -> tuple[float, float]:
    """Lag-1 autocorrelation Re E[x_t x*_{t-1}] / E|x|^2 and its standard error across independent chains."""
    num = np.real(x[1:] * x[:-1].conj()).mean(axis=0).ravel()
    den = (np.abs(x) ** 2).mean()
    return float(num.mean() / den), float(num.std() / np.sqrt(num.size) / den)


@pytest.mark.parametrize("speed", [1.0, 3.0])
def test_rayleigh_gauss_markov_lag1_autocorrelation_and_power(speed: float) -> None:
    rho = float(channel.doppler_rho(speed, FC, SLOT))
    x = simulate(np.random.default_rng(1), rho, (1000, 8, 4), 60)
    est, se = lag1_and_se(x)
    assert abs(est - rho) < 4 * se + 1e-3, (est, rho, se)
    power = np.abs(x) ** 2
    assert abs(power.mean() - 1.0) < 0.02  # stationary: E|h|^2 = 1 in every slot
    assert abs(power[-1].mean() - 1.0) < 0.05
    assert abs(x.real.var() - 0.5) < 0.02 and abs(x.imag.var() - 0.5) < 0.02


def test_rician_keeps_los_and_unit_power() -> None:
    rng = np.random.default_rng(2)
    rho = float(channel.doppler_rho(1.0, FC, SLOT))
    k = 10 ** (9.0 / 10.0)
    shape = (300, 8, 4)
    los_w, scat_w = channel.rician_weights(np.full(shape[:-1], k))
    los = los_w[..., None] * channel.ula_steering(rng.uniform(-np.pi / 2, np.pi / 2, shape[:-1]), shape[-1])
    scat = simulate(rng, rho, shape, 60)
    h = los + scat_w[..., None] * scat
    assert abs((np.abs(h) ** 2).mean() - 1.0) < 0.01
    # the scattered part keeps the Gauss-Markov correlation ...
    est, se = lag1_and_se(h - los)
    assert abs(est - rho) < 4 * se + 1e-3
    # ... and the full channel's normalised correlation is (K + rho) / (K + 1) with the LOS part static
    full = np.real(h[1:] * h[:-1].conj()).mean()
    assert full == pytest.approx((k + rho) / (k + 1), abs=0.01)
    # sample_rician draws the same law in one shot
    draw = channel.sample_rician(rng, (4000, 4), k, rng.uniform(-1, 1, 4000))
    assert abs((np.abs(draw) ** 2).mean() - 1.0) < 0.02


def test_spatial_correlation_reproduces_exponential_model() -> None:
    r, nr = 0.7, 4
    c = channel.exponential_correlation(nr, r)
    np.testing.assert_allclose(c[0], [1.0, 0.7, 0.49, 0.343])
    np.testing.assert_allclose(c, c.T)
    sq = channel.exponential_correlation_sqrt(nr, r)
    np.testing.assert_allclose(sq @ sq.conj().T, c, atol=1e-12)
    assert channel.exponential_correlation_sqrt(nr, 0.0) is None
    # after many Gauss-Markov steps with correlated innovations the covariance is still r^|i-j|
    x = simulate(np.random.default_rng(3), 0.8, (20000, nr), 15, sq)[-1]
    emp = (x[:, :, None] * x[:, None, :].conj()).mean(axis=0)
    np.testing.assert_allclose(emp.real, c, atol=0.03)
    assert np.abs(emp.imag).max() < 0.03


def test_ula_steering_is_unit_modulus_half_wavelength() -> None:
    theta = np.array([0.0, 0.3, -1.0])
    a = channel.ula_steering(theta, 6)
    assert a.shape == (3, 6)
    np.testing.assert_allclose(np.abs(a), 1.0)
    np.testing.assert_allclose(a[:, 1] / a[:, 0], np.exp(1j * np.pi * np.sin(theta)))
    np.testing.assert_allclose(a[:, 5] / a[:, 4], np.exp(1j * np.pi * np.sin(theta)))


def test_compose_channel_applies_large_scale_gain() -> None:
    rng = np.random.default_rng(4)
    scat = channel.sample_rayleigh(rng, (2, 3, 4))
    los = channel.ula_steering(np.zeros((2, 3)), 4) * 0.5
    gain = np.full((2, 3), 1e-10)
    h = channel.compose_channel(scat, los, np.full((2, 3), 0.2), gain)
    np.testing.assert_allclose(h, 1e-5 * (los + 0.2 * scat))
    c = channel.complex_normal(np.ones(3), -np.ones(3))
    np.testing.assert_allclose(c, (1 - 1j) / np.sqrt(2))
