"""The vectorised MultiCategorical equals SB3's (values and gradients) and samples the same law."""

from __future__ import annotations

import numpy as np
import torch as th
from stable_baselines3.common.distributions import MultiCategoricalDistribution

from agents.common.distributions import FastMultiCategoricalDistribution

DIMS = [4, 4, 5, 5, 3, 2]


def test_log_prob_entropy_mode_and_gradients_match_sb3() -> None:
    th.manual_seed(0)
    logits_a = th.randn(9, sum(DIMS), requires_grad=True)
    logits_b = logits_a.detach().clone().requires_grad_(True)
    ref = MultiCategoricalDistribution(DIMS).proba_distribution(logits_a)
    fast = FastMultiCategoricalDistribution(DIMS).proba_distribution(logits_b)
    actions = ref.sample()
    th.testing.assert_close(fast.log_prob(actions), ref.log_prob(actions))
    th.testing.assert_close(fast.entropy(), ref.entropy())
    assert th.equal(fast.mode(), ref.mode())
    (ref.log_prob(actions).sum() + 0.3 * ref.entropy().sum()).backward()
    (fast.log_prob(actions).sum() + 0.3 * fast.entropy().sum()).backward()
    assert th.isfinite(logits_b.grad).all()
    th.testing.assert_close(logits_b.grad, logits_a.grad)


def test_samples_follow_the_distribution_and_stay_in_range() -> None:
    th.manual_seed(1)
    logits = th.randn(1, sum(DIMS))
    fast = FastMultiCategoricalDistribution(DIMS).proba_distribution(logits.repeat(40_000, 1))
    s = fast.sample()
    assert s.shape == (40_000, len(DIMS)) and (s < th.tensor(DIMS)).all() and (s >= 0).all()
    start = sum(DIMS[:2])
    freq = np.bincount(s[:, 2].numpy(), minlength=5) / 40_000
    np.testing.assert_allclose(freq, th.softmax(logits[0, start:start + 5], 0).numpy(), atol=0.01)
