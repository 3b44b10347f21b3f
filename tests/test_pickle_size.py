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
