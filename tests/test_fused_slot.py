"""The fused slot (``kernels.slot_physics``, one compiled call) against the per-stage reference path.

``VMIMOCore`` steps a scenario through the fused call whenever it covers it (no cooperative array, no spatial
correlation, no mobility, the compiled MMSE receiver) and through ``_step_reference`` otherwise. Both must give
the same world: every state array bit for bit, every observation bit for bit, and the reward and energy to the
last bits of a float64 sum (the fused path adds each energy part over devices in index order, numpy's reduction
may pair them differently).
"""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from vmimo_env.core import VMIMOCore
from vmimo_env.vector import VMIMOVectorEnv

# scenarios the fused path serves: v0 and v1 defaults, the dense cell, the IoT class, the EVM-capped v1, soft
# reward, bursty arrivals, heterogeneous devices (aligner in the head), the "devices" close rule
FUSED = [("default", {}), ("v1", {}), ("dense_v1", {}), ("iot_v1", {}), ("v1", {"reward_mode": "soft"}),
         ("v1", {"arrival_process": "mmpp"}), ("v1", {"close_rule": "devices", "score_at_truncation": False}),
         ("hetero_v1", {})]
EXACT_RESULT_FIELDS = ("arrived", "dropped", "closed", "correct", "expired_empty", "closed_full", "sent", "sinr",
                       "group", "power_w", "prefix", "shares", "sinr_db")
CLOSE_RESULT_FIELDS = ("reward", "accuracy_term", "energy_term", "energy_j")


def _pair(scenario: str, overrides: dict, n: int = 3, seed: int = 7) -> tuple[VMIMOCore, VMIMOCore]:
    cores = []
    for fused in (True, False):
        core = VMIMOVectorEnv(num_envs=n, scenario=scenario, **overrides).core
        assert core._fused, f"{scenario} {overrides} should take the fused path"
        core._fused = fused
        core.reset(np.arange(n), [seed + i for i in range(n)])
        cores.append(core)
    return cores[0], cores[1]


def _random_actions(core: VMIMOCore, rng: np.random.Generator):
    n, k, g = core.N, core.K, core.G
    return (rng.integers(0, g + 1, (n, k)), rng.integers(0, len(core.power_levels_w), (n, k)),
            rng.integers(0, len(core.prefix_levels), (n, k)), rng.random((n, g)).astype(np.float32))


@pytest.mark.parametrize(("scenario", "overrides"), FUSED, ids=[f"{s}-{'-'.join(o) or 'base'}" for s, o in FUSED])
def test_fused_slot_equals_reference(scenario: str, overrides: dict) -> None:
    fused, ref = _pair(scenario, overrides)
    rng = np.random.default_rng(0)
    steps = min(fused.cfg.horizon, 120)
    closed = 0
    for _ in range(steps):
        action = _random_actions(fused, rng)
        a, b = fused.step(*action), ref.step(*action)
        for name in EXACT_RESULT_FIELDS:
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
        for name in CLOSE_RESULT_FIELDS:
            np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=1e-12, atol=1e-15, err_msg=name)
        for name in VMIMOCore.STATE_FIELDS:
            np.testing.assert_array_equal(getattr(fused, name), getattr(ref, name), err_msg=name)
        np.testing.assert_array_equal(fused.observe(), ref.observe())
        closed += int(a.closed.sum())
    assert closed > 0  # the head ran on closing scenes, so the comparison covered the scoring


@pytest.mark.parametrize(("scenario", "overrides"), [("cooperative", {}), ("mobility_v1", {}),
                                                     ("v1", {"spatial_correlation": 0.5}),
                                                     ("v1", {"receiver": "zf"})])
def test_reference_path_serves_what_the_fused_call_does_not(scenario: str, overrides: dict) -> None:
    core = VMIMOVectorEnv(num_envs=2, scenario=scenario, **overrides).core
    assert not core._fused
    core.reset(np.arange(2), [1, 2])
    res = core.step(*_random_actions(core, np.random.default_rng(1)))
    assert np.isfinite(res.reward).all()


def test_fused_energy_parts_follow_the_energy_model() -> None:
    """Each energy part of the fused slot is the energy module's formula summed over the devices."""
    from vmimo_env import rules

    fused, _ = _pair("v1", {})
    rng = np.random.default_rng(3)
    for _ in range(30):
        res = fused.step(*_random_actions(fused, rng))
        parts = rules.device_energy_j(res.power_w, fused._airtime, res.sent, fused.encoder_mflops, fused.cfg)
        for j, part in enumerate(parts):
            np.testing.assert_allclose(res.energy_j[:, j], part.sum(1), rtol=1e-12, atol=1e-18)
        assert (res.energy_j[:, 3] == 0).all()
        np.testing.assert_allclose(res.energy_term, rules.energy_term(res.energy_j.sum(1), fused.cfg), rtol=1e-14)


