"""The seed contract check shared by the tests: environment ``i`` of a SAME_STEP vector env equals a single env
reset with ``seed + i``, step for step, across episode ends (NEXT_STEP: tests/test_vector_autoreset.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def assert_vector_equals_singles(venv: Any, make_single: Callable[[], Any], seed: int, steps: int,
                                 state: Callable[[Any], np.ndarray] | None = None) -> None:
    """Step ``venv`` (autoreset ``same_step``) with sampled actions and replay each env on ``make_single()``.

    ``state(core)`` (optional) is compared too, row ``i`` of the vector core against the single core, on every
    step that did not end an episode.
    """
    n = venv.num_envs
    venv.action_space.seed(5)
    actions = [venv.action_space.sample() for _ in range(steps)]
    record = [venv.reset(seed=seed)[0]]
    states = []
    for a in actions:
        record.append(venv.step(a))
        if state is not None:
            states.append(state(venv.unwrapped.core).copy())
    for i in range(n):
        env = make_single()
        o, _ = env.reset(seed=seed + i)
        assert np.array_equal(o, record[0][i])
        for t, a in enumerate(actions):
            o, r, _, trunc, _ = env.step({k: v[i] for k, v in a.items()})
            vo, vr, _, vtrunc, vinfo = record[t + 1]
            assert r == vr[i] and trunc == vtrunc[i], (i, t)
            if trunc:
                assert np.array_equal(o, vinfo["final_obs"][i]), (i, t)
                o, _ = env.reset()
            elif state is not None:
                assert np.array_equal(state(env.unwrapped.core)[0], states[t][i]), (i, t)
            assert np.array_equal(o, vo[i]), (i, t)
