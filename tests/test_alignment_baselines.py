"""First-K / Top-K / Eigen-K baselines and the FLOP counts."""

from __future__ import annotations

import numpy as np
import pytest

from semantic_models.alignment import BASELINES, aligner_flops, fit_baseline, fit_linear_aligner, rayleigh_channel
from semantic_models.alignment.flops import baseline_flops, complex_matvec_flops, linear_aligner_flops
from semantic_models.alignment.linalg import pack_complex

RNG = np.random.default_rng(0)
X = RNG.standard_normal((600, 12)) @ RNG.standard_normal((12, 12))
Y = X @ RNG.standard_normal((12, 8)) / 4 + 0.1 * RNG.standard_normal((600, 8))
H = rayleigh_channel(3, 3, np.random.default_rng(1))


@pytest.mark.parametrize("method", BASELINES)
@pytest.mark.parametrize("representation", ["complex", "real"])
def test_average_power_is_the_budget(method: str, representation: str) -> None:
    b = fit_baseline(method, X, Y, H, snr_db=10, power=2.5, representation=representation)  # type: ignore[arg-type]
    s = b.encode(X)
    assert s.shape == (3, 600)
    assert np.mean(np.sum(np.abs(s) ** 2, axis=0)) == pytest.approx(2.5, rel=1e-9)
    assert b.simulate(X, np.random.default_rng(0)).shape == Y.shape


def test_first_k_sends_the_first_coordinates_and_top_k_the_largest() -> None:
    xc = pack_complex(X)
    b = fit_baseline("first_k", X, Y, H, snr_db=10)
    np.testing.assert_allclose(b.encode(X), b.scale * (xc - xc.mean(1, keepdims=True))[:3])
    t = fit_baseline("top_k", X, Y, H, snr_db=10)
    s, idx = t.select(X)
    x0 = xc - xc.mean(1, keepdims=True)
    mags = np.abs(x0)
    for i in range(20):
        assert set(idx[i]) == set(np.argsort(-mags[:, i])[:3])
        assert np.all(np.diff(np.abs(s[:, i])) <= 1e-12)  # decreasing magnitude: largest on the strongest mode


def test_eigen_k_unaware_is_the_truncated_least_squares_map() -> None:
    # Noise-free identity channel with all d/2 streams: Eigen-K reproduces the full least-squares map.
    m = X.shape[1] // 2
    b = fit_baseline("eigen_k", X, Y, np.eye(m), sigma2=0.0, channel_aware=False)
    y_hat = b.simulate(X, np.random.default_rng(0))
    xa = np.concatenate([pack_complex(X).T, np.ones((len(X), 1))], axis=1)
    yc = pack_complex(Y).T
    ls = xa @ np.linalg.lstsq(xa, yc, rcond=None)[0]
    np.testing.assert_allclose(pack_complex(y_hat).T, ls, atol=1e-8)


@pytest.mark.parametrize("snr_db", [0.0, 10.0])
@pytest.mark.parametrize("method", ["first_k", "top_k"])
def test_channel_aware_receiver_map_beats_unaware(method: str, snr_db: float) -> None:
    # The gain is small (the conventional MMSE equaliser already undoes most of the channel), so average the
    # error over 20 noise draws per sample; for Eigen-K the symbols are white and the two coincide exactly.
    xr, yr = np.tile(X, (20, 1)), np.tile(Y, (20, 1))
    errs = []
    for aware in (True, False):
        b = fit_baseline(method, X, Y, H, snr_db=snr_db, channel_aware=aware)  # type: ignore[arg-type]
        errs.append(np.mean(np.sum((b.simulate(xr, np.random.default_rng(3)) - yr) ** 2, axis=1)))
    assert errs[0] < 0.995 * errs[1], errs


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="unknown baseline"):
        fit_baseline("random_k", X, Y, H, snr_db=10)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="k must be"):
        fit_baseline("first_k", X, Y, H, snr_db=10, k=4)
    with pytest.raises(ValueError, match="same samples"):
        fit_baseline("top_k", X, Y[:10], H, snr_db=10)
    with pytest.raises(ValueError, match="power"):
        fit_baseline("eigen_k", X, Y, H, snr_db=10, power=-1)
    xn = X.copy()
    xn[0, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        fit_baseline("first_k", xn, Y, H, snr_db=10)
    b = fit_baseline("top_k", X, Y, H, snr_db=10)
    with pytest.raises(ValueError, match="indices"):
        b.decode(b.encode(X))


def test_flop_counting_rule() -> None:
    assert complex_matvec_flops(3, 4) == 96  # 12 complex multiply-adds × 8
    d_tx, d_rx, nt, nr = 64, 64, 4, 4
    # ADMM, channel-aware: centre (64) + F (4×32 complex) + G (32×4 complex) + add mean (64).
    assert linear_aligner_flops(d_tx, d_rx, nt, nr) == 64 + 8 * 4 * 32 + 8 * 32 * 4 + 64
    al = fit_linear_aligner(X, Y, H, snr_db=10)
    assert aligner_flops(al) == linear_aligner_flops(12, 8, 3, 3)
    assert aligner_flops(fit_linear_aligner(X, Y, H, snr_db=10, channel_aware=False)) > aligner_flops(al)
    # First-K costs the link and the receiver map; Eigen-K adds the projection at the transmitter.
    assert baseline_flops("first_k", d_tx, d_rx, 4, nt, nr) < baseline_flops("eigen_k", d_tx, d_rx, 4, nt, nr)
    for method in BASELINES:
        b = fit_baseline(method, X, Y, H, snr_db=10)  # type: ignore[arg-type]
        assert aligner_flops(b) == baseline_flops(method, 12, 8, 3, 3, 3)
