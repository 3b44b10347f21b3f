"""The compiled hot-path kernels agree with the numpy physics and with the queue rules they implement."""

from __future__ import annotations

import numpy as np
import pytest

from vmimo_env import kernels, receivers
from vmimo_env.env import VMIMOEnv


@pytest.mark.parametrize(("N", "K", "Nr", "G"), [(1, 8, 4, 3), (5, 16, 8, 4), (3, 6, 2, 2), (2, 64, 16, 5)])
def test_compiled_mmse_equals_numpy_receiver(N: int, K: int, Nr: int, G: int) -> None:
    rng = np.random.default_rng(N * 100 + K)
    gain = 10 ** rng.uniform(-12, -8, (N, K, 1))
    h = (rng.standard_normal((N, K, Nr)) + 1j * rng.standard_normal((N, K, Nr))) * np.sqrt(gain / 2)
    p = rng.uniform(1e-5, 0.2, (N, K))
    grp = rng.integers(0, G + 1, (N, K))
    noise = np.c_[np.ones(N), rng.uniform(1e-16, 1e-14, (N, G))]
    fast = np.zeros((N, K))
    kernels.mmse_sinr_into(h, p, grp, noise, G, fast)
    ref = receivers.post_receiver_sinr(h, p, grp, noise, G, receiver="mmse")
    # the numpy receiver uses the inversion lemma, whose q / (1 - q) loses digits to cancellation at high SINR
    # (1e-6 relative at 56 dB, percents at 75 dB); below 40 dB the two agree closely
    low = ref < 1e4
    np.testing.assert_allclose(fast[low], ref[low], rtol=1e-7, atol=1e-12)
    assert np.all(fast[grp == 0] == 0.0)
    # and the definition itself, R_k = sigma^2 I + sum_{j != k} p_j h_j h_j^H solved directly
    exact = np.zeros((N, K))
    for i in range(N):
        for k in np.flatnonzero(grp[i]):
            g = grp[i, k]
            others = (grp[i] == g) & (np.arange(K) != k)
            Rk = noise[i, g] * np.eye(Nr) + (h[i, others].T * p[i, others]) @ h[i, others].conj()
            exact[i, k] = p[i, k] * np.real(np.vdot(h[i, k], np.linalg.solve(Rk, h[i, k])))
    np.testing.assert_allclose(fast, exact, rtol=1e-8)


def test_fifo_queues_deadlines_and_conservation() -> None:
    """Scenes leave in arrival order; none outlives its deadline; arrived = closed + still open."""
    env = VMIMOEnv(arrival_rate=2.0, deadline_slots=3)
    env.reset(seed=4)
    core = env.core
    K, G = env.cfg.num_devices, env.cfg.num_groups
    rng = np.random.default_rng(0)
    arrived = closed = 0
    for _ in range(150):
        a = {"group": rng.integers(0, G + 1, K), "power": rng.integers(0, 5, K),
             "compression": rng.integers(0, 5, K), "bandwidth": rng.uniform(0, 1, G).astype(np.float32)}
        head0, next0 = core.head.copy(), core.next_seq.copy()
        obs, _, _, _, info = env.step(a)
        arrived += info["arrived"]
        closed += info["closed"] - info["dropped"]
        # a device sends a contiguous run from its head-of-line scene
        sent = info["sent"]
        start = np.maximum(next0[0], head0[0])
        assert np.all(core.next_seq[0] >= np.minimum(start + sent, core.head[0]))
        # nothing older than the deadline is left open: head-of-line ages stay below D slots
        D = env.cfg.deadline_slots
        assert obs[env.obs_layout()["hol_age"]].max() <= (D - 1) / D + 1e-6
        open_scenes = core.tail[0] - core.head[0]
        assert 0 <= open_scenes <= env.cfg.max_pending
        assert arrived - closed == open_scenes
        q = core.queue_lengths()[0]
        assert np.all(q <= open_scenes) and np.all(q >= 0)
        assert np.all(info["queue"] == q)


# ---------------------------------------------------------------------- fading twins: the same bits as numpy
@pytest.mark.parametrize(("N", "K", "Nr", "rho"), [(1, 8, 4, 0.93), (7, 24, 4, 0.0), (3, 5, 16, 0.999)])
def test_compiled_fading_step_equals_channel_functions_bit_for_bit(N: int, K: int, Nr: int, rho: float) -> None:
    import math

    from vmimo_env import channel

    rng = np.random.default_rng(K * 10 + Nr)
    z = rng.standard_normal((N, 2 * K * Nr + 2 * K + 3))  # the slot's normals: fading first, then the rest
    h_scat = rng.standard_normal((N, K, Nr)) + 1j * rng.standard_normal((N, K, Nr))
    w = (z[:, :K * Nr] + 1j * z[:, K * Nr:2 * K * Nr]).reshape(N, K, Nr) * np.sqrt(0.5)
    ref = channel.gauss_markov_step(h_scat, rho, w)
    fast = h_scat.copy()
    kernels.gauss_markov_into(z, rho, math.sqrt(1.0 - rho * rho), fast)
    assert np.array_equal(fast, ref)
    assert not np.array_equal(fast, h_scat)  # it moved (rho < 1)

    h_los = rng.standard_normal((N, K, Nr)) + 1j * rng.standard_normal((N, K, Nr))
    scale, gain = rng.uniform(0.1, 1.0, (N, K)), 10 ** rng.uniform(-14, -8, (N, K))
    out = np.zeros((N, K, Nr), dtype=np.complex128)
    kernels.compose_into(ref, h_los, scale, gain, out)
    assert np.array_equal(out, channel.compose_channel(ref, h_los, scale, gain))


# ---------------------------------------------------------------------- action checks of the decoders' fast path
def test_native_action_status_flags_every_kind_of_bad_entry() -> None:
    G, P, C = 3, 5, 4
    g, p, c = np.array([0, 3, 1]), np.array([4, 0, 2]), np.array([3, 0, 1])
    b = np.array([0.2, 1.0, 0.0], dtype=np.float32)
    assert kernels.native_action_status(g, p, c, b, G, P, C) == 0
    assert kernels.native_action_status(g[None], p[None], c[None], b[None], G, P, C) == 0  # batched, read flat
    assert kernels.native_action_status(g, p, c, np.array([0.2, 1.5, -0.1]), G, P, C) == 1  # clip only
    for bad in (np.array([4, 0, 0]), np.array([-1, 0, 0])):
        assert kernels.native_action_status(bad, p, c, b, G, P, C) == -1
    assert kernels.native_action_status(g, np.array([5, 0, 0]), c, b, G, P, C) == -1
    assert kernels.native_action_status(g, p, np.array([0, 4, 0]), b, G, P, C) == -1
    for x in (np.nan, np.inf, -np.inf):
        assert kernels.native_action_status(g, p, c, np.array([0.1, x, 0.1]), G, P, C) == -1


def test_indices_in_range_checks_each_position_against_its_own_bound() -> None:
    nvec = np.array([4, 2, 3], dtype=np.int64)
    assert kernels.indices_in_range(np.array([3, 1, 2]), nvec)
    assert kernels.indices_in_range(np.array([[0, 0, 0], [3, 1, 2]]), nvec)
    assert not kernels.indices_in_range(np.array([0, 2, 0]), nvec)  # 2 is in range for the others, not here
    assert not kernels.indices_in_range(np.array([[0, 0, 0], [0, 0, 3]]), nvec)
    assert not kernels.indices_in_range(np.array([-1, 0, 0]), nvec)
