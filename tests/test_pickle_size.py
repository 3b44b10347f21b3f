"""What a subprocess or Ray worker receives: the scene pool travels as its recipe, not its arrays."""

from __future__ import annotations

import pickle

import gymnasium as gym
import numpy as np
import pytest

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


def test_a_pickled_heterogeneous_env_is_small_and_a_refit_continues_bit_for_bit() -> None:
    """VMIMO-Hetero-v1's fitted BS aligner (7.5 MB of tables) travels as its recipe; the receiver refits the same
    maps. The fit cache is cleared before unpickling, so the twin really refits, as a fresh worker does."""
    import gymnasium as gym

    import vmimo_env  # noqa: F401
    from vmimo_env import heterogeneous as het

    env = gym.make("VMIMO-Hetero-v1").unwrapped
    assert env.core.bs_aligner is not None
    env.reset(seed=3)
    env.action_space.seed(3)
    actions = [env.action_space.sample() for _ in range(30)]
    for a in actions[:5]:
        env.step(a)
    blob = pickle.dumps(env)
    assert len(blob) < 1_000_000
    assert len(pickle.dumps(env.core.bs_aligner)) < 1_000
    het._fit_bs_aligner.cache_clear()
    twin = pickle.loads(blob)
    mine, theirs = env.core.bs_aligner, twin.core.bs_aligner
    assert theirs is not mine  # refitted, not shared
    for name in ("weights", "bias", "log_mid", "prefix_index", "active", "noise_vars"):
        np.testing.assert_array_equal(getattr(theirs, name), getattr(mine, name))
    accuracy = []
    for a in actions[5:]:
        o1, r1, _, _, i1 = env.step(a)
        o2, r2, _, _, i2 = twin.step(a)
        np.testing.assert_array_equal(o1, o2)
        assert r1 == r2
        assert i1["accuracy_term"] == i2["accuracy_term"]
        accuracy.append(i1["accuracy_term"])
    assert any(acc != 0 for acc in accuracy)  # scenes were scored, so the aligner was on the path


def test_second_heterogeneous_env_and_unpickling_do_not_refit(monkeypatch) -> None:
    """A second gym.make("VMIMO-Hetero-v1") in a process, and an unpickled env, reuse the fit (counted, not timed:
    robust on a loaded machine)."""
    import gymnasium as gym

    import semantic_models.alignment as alignment
    import vmimo_env  # noqa: F401
    from vmimo_env import heterogeneous as het

    fits = []
    real_fit = alignment.fit_latent_aligner

    def counting_fit(*args, **kwargs):
        fits.append(1)
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(alignment, "fit_latent_aligner", counting_fit)
    het._fit_bs_aligner.cache_clear()
    first = gym.make("VMIMO-Hetero-v1").unwrapped
    n_modalities = len(first.cfg.heterogeneous_modalities)
    assert n_modalities > 0 and len(fits) == n_modalities  # one fit per heterogeneous modality
    second = gym.make("VMIMO-Hetero-v1").unwrapped
    assert second.core.bs_aligner is first.core.bs_aligner
    back = pickle.loads(pickle.dumps(first))
    assert back.core.bs_aligner is first.core.bs_aligner
    fixed = first.core.bs_aligner.fixed_noise(0.1)  # the ablation's variant pickles as its own recipe
    fixed_back = pickle.loads(pickle.dumps(fixed))
    np.testing.assert_array_equal(fixed_back.log_mid, fixed.log_mid)
    assert not np.array_equal(fixed.log_mid, first.core.bs_aligner.log_mid)
    assert len(fits) == n_modalities


@pytest.mark.parametrize("dropped", ["_act", "_out_fs", "pool"])
def test_a_pickle_of_another_version_is_refused_by_name(dropped: str) -> None:
    """A pickle carries the core's attributes, not its code: one that lacks what this version rebuilds from (as a
    pickle written by another version would) is a ``ValueError`` naming the missing attribute, not an obscure
    failure deep in the rebuild."""
    env = gym.make("VMIMO-v1").unwrapped
    env.reset(seed=0)
    core = env.core
    state = core.__getstate__()
    del state[dropped]
    fresh = object.__new__(type(core))
    with pytest.raises(ValueError, match=f"another version of vmimo_env.*{dropped}"):
        fresh.__setstate__(state)
