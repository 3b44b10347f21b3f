"""What a subprocess or Ray worker receives: the scene pool travels as its recipe, not its arrays."""

from __future__ import annotations

import pickle

import numpy as np

from vmimo_env.scenes import ScenePool, build_pool


def test_pool_pickles_as_its_recipe_and_comes_back_identical() -> None:
    pool = build_pool(256, seed=5)
    blob = pickle.dumps(pool)
    assert len(blob) < 1_000  # the latents alone are 256 x 5 x 64 float32 = 327 kB
    back = pickle.loads(blob)
    np.testing.assert_array_equal(back.latents, pool.latents)
    np.testing.assert_array_equal(back.labels, pool.labels)
    assert (back.size, back.seed, back.checkpoint) == (pool.size, pool.seed, pool.checkpoint)


def test_hand_built_pool_still_pickles_its_arrays() -> None:
    pool = ScenePool(np.zeros((3, 5, 64), dtype=np.float32), np.arange(3))
    back = pickle.loads(pickle.dumps(pool))
    np.testing.assert_array_equal(back.labels, pool.labels)
    assert back.latents.shape == (3, 5, 64)


def test_a_pickled_env_is_small_and_continues_bit_for_bit() -> None:
    """What SubprocVecEnv and Ray workers pay: well under 1 MB (pool and noise table travel as recipes)."""
    import gymnasium as gym

    import vmimo_env  # noqa: F401

    env = gym.make("VMIMO-v0").unwrapped
    env.reset(seed=0)
    env.action_space.seed(0)
    actions = [env.action_space.sample() for _ in range(20)]
    for a in actions[:5]:
        env.step(a)
    blob = pickle.dumps(env)
    assert len(blob) < 1_000_000
    twin = pickle.loads(blob)
    for a in actions[5:]:
        o1, r1, *_ = env.step(a)
        o2, r2, *_ = twin.step(a)
        np.testing.assert_array_equal(o1, o2)
        assert r1 == r2