def test_soft_rewards_of_single_and_vector_envs_are_equal() -> None:
    """The head scores each closing scene on its own (``scoring.closing_logits``), so a single env's soft rewards
    equal those of the same env inside a vector env bit for bit, whatever else closes in the batch."""
    import gymnasium as gym

    import vmimo_env  # noqa: F401  (registers the ids)

    n, steps = 16, 60  # about 40 closing scenes a slot: a batch no single env sees
    venv = VMIMOVectorEnv(num_envs=n, scenario="v1", reward_mode="soft")
    venv.action_space.seed(2)
    actions = [venv.action_space.sample() for _ in range(steps)]
    venv.reset(seed=40)
    rewards, obs = [], []
    for a in actions:
        o, r, *_ = venv.step(a)
        rewards.append(r.copy())
        obs.append(o.copy() if not isinstance(o, dict) else {k: v.copy() for k, v in o.items()})
    for i in (0, n - 1):
        env = gym.make("VMIMO-v1", reward_mode="soft")
        env.reset(seed=40 + i)
        for t, a in enumerate(actions):
            o, r, *_ = env.step({k: v[i] for k, v in a.items()})
            assert r == rewards[t][i]
            ref = obs[t]
            if isinstance(o, dict):
                for k in o:
                    np.testing.assert_array_equal(o[k], ref[k][i])
            else:
                np.testing.assert_array_equal(o, ref[i])


@pytest.mark.parametrize("scenario", ["default", "v1", "dense_v1"])
def test_scoring_kernel_equals_gather_and_numpy_head(scenario: str) -> None:
    """``scoring.closing_logits`` (each closing scene's received values through the compiled head) against the
    batch path spelled out: ``kernels.gather_received`` then the numpy head on the batch. Same scenes, lengths
    and pool ids; logits to float32 rounding and the same decisions (a stale or wrong compiled head fails)."""
    from vmimo_env import kernels, scoring

    core = VMIMOVectorEnv(num_envs=8, scenario=scenario).core
    core.reset(np.arange(8), list(range(30, 38)))
    rng = np.random.default_rng(3)
    checked = 0
    for _ in range(40):
        core.step(*_random_actions(core, rng))
        nc = int(core._closed.sum())
        if nc == 0:
            continue
        logits = np.zeros((nc, core.model.num_classes), dtype=np.float32)
        lens, scene = np.zeros((nc, core.M), dtype=np.int64), np.zeros(nc, dtype=np.int64)
        scoring.closing_logits(core._close_env, core._close_pos, nc, core.ring_scene, core.rx_len, core.rx_snr,
                               core.rx_off, core.pool.latents, core.noise_table, lens, scene,
                               *core.model.head_weights, logits)
        lat = np.zeros((nc, core.M, 64), dtype=np.float32)
        lens2, scene2 = np.zeros_like(lens), np.zeros_like(scene)
        kernels.gather_received(core._close_env, core._close_pos, nc, core.ring_scene, core.rx_len, core.rx_snr,
                                core.rx_off, core.pool.latents, core.noise_table, lat, lens2, scene2)
        np.testing.assert_array_equal(lens, lens2)
        np.testing.assert_array_equal(scene, scene2)
        ref = core.model.classify_numpy(lat, lens2)
        np.testing.assert_allclose(logits, ref, rtol=2e-5, atol=2e-5 * float(np.abs(ref).max()))
        assert (logits.argmax(1) == ref.argmax(1)).mean() >= 0.99
        checked += nc
    assert checked > 100


def test_bound_argument_structs_name_the_kernels_parameters() -> None:
    """Each compiled struct of bound arguments lists exactly its kernel's fixed parameters, in order, and its
    ``*_bound`` call passes them on: the struct and the kernel cannot drift apart unnoticed."""
    import inspect
    import re

    from vmimo_env import kernels, scoring

    def params(fn) -> list[str]:
        return list(inspect.signature(fn.py_func).parameters)

    assert list(kernels.SLOT_FIELDS) == params(kernels.slot_physics)
    assert list(kernels.OBSERVE_FIELDS) == params(kernels.observe)
    assert list(scoring.SCORE_FIELDS) == params(scoring.slot_score)[1:]
    for wrapper, fields in ((kernels.slot_physics_bound, kernels.SLOT_FIELDS),
                            (kernels.observe_bound, kernels.OBSERVE_FIELDS),
                            (scoring.slot_score_bound, scoring.SCORE_FIELDS)):
        passed = re.findall(r"\bst\.(\w+)", inspect.getsource(wrapper.py_func))
        assert passed == list(fields), wrapper.py_func.__name__


@njit
def _struct_arrays(slot, obs, score):
    return (slot.h, slot.ring_scene, slot.sinr, slot.energy_j, slot.queue, obs.gain, obs.out, score.rx_len,
            score.logits, score.energy_j, score.reward)


