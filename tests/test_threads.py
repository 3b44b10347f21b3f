"""A vector env stepped on several threads (``VMIMOCore.set_num_threads``): the same bits as on one, episode ends
and autoresets included, and the thread count only where the sharded slot covers the scenario."""

from __future__ import annotations

import itertools
import pickle

import gymnasium as gym
import numpy as np
import pytest

import vmimo_env  # noqa: F401  (registers the ids)
from vmimo_env.core import MIN_ENVS_PER_THREAD, auto_threads, available_cores, shard_rows
from vmimo_env.vector import VMIMOVectorEnv


def rollout(env_id: str, num_envs: int, threads: int, steps: int, **kwargs) -> tuple[list[np.ndarray], int]:
    """Observations, rewards and the slot's info of ``steps`` random steps (the same actions for any thread
    count), flattened per step, and the core's thread count."""
    venv = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", num_threads=threads,
                        **kwargs)
    obs, _ = venv.reset(seed=11)
    venv.action_space.seed(5)
    out = [flat(obs)]
    for _ in range(steps):
        obs, reward, terminated, truncated, info = venv.step(venv.action_space.sample())
        out += [flat(obs), reward, terminated, truncated,
                *(np.asarray(info[k], dtype=float) for k in ("sinr_db", "correct", "sent", "energy_j", "queue"))]
    used = venv.unwrapped.core.num_threads
    venv.close()
    return out, used


def flat(obs) -> np.ndarray:
    if isinstance(obs, dict):
        return np.concatenate([np.asarray(v, dtype=np.float64).reshape(len(v), -1) for v in obs.values()], axis=1)
    return np.asarray(obs, dtype=np.float64)


def same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y, equal_nan=True) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("env_id, reward_mode", [("VMIMO-MultiDiscrete-v0", "model"), ("VMIMO-v1", "model"),
                                                  ("VMIMO-MultiDiscrete-v0", "soft")])
@pytest.mark.parametrize("autoreset_mode", ["next_step", "same_step"])
def test_threads_give_the_same_bits_across_episode_ends(env_id: str, reward_mode: str, autoreset_mode: str) -> None:
    # 37 environments in 3 uneven shards, a 12-slot horizon: three episode ends and their autoresets
    kw = {"horizon": 12, "autoreset_mode": autoreset_mode, "reward_mode": reward_mode}
    one, used_one = rollout(env_id, 37, 1, 40, **kw)
    three, used_three = rollout(env_id, 37, 3, 40, **kw)
    assert (used_one, used_three) == (1, 3)
    assert same(one, three)
    # and the trajectory is not trivially the same under another reward (the check can fail)
    other, _ = rollout(env_id, 37, 3, 40, **{**kw, "energy_weight": 0.0})
    assert not same(one, other)


def test_environment_i_of_a_threaded_vector_env_is_the_single_env_seeded_seed_plus_i() -> None:
    venv = VMIMOVectorEnv(num_envs=8, action_view="multidiscrete", num_threads=2)
    single = gym.make("VMIMO-MultiDiscrete-v0").unwrapped
    obs, _ = venv.reset(seed=100)
    o5, _ = single.reset(seed=105)
    np.testing.assert_array_equal(obs[5], o5)
    venv.action_space.seed(0)
    for _ in range(30):
        a = venv.action_space.sample()
        obs, reward, _, _, _ = venv.step(a)
        o5, r5, _, _, _ = single.step(a[5])
        np.testing.assert_array_equal(obs[5], o5)
        assert reward[5] == r5
    assert venv.core.num_threads == 2


def test_a_pickled_threaded_core_goes_on_with_the_same_bits() -> None:
    a = VMIMOVectorEnv(num_envs=6, action_view="multidiscrete", num_threads=2)
    a.reset(seed=3)
    a.action_space.seed(1)
    actions = [a.action_space.sample() for _ in range(20)]
    for act in actions[:10]:
        a.step(act)
    b = pickle.loads(pickle.dumps(a))
    assert b.core.num_threads == 2
    for act in actions[10:]:
        oa, ra, *_ = a.step(act)
        ob, rb, *_ = b.step(act)
        np.testing.assert_array_equal(oa, ob)
        np.testing.assert_array_equal(ra, rb)


def test_only_the_sharded_slot_takes_threads() -> None:
    # the cooperative array steps on the per-stage path, and a BS aligner scores on the numpy path: one thread
    for kwargs in ({"cooperative": True}, {"heterogeneous_devices": "variant"}):
        venv = VMIMOVectorEnv(num_envs=8, num_threads=2, **kwargs)
        assert venv.core.num_threads == 1, kwargs
    venv = VMIMOVectorEnv(num_envs=8, num_threads=2)
    assert venv.core.num_threads == 2
    assert venv.core.replicate([0, 1, 2]).num_threads == 1  # a planner's replica steps on the calling thread
    venv.core.set_num_threads(1)
    assert venv.core.num_threads == 1
    venv.core.set_num_threads(50)  # never more shards than environments
    assert venv.core.num_threads == 8


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True])
def test_num_threads_must_be_a_positive_integer(bad) -> None:
    with pytest.raises(ValueError, match="num_threads must be a positive integer"):
        VMIMOVectorEnv(num_envs=4, num_threads=bad)


