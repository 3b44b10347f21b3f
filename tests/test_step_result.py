"""A slot's outcome owns its arrays: the per-step outputs are packed into two buffers that the core reuses and each
``StepResult`` copies whole; the single env reads its scalars from them directly. The resource AR(1) step's
compiled twin rounds its innovation as one FMA on every machine."""

from __future__ import annotations

import pickle
from fractions import Fraction

import gymnasium as gym
import numpy as np
import pytest
from numba import njit

import vmimo_env  # noqa: F401  (registers the ids)
from vmimo_env import kernels, resources
from vmimo_env.core import INFO_KEYS, OUT_FLOAT, OUT_INT, out_sections
from vmimo_env.rng import BlockRNG
from vmimo_env.vector import VMIMOVectorEnv


def _arrays(info: dict) -> list[np.ndarray]:
    out = [v for k, v in info.items() if isinstance(v, np.ndarray)]
    return out + list(info["action"].values())


@pytest.mark.parametrize("env_id", ["VMIMO-v1", "VMIMO-Mobility-v1"])  # the fused and the per-stage slot
def test_a_steps_info_and_result_survive_the_next_steps(env_id: str) -> None:
    """Values returned by one step are not changed by later steps, and no array is shared between two steps'
    infos (the buffers the kernels write are reused; what a step returns is a copy)."""
    env = gym.make(env_id)
    env.reset(seed=3)
    env.action_space.seed(3)
    u = env.unwrapped
    _, _, _, _, first = env.step(env.action_space.sample())
    res = u._last
    kept_info = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in first.items() if k != "action"}
    kept_res = {name: getattr(res, name).copy() for name in ("reward", "energy_j", "sinr", "sent", "queue",
                                                             "closed", "shares")}
    later = [env.step(env.action_space.sample())[4] for _ in range(5)]
    for key, value in kept_info.items():
        np.testing.assert_array_equal(np.asarray(first[key]), np.asarray(value), err_msg=key)
    for name, value in kept_res.items():
        np.testing.assert_array_equal(getattr(res, name), value, err_msg=name)
    for other in later:
        for a in _arrays(first):
            for b in _arrays(other):
                assert not np.shares_memory(a, b)
    assert any(not np.array_equal(first["sinr_db"], o["sinr_db"]) for o in later)  # the steps did differ


def test_a_vector_steps_infos_share_no_memory_with_the_next() -> None:
    venv = gym.make_vec("VMIMO-v1", num_envs=3, vectorization_mode="vector_entry_point")
    venv.reset(seed=2)
    venv.action_space.seed(2)
    first = venv.step(venv.action_space.sample())[4]
    kept = {k: v.copy() for k, v in first.items() if isinstance(v, np.ndarray)}
    later = [venv.step(venv.action_space.sample())[4] for _ in range(3)]
    for key, value in kept.items():
        np.testing.assert_array_equal(first[key], value, err_msg=key)
        for other in later:
            for b in _arrays(other):
                assert not np.shares_memory(first[key], b), key


def test_single_env_info_fast_path_equals_the_fields() -> None:
    """The single env's info (scalars read from the packed outputs by position) equals the result's named
    fields, value for value and type for type."""
    env = gym.make("VMIMO-v1")
    env.reset(seed=8)
    env.action_space.seed(8)
    u = env.unwrapped
    seen_closed = 0
    for _ in range(60):
        _, reward, _, _, info = env.step(env.action_space.sample())
        res = u._last
        assert tuple(info) == INFO_KEYS
        assert reward == res.reward.item(0) and type(reward) is float
        e = res.energy_j[0]
        scalars = {"accuracy_term": res.accuracy_term.item(0), "energy_term": res.energy_term.item(0),
                   "energy_j": float(e[0]) + float(e[1]) + float(e[2]) + float(e[3]),
                   "energy_tx_j": e.item(0), "energy_circuit_j": e.item(1), "energy_encode_j": e.item(2),
                   "energy_d2d_j": e.item(3), "arrived": res.arrived.item(0), "dropped": res.dropped.item(0),
                   "closed": res.closed.item(0), "correct": res.correct.item(0),
                   "expired_empty": res.expired_empty.item(0), "closed_full": res.closed_full.item(0)}
        for key, value in scalars.items():
            assert info[key] == value and type(info[key]) is type(value), key
        for key in ("sent", "sinr_db", "group", "prefix", "power_w", "queue"):
            np.testing.assert_array_equal(info[key], getattr(res, key)[0], err_msg=key)
            assert info[key].shape == (u.core.K,)
        np.testing.assert_array_equal(info["queue"], u.core.queue_lengths()[0])
        seen_closed += info["closed"]
    assert seen_closed > 0


