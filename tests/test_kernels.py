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
