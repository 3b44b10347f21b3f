"""The PettingZoo view of VMIMO: API conformance, exact agreement with the single environment, BS bandwidth rule."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pettingzoo")

from pettingzoo.test import parallel_api_test, parallel_seed_test

import vmimo_env
from vmimo_env.env import VMIMOEnv
from vmimo_env.multiagent import (
    VMIMOParallelEnv,
    equal_shares,
    make_shared_policy_vec_env,
    proportional_shares,
)

SMALL = {"num_devices": 4, "horizon": 12}


def test_parallel_api_and_seed():
    env = vmimo_env.parallel_env(**SMALL)
    parallel_api_test(env, num_cycles=30)
    assert all(env.observation_spaces[a] is env.observation_space(a) for a in env.possible_agents)
    parallel_seed_test(lambda: vmimo_env.parallel_env(**SMALL), num_cycles=30)


def test_api_with_full_csi_dict_obs_and_agent_id():
    env = VMIMOParallelEnv(obs_full_csi=True, obs_mode="dict", include_agent_id=True, **SMALL)
    parallel_api_test(env, num_cycles=15)
    lay = env.agent_obs_layout()
    K, Nr = env.num_devices, env.cfg.num_antennas
    assert lay["csi"].stop - lay["csi"].start == 2 * Nr
    obs, _ = env.reset(seed=3)
    for k, a in enumerate(env.possible_agents):
        np.testing.assert_array_equal(obs[a][lay["agent_id"]], np.eye(K)[k])


def _per_device_reference(flat: np.ndarray, single: VMIMOEnv, k: int) -> np.ndarray:
    """Device k's slice built independently from the single env's documented layout."""
    lay = single.obs_layout()
    K = single.cfg.num_devices
    parts = [flat[lay[n]][k:k + 1] for n in ("gain_db", "snr_db", "queue", "hol_age", "p_joint")]
    parts.append(flat[lay["modality"]].reshape(K, -1)[k])
    corr = np.zeros((K, K), dtype=np.float32)
    iu = np.triu_indices(K, 1)
    corr[iu] = flat[lay["correlation"]]
    corr = corr + corr.T
    parts.append(np.delete(corr[k], k))
    parts.append(flat[lay["time"]])
    return np.concatenate(parts)


def test_agrees_with_single_env_step_for_step():
    par = VMIMOParallelEnv(**SMALL)
    single = VMIMOEnv(**SMALL)
    obs, _ = par.reset(seed=11)
    flat, _ = single.reset(seed=11)
    rng = np.random.default_rng(0)
    for _ in range(SMALL["horizon"]):
        for k, a in enumerate(par.possible_agents):
            np.testing.assert_array_equal(obs[a], _per_device_reference(flat, single, k))
        np.testing.assert_array_equal(par.state(), flat)
        acts = {a: par.action_space(a).sample() for a in par.agents}
        acts["device_0"] = np.array([1, int(rng.integers(5)), 2])  # at least one device scheduled
        native = par.joint_action(acts)
        obs, rew, term, trunc, infos = par.step(acts)
        flat, r, _, t, info = single.step(native)
        assert all(v == r for v in rew.values())  # the team reward, unchanged, to every agent
        assert all(v == t for v in trunc.values()) and not any(term.values())
        for k, a in enumerate(par.possible_agents):
            assert infos[a]["sent"] == info["sent"][k]
            assert infos[a]["team"]["correct"] == info["correct"]
    assert par.agents == []


def test_bandwidth_rules():
    g = np.array([0, 1, 1, 3, 1])
    np.testing.assert_allclose(proportional_shares(g, 3), [0.75, 0.0, 0.25])
    np.testing.assert_allclose(equal_shares(g, 3), [1 / 3, 0.0, 1 / 3])
    np.testing.assert_array_equal(proportional_shares(np.zeros(5, int), 3), np.zeros(3))
    seen = []

    def rule(group, num_groups):
        seen.append(group.copy())
        return np.full(num_groups, 0.1)

    env = VMIMOParallelEnv(bandwidth_rule=rule, **SMALL)
    env.reset(seed=0)
    acts = {a: np.array([k % 2, 0, 0]) for k, a in enumerate(env.agents)}
    native = env.joint_action(acts)
    np.testing.assert_allclose(native["bandwidth"], np.full(env.num_groups, 0.1))
    np.testing.assert_array_equal(seen[-1], [0, 1, 0, 1])


def test_env_id_and_bad_input():
    env = VMIMOParallelEnv(env_id="VMIMO-Small-v0")
    assert env.num_devices == VMIMOEnv(scenario="small").cfg.num_devices
    with pytest.raises(ValueError, match="bandwidth_rule"):
        VMIMOParallelEnv(bandwidth_rule="greedy", **SMALL)
    with pytest.raises(ValueError, match="action_view"):
        VMIMOParallelEnv(action_view="box", **SMALL)
    with pytest.raises(ValueError, match="agent must be one of"):
        env.observation_space("bs")
    env = VMIMOParallelEnv(bandwidth_rule=lambda g, n: np.ones(n + 1), **SMALL)
    env.reset(seed=0)
    acts = {a: np.array([1, 0, 0]) for a in env.agents}
    with pytest.raises(ValueError, match="shape"):
        env.step(acts)
    env = VMIMOParallelEnv(**SMALL)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="missing"):
        env.step({"device_0": np.array([1, 0, 0])})
    with pytest.raises(ValueError, match=r"device_2.*out of range"):
        env.step({**acts, "device_2": np.array([1, 99, 0])})


def test_shared_policy_vec_env_autoresets_and_reports_episodes():
    venv = make_shared_policy_vec_env(num_copies=2, seed=5, **SMALL)
    K = SMALL["num_devices"]
    assert venv.num_envs == 2 * K
    obs = venv.reset()
    ref, _ = VMIMOParallelEnv(**SMALL).reset(seed=6)  # copy 1 is seeded with seed + 1
    np.testing.assert_array_equal(obs[K:], np.stack(list(ref.values())))
    total = np.zeros(2)
    for t in range(SMALL["horizon"]):
        obs, rew, dones, infos = venv.step(np.stack([venv.action_space.sample() for _ in range(venv.num_envs)]))
        total += rew[::K]
        assert np.all(rew.reshape(2, K) == rew.reshape(2, K)[:, :1])  # one team reward per copy
        assert dones.all() == (t == SMALL["horizon"] - 1)
    assert all("terminal_observation" in i and i["TimeLimit.truncated"] for i in infos)
    np.testing.assert_allclose([infos[0]["episode"]["r"], infos[K]["episode"]["r"]], total, rtol=1e-5)
