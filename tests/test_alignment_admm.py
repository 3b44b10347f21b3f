"""ADMM linear aligner: the maths of each step, convergence, feasibility, the noiseless limit, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from semantic_models.alignment import (
    RawLink,
    SVDMMSELink,
    Whitener,
    admm_align,
    apply_link,
    f_step,
    fit_linear_aligner,
    g_step,
    pack_complex,
    rayleigh_channel,
    unpack_complex,
)
from semantic_models.alignment.admm import alignment_objective, project_power_ball


def crandn(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) / np.sqrt(2.0)


def seeded_problem(seed: int = 0, m_tx: int = 8, m_rx: int = 6, n: int = 500, nt: int = 3, nr: int = 4):
    rng = np.random.default_rng(seed)
    x = crandn(rng, m_tx, n)
    m = crandn(rng, m_rx, m_tx) / np.sqrt(m_tx)
    y = m @ x + 0.2 * crandn(rng, m_rx, n)
    return x, y, rayleigh_channel(nr, nt, rng)


def test_pack_roundtrip_and_layout() -> None:
    x = np.arange(12, dtype=float).reshape(2, 6)
    xc = pack_complex(x)
    assert xc.shape == (3, 2)
    assert xc[0, 1] == 6 + 9j  # sample 1: real part x[1, 0], imaginary part x[1, 3]
    np.testing.assert_array_equal(unpack_complex(xc), x)


def test_whitener_identity_covariance_and_inverse() -> None:
    rng = np.random.default_rng(1)
    a = crandn(rng, 5, 5)
    xc = a @ crandn(rng, 5, 4000) + (1 + 2j)
    wh = Whitener.fit(xc)
    xw = wh.transform(xc)
    np.testing.assert_allclose(xw @ xw.conj().T / xc.shape[1], np.eye(5), atol=1e-10)
    np.testing.assert_allclose(wh.inverse_transform(xw), xc, atol=1e-10)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_objective_non_increasing_after_first_iterations(seed: int) -> None:
    x, y, h = seeded_problem(seed)
    res = admm_align(x, y, h, power=1.0, sigma2=0.1, max_iter=400, eps_abs=0.0, eps_rel=0.0)
    obj = np.asarray(res.history.objective)
    assert len(obj) == 400 and not res.history.converged
    # ADMM is not a descent method: the dual variable needs a few iterations to build up (<= 10 here with the
    # default ρ); from then on the feasible objective must not go up.
    diffs = np.diff(obj[15:])
    assert np.all(diffs <= 1e-10 * abs(obj[0])), diffs.max()
    assert obj[-1] < obj[0]
    # Residual-based stopping fires with the default tolerances, near the same objective.
    res2 = admm_align(x, y, h, power=1.0, sigma2=0.1)
    assert res2.history.converged and res2.history.iterations < 500
    assert res2.objective == pytest.approx(obj[-1], rel=1e-4)


@pytest.mark.parametrize("power", [0.01, 1.0, 50.0])
@pytest.mark.parametrize("sigma2", [0.0, 1e-3, 1.0])
def test_returned_precoder_is_feasible(power: float, sigma2: float) -> None:
    x, y, h = seeded_problem(2)
    res = admm_align(x, y, h, power=power, sigma2=sigma2, max_iter=60)
    assert np.real(np.trace(res.f @ res.f.conj().T)) <= power * (1 + 1e-6)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), power=st.floats(1e-3, 1e3), nt=st.integers(1, 5), nr=st.integers(1, 5))
def test_feasible_for_any_problem(seed: int, power: float, nt: int, nr: int) -> None:
    x, y, h = seeded_problem(seed, m_tx=6, m_rx=4, n=60, nt=nt, nr=nr)
    res = admm_align(x, y, h, power=power, sigma2=0.05, max_iter=20)
    assert np.real(np.vdot(res.f, res.f)) <= power * (1 + 1e-6)
    assert np.all(np.isfinite(res.g))


def test_f_step_equals_vectorised_ridge_solution() -> None:
    rng = np.random.default_rng(3)
    m_tx, m_rx, nt, n, rho = 5, 4, 3, 40, 0.7
    a = crandn(rng, m_rx, nt)
    x = crandn(rng, m_tx, n)
    y = crandn(rng, m_rx, n)
    v = crandn(rng, nt, m_tx)
    f = f_step(a, x @ x.conj().T / n, y @ x.conj().T / n, v, rho)
    # Independent solution: vec(A F X) = (X^T ⊗ A) vec(F) (column-major vec); the objective
    # (1/n)||Y − AFX||² + (ρ/2)||F − V||² is a ridge regression in vec(F).
    k = np.kron(x.T, a)
    lhs = k.conj().T @ k / n + 0.5 * rho * np.eye(nt * m_tx)
    rhs = k.conj().T @ y.flatten(order="F") / n + 0.5 * rho * v.flatten(order="F")
    f_ref = np.linalg.solve(lhs, rhs).reshape((nt, m_tx), order="F")
    np.testing.assert_allclose(f, f_ref, atol=1e-8, rtol=0)


def test_g_step_equals_regularised_least_squares() -> None:
    rng = np.random.default_rng(4)
    x, y, h = seeded_problem(4)
    n = x.shape[1]
    f = crandn(rng, h.shape[1], x.shape[0])
    sigma2 = 0.3
    g = g_step(f, h, x @ x.conj().T / n, y @ x.conj().T / n, sigma2)
    # Augmented least squares: [HFX, √(nσ²) I] and [Y, 0] give min ||Y − G HFX||² + nσ²||G||².
    z = h @ f @ x
    za = np.concatenate([z, np.sqrt(n * sigma2) * np.eye(h.shape[0])], axis=1)
    ya = np.concatenate([y, np.zeros((y.shape[0], h.shape[0]))], axis=1)
    g_ref = np.linalg.lstsq(za.T, ya.T, rcond=None)[0].T
    np.testing.assert_allclose(g, g_ref, atol=1e-9)


def test_objective_from_grams_matches_direct_evaluation() -> None:
    rng = np.random.default_rng(5)
    x, y, h = seeded_problem(5)
    n = x.shape[1]
    f, g = crandn(rng, h.shape[1], x.shape[0]), crandn(rng, y.shape[0], h.shape[0])
    direct = np.linalg.norm(y - g @ h @ f @ x) ** 2 / n + 0.2 * np.linalg.norm(g) ** 2
    via = alignment_objective(f, g, h, x @ x.conj().T / n, y @ x.conj().T / n, np.linalg.norm(y) ** 2 / n, 0.2)
    assert via == pytest.approx(direct, rel=1e-10)


def test_projection_onto_power_ball() -> None:
    rng = np.random.default_rng(6)
    z = crandn(rng, 3, 4)
    e = np.real(np.vdot(z, z))
    np.testing.assert_array_equal(project_power_ball(z, 2 * e), z)
    zp = project_power_ball(z, e / 4)
    assert np.real(np.vdot(zp, zp)) == pytest.approx(e / 4)
    np.testing.assert_allclose(zp, z / 2)


@pytest.mark.parametrize("representation", ["complex", "real"])
def test_identity_channel_no_noise_reaches_least_squares(representation: str) -> None:
    rng = np.random.default_rng(7)
    n, d_tx, d_rx = 800, 12, 10
    x = rng.standard_normal((n, d_tx)) @ rng.standard_normal((d_tx, d_tx)) + 0.5
    y = np.tanh(x @ rng.standard_normal((d_tx, d_rx)) / 3) + 0.1 * rng.standard_normal((n, d_rx))
    m = d_tx // 2
    al = fit_linear_aligner(x, y, np.eye(m), sigma2=0.0, power=2.0, representation=representation,
                            init="random", rng=np.random.default_rng(0), max_iter=2000, eps_rel=1e-9)
    y_hat = al.simulate(x, np.random.default_rng(0))  # σ² = 0: deterministic
    err = np.mean(np.sum((y_hat - y) ** 2, axis=1))
    # Independent least squares with an intercept, on the same representation.
    if representation == "complex":
        xa = np.concatenate([pack_complex(x).T, np.ones((n, 1))], axis=1)
        yc = pack_complex(y).T
        resid = yc - xa @ np.linalg.lstsq(xa, yc, rcond=None)[0]
    else:
        xa = np.concatenate([x, np.ones((n, 1))], axis=1)
        resid = y - xa @ np.linalg.lstsq(xa, y, rcond=None)[0]
    ls_err = np.sum(np.abs(resid) ** 2) / n
    assert err == pytest.approx(ls_err, rel=1e-6)
    assert al.transmit_power <= 2.0 * (1 + 1e-6)


def test_apply_link_noise_free_and_noise_power() -> None:
    rng = np.random.default_rng(8)
    x, _, h = seeded_problem(8)
    f, g = crandn(rng, h.shape[1], x.shape[0]), crandn(rng, 2, h.shape[0])
    np.testing.assert_allclose(apply_link(g, h, f, x, 0.0, rng), g @ h @ f @ x)
    noise = RawLink(h, 0.5).transmit(np.zeros((h.shape[1], 20000)), rng)
    assert np.mean(np.abs(noise) ** 2) == pytest.approx(0.5, rel=0.03)


def test_svd_mmse_link_is_transparent_without_noise() -> None:
    rng = np.random.default_rng(9)
    h = rayleigh_channel(4, 4, rng)
    link = SVDMMSELink(h, 0.0, 4, power=1.0)
    s = crandn(rng, 4, 10)
    np.testing.assert_allclose(link.transmit(s, rng), s, atol=1e-8)
    np.testing.assert_allclose(link.v.conj().T @ link.v, np.eye(4), atol=1e-12)


def test_channel_unaware_variant_uses_conventional_link() -> None:
    rng = np.random.default_rng(10)
    x = rng.standard_normal((300, 8))
    y = x @ rng.standard_normal((8, 6))
    h = rayleigh_channel(3, 2, rng)
    al = fit_linear_aligner(x, y, h, snr_db=10.0, channel_aware=False)
    assert isinstance(al.link, SVDMMSELink) and al.link.k == 2
    assert al.f.shape == (2, 4) and al.g.shape == (3, 2)
    assert al.simulate(x, rng).shape == (300, 6)


class TestBadInput:
    x = np.random.default_rng(0).standard_normal((50, 8))
    y = np.random.default_rng(1).standard_normal((50, 6))
    h = rayleigh_channel(2, 2, np.random.default_rng(2))

    def test_mismatched_samples(self) -> None:
        with pytest.raises(ValueError, match="same samples"):
            fit_linear_aligner(self.x, self.y[:40], self.h, snr_db=10)

    def test_odd_dimension(self) -> None:
        with pytest.raises(ValueError, match="even"):
            fit_linear_aligner(self.x[:, :7], self.y, self.h, snr_db=10)

    def test_not_2d(self) -> None:
        with pytest.raises(ValueError, match="2-D"):
            fit_linear_aligner(self.x[0], self.y, self.h, snr_db=10)
        with pytest.raises(ValueError, match="2-D"):
            fit_linear_aligner(self.x, self.y, self.h[0], snr_db=10)

    @pytest.mark.parametrize("power", [0.0, -1.0, float("nan"), float("inf")])
    def test_bad_power(self, power: float) -> None:
        with pytest.raises(ValueError, match="power"):
            fit_linear_aligner(self.x, self.y, self.h, snr_db=10, power=power)
        x, y, h = seeded_problem(0)
        with pytest.raises(ValueError, match="power"):
            admm_align(x, y, h, power=power, sigma2=0.1)

    def test_nan_and_inf(self) -> None:
        x = self.x.copy()
        x[3, 2] = np.nan
        with pytest.raises(ValueError, match="non-finite"):
            fit_linear_aligner(x, self.y, self.h, snr_db=10)
        y = self.y.copy()
        y[0, 0] = np.inf
        with pytest.raises(ValueError, match="non-finite"):
            fit_linear_aligner(self.x, y, self.h, snr_db=10)
        h = self.h.copy()
        h[0, 0] = np.nan
        with pytest.raises(ValueError, match="non-finite"):
            fit_linear_aligner(self.x, self.y, h, snr_db=10)

    def test_noise_and_admm_parameters(self) -> None:
        with pytest.raises(ValueError, match="exactly one"):
            fit_linear_aligner(self.x, self.y, self.h)
        with pytest.raises(ValueError, match="exactly one"):
            fit_linear_aligner(self.x, self.y, self.h, snr_db=10, sigma2=0.1)
        with pytest.raises(ValueError, match="sigma2"):
            fit_linear_aligner(self.x, self.y, self.h, sigma2=-0.1)
        with pytest.raises(ValueError, match="rho"):
            fit_linear_aligner(self.x, self.y, self.h, snr_db=10, rho=0.0)
        with pytest.raises(ValueError, match="max_iter"):
            fit_linear_aligner(self.x, self.y, self.h, snr_db=10, max_iter=0)
        with pytest.raises(ValueError, match="representation"):
            fit_linear_aligner(self.x, self.y, self.h, snr_db=10, representation="quaternion")  # type: ignore[arg-type]

    def test_core_shape_mismatch(self) -> None:
        x, y, h = seeded_problem(0)
        with pytest.raises(ValueError, match="same number of samples"):
            admm_align(x, y[:, :10], h, power=1.0, sigma2=0.1)
        with pytest.raises(ValueError, match="init precoder"):
            admm_align(x, y, h, power=1.0, sigma2=0.1, init=np.zeros((7, 7)))

    def test_apply_to_wrong_dimension(self) -> None:
        al = fit_linear_aligner(self.x, self.y, self.h, snr_db=10)
        with pytest.raises(ValueError, match="d_tx"):
            al.encode(self.x[:, :6])