def test_packed_sections_tile_the_buffers() -> None:
    """The sections of each packed output are contiguous, in order, and cover it exactly."""
    for spec in (OUT_FLOAT, OUT_INT):
        sections = out_sections(spec, 3, 5, 2)
        at = 0
        for name, _ in spec:
            a, b, shape = sections[name]
            assert a == at and b - a == int(np.prod(shape))
            at = b


def _fma(a: float, b: float, c: float) -> float:
    """a b + c rounded once, exactly (integer-ratio arithmetic; float() of a Fraction rounds to nearest)."""
    return float(Fraction(a) * Fraction(b) + Fraction(c))


def test_resource_step_twin_rounds_each_innovation_as_one_fma() -> None:
    """``kernels.ar1_step_into`` equals ``resources.ar1_step`` to the last bit but one everywhere; its innovation is
    exactly ``fma(e1, c1, e0 c0)`` (machine-independent); where numpy's product fuses the same way (an FMA BLAS,
    as on the machines the figures come from) the two agree bit for bit."""
    core = VMIMOVectorEnv(num_envs=4, scenario="v1").core
    phi, innov_t, slope, offset = core._res_coeffs
    rng = np.random.default_rng(0)
    N, K = 64, core.K
    base = 7
    z = rng.standard_normal((N, base + 2 * K + 3))
    state = rng.standard_normal((N, K, 2))
    twin, arg = state.copy(), np.empty((N, K, 2))
    kernels.ar1_step_into(twin, z, base, phi, innov_t, arg, slope, offset)
    eps = z[:, base:base + 2 * K].reshape(N, K, 2)
    ref = resources.ar1_step(state, eps, core.res_params)
    np.testing.assert_allclose(twin, ref, rtol=4e-16, atol=4e-16)
    np.testing.assert_array_equal(arg, twin * slope - offset)
    for i, k, x in [(0, 0, 0), (3, 1, 1), (17, K - 1, 0), (63, 2, 1), (40, 5, 1)]:
        e0, e1 = eps[i, k]
        innov = _fma(e1, innov_t[1, x], e0 * innov_t[0, x])
        assert twin[i, k, x] == state[i, k, x] * phi[x] + innov
    fused_blas = (eps @ innov_t)[..., 1]
    exact = np.array([[_fma(e[1], innov_t[1, 1], e[0] * innov_t[0, 1]) for e in row] for row in eps])
    if np.array_equal(fused_blas, exact):
        np.testing.assert_array_equal(twin, ref)


def test_block_rng_pickled_mid_block_continues_and_keeps_its_views_aliased() -> None:
    """The single env's per-slot views of the random blocks are rebuilt after unpickling, so a copy taken
    mid-block continues the same stream, block refills included."""
    rng = BlockRNG(1, 3, 4, block=4)
    rng.seed(np.arange(1), [5])
    for _ in range(6):
        rng.next()
    twin = pickle.loads(pickle.dumps(rng))
    for _ in range(10):
        (u1, z1), (u2, z2) = rng.next(), twin.next()
        np.testing.assert_array_equal(u1, u2)
        np.testing.assert_array_equal(z1, z2)
        assert np.shares_memory(u2, twin._uniform) and np.shares_memory(z2, twin._normal)


def test_an_export_with_another_signature_is_not_called() -> None:
    """Only a capsule that declares exactly the expected C signature gives an address (another SciPy build could
    export a different function under the name)."""
    module, name, signature = kernels.NDTR_EXPORT
    assert kernels.cython_function_address(module, name, signature) == kernels.scipy_ndtr_address() != 0
    assert kernels.cython_function_address(module, name, b"double complex (double complex, int)") == 0
    assert kernels.cython_function_address(module, "no_such_function", signature) == 0
    assert kernels.cython_function_address("no_such_module", name, signature) == 0


