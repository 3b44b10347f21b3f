"""The semantic-only BS-side aligner the environment uses for heterogeneous device encoders."""

from __future__ import annotations

import numpy as np
import pytest

from semantic_models.alignment import fit_latent_aligner

RNG = np.random.default_rng(0)
D = 16
PREFIXES = (4, 8, 16)
A = RNG.standard_normal((D, D))
X = RNG.standard_normal((3000, D))
Y = X @ A.T + 0.3


def test_recovers_a_linear_relation_per_prefix() -> None:
    al = fit_latent_aligner(X, Y, prefix_lengths=(16,))
    np.testing.assert_allclose(al.apply(X[:50], 16), Y[:50], atol=1e-4)


def test_prefix_and_missing_handling_batched() -> None:
    al = fit_latent_aligner(X, Y, prefix_lengths=PREFIXES)
    lat = np.repeat(X[:6, None, :], 2, axis=1)  # (n=6, M=2, d)
    pl = np.array([[4, 8], [16, 0], [8, 8], [4, 16], [0, 0], [16, 4]])
    for i, j in np.ndindex(pl.shape):
        lat[i, j, pl[i, j]:] = 0.0  # what the environment delivers: zero beyond the prefix
    out = al.apply(lat, pl)
    assert out.shape == lat.shape and out.dtype == np.float32
    for i, j in np.ndindex(pl.shape):
        p = pl[i, j]
        assert np.all(out[i, j, p:] == 0.0)
        if p:
            # Equals the per-prefix least-squares map fitted directly.
            xa = np.concatenate([X[:, :p], np.ones((len(X), 1))], axis=1)
            coef = np.linalg.lstsq(xa, Y[:, :p], rcond=None)[0]
            np.testing.assert_allclose(out[i, j, :p], np.append(X[i, :p], 1.0) @ coef, rtol=1e-4, atol=1e-4)


def test_noise_level_selection_shrinks() -> None:
    al = fit_latent_aligner(X, Y, prefix_lengths=(16,), noise_vars=(0.0, 1.0, 10.0))
    x0 = X[:200]
    loud = al.apply(x0, 16, noise_var=8.0)  # nearest fitted level: 10
    quiet = al.apply(x0, 16, noise_var=0.0)
    assert np.linalg.norm(loud - al.y_mean) < np.linalg.norm(quiet - al.y_mean)
    np.testing.assert_allclose(al.apply(x0, 16, noise_var=np.full(200, 1e-9)), quiet)


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="same shape"):
        fit_latent_aligner(X, Y[:, :8])
    with pytest.raises(ValueError, match="prefix_lengths"):
        fit_latent_aligner(X, Y, prefix_lengths=(4, 32))
    xn = X.copy()
    xn[0, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        fit_latent_aligner(xn, Y, prefix_lengths=PREFIXES)
    al = fit_latent_aligner(X, Y, prefix_lengths=PREFIXES)
    with pytest.raises(ValueError, match="prefix_len"):
        al.apply(X[:3], np.array([4, 5, 8]))
    with pytest.raises(ValueError, match="dimension"):
        al.apply(X[:3, :8], 4)
    with pytest.raises(ValueError, match="noise_var"):
        al.apply(X[:3], 4, noise_var=-1.0)
