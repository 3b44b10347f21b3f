"""Autoreset of the native vector env: NEXT_STEP (default, what Gymnasium's vector wrappers and RLlib expect) and
SAME_STEP (the SB3 adapter), both keeping environment i's trajectory equal to a single env seeded seed + i."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import vmimo_env  # noqa: F401
from vmimo_env.env import VMIMOEnv
from vmimo_env.vector import VMIMOVectorEnv

HORIZON = 6
KW = {"scenario": "small", "horizon": HORIZON, "action_view": "multidiscrete"}


def _actions(n_steps: int, num_envs: int, seed: int = 0) -> np.ndarray:
    space = VMIMOEnv(**KW).action_space
    space.seed(seed)
    return np.array([[space.sample() for _ in range(num_envs)] for _ in range(n_steps)])


def _single_run(seed: int, actions: np.ndarray) -> list[tuple[np.ndarray, float]]:
    """(obs after the step, reward) of a single env that resets after each truncation (actions consumed in order)."""
    env = VMIMOEnv(**KW)
    env.reset(seed=seed)
    out = []
    for a in actions:
        obs, r, _, trunc, _ = env.step(a)
        out.append((obs.copy(), r))
        if trunc:
            env.reset()
    return out


def test_next_step_is_the_default_and_declared() -> None:
    venv = gym.make_vec("VMIMO-Small-v0", num_envs=2, vectorization_mode="vector_entry_point")
    assert venv.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    assert VMIMOVectorEnv(num_envs=2, autoreset_mode="same_step", **KW).metadata["autoreset_mode"] == \
        AutoresetMode.SAME_STEP
    with pytest.raises(ValueError, match="autoreset_mode"):
        VMIMOVectorEnv(num_envs=2, autoreset_mode="sometimes", **KW)


def test_next_step_trajectories_equal_single_envs_across_episodes() -> None:
    n, seed, steps = 3, 40, 3 * (HORIZON + 1) + 2
    venv = VMIMOVectorEnv(num_envs=n, **KW)
    obs, _ = venv.reset(seed=seed)
    acts = _actions(steps, n)
    got: list[list[tuple[np.ndarray, float]]] = [[] for _ in range(n)]
    used: list[list[np.ndarray]] = [[] for _ in range(n)]
    pending = np.zeros(n, dtype=bool)
    for t in range(steps):
        obs, r, term, trunc, info = venv.step(acts[t])
        assert not term.any()
        for i in range(n):
            if pending[i]:  # the autoreset step: a first observation, nothing earned, the action ignored
                assert r[i] == 0.0 and not trunc[i] and info["sent"][i].sum() == 0
                continue
            got[i].append((obs[i].copy(), float(r[i])))
            used[i].append(acts[t][i])
        pending = trunc.copy()
    for i in range(n):
        ref = _single_run(seed + i, np.array(used[i]))
        assert len(ref) == len(got[i]) > 2 * HORIZON
        for (o_ref, r_ref), (o, rr) in zip(ref, got[i], strict=True):
            np.testing.assert_array_equal(o, o_ref)
            assert rr == r_ref


def test_next_step_truncates_at_the_horizon_then_returns_the_first_observation() -> None:
    venv = VMIMOVectorEnv(num_envs=2, **KW)
    venv.reset(seed=3)
    acts = _actions(HORIZON + 1, 2)
    for t in range(HORIZON):
        _, _, _, trunc, _ = venv.step(acts[t])
        assert trunc.all() == (t == HORIZON - 1)
    obs, r, _, trunc, _ = venv.step(acts[HORIZON])
    assert not trunc.any() and np.all(r == 0.0)
    fresh = VMIMOEnv(**KW)
    # the new episode's first observation: time entry back at 0, and finite within the space
    assert venv.single_observation_space.contains(obs[0]) and fresh.observation_space.contains(obs[1])
    lay = fresh.obs_layout()
    np.testing.assert_array_equal(obs[:, lay["time"]], 0.0)


def test_gymnasium_vector_wrappers_accept_the_native_vector_env() -> None:
    """Gymnasium's vector observation wrappers refuse SAME_STEP; with NEXT_STEP they run and see whole episodes."""
    venv = gym.make_vec("VMIMO-Small-v0", num_envs=2, vectorization_mode="vector_entry_point",
                        action_view="multidiscrete", horizon=HORIZON)
    venv = gym.wrappers.vector.RecordEpisodeStatistics(gym.wrappers.vector.NormalizeObservation(venv))
    venv.reset(seed=0)
    venv.action_space.seed(0)
    lengths = []
    for _ in range(2 * HORIZON + 2):
        _, _, _, _, info = venv.step(venv.action_space.sample())
        if "episode" in info:
            lengths += info["episode"]["l"][info["_episode"]].tolist()
    assert lengths and set(lengths) == {HORIZON}
    with pytest.raises(ValueError, match="autoreset"):
        gym.wrappers.vector.NormalizeObservation(VMIMOVectorEnv(num_envs=2, autoreset_mode="same_step", **KW))


def test_same_step_mode_keeps_final_observation() -> None:
    venv = VMIMOVectorEnv(num_envs=2, autoreset_mode="same_step", **KW)
    venv.reset(seed=1)
    acts = _actions(HORIZON, 2)
    for t in range(HORIZON):
        obs, _, _, trunc, info = venv.step(acts[t])
    assert trunc.all() and info["_final_obs"].all()
    lay = VMIMOEnv(**KW).obs_layout()
    np.testing.assert_array_equal(obs[:, lay["time"]], 0.0)  # already the next episode
    assert np.all(info["final_obs"][:, lay["time"]] > 0)


def test_holding_an_environment_puts_back_its_state_and_stream() -> None:
    """``VMIMOCore.hold``/``release`` (what the NEXT_STEP autoreset uses): a just-reset environment stepped with
    the others comes back with its reset state, and its next slot draws what a never-stepped twin draws; an
    environment that was not just reset, or a stream not one slot into a fresh block, is refused."""
    from vmimo_env.rng import BlockRNG

    a = VMIMOVectorEnv(num_envs=3, scenario="v1").core
    b = VMIMOVectorEnv(num_envs=3, scenario="v1").core
    for core in (a, b):
        core.reset(np.arange(3), [7, 8, 9])
    rng = np.random.default_rng(0)

    def act():
        return (rng.integers(1, a.G + 1, (3, a.K)), rng.integers(0, len(a.power_levels_w), (3, a.K)),
                rng.integers(0, len(a.prefix_levels), (3, a.K)), rng.random((3, a.G)))

    first = act()
    for _ in range(3):
        step = act()
        a.step(*step)
        b.step(*step)
    ids = np.array([1])
    a.reset(ids, None)
    b.reset(ids, None)
    kept = {name: getattr(a, name)[ids].copy() for name in a.STATE_FIELDS}
    held = a.hold(ids)
    a.step(*first)
    a.release(ids, held)
    for name, value in kept.items():
        np.testing.assert_array_equal(getattr(a, name)[ids], value, err_msg=name)
    nxt = act()
    ra = a.step(*nxt)
    twin = b.replicate(ids)  # environment 1 of b: reset, never stepped since
    rt = twin.step(*(x[ids] for x in nxt))
    np.testing.assert_array_equal(ra.reward[ids], rt.reward)
    np.testing.assert_array_equal(a.h[ids], twin.h)
    with pytest.raises(ValueError, match="just-reset"):
        a.hold(ids)
    fresh = BlockRNG(2, 3, 4, block=4)
    fresh.seed(np.arange(2), [1, 2])
    with pytest.raises(ValueError, match="one slot of a fresh block"):
        fresh.rewind(np.arange(2))
