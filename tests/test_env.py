"""VMIMO-v0: API conformance, seeding, bad input, rendering, long-run health."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from seed_contract import assert_vector_equals_singles

import vmimo_env  # noqa: F401  (registers the ids)
from vmimo_env.env import VMIMOEnv
from vmimo_env.vector import VMIMOVectorEnv


def rollout(env: gym.Env, seed: int, steps: int, action_seed: int = 123) -> list[tuple]:
    env.action_space.seed(action_seed)
    obs, info = env.reset(seed=seed)
    out = [(obs.copy(), 0.0, info["queue"].copy())]
    for _ in range(steps):
        obs, r, term, trunc, info = env.step(env.action_space.sample())
        out.append((obs.copy(), r, info["queue"].copy(), info["correct"], info["energy_j"]))
        if term or trunc:
            obs, info = env.reset()
    return out


def same(a: list[tuple], b: list[tuple]) -> bool:
    return all(all(np.array_equal(x, y) for x, y in zip(s, t, strict=True)) for s, t in zip(a, b, strict=True))


@pytest.mark.parametrize("view", ["dict", "multidiscrete", "box"])
def test_gymnasium_check_env_passes_without_warnings(view: str) -> None:
    env = VMIMOEnv(action_view=view, scenario="small")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env, skip_render_check=True)


@pytest.mark.parametrize("view", ["multidiscrete", "box"])
def test_sb3_check_env_flat_views(view: str) -> None:
    from stable_baselines3.common.env_checker import check_env as sb3_check

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sb3_check(VMIMOEnv(action_view=view), warn=True)


def test_gym_make_with_passive_checker_and_kwargs() -> None:
    env = gym.make("VMIMO-v0", num_devices=6, num_antennas=8)
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    obs, r, term, trunc, info = env.step(env.action_space.sample())
    assert np.isfinite(r) and not term and not trunc
    assert info["sinr_db"].shape == (6,)
    with pytest.raises(ValueError, match="num_devices"):
        gym.make("VMIMO-v0", num_devices=0)
    with pytest.raises(ValueError, match="unknown scenario parameter"):
        gym.make("VMIMO-v0", num_devcies=4)


def test_same_seed_same_trajectory_different_seed_differs() -> None:
    a = rollout(VMIMOEnv(scenario="small"), seed=7, steps=120)
    b = rollout(VMIMOEnv(scenario="small"), seed=7, steps=120)
    c = rollout(VMIMOEnv(scenario="small"), seed=8, steps=120)
    assert same(a, b)
    assert not same(a, c)


def test_vector_env_i_equals_single_env_with_seed_plus_i() -> None:
    n, steps, seed = 3, 60, 11  # crosses the small scenario's 50-slot horizon: autoreset included
    venv = gym.make_vec("VMIMO-Small-v0", num_envs=n, vectorization_mode="vector_entry_point",
                        autoreset_mode="same_step")  # NEXT_STEP: tests/test_vector_autoreset.py
    assert isinstance(venv.unwrapped, VMIMOVectorEnv)
    assert_vector_equals_singles(venv, lambda: VMIMOEnv(scenario="small"), seed, steps)


def test_vector_autoreset_same_step_gives_final_obs() -> None:
    venv = VMIMOVectorEnv(num_envs=2, scenario="small", horizon=5, autoreset_mode="same_step")
    venv.reset(seed=0)
    for _ in range(4):
        _, _, _, trunc, infos = venv.step(venv.action_space.sample())
        assert not trunc.any() and "final_obs" not in infos
    obs, _, _, trunc, infos = venv.step(venv.action_space.sample())
    assert trunc.all() and infos["_final_obs"].all()
    assert not np.array_equal(obs, infos["final_obs"])
    assert np.allclose(obs[:, -1], 0.0)  # time feature restarted


def test_step_before_reset_raises() -> None:
    env = VMIMOEnv(scenario="small")
    with pytest.raises(gym.error.ResetNeeded):
        env.step(env.action_space.sample())


@pytest.mark.parametrize("view", ["dict", "multidiscrete", "box"])
def test_bad_actions_raise_value_error_naming_field(view: str) -> None:
    env = VMIMOEnv(action_view=view, scenario="small")
    env.reset(seed=0)
    good = env.action_space.sample()
    if view == "dict":
        bad_nan = dict(good, bandwidth=np.array([np.nan, 0.5], dtype=np.float32))
        bad_shape = dict(good, power=np.zeros(3, dtype=np.int64))
        bad_range = dict(good, compression=np.full(4, 9))
        with pytest.raises(ValueError, match="bandwidth"):
            env.step(bad_nan)
        with pytest.raises(ValueError, match="power"):
            env.step(bad_shape)
        with pytest.raises(ValueError, match="compression"):
            env.step(bad_range)
        with pytest.raises(ValueError, match="numeric"):
            env.step(dict(good, group=np.array(["x"] * 4)))
    else:
        a = np.asarray(good, dtype=np.float64).copy()
        a[0] = np.nan
        with pytest.raises(ValueError, match="NaN"):
            env.step(a)
        with pytest.raises(ValueError, match="last dimension"):
            env.step(np.zeros(3))
        if view == "multidiscrete":
            a = np.asarray(good).copy()
            a[0] = 17
            with pytest.raises(ValueError, match=r"group\[0\]"):
                env.step(a)
        else:
            out = env.step(np.full(env.action_space.shape, 7.0, dtype=np.float32))  # clipped, not an error
            assert np.isfinite(out[1])


def test_render_modes() -> None:
    env = VMIMOEnv(scenario="small", render_mode="rgb_array")
    env.reset(seed=3)
    f0 = env.render()
    env.step({"group": np.array([1, 1, 2, 2]), "power": np.array([4, 4, 4, 4]),
              "compression": np.array([4, 4, 4, 4]), "bandwidth": np.array([0.5, 0.5], dtype=np.float32)})
    f1 = env.render()
    assert f0.shape == f1.shape == (480, 480, 3) and f0.dtype == np.uint8
    assert not np.array_equal(f0, f1)
    text = VMIMOEnv(scenario="small", render_mode="ansi")
    text.reset(seed=3)
    s = text.render()
    assert "slot 0" in s and s.count("\n") == 1 + 4


def test_info_reports_reward_parts_consistently() -> None:
    env = VMIMOEnv()
    env.reset(seed=1)
    total_arrived = total_closed = 0
    for _ in range(100):
        _, r, _, _, info = env.step(env.action_space.sample())
        parts = info["energy_tx_j"] + info["energy_circuit_j"] + info["energy_encode_j"] + info["energy_d2d_j"]
        assert np.isclose(parts, info["energy_j"])
        assert np.isclose(r, info["accuracy_term"] - info["energy_term"])
        assert 0 <= info["correct"] <= info["closed"]
        total_arrived += info["arrived"] + info["dropped"]
        total_closed += info["closed"]
    # every arrived scene is closed within the deadline: at most deadline x max arrivals are still open
    assert 0 <= total_arrived - total_closed <= env.unwrapped.cfg.deadline_slots * 8


def test_dict_observation_mode() -> None:
    env = VMIMOEnv(obs_mode="dict")
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    assert set(obs) == set(env.obs_layout())


def test_observation_entries_match_their_documented_definitions() -> None:
    env = VMIMOEnv(obs_full_csi=True)
    env.reset(seed=2)
    core, cfg = env.core, env.cfg
    for _ in range(7):
        obs, _, _, _, info = env.step(env.action_space.sample())
    lay = env.obs_layout()
    np.testing.assert_allclose(obs[lay["gain_db"]], (10 * np.log10(core.gain[0]) + 100) / 20, rtol=1e-5)
    norm2 = (np.abs(core.h[0]) ** 2).sum(1)
    snr_db = 10 * np.log10(cfg.max_power_w * norm2 / (cfg.noise_psd_w_hz * cfg.total_bandwidth_hz / cfg.num_groups))
    np.testing.assert_allclose(obs[lay["snr_db"]], snr_db / 20, rtol=1e-5)
    np.testing.assert_allclose(obs[lay["queue"]], info["queue"] / (cfg.arrival_rate * cfg.deadline_slots), rtol=1e-6)
    np.testing.assert_allclose(obs[lay["p_joint"]], info["p_joint"], rtol=1e-6)
    corr = obs[lay["correlation"]]
    assert corr.shape == (cfg.num_devices * (cfg.num_devices - 1) // 2,) and np.all((corr >= 0) & (corr <= 1 + 1e-6))
    h0, h1 = core.h[0, 0], core.h[0, 1]
    assert np.isclose(corr[0], abs(np.vdot(h0, h1)) / np.linalg.norm(h0) / np.linalg.norm(h1), rtol=1e-5)
    csi = obs[lay["csi"]]
    hn = core.h[0] / np.sqrt(core.gain[0])[:, None]
    np.testing.assert_allclose(csi[: csi.size // 2], hn.real.ravel(), rtol=1e-4, atol=1e-6)
    assert np.isclose(obs[lay["time"]][0], 7 / cfg.horizon)
    onehot = obs[lay["modality"]].reshape(cfg.num_devices, -1)
    assert np.all(onehot.sum(1) == 1)


def test_vector_reset_accepts_a_seed_per_environment() -> None:
    venv = VMIMOVectorEnv(num_envs=2, scenario="small")
    obs, _ = venv.reset(seed=[40, 7])
    for i, s in enumerate((40, 7)):
        single, _ = VMIMOEnv(scenario="small").reset(seed=s)
        assert np.array_equal(obs[i], single)
    with pytest.raises(ValueError, match="seed list"):
        venv.reset(seed=[1, 2, 3])