def test_bound_structs_hold_the_cores_arrays_not_copies() -> None:
    """The structs reference the core's own arrays, on a new core, a replica and an unpickled copy (so an update
    made in place is what the next compiled call sees), and the observation follows a gain written in place."""
    import pickle

    core = VMIMOVectorEnv(num_envs=2, scenario="v1").core
    core.reset(np.arange(2), [1, 2])
    for c in (core, core.replicate([1, 0, 1]), pickle.loads(pickle.dumps(core))):
        held = _struct_arrays(c._slot_args, c._observe_args, c._score_args)
        mine = (c.h, c.ring_scene, c._sinr, c._energy_j, c._queue, c.gain, c._obs, c.rx_len, c._logit_buf,
                c._energy_j, c._reward)
        assert all(np.shares_memory(a, b) and a.shape == b.shape for a, b in zip(held, mine, strict=True))
        # the per-step buffers are sections of the two packed outputs a result copies
        for buf in (c._reward, c._energy_j, c._sinr, c._sinr_db, c._band_hz):
            assert np.shares_memory(buf, c._out_f)
        for buf in (c._arrived, c._correct, c._full, c._n_send, c._prefix, c._queue):
            assert np.shares_memory(buf, c._out_i)
    before = core.observe()
    core.gain[...] *= 10.0
    after = core.observe()
    assert not np.array_equal(before, after)
    np.testing.assert_array_equal(core._obs, after)


def _stale_scoring_fixture():
    """A compiled closing_logits whose machine code is wrong (one logit off by one), as a cached copy of an older
    head would be, and the core arrays the check needs."""
    from numba import njit

    from vmimo_env import scoring

    real = scoring.closing_logits

    def wrong(close_env, close_pos, nc, ring_scene, rx_len, rx_snr, rx_off, pool_latents, noise_table, out_len,
              out_scene, embed_t, embed_table, w_fuse, blocks_t, out_t, logits):
        real(close_env, close_pos, nc, ring_scene, rx_len, rx_snr, rx_off, pool_latents, noise_table, out_len,
             out_scene, embed_t, embed_table, w_fuse, blocks_t, out_t, logits)
        logits[0, 0] += 1.0

    core = VMIMOVectorEnv(num_envs=1, scenario="v1").core
    return scoring, real, njit(wrong), (core.pool.latents, core.pool.labels, core.noise_table,
                                        core.model.head_weights)


def test_stale_compiled_scoring_is_found_and_recompiled(monkeypatch) -> None:
    """Numba's cache would keep a compiled copy of an old head in ``scoring`` after an update of
    ``head_kernel.py`` alone; the first core of a process checks one synthetic scene and recompiles what disagrees
    (here: code compiled from a wrong source, whose current source is right)."""
    scoring, real, stale, args = _stale_scoring_fixture()
    assert scoring.check_compiled_scoring(*args, force=True) == []  # the shipped code is consistent
    monkeypatch.setattr(scoring, "closing_logits", stale)
    assert scoring._stale("closing_logits", *args)
    stale._compiler.py_func = real.py_func  # the source on disk is the current one: recompiling fixes it
    assert scoring.check_compiled_scoring(*args, force=True) == ["closing_logits"]
    assert not scoring._stale("closing_logits", *args)


def test_scoring_that_stays_wrong_after_recompiling_raises(monkeypatch) -> None:
    scoring, _, wrong, args = _stale_scoring_fixture()
    monkeypatch.setattr(scoring, "closing_logits", wrong)
    with pytest.raises(RuntimeError, match="closing_logits"):
        scoring.check_compiled_scoring(*args, force=True)


def _wrong_with(real):
    def wrong(close_env, close_pos, nc, ring_scene, rx_len, rx_snr, rx_off, pool_latents, noise_table, out_len,
              out_scene, embed_t, embed_table, w_fuse, blocks_t, out_t, logits, lat, work, nzi):
        real(close_env, close_pos, nc, ring_scene, rx_len, rx_snr, rx_off, pool_latents, noise_table, out_len,
             out_scene, embed_t, embed_table, w_fuse, blocks_t, out_t, logits, lat, work, nzi)
        logits[0, 1] -= 1.0
    return wrong


def _wrong_bound(real):
    def wrong(nc, st):
        real(nc, st)
        st.reward[0] += 1.0
    return wrong


@pytest.mark.parametrize(("name", "make_wrong"), [("closing_logits_with", _wrong_with),
                                                  ("slot_score_bound", _wrong_bound)])
def test_the_guard_checks_every_cached_scoring_function(monkeypatch, name, make_wrong) -> None:
    """The scratch-taking head loop and the bound call the fused slot enters are checked too: a cached copy that
    disagrees with the pieces it calls is found, and recompiled from the current source."""
    from numba import njit

    scoring, _, _, args = _stale_scoring_fixture()
    real = getattr(scoring, name)
    stale = njit(make_wrong(real))
    monkeypatch.setattr(scoring, name, stale)
    assert scoring._stale(name, *args)
    stale._compiler.py_func = real.py_func
    assert scoring.check_compiled_scoring(*args, force=True) == [name]
    assert not scoring._stale(name, *args)
