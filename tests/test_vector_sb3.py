"""The SB3 VecEnv adapter and long-run health of the batched core."""

from __future__ import annotations

import tracemalloc

import numpy as np

from vmimo_env.sb3 import VMIMOSB3VecEnv
from vmimo_env.vector import VMIMOVectorEnv


def test_sb3_adapter_conventions_and_episode_info() -> None:
    venv = VMIMOSB3VecEnv(num_envs=4, action_view="multidiscrete", seed=3, horizon=6)
    obs = venv.reset()
    assert obs.shape == (4, *venv.observation_space.shape) and obs.dtype == np.float32
    rng = np.random.default_rng(0)
    total = np.zeros(4)
    nvec = venv.action_space.nvec
    for t in range(6):
        obs, rew, dones, infos = venv.step(rng.integers(0, nvec, size=(4, nvec.size)))
        total += rew
        assert rew.dtype == np.float32 and len(infos) == 4
        if t < 5:
            assert not dones.any()
    assert dones.all()
    for i, info in enumerate(infos):
        assert info["TimeLimit.truncated"] is True
        assert info["terminal_observation"].shape == obs[i].shape
        assert info["episode"]["l"] == 6 and np.isclose(info["episode"]["r"], total[i], rtol=1e-5)
        assert {"accuracy_term", "energy_j", "correct", "arrived"} <= set(info["episode"])
    assert venv.action_masks().shape == (4, int(venv.action_space.nvec.sum()))


def test_sb3_adapter_reproduces_vector_env_with_same_seed() -> None:
    a = VMIMOSB3VecEnv(num_envs=3, seed=9)
    b = VMIMOVectorEnv(num_envs=3, action_view="multidiscrete")
    oa = a.reset()
    ob, _ = b.reset(seed=9)
    assert np.array_equal(oa, ob)
    rng = np.random.default_rng(1)
    for _ in range(20):
        act = rng.integers(0, a.action_space.nvec, size=(3, a.action_space.nvec.size))
        oa, ra, _, _ = a.step(act)
        ob, rb, _, _, _ = b.step(act)
        assert np.array_equal(oa, ob) and np.allclose(ra, rb)


def test_ten_thousand_random_steps_finite_and_memory_flat() -> None:
    venv = VMIMOVectorEnv(num_envs=10, action_view="box")
    venv.reset(seed=0)
    rng = np.random.default_rng(0)
    shape = venv.action_space.shape
    tracemalloc.start()
    peak_after_warmup = None
    for t in range(1000):  # 10 envs x 1000 slots = 10,000 environment steps, 5 episodes each
        obs, rew, _, _, infos = venv.step(rng.uniform(-1.2, 1.2, size=shape).astype(np.float32))
        assert np.isfinite(obs).all() and np.isfinite(rew).all()
        assert np.isfinite(infos["energy_j"]).all() and (infos["energy_j"] >= 0).all()
        if t == 200:
            peak_after_warmup = tracemalloc.get_traced_memory()[0]
    current = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert current - peak_after_warmup < 2_000_000, (peak_after_warmup, current)
