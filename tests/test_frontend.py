"""One front end behind VMIMOEnv, VMIMOVectorEnv and the SB3 adapter: one info schema, one seed contract, one
decoder entry point, one episode-statistics accumulator."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import vmimo_env  # noqa: F401  (registers the ids)
from agents.common.envs import EpisodeStatsWrapper
from vmimo_env import core as core_mod
from vmimo_env.env import VMIMOEnv
from vmimo_env.frontend import decode_action, episode_seeds
from vmimo_env.sb3 import ALLOCATION_KEYS, EPISODE_KEYS, EpisodeStats, VMIMOSB3VecEnv, allocation_step_stats
from vmimo_env.spaces import ActionLayout
from vmimo_env.vector import VMIMOVectorEnv


def test_single_and_vector_info_have_the_schemas_keys_and_agree() -> None:
    """Vector env i's info is single env (seed + i)'s info with a leading axis, key for key."""
    n, seed = 3, 21
    venv = VMIMOVectorEnv(num_envs=n, scenario="small")
    singles = [VMIMOEnv(scenario="small") for _ in range(n)]
    _, vinfo = venv.reset(seed=seed)
    sinfos = [env.reset(seed=seed + i)[1] for i, env in enumerate(singles)]
    assert tuple(vinfo) == core_mod.RESET_INFO_KEYS == tuple(sinfos[0])
    venv.action_space.seed(2)
    for _ in range(12):
        a = venv.action_space.sample()
        _, _, _, _, vinfo = venv.step(a)
        for i, env in enumerate(singles):
            _, _, _, _, info = env.step({k: v[i] for k, v in a.items()})
            assert tuple(info) == core_mod.INFO_KEYS == tuple(vinfo)
            for key in core_mod.INFO_KEYS:
                if key == "action":
                    for part, arr in info["action"].items():
                        np.testing.assert_array_equal(arr, vinfo["action"][part][i])
                else:
                    np.testing.assert_array_equal(np.asarray(info[key]), vinfo[key][i], err_msg=key)
            assert isinstance(info["accuracy_term"], float) and isinstance(info["arrived"], int)
            assert info["sinr_db"].shape == info["group"].shape == (env.cfg.num_devices,)


def test_info_meanings_hold() -> None:
    env = VMIMOEnv()
    env.reset(seed=4)
    core = env.core
    for _ in range(20):
        _, _, _, _, info = env.step(env.action_space.sample())
        tx = info["group"] > 0
        assert np.all(info["sent"][~tx] == 0) and np.all(info["power_w"][~tx] == 0.0)
        assert np.all(info["sinr_db"][~tx] == 0.0)
        np.testing.assert_array_equal(info["prefix"], core.prefix_levels[info["action"]["compression"]])
        np.testing.assert_array_equal(info["power_w"][tx], core.power_levels_w[info["action"]["power"][tx]])
        np.testing.assert_array_equal(info["queue"], core.queue_lengths()[0])
        assert info["action_mask"].all() and info["action_mask"].shape == (int(env.layout.nvec.sum()),)


def test_env_docstring_info_table_is_rendered_from_the_schema() -> None:
    doc = "\n".join(line.strip() for line in VMIMOEnv.__doc__.splitlines())
    assert core_mod.info_markdown_table() in doc
    assert len(core_mod.info_markdown_table().splitlines()) == len(core_mod.INFO_FIELDS) + 2


def test_vector_final_info_is_a_copy_of_the_last_step_info() -> None:
    venv = VMIMOVectorEnv(num_envs=2, scenario="small", horizon=3, autoreset_mode="same_step")
    venv.reset(seed=0)
    for _ in range(3):
        _, _, _, trunc, infos = venv.step(venv.action_space.sample())
    assert trunc.all() and set(infos["final_info"]) == set(core_mod.INFO_KEYS)
    for key in ("sent", "queue", "energy_j"):
        np.testing.assert_array_equal(infos["final_info"][key], infos[key])
        assert infos["final_info"][key] is not infos[key]


def test_seed_contract() -> None:
    rng = np.random.default_rng(3)
    ids = np.array([0, 2, 5])
    assert episode_seeds(10, ids, False, rng) == [10, 12, 15]
    assert episode_seeds(None, ids, False, rng) is None
    drawn = episode_seeds(None, ids, True, np.random.default_rng(3))
    assert drawn == [int(s) for s in np.random.default_rng(3).integers(2**63, size=3)]
    assert episode_seeds([1, None, 3], ids, False, rng) == [1, None, 3]
    with pytest.raises(ValueError, match="seed list"):
        episode_seeds([1, 2], ids, False, rng)
    with pytest.raises(ValueError, match="seed must be"):
        episode_seeds(1.5, ids, False, rng)
    # the unseeded first reset takes its seed from np_random: seeding np_random fixes it
    a, b = VMIMOEnv(scenario="small"), VMIMOEnv(scenario="small")
    for env in (a, b):
        env.np_random, _ = gym.utils.seeding.np_random(99)
    np.testing.assert_array_equal(a.reset()[0], b.reset()[0])
    np.testing.assert_array_equal(a.core.gain, b.core.gain)


def test_decode_checks_the_batch_shape() -> None:
    layout = ActionLayout(num_devices=3, num_groups=2, num_power=5, num_compression=5)
    one = np.zeros(layout.flat_dim, dtype=np.int64)
    assert decode_action(layout, "multidiscrete", one, batch=None)["group"].shape == (3,)
    assert decode_action(layout, "multidiscrete", np.stack([one] * 4), batch=4)["power"].shape == (4, 3)
    with pytest.raises(ValueError, match="one environment's action"):
        decode_action(layout, "multidiscrete", one[None], batch=None)
    with pytest.raises(ValueError, match=r"shape \(4, 11\) \(a batch of 4"):
        decode_action(layout, "box", np.zeros((3, layout.flat_dim), dtype=np.float32), batch=4)
    env = VMIMOEnv(scenario="small")
    env.reset(seed=0)
    batched = {k: v[None] for k, v in env.action_space.sample().items()}
    with pytest.raises(ValueError, match="one environment's action"):
        env.step(batched)


def test_episode_stats_single_wrapper_equals_sb3_adapter() -> None:
    """EpisodeStatsWrapper over gym.make and the SB3 adapter report the same episode sums (one accumulator)."""
    from stable_baselines3.common.monitor import Monitor

    n, horizon, seed = 2, 7, 13
    sb3 = VMIMOSB3VecEnv(num_envs=n, seed=seed, allocation_stats=True, scenario="small", horizon=horizon)
    sb3.reset()
    singles = [EpisodeStatsWrapper(Monitor(gym.make("VMIMO-Small-v0", action_view="multidiscrete",
                                                    horizon=horizon))) for _ in range(n)]
    for i, env in enumerate(singles):
        env.reset(seed=seed + i)
    rng = np.random.default_rng(0)
    nvec = sb3.action_space.nvec
    for _ in range(horizon):
        act = rng.integers(0, nvec, size=(n, nvec.size))
        _, _, dones, infos = sb3.step(act)
        single_infos = [env.step(act[i])[4] for i, env in enumerate(singles)]
    assert dones.all()
    for i in range(n):
        ep, ref = infos[i]["episode"], single_infos[i]["episode"]
        assert set(EPISODE_KEYS + ALLOCATION_KEYS) <= set(ep) and set(EPISODE_KEYS + ALLOCATION_KEYS) <= set(ref)
        for key in EPISODE_KEYS + ALLOCATION_KEYS:
            assert ep[key] == pytest.approx(ref[key], rel=1e-12, abs=1e-12), key
        assert ep["l"] == ref["l"] == horizon and ep["r"] == pytest.approx(ref["r"], rel=1e-6)
    plain = VMIMOSB3VecEnv(num_envs=1, seed=0, scenario="small", horizon=2)
    assert plain.stats.keys == EPISODE_KEYS


def test_episode_stats_accumulates_and_clears() -> None:
    stats = EpisodeStats(2, allocation=True)
    info = {k: np.array([1.0, 2.0]) for k in EPISODE_KEYS}
    info.update(group=np.array([[1, 1, 0], [2, 0, 1]]), prefix=np.array([[8, 16, 64], [4, 4, 4]]),
                power_w=np.array([[0.1, 0.01, 0.0], [0.1, 0.0, 0.001]]), sent=np.array([[2, 1, 0], [0, 0, 3]]))
    stats.add(np.array([0.5, -1.0]), info)
    stats.add(np.array([0.5, -1.0]), info)
    assert stats.sums_of(0)["accuracy_term"] == 2.0 and stats.sums_of(1)["arrived"] == 4.0
    assert stats.ret.tolist() == [1.0, -2.0] and stats.length.tolist() == [2, 2]
    # one group per env and step: env 0 sends from devices 0 and 1 (both group 1), env 1 from device 2 only
    assert stats.sums_of(0)["groups_used"] == 2.0 and stats.sums_of(1)["groups_used"] == 2.0
    assert stats.sums_of(0)["tx_device_slots"] == 4.0 and stats.sums_of(1)["prefix_sum"] == 8.0
    assert stats.sums_of(0)["power_dbm_sum"] == pytest.approx(2 * (20.0 + 10.0))
    stats.clear(np.array([True, False]))
    assert stats.sums_of(0)["accuracy_term"] == 0.0 and stats.length.tolist() == [0, 2]
    assert stats.sums_of(1)["arrived"] == 4.0


def test_allocation_stats_count_distinct_groups() -> None:
    group = np.array([[1, 2, 2, 3, 0], [0, 0, 0, 0, 0], [3, 3, 3, 3, 3]])
    sent = np.array([[1, 1, 0, 2, 5], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]])
    out = allocation_step_stats(group, np.full((3, 5), 8), np.where(group > 0, 0.1, 0.0), sent)
    assert out["groups_used"].tolist() == [3.0, 0.0, 1.0]
    assert out["tx_device_slots"].tolist() == [3.0, 0.0, 1.0] and out["latents_sent"].tolist() == [4.0, 0.0, 1.0]