def test_default_threads_need_enough_environments_per_thread() -> None:
    assert auto_threads(1) == 1
    assert auto_threads(2 * MIN_ENVS_PER_THREAD - 1) == 1 or available_cores() == 1 or MIN_ENVS_PER_THREAD == 1
    assert auto_threads(1024) == max(1, min(available_cores(), 1024 // MIN_ENVS_PER_THREAD))
    assert VMIMOVectorEnv(num_envs=4).core.num_threads == 1


def test_shards_cover_the_rows_in_order() -> None:
    for n, k in ((37, 3), (8, 2), (5, 5), (1024, 2)):
        rows = shard_rows(n, k)
        assert rows[0][0] == 0 and rows[-1][1] == n and len(rows) == k
        assert all(a[1] == b[0] for a, b in itertools.pairwise(rows))
        sizes = [hi - lo for lo, hi in rows]
        assert max(sizes) - min(sizes) <= 1


def test_closing_a_vector_env_stops_its_threads_and_a_later_step_restarts_them() -> None:
    venv = VMIMOVectorEnv(num_envs=8, action_view="multidiscrete", num_threads=2)
    venv.reset(seed=0)
    venv.step(venv.action_space.sample())
    pool = venv.core._pool
    assert pool is not None
    venv.close()
    assert venv.core._pool is None and pool._shutdown
    core = venv.core
    core.step(*(np.zeros((8, core.K), dtype=np.int64) for _ in range(3)), np.ones((8, core.G)))
    assert core._pool is not None  # the next sharded step started a pool again
    core.close()


def test_each_shard_binds_its_rows_of_the_cores_arrays_and_writes_nothing_another_shard_writes(monkeypatch) -> None:
    from vmimo_env import kernels

    bound: list[tuple] = []  # the fields of every slot struct the core binds: all rows first, then each shard's
    make = kernels.make_slot_args
    monkeypatch.setattr(kernels, "make_slot_args", lambda *fields: (bound.append(fields), make(*fields))[1])
    venv = VMIMOVectorEnv(num_envs=10, num_threads=1)
    bound.clear()
    venv.core.set_num_threads(3)
    core = venv.core
    full, shards = bound[0], bound[1:]
    assert len(shards) == 3 == len(core._shards)
    names = kernels.SLOT_FIELDS
    per_env = {i for i, a in enumerate(full) if isinstance(a, np.ndarray) and a.ndim and a.shape[0] == core.N}
    assert {names.index(n) for n in ("t", "h", "ring_scene", "u_block", "draw_ptr", "energy_j", "queue")} <= per_env
    for sh, fields in zip(core._shards, shards, strict=True):
        for i in per_env:  # a view of the shard's rows of the very array the unsharded slot binds
            rows = full[i][sh.lo:sh.hi]
            assert fields[i].shape == rows.shape and fields[i].ctypes.data == rows.ctypes.data, names[i]
    # the close lists are the shard's own; the rest every shard writes is its own rows
    for a, b in itertools.combinations(shards, 2):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if isinstance(x, np.ndarray) and (i in per_env or names[i] in ("close_env", "close_pos")):
                assert not np.shares_memory(x, y), names[i]


def test_an_error_in_one_shard_is_raised_after_every_shard_finished() -> None:
    import threading
    import time

    venv = VMIMOVectorEnv(num_envs=9, num_threads=3)
    done: list[int] = []
    lock = threading.Lock()

    def fn(sh):
        if sh.lo == venv.core._shards[1].lo:
            raise RuntimeError("shard 1 failed")
        time.sleep(0.2 if sh.lo == venv.core._shards[2].lo else 0.0)
        with lock:
            done.append(sh.lo)
        return sh.lo

    with pytest.raises(RuntimeError, match="shard 1 failed"):
        venv.core._run_shards(fn)
    assert sorted(done) == [venv.core._shards[0].lo, venv.core._shards[2].lo]  # the slow shard had finished
    assert venv.core._run_shards(lambda sh: sh.lo) == [sh.lo for sh in venv.core._shards]


def test_a_forked_child_steps_a_threaded_env() -> None:
    import multiprocessing as mp

    venv = VMIMOVectorEnv(num_envs=8, action_view="multidiscrete", num_threads=2)
    venv.reset(seed=0)
    venv.step(venv.action_space.sample())  # the parent's pool exists before the fork

    def child() -> None:
        venv.step(venv.action_space.sample())

    proc = mp.get_context("fork").Process(target=child)
    proc.start()
    proc.join(60)
    hung = proc.is_alive()
    if hung:
        proc.kill()
    assert not hung and proc.exitcode == 0


def test_with_a_bs_aligner_neither_the_step_nor_the_observation_is_sharded() -> None:
    venv = VMIMOVectorEnv(num_envs=8, num_threads=2, heterogeneous_devices="variant")
    venv.reset(seed=0)
    venv.step(venv.action_space.sample())
    assert venv.core.num_threads == 1 and venv.core._pool is None


def test_closing_twice_after_a_step_stops_the_threads_again() -> None:
    venv = VMIMOVectorEnv(num_envs=8, action_view="multidiscrete", num_threads=2)
    venv.reset(seed=0)
    venv.close()
    venv.core.step(*(np.zeros((8, venv.core.K), dtype=np.int64) for _ in range(3)), np.ones((8, venv.core.G)))
    assert venv.core._pool is not None
    venv.close()
    assert venv.core._pool is None
