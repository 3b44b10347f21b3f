"""The causal planner (``agents.planner``): valid actions, deterministic for a seed, blind to the true future."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from agents.policies import make_policy
from vmimo_env.vector import VMIMOVectorEnv

FAST = {"samples": 2, "horizon": 2}


def _check_action(a: dict[str, np.ndarray], space: gym.spaces.Dict) -> None:
    assert space.contains({k: np.asarray(v) for k, v in a.items()}), a


@pytest.mark.parametrize("env_id", ["VMIMO-v0", "VMIMO-v1"])
def test_planner_acts_validly(env_id: str) -> None:
    env = gym.make(env_id)
    env.reset(seed=1_000_000)
    policy = make_policy("planner", env, **FAST)
    policy.reset(0)
    for _ in range(3):
        a = policy.act(None, {})
        _check_action(a, env.action_space)
        env.step(a)
    assert policy.last_scores is not None and np.isfinite(policy.last_scores).all()


def _decisions(seed: int) -> list[np.ndarray]:
    """Three slots of planner decisions on VMIMO-v1 (two environments, one batch)."""
    venv = VMIMOVectorEnv(num_envs=2, scenario="v1")
    venv.reset(seed=[1_000_001, 1_000_002])
    policy = make_policy("planner", venv, **FAST)
    policy.reset(seed)
    out = []
    for _ in range(3):
        a = policy.act(None, {})
        out.append(np.concatenate([np.ravel(a[k]).astype(float) for k in sorted(a)]))
        venv.step(a)
    return out


def test_planner_is_deterministic_for_a_seed() -> None:
    first, again = _decisions(0), _decisions(0)
    for x, y in zip(first, again, strict=True):
        np.testing.assert_array_equal(x, y)


def test_planner_does_not_read_the_true_future_or_the_true_scenes() -> None:
    """Reseeding the env's own streams (its future arrivals, fading, noise, resources) or swapping which scenes
    are pending changes the trajectory's future but not the planner's decision from the same BS-known state."""
    venv = VMIMOVectorEnv(num_envs=1, scenario="v1")
    venv.reset(seed=[1_000_003])
    for _ in range(2):
        venv.step({k: v for k, v in make_policy("max_weight", venv).act(None, {}).items()})
    core = venv.core
    decisions = []
    for variant in range(3):
        rep = core.replicate([0])  # the same state; the planner plans on `rep`
        if variant == 1:
            rep.rng.seed(np.arange(1), [12345])
        if variant == 2:
            rep.ring_scene[:] = np.random.default_rng(7).integers(0, rep.pool.size, rep.ring_scene.shape)
        policy = make_policy("planner", rep, **FAST, margin=0.0)
        policy.reset(0)
        a = policy.act_view(rep.bs_view())
        assert policy.last_scores is not None
        # the decision and the score behind it (the chosen candidate's mean gain over the base action)
        decisions.append(np.concatenate([*(np.ravel(a[k]).astype(float) for k in sorted(a)), policy.last_scores]))
    assert decisions[0][-1] != 0.0  # the scores are not trivially equal: the planner found a candidate to prefer
    for d in decisions[1:]:
        np.testing.assert_array_equal(d, decisions[0])
    # and the replicated future really differs: the true stream was changed
    a0 = core.replicate([0])
    a1 = core.replicate([0])
    a1.rng.seed(np.arange(1), [12345])
    np.testing.assert_raises(AssertionError, np.testing.assert_array_equal, a0.rng.next()[0], a1.rng.next()[0])


def test_sampled_futures_replace_the_streams_and_the_pending_scenes() -> None:
    """``replicate(..., future_seeds=...)``: copies with equal seeds share a future, the true stream is not used,
    and the pending scenes' identities are redrawn; the source is untouched."""
    venv = VMIMOVectorEnv(num_envs=1, scenario="v1")
    venv.reset(seed=[1_000_004])
    core = venv.core
    before = core.ring_scene.copy()
    rep = core.replicate([0, 0, 0], future_seeds=[5, 5, 6])
    u, _ = rep.rng.next()
    np.testing.assert_array_equal(u[0], u[1])
    assert not np.array_equal(u[0], u[2])
    true_u, _ = core.replicate([0]).rng.next()
    assert not np.array_equal(u[0], true_u[0])
    np.testing.assert_array_equal(rep.ring_scene[0], rep.ring_scene[1])
    assert not np.array_equal(rep.ring_scene[0], before[0])
    np.testing.assert_array_equal(core.ring_scene, before)
    with pytest.raises(ValueError, match="one seed per copy"):
        core.replicate([0, 0], future_seeds=[1])
    soft = core.replicate([0], future_seeds=[1], reward_mode="soft")
    assert soft.cfg.reward_mode == "soft" and core.cfg.reward_mode == "model"


def test_planner_is_not_a_heuristic_baseline() -> None:
    from agents.registry import heuristic_names, policy_names

    assert {"planner", "oracle", "clairvoyant"} <= set(policy_names())
    assert not {"planner", "oracle", "clairvoyant"} & set(heuristic_names())


def test_the_planner_benchmark_runs_as_a_file_from_another_directory(tmp_path) -> None:
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_planner.py"
    out = subprocess.run([sys.executable, str(script), "--help"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert "--plan-horizon" in out.stdout
