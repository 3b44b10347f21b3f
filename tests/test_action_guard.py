"""A malformed action never corrupts an environment: it is refused (ValueError naming the field) before any state
changes, or clipped as documented, and the trajectory afterwards is the one that never saw it."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vmimo_env  # noqa: F401  (registers the ids)

ENV_ID = "VMIMO-Small-v0"
VIEWS = ("dict", "multidiscrete", "box")
KEYS = ("group", "power", "compression", "bandwidth")


@pytest.fixture(scope="module")
def pairs() -> dict[str, tuple[gym.Env, gym.Env]]:
    """Per view: the env under test and a reference env that only ever sees valid actions."""
    return {view: (gym.make(ENV_ID, action_view=view), gym.make(ENV_ID, action_view=view)) for view in VIEWS}


def _valid_actions(env: gym.Env, n: int, seed: int) -> list[Any]:
    space = env.unwrapped.layout.space(env.unwrapped.action_view, seed=seed)
    return [space.sample() for _ in range(n)]


def _assert_same_trajectory(env: gym.Env, ref: gym.Env, actions: list[Any]) -> None:
    for a in actions:
        o1, r1, _, t1, _ = env.step(a)
        o2, r2, _, t2, _ = ref.step(a)
        np.testing.assert_array_equal(o1, o2)
        assert r1 == r2 and t1 == t2


# ---------------------------------------------------------------------- malformed actions
def _corrupt_part(arr: np.ndarray, kind: str, hi: int, discrete: bool) -> tuple[Any, Any]:
    """(malformed part, the part the env must act on if it is accepted; None if it must be refused)."""
    n = arr.shape[-1]
    if kind == "batch1":
        return arr[None], None
    if kind == "batch2":
        return np.stack([arr, arr]), None
    if kind == "batch11":
        return arr[None, None], None
    if kind == "scalar":
        return arr[0], None
    if kind == "short":
        return arr[:-1], None
    if kind == "long":
        return np.concatenate([arr, arr[:1]]), None
    if kind == "complex":
        return arr + 7j, None
    if kind == "bool":
        return arr.astype(bool), None
    if kind == "object":
        return arr.astype(object), None
    if kind == "str":
        return arr.astype(str), None
    if kind == "ragged":
        return [list(arr), [0]], None
    if kind in ("nan", "inf", "-inf"):
        bad = arr.astype(np.float64)
        bad[n // 2] = float(kind)
        return bad, None
    if discrete:
        bad = arr.copy()
        if kind == "negative":
            bad[0] = -1
        elif kind == "too_high":
            bad[-1] = hi
        elif kind == "huge":
            return np.full(n, 1e300), None
        elif kind == "fraction":
            return arr + 0.5, None
        elif kind == "float_int":  # floats holding integers are accepted as indices
            return arr.astype(np.float64), arr
        return bad, None
    # bandwidth shares outside [0, 1]: documented clipping
    bad = arr.astype(np.float64).copy()
    bad[0] = {"negative": -3.0, "too_high": 7.5, "huge": 1e300}.get(kind, 2.0)
    return bad, np.clip(bad, 0.0, 1.0).astype(np.float32)


KINDS = ("batch1", "batch2", "batch11", "scalar", "short", "long", "complex", "bool", "object", "str", "ragged",
         "nan", "inf", "-inf", "negative", "too_high", "huge", "fraction", "float_int")


def _malformed(env: gym.Env, valid: Any, key: str, kind: str) -> tuple[Any, Any, str]:
    """(malformed action, equivalent valid action or None if it must be refused, field the error must name)."""
    layout = env.unwrapped.layout
    if env.unwrapped.action_view == "dict":
        his = {"group": layout.num_groups + 1, "power": layout.num_power, "compression": layout.num_compression}
        bad_part, ok_part = _corrupt_part(np.asarray(valid[key]), kind, his.get(key, 1), key != "bandwidth")
        bad = {**valid, key: bad_part}
        ok = None if ok_part is None else {**valid, key: ok_part}
        return bad, ok, f"action['{key}']"
    flat = np.asarray(valid)
    if env.unwrapped.action_view == "multidiscrete":
        bad, ok = _corrupt_part(flat, kind, int(layout.nvec[-1]), True)
        return bad, ok, "action"
    # box: every out-of-range value is clipped to [-1, 1]
    if kind in ("negative", "too_high", "huge"):
        bad = flat.astype(np.float64).copy()
        j = {"negative": 0, "too_high": -1, "huge": len(flat) // 2}[kind]
        bad[j] = {"negative": -4.0, "too_high": 9.0, "huge": 1e300}[kind]
        return bad, np.clip(bad, -1.0, 1.0), "action"
    if kind in ("fraction", "float_int"):  # in-range floats are what the box view takes
        return flat.astype(np.float64), flat.astype(np.float64), "action"
    bad, _ = _corrupt_part(flat, kind, 1, False)
    return bad, None, "action"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(view=st.sampled_from(VIEWS), key=st.sampled_from(KEYS), kind=st.sampled_from(KINDS),
       seed=st.integers(0, 2**16), warmup=st.integers(0, 3))
def test_malformed_action_is_refused_or_clipped_and_leaves_the_trajectory(
        pairs: dict[str, tuple[gym.Env, gym.Env]], view: str, key: str, kind: str, seed: int, warmup: int) -> None:
    env, ref = pairs[view]
    env.reset(seed=seed)
    ref.reset(seed=seed)
    acts = _valid_actions(env, warmup + 4, seed)
    _assert_same_trajectory(env, ref, acts[:warmup])
    bad, ok, field = _malformed(env, acts[warmup], key, kind)
    if ok is None:
        with pytest.raises(ValueError) as err:
            env.step(bad)
        msg = str(err.value)
        assert field in msg, msg
        assert len(msg) < 600, msg
    else:
        o1, r1, *_ = env.step(bad)
        o2, r2, *_ = ref.step(ok)
        np.testing.assert_array_equal(o1, o2)
        assert r1 == r2
    _assert_same_trajectory(env, ref, acts[warmup + 1:])


@pytest.mark.parametrize("view", VIEWS)
@pytest.mark.parametrize("lead", [(1,), (2,)])
def test_batch_shaped_action_names_field_and_keeps_rewards(pairs, view: str, lead: tuple[int, ...]) -> None:
    # the reported case: a (1, K) power array (or a (1, D) flat action) reached a numba kernel after the random
    # stream had advanced, so later rewards differed from a run that never saw it
    env, ref = pairs[view]
    env.reset(seed=7)
    ref.reset(seed=7)
    acts = _valid_actions(env, 20, 3)
    a = acts[0]
    bad = {**a, "power": np.broadcast_to(a["power"], (*lead, len(a["power"])))} if view == "dict" else \
        np.broadcast_to(a, (*lead, len(a)))
    with pytest.raises(ValueError, match=r"action(\['power'\])? must have shape \(\d+,\) \(one environment"):
        env.step(bad)
    _assert_same_trajectory(env, ref, acts)


@pytest.mark.parametrize("view", VIEWS)
def test_vector_env_refuses_unbatched_action(view: str) -> None:
    venv = gym.make_vec(ENV_ID, num_envs=2, vectorization_mode="vector_entry_point", action_view=view)
    venv.reset(seed=0)
    single = venv.unwrapped.single_action_space.sample()
    with pytest.raises(ValueError, match=r"shape \(2, \d+\) \(a batch of 2 environments\)"):
        venv.step(single)
    venv.step(venv.action_space.sample())
