"""Every action component matters, in the direction physics says; the accuracy-energy trade-off is real.

Comparisons use ``VMIMOCore.replicate``: two copies of one state stepped with two actions see the same arrivals,
fading and noise, so a difference in outcome is caused by the action alone.
"""

from __future__ import annotations

import numpy as np
import pytest

from vmimo_env.env import VMIMOEnv


def native(K: int, G: int, group, power, comp, bw) -> dict[str, np.ndarray]:
    return {"group": np.broadcast_to(np.asarray(group), (K,)).astype(np.int64),
            "power": np.broadcast_to(np.asarray(power), (K,)).astype(np.int64),
            "compression": np.broadcast_to(np.asarray(comp), (K,)).astype(np.int64),
            "bandwidth": np.broadcast_to(np.asarray(bw, dtype=np.float32), (G,)).copy()}


def warmed_env(seed: int, warm: int = 6, **kw) -> VMIMOEnv:
    env = VMIMOEnv(**kw)
    env.reset(seed=seed)
    K, G = env.cfg.num_devices, env.cfg.num_groups
    idle = native(K, G, 0, 0, 0, 1.0 / G)
    for _ in range(warm):  # build queues without sending
        env.step(idle)
    return env


def compare(env: VMIMOEnv, a: dict, b: dict, slots: int = 1):
    """Step two copies of the current state with a and b (repeated ``slots`` times); return both results."""
    core = env.core.replicate(0, 2)
    out = []
    totals = []
    for _ in range(slots):
        res = core.step(np.stack([a["group"], b["group"]]), np.stack([a["power"], b["power"]]),
                        np.stack([a["compression"], b["compression"]]), np.stack([a["bandwidth"], b["bandwidth"]]))
        out.append(res)
    for k in ("reward", "accuracy_term", "correct", "closed"):
        totals.append(sum(getattr(r, k) for r in out))
    energy = sum(r.energy_j.sum(1) for r in out)
    sinr = out[0].sinr
    return dict(zip(("reward", "acc", "correct", "closed"), totals, strict=True)) | {"energy": energy, "sinr": sinr}


def test_replicas_are_exact_copies() -> None:
    env = warmed_env(0)
    K, G = env.cfg.num_devices, env.cfg.num_groups
    a = native(K, G, [1, 1, 2, 2, 3, 3, 1, 2], 3, 2, 1 / 3)
    r = compare(env, a, a, slots=5)
    assert r["reward"][0] == r["reward"][1] and np.array_equal(r["sinr"][0], r["sinr"][1])


def power_effect(seeds: range, **kw) -> tuple[np.ndarray, np.ndarray]:
    """Per seed: accuracy and energy differences (max power minus min power) over one deadline of slots."""
    d_acc, d_energy = [], []
    for seed in seeds:
        env = warmed_env(seed, **kw)
        K, G = env.cfg.num_devices, env.cfg.num_groups
        grp = np.arange(K) % G + 1
        lo = native(K, G, grp, 0, 3, 1 / G)
        hi = native(K, G, grp, len(env.cfg.power_levels_db) - 1, 3, 1 / G)
        r = compare(env, lo, hi, slots=env.cfg.deadline_slots)
        on = r["sinr"][0] > 0
        assert np.all(r["sinr"][1][on] > r["sinr"][0][on] * 100)  # +40 dB of power: SINR up (interference too)
        d_acc.append(r["acc"][1] - r["acc"][0])
        d_energy.append(r["energy"][1] - r["energy"][0])
    return np.array(d_acc), np.array(d_energy)


def test_power_raises_sinr_and_energy_and_accuracy_where_links_are_weak() -> None:
    # default cell: the fused model is robust, so the accuracy gain of +40 dB is small but not negative
    d_acc, d_energy = power_effect(range(30))
    assert np.all(d_energy > 0)
    assert d_acc.mean() > -0.05, d_acc
    # a large cell (devices 500-1000 m away): links are weak at -17 dBm and power buys accuracy
    d_acc, d_energy = power_effect(range(12), cell_radius_m=1000.0, min_distance_m=500.0)
    assert np.all(d_energy > 0)
    assert d_acc.mean() > 0.3, d_acc