def test_the_slot_steps_the_resource_process_by_its_rule() -> None:
    """After a fused slot the resource state is ``resources.ar1_step`` of the state before, on the slot's own
    normal draws (read from a replica's identical stream): the kernel reads the right draws."""
    env = gym.make("VMIMO-v1")
    env.reset(seed=9)
    env.action_space.seed(9)
    core = env.unwrapped.core
    assert core._fused
    K, Nr = core.K, core.Nr
    for _ in range(5):
        before = core.res_state.copy()
        _, z = core.replicate([0]).rng.next()
        env.step(env.action_space.sample())
        eps = z[:, 2 * K * Nr:2 * K * Nr + 2 * K].reshape(1, K, 2)
        np.testing.assert_allclose(core.res_state, resources.ar1_step(before, eps, core.res_params),
                                   rtol=4e-16, atol=4e-16)


@njit
def _ndtr_through(addr, x, out):
    for j in range(x.shape[0]):
        out[j] = kernels._call_ndtr(addr, x[j])


def test_kernel_normal_cdf_is_scipys_own() -> None:
    """The fused slot's availability CDF calls SciPy's exported C function: the ufunc's bits on every value,
    from deep tails to the centre."""
    from scipy.special import ndtr

    addr = kernels.scipy_ndtr_address()
    assert addr != 0  # the SciPy this project supports exports it
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.standard_normal(200_000) * 3.0, np.linspace(-40.0, 40.0, 20_001),
                        [0.0, -0.0, 0.7071067811865476, -0.7071067811865476, 1e-300, -1e-300, 38.5, -38.5]])
    out = np.empty_like(x)
    _ndtr_through(addr, x, out)
    np.testing.assert_array_equal(out, ndtr(x))


