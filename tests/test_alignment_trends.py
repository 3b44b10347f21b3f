"""Trends on a synthetic linearly related latent pair, read through a linear classifier on the receiver latents.

Every number is averaged over three channel draws so a single unlucky ``H`` cannot flip an ordering.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise

import numpy as np
import pytest
import torch

from semantic_models.alignment import (
    alignment_mse,
    fit_baseline,
    fit_linear_aligner,
    fit_linear_classifier,
    fit_neural_aligner,
    rayleigh_channel,
)
from semantic_models.alignment.synthetic import linear_latent_pair

torch.set_num_threads(1)

PAIR = linear_latent_pair(n_train=2000, n_test=1000, d_tx=16, d_rx=16, seed=0)
CLF = fit_linear_classifier(PAIR.y_train, PAIR.labels_train)
CHANNEL_SEEDS = (100, 101, 102)


def score(fit: Callable[[np.ndarray], object], n_ant: int) -> tuple[float, float]:
    """Mean (accuracy, MSE) over the channel draws for a fitting function of ``H``."""
    accs, mses = [], []
    for c in CHANNEL_SEEDS:
        h = rayleigh_channel(n_ant, n_ant, np.random.default_rng(c))
        y_hat = fit(h).simulate(PAIR.x_test, np.random.default_rng(c + 7))  # type: ignore[attr-defined]
        accs.append(CLF.accuracy(y_hat, PAIR.labels_test))
        mses.append(alignment_mse(y_hat, PAIR.y_test))
    return float(np.mean(accs)), float(np.mean(mses))


def admm(snr_db: float, aware: bool = True, representation: str = "complex") -> Callable[[np.ndarray], object]:
    return lambda h: fit_linear_aligner(PAIR.x_train, PAIR.y_train, h, snr_db=snr_db, channel_aware=aware,
                                        representation=representation)  # type: ignore[arg-type]


@pytest.mark.parametrize("representation", ["complex", "real"])
def test_accuracy_rises_with_snr(representation: str) -> None:
    res = [score(admm(s, representation=representation), 4) for s in (-10.0, 0.0, 10.0, 20.0)]
    accs, mses = zip(*res, strict=True)
    assert all(b > a + 0.01 for a, b in pairwise(accs)), accs
    assert all(b < a for a, b in pairwise(mses)), mses


@pytest.mark.parametrize("representation", ["complex", "real"])
def test_accuracy_rises_with_antennas(representation: str) -> None:
    res = [score(admm(20.0, representation=representation), n) for n in (1, 2, 4, 8)]
    accs, mses = zip(*res, strict=True)
    assert all(b > a + 0.01 for a, b in pairwise(accs)), accs
    assert all(b < a for a, b in pairwise(mses)), mses


@pytest.mark.parametrize("n_ant", [4, 8])
@pytest.mark.parametrize("snr_db", [-10.0, 0.0])
def test_channel_aware_beats_unaware(n_ant: int, snr_db: float) -> None:
    acc_a, mse_a = score(admm(snr_db, aware=True), n_ant)
    acc_u, mse_u = score(admm(snr_db, aware=False), n_ant)
    assert acc_a > acc_u and mse_a < mse_u, (acc_a, acc_u, mse_a, mse_u)


def test_channel_aware_beats_unaware_neural() -> None:
    h = rayleigh_channel(4, 4, np.random.default_rng(100))
    accs = []
    for aware in (True, False):
        nn = fit_neural_aligner(PAIR.x_train, PAIR.y_train, h, snr_db=0.0, epochs=15, channel_aware=aware, seed=0)
        accs.append(CLF.accuracy(nn.simulate(PAIR.x_test, np.random.default_rng(0)), PAIR.labels_test))
    assert accs[0] > accs[1] + 0.05, accs


@pytest.mark.parametrize("n_ant", [4, 8])
@pytest.mark.parametrize("snr_db", [0.0, 10.0, 20.0])
def test_admm_beats_first_k_and_top_k_at_equal_channel_uses(n_ant: int, snr_db: float) -> None:
    # Each method sends min(Nr, Nt) = n_ant complex symbols per sample in one channel use.
    acc_admm, mse_admm = score(admm(snr_db), n_ant)
    for method in ("first_k", "top_k"):
        acc_b, mse_b = score(lambda h, m=method: fit_baseline(m, PAIR.x_train, PAIR.y_train, h, snr_db=snr_db),
                             n_ant)
        assert mse_admm < mse_b, (method, mse_admm, mse_b)
        # Accuracy: Top-K gets its indices for free, which a linear classifier can exploit when the SNR is low;
        # from 10 dB on the aligned latents classify better.
        if snr_db >= 10.0 or method == "first_k":
            assert acc_admm > acc_b, (method, acc_admm, acc_b)