def test_compression_longer_prefix_more_accuracy_and_energy() -> None:
    # a band wide enough for 64-value latents, and -7 dBm so SINRs sit where the prefix matters (0-15 dB)
    d_acc, d_energy = [], []
    for seed in range(40):
        env = warmed_env(seed, warm=1, arrival_rate=1.0, total_bandwidth_hz=60e3)
        K, G = env.cfg.num_devices, env.cfg.num_groups
        grp = np.arange(K) % G + 1
        short = native(K, G, grp, 1, 0, 1 / G)
        long = native(K, G, grp, 1, 4, 1 / G)
        r = compare(env, short, long, slots=2 * env.cfg.deadline_slots)
        d_acc.append(r["acc"][1] - r["acc"][0])
        d_energy.append(r["energy"][1] - r["energy"][0])
    assert np.all(np.array(d_energy) >= 0) and np.mean(d_energy) > 0
    assert np.mean(d_acc) > 0.05, d_acc


def test_bandwidth_share_decides_who_gets_through() -> None:
    env = warmed_env(3)
    K, G = env.cfg.num_devices, env.cfg.num_groups
    grp = np.where(np.arange(K) < K // 2, 1, 2)
    to_group1 = native(K, G, grp, 4, 2, [1.0, 0.0, 0.0])
    to_group2 = native(K, G, grp, 4, 2, [0.0, 1.0, 0.0])
    core = env.core.replicate(0, 2)
    res = core.step(*(np.stack([to_group1[k], to_group2[k]]) for k in ("group", "power", "compression", "bandwidth")))
    assert res.sent[0, : K // 2].sum() > 0 and res.sent[0, K // 2:].sum() == 0
    assert res.sent[1, K // 2:].sum() > 0 and res.sent[1, : K // 2].sum() == 0
    # and a wider band over the same devices carries more latents per slot
    narrow = native(K, G, grp, 4, 4, [0.1, 0.1, 0.0])
    wide = native(K, G, grp, 4, 4, [0.5, 0.5, 0.0])
    r = env.core.replicate(0, 2).step(*(np.stack([narrow[k], wide[k]]) for k in
                                        ("group", "power", "compression", "bandwidth")))
    assert r.sent[1].sum() > r.sent[0].sum()


def test_grouping_matters_idle_versus_scheduled_and_interference() -> None:
    d_reward = []
    for seed in range(8):
        env = warmed_env(seed)
        K, G = env.cfg.num_devices, env.cfg.num_groups
        idle = native(K, G, 0, 2, 2, 1 / G)
        busy = native(K, G, np.arange(K) % G + 1, 2, 2, 1 / G)
        r = compare(env, idle, busy, slots=env.cfg.deadline_slots)
        d_reward.append(r["acc"][1] - r["acc"][0])
    assert np.mean(d_reward) > 0.3
    # interference: all K devices in one group on a 4-antenna BS give lower SINR than spreading them
    env = warmed_env(1)
    K, G = env.cfg.num_devices, env.cfg.num_groups
    one = native(K, G, 1, 4, 1, [1.0, 0.0, 0.0])
    spread = native(K, G, np.arange(K) % G + 1, 4, 1, [1.0, 1.0, 1.0])
    r = compare(env, one, spread)
    both = (r["sinr"][0] > 0) & (r["sinr"][1] > 0)
    assert both.sum() >= 3
    assert np.median(r["sinr"][1][both] / r["sinr"][0][both]) > 1.0


@pytest.mark.parametrize("seed", [0])
def test_trade_off_is_real_full_power_is_neither_free_nor_sufficient(seed: int) -> None:
    """Always-full costs more energy than it earns in accuracy over a cheaper schedule; idle earns nothing."""
    def run(policy: str) -> tuple[float, float, float]:
        env = VMIMOEnv()
        env.reset(seed=seed)
        K, G = env.cfg.num_devices, env.cfg.num_groups
        env.action_space.seed(seed)
        ret = acc = en = 0.0
        for _ in range(env.cfg.horizon):
            if policy == "idle":
                a = native(K, G, 0, 0, 0, 1 / G)
            elif policy == "full":
                a = native(K, G, np.arange(K) % G + 1, 4, 4, 1 / G)
            elif policy == "moderate":
                a = native(K, G, np.arange(K) % G + 1, 2, 2, 1 / G)
            else:
                a = env.action_space.sample()
            _, r, _, _, info = env.step(a)
            ret += r
            acc += info["accuracy_term"]
            en += info["energy_j"]
        return ret / env.cfg.horizon, acc / env.cfg.horizon, en / env.cfg.horizon

    idle, full, moderate = run("idle"), run("full"), run("moderate")
    assert idle[1] == 0.0 and idle[2] == 0.0
    assert full[2] > 2 * moderate[2]  # full power and rate cost far more energy
    assert full[1] < 0.999  # and still do not classify every scene correctly
    assert moderate[0] > full[0]  # a cheaper schedule earns a higher reward
