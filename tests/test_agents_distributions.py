"""The vectorised MultiCategorical equals SB3's (values and gradients) and samples the same law."""

from __future__ import annotations

import numpy as np
import torch as th
from stable_baselines3.common.distributions import MultiCategoricalDistribution

from agents.common.distributions import FastMultiCategoricalDistribution, FastMultiDiscretePolicy

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


def _policy(**optimizer_kwargs: object) -> FastMultiDiscretePolicy:
    from gymnasium import spaces

    obs = spaces.Box(-1.0, 1.0, (7,), np.float32)
    kwargs = {"optimizer_kwargs": optimizer_kwargs} if optimizer_kwargs else {}
    return FastMultiDiscretePolicy(obs, spaces.MultiDiscrete(DIMS), lambda _: 1e-3, net_arch=[16], **kwargs)


def test_adam_runs_fused_on_cpu_and_keeps_an_explicit_choice() -> None:
    assert _policy().optimizer.defaults["fused"] is True
    explicit = _policy(foreach=True).optimizer.defaults
    assert explicit["foreach"] is True and not explicit["fused"]
    assert _policy(fused=False).optimizer.defaults["fused"] is False


def test_fused_adam_takes_the_steps_of_the_default_adam() -> None:
    """The fused kernel is the same algorithm: ten steps from the same weights agree to float rounding."""
    th.manual_seed(3)
    fused, ref = _policy(), _policy(fused=False, eps=1e-5)  # SB3 gives eps 1e-5 only when unset
    ref.load_state_dict(fused.state_dict())
    start = [w.detach().clone() for w in fused.parameters()]
    obs = th.randn(64, 7)
    actions = th.as_tensor(np.stack([np.random.default_rng(0).integers(0, n, 64) for n in DIMS], 1))
    for policy in (fused, ref):
        for _ in range(10):
            values, log_prob, entropy = policy.evaluate_actions(obs, actions)
            loss = -log_prob.mean() - 0.01 * entropy.mean() + values.pow(2).mean()
            policy.optimizer.zero_grad()
            loss.backward()
            policy.optimizer.step()
    moved = max((a - b).abs().max().item() for a, b in zip(fused.parameters(), start, strict=True))
    assert moved > 1e-3  # the steps did something
    for a, b in zip(fused.parameters(), ref.parameters(), strict=True):
        th.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