def test_slot_without_the_kernel_cdf_is_the_same_slot(monkeypatch) -> None:
    """Where SciPy does not export its CDF the core applies the ufunc after the kernel: the same trajectory bit
    for bit (observations, rewards, availability)."""
    def run() -> list[np.ndarray]:
        env = gym.make("VMIMO-v1")
        obs, _ = env.reset(seed=5)
        env.action_space.seed(5)
        out = [obs]
        for _ in range(40):
            obs, reward, _, _, info = env.step(env.action_space.sample())
            out += [obs, np.array([reward]), info["p_joint"]]
        return out

    with_kernel = run()
    monkeypatch.setattr(kernels, "scipy_ndtr_address", lambda: 0)
    env = gym.make("VMIMO-v1")
    assert not env.unwrapped.core._cdf_in_kernel
    without = run()
    for a, b in zip(with_kernel, without, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("num_envs", [1, 3])
def test_kernel_read_draws_are_blockrng_next(num_envs: int) -> None:
    """The fused slot reads each slot's draws from the blocks itself (``kernels.draw_rows_into`` after
    ``BlockRNG.refill``): the same rows, in the same order, as ``BlockRNG.next``, across block ends and with
    environments whose blocks run out at different slots."""
    a, b = BlockRNG(num_envs, 3, 5, block=4), BlockRNG(num_envs, 3, 5, block=4)
    for rng in (a, b):
        rng.seed(np.arange(num_envs), list(range(7, 7 + num_envs)))
    u, z = np.zeros((num_envs, 3)), np.zeros((num_envs, 5))
    for t in range(11):
        if t == 5 and num_envs > 1:  # env 1 restarts its block (a reset without a seed)
            a.discard(np.array([1]))
            b.discard(np.array([1]))
        cu, cz = a.current()
        a.refill()
        kernels.draw_rows_into(a._uniform, a._normal, a._ptr, u, z)
        nu, nz = b.next()
        np.testing.assert_array_equal(u, nu)
        np.testing.assert_array_equal(z, nz)
        np.testing.assert_array_equal(cu, nu)  # current(): this slot's rows, without advancing
        np.testing.assert_array_equal(cz, nz)
    np.testing.assert_array_equal(a._ptr, b._ptr)


def test_kernel_draws_refuse_an_exhausted_block() -> None:
    """A pointer past its block means the caller skipped ``BlockRNG.refill``: an error, not a read past the block."""
    rng = BlockRNG(2, 3, 5, block=4)  # fresh: every pointer at the block's end
    with pytest.raises(IndexError, match="refill"):
        kernels.draw_rows_into(rng._uniform, rng._normal, rng._ptr, np.zeros((2, 3)), np.zeros((2, 5)))


def test_vector_blockrng_advances_its_pointers_in_place() -> None:
    """The fused slot holds the pointer array: ``next`` must advance it in place, not rebind it."""
    rng = BlockRNG(3, 2, 2, block=4)
    rng.seed(np.arange(3), [1, 2, 3])
    ptr = rng._ptr
    for _ in range(6):
        rng.next()
    assert rng._ptr is ptr
    np.testing.assert_array_equal(ptr, [2, 2, 2])


@pytest.mark.parametrize("scenario", ["v1", "mobility_v1"])  # the fused and the per-stage slot
def test_core_step_refuses_action_arrays_of_another_shape(scenario: str) -> None:
    """The action is copied into the core's buffers by shape: a wrong shape is a ``ValueError`` before anything
    moves (never a write past a buffer)."""
    core = VMIMOVectorEnv(num_envs=2, scenario=scenario).core
    core.reset(np.arange(2), [1, 2])
    K, G = core.K, core.G
    idx, bw = np.zeros((2, K), dtype=np.int64), np.full((2, G), 0.5)
    t = core.t.copy()
    with pytest.raises(ValueError, match="shapes"):
        core.step(idx[:1], idx, idx, bw)
    with pytest.raises(ValueError, match="shapes"):
        core.step(idx, idx, idx, np.full((2, G + 1), 0.5))
    one = gym.make("VMIMO-v1").unwrapped.core
    one.reset(np.arange(1), [0])
    with pytest.raises(ValueError, match="shapes"):
        one.step_one(idx[0, :-1], idx[0], idx[0], bw[0])
    np.testing.assert_array_equal(core.t, t)
    res = core.step(idx, idx, idx, bw)
    assert (core.t == t + 1).all() and np.isfinite(res.reward).all()


def test_a_new_random_stream_object_is_bound_before_the_next_fused_slot() -> None:
    """Assigning ``core.rng`` another ``BlockRNG`` (a copy of the same streams) continues the same trajectory:
    the fused slot binds the new blocks instead of reading the old ones."""
    a = VMIMOVectorEnv(num_envs=2, scenario="v1").core
    b = VMIMOVectorEnv(num_envs=2, scenario="v1").core
    for core in (a, b):
        core.reset(np.arange(2), [4, 5])
    assert a._fused
    rng = np.random.default_rng(0)
    acts = [(rng.integers(0, a.G + 1, (2, a.K)), rng.integers(0, len(a.power_levels_w), (2, a.K)),
             rng.integers(0, len(a.prefix_levels), (2, a.K)), rng.random((2, a.G))) for _ in range(2 * a.rng.block + 5)]
    for t, act in enumerate(acts):
        if t == 5:
            b.rng = b.rng.take(np.arange(2))
        ra, rb = a.step(*act), b.step(*act)
        np.testing.assert_array_equal(ra.reward, rb.reward)
        np.testing.assert_array_equal(a.h, b.h)


@njit
def _prefetch_closing(nc, close_env, close_pos, ring_scene, rx_len, rx_off, pool_latents, noise_table):
    for j in range(nc):
        kernels.prefetch_scene(j, close_env, close_pos, ring_scene, rx_len, rx_off, pool_latents, noise_table)


def test_scene_prefetch_emits_the_cpu_hint_and_changes_nothing() -> None:
    """The scoring's reads are requested ahead (``kernels.prefetch_scene``, used by the fused slot and the
    scoring loop): the compiled code calls LLVM's prefetch intrinsic (a wrong intrinsic name or a dropped hint
    fails here), and it reads and writes no value."""
    core = VMIMOVectorEnv(num_envs=4, scenario="v1").core
    core.reset(np.arange(4), [1, 2, 3, 4])
    rng = np.random.default_rng(0)
    full_power = np.full((4, core.K), len(core.power_levels_w) - 1)
    for _ in range(50):
        core.step(rng.integers(1, core.G + 1, (4, core.K)), full_power, np.zeros((4, core.K), dtype=np.int64),
                  np.ones((4, core.G)))
        if core.last_closing:
            break
    assert core.last_closing > 0
    args = (core.last_closing, core._close_env, core._close_pos, core.ring_scene, core.rx_len, core.rx_off,
            core.pool.latents, core.noise_table)
    before = [np.array(a, copy=True) for a in args[1:]]
    _prefetch_closing(*args)
    for a, b in zip(args[1:], before, strict=True):
        np.testing.assert_array_equal(a, b)
    ir_text = _prefetch_closing.inspect_llvm(_prefetch_closing.signatures[0])
    assert "@llvm.prefetch" in ir_text
