"""The BS view equals the core's state; the rules it is read with equal what the slot does; replicas are exact."""

from __future__ import annotations

import pickle

import gymnasium as gym
import numpy as np
import pytest

import vmimo_env
from vmimo_env import energy, rules
from vmimo_env.bs_view import BSView, action_energy_j, band_hz, planned_latents, predict_sinr
from vmimo_env.vector import VMIMOVectorEnv


def random_native(rng: np.random.Generator, n: int, K: int, G: int, L_p: int, L_c: int, idle: float = 0.2):
    group = rng.integers(1, G + 1, (n, K))
    group[rng.random((n, K)) < idle] = 0
    return {"group": group, "power": rng.integers(0, L_p, (n, K)), "compression": rng.integers(0, L_c, (n, K)),
            "bandwidth": rng.uniform(0.0, 1.0, (n, G)).astype(np.float32)}


def warmed(n: int = 3, steps: int = 12, seed: int = 0, **kw) -> VMIMOVectorEnv:
    """A vector env after a few random slots (queues, held modalities and deadlines in every state)."""
    venv = VMIMOVectorEnv(num_envs=n, **kw)
    venv.reset(seed=seed)
    rng = np.random.default_rng(seed)
    cfg = venv.cfg
    for _ in range(steps):
        venv.step(random_native(rng, n, cfg.num_devices, cfg.num_groups, len(cfg.power_levels_db),
                                len(cfg.compression_levels), idle=0.6))
    return venv


# ====================================================================== contents
def test_view_equals_the_core_state() -> None:
    venv = warmed(steps=20)  # the default scenario: several devices per modality, so some queued latents are held
    core, cfg = venv.core, venv.cfg
    view = venv.bs_view()
    assert view.N == 3 and view.K == cfg.num_devices and view.S == cfg.max_pending
    np.testing.assert_array_equal(view.h, core.h)
    np.testing.assert_array_equal(view.gain, core.gain)
    np.testing.assert_array_equal(view.p_joint, core.p_joint)
    np.testing.assert_array_equal(view.t, core.t)
    np.testing.assert_array_equal(view.queue, core.queue_lengths())
    np.testing.assert_array_equal(view.encode_cap, np.floor(cfg.encode_capacity * core.p_joint + 0.5))
    np.testing.assert_array_equal(view.power_levels_w, core.power_levels_w)
    np.testing.assert_array_equal(view.prefix_levels, core.prefix_levels)
    np.testing.assert_array_equal(view.device_modality, core.device_modality)
    # head-of-line age: the observation's block, in slots
    hol = core.observe()[:, slice(*core.obs_layout()["hol_age"])] * cfg.deadline_slots
    np.testing.assert_array_equal(view.hol_age, np.rint(hol))
    # pending scenes, oldest first, against the ring buffer read by hand
    S = cfg.max_pending
    for i in range(3):
        for j in range(S):
            seq = core.head[i] + j
            ok = seq < core.tail[i]
            assert view.scene_valid[i, j] == ok
            held = core.rx_len[i, seq % S] if ok else np.zeros(view.M)
            np.testing.assert_array_equal(view.scene_held[i, j], held)
            np.testing.assert_array_equal(view.scene_queued[i, j], ok & (seq >= core.next_seq[i]))
        for k in range(cfg.num_devices):
            rows = view.scene_queued[i, :, k]
            assert view.queue[i, k] == rows.sum()
            assert view.queue_unheld[i, k] == (view.scene_held[i, rows, core.device_modality[k]] == 0).sum()
    assert view.scene_valid.any() and (view.scene_held > 0).any() and (view.queue_unheld < view.queue).any()


def test_scene_slack_counts_the_slots_left_before_the_deadline() -> None:
    """With every device idle, exactly the scenes of slack 1 close, and every other one loses a slot of slack."""
    venv = warmed(n=4, steps=9, scenario="small")
    cfg = venv.cfg
    idle = {"group": np.zeros((4, cfg.num_devices), np.int64), "power": np.zeros((4, cfg.num_devices), np.int64),
            "compression": np.zeros((4, cfg.num_devices), np.int64),
            "bandwidth": np.zeros((4, cfg.num_groups), np.float32)}
    for _ in range(6):
        before = venv.bs_view()
        _, _, _, _, info = venv.step(idle)
        after = venv.bs_view()
        for i in range(4):
            slack = before.scene_slack[i, before.scene_valid[i]]
            assert slack.min(initial=1) >= 1 and slack.max(initial=1) <= cfg.deadline_slots
            closing = int((slack == 1).sum())
            assert info["closed"][i] - info["dropped"][i] == closing
            kept = slack[closing:] - 1
            np.testing.assert_array_equal(after.scene_slack[i, :kept.size], kept)
            # this slot's arrivals come next, with the whole deadline left minus the slot they arrived in
            new = after.scene_slack[i, kept.size:after.scene_valid[i].sum()]
            assert np.all(new == cfg.deadline_slots - 1)


def test_view_is_a_read_only_snapshot() -> None:
    venv = warmed(n=2, scenario="small")
    view = venv.bs_view()
    saved = {k: np.array(v) for k, v in view.to_dict().items() if isinstance(v, np.ndarray)}
    for name in saved:
        with pytest.raises(ValueError):
            getattr(view, name)[...] = 0
    rng = np.random.default_rng(1)
    cfg = venv.cfg
    for _ in range(3):
        venv.step(random_native(rng, 2, cfg.num_devices, cfg.num_groups, len(cfg.power_levels_db),
                                len(cfg.compression_levels)))
    for name, arr in saved.items():
        np.testing.assert_array_equal(getattr(view, name), arr)
    assert not np.array_equal(venv.bs_view().h, view.h)  # the env moved on, the view did not


def test_plain_dict_pickle_and_batching_round_trip() -> None:
    venv = warmed(n=3, scenario="small")
    view = venv.bs_view()
    names = [k for k, v in view.to_dict().items() if isinstance(v, np.ndarray)]

    def same(a: BSView, b: BSView) -> None:
        for name in names:
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
        assert a.cfg == b.cfg and (a.checkpoint, a.pool_seed, a.pool_size) == (b.checkpoint, b.pool_seed, b.pool_size)

    plain = view.to_dict()
    assert isinstance(plain["cfg"], dict)
    same(BSView.from_dict(plain), view)
    same(BSView.from_dict(pickle.loads(pickle.dumps(plain))), view)
    restored = pickle.loads(pickle.dumps(view))
    same(restored, view)
    assert not restored.h.flags.writeable
    rows = view.unbatch()
    assert [r.N for r in rows] == [1, 1, 1]
    same(BSView.stack(rows), view)
    same(BSView.stack([r.to_dict() for r in rows]), view)
    same(view.take([2, 0]), BSView.stack([rows[2], rows[0]]))
    split = BSView.split_dict(plain)
    assert len(split) == 3 and all(not d["queue"].flags.writeable for d in split)
    same(BSView.stack(split), view)
    np.testing.assert_array_equal(view.row(1).queue[0], view.queue[1])


def test_bad_view_input_is_named() -> None:
    view = warmed(n=1, steps=2, scenario="small").bs_view()
    plain = view.to_dict()
    with pytest.raises(ValueError, match="missing \\['queue'\\]"):
        BSView.from_dict({k: v for k, v in plain.items() if k != "queue"})
    with pytest.raises(ValueError, match=r"BSView\.gain must have shape"):
        BSView.from_dict({**plain, "gain": np.zeros((1, 3))})
    other = VMIMOVectorEnv(num_envs=1, scenario="small", num_devices=6)
    other.reset(seed=0)
    with pytest.raises(ValueError, match="another scenario"):
        BSView.stack([view, other.bs_view()])
    with pytest.raises(ValueError, match="group must have shape"):
        predict_sinr(view, np.zeros((2, view.K), np.int64), np.zeros((2, view.K), np.int64), np.ones((2, view.G)))
    with pytest.raises(TypeError, match="info_bs_view must be a bool"):
        gym.make("VMIMO-Small-v0", info_bs_view="yes")


# ====================================================================== the rules equal the slot
@pytest.mark.parametrize("kw", [{"scenario": "small"}, {}, {"receiver": "zf"}, {"receiver": "mmse_sic"},
                                {"scenario": "cooperative"}, {"num_antennas": 10, "num_devices": 12}])
def test_predictions_equal_what_the_slot_does(kw: dict) -> None:
    """predict_sinr, planned latents, air time and energy of an action equal the StepResult of stepping it."""
    venv = warmed(n=4, steps=12, seed=2, **kw)
    core, cfg = venv.core, venv.cfg
    K, G, L_p, L_c = cfg.num_devices, cfg.num_groups, len(cfg.power_levels_db), len(cfg.compression_levels)
    rng = np.random.default_rng(3)
    for _ in range(4):
        view = venv.bs_view()
        a = random_native(rng, 4, K, G, L_p, L_c)
        a["group"] = np.where(view.queue > 0, a["group"], 0)  # every scheduled device has data: exact prediction
        pred = predict_sinr(view, a["group"], a["power"], a["bandwidth"], compression=a["compression"])
        res = core.step(a["group"], a["power"], a["compression"], a["bandwidth"])
        np.testing.assert_array_equal(pred, res.sinr)
        np.testing.assert_allclose(rules.band_shares(a["bandwidth"]), res.shares, rtol=1e-15)
        # latents sent: min(queue after this slot's arrivals, fit, encode cap)
        n = planned_latents(view, a["group"], a["compression"], a["bandwidth"], queue=view.queue + res.arrived[:, None])
        np.testing.assert_array_equal(n, res.sent)
        # air time and energy parts (circuit energy is P_c × air time), aggregated as the core does
        prefix = view.prefix_levels[a["compression"]]
        own = np.take_along_axis(band_hz(view, a["bandwidth"]), np.maximum(res.group - 1, 0), axis=1)
        t_air = np.where(res.sent > 0, rules.airtime_s(res.sent, prefix, own), 0.0)
        parts = rules.device_energy_j(res.power_w, t_air, res.sent, view.encoder_mflops, cfg)
        for j in range(3):  # the compiled slot adds devices in index order, numpy may pair them: last bits only
            np.testing.assert_allclose(parts[j].sum(1), res.energy_j[:, j], rtol=1e-13, atol=0)
        total = action_energy_j(view, a["group"], a["power"], a["compression"], a["bandwidth"], res.sent)
        np.testing.assert_allclose(total.sum(1), res.energy_j.sum(1), rtol=1e-12)
        np.testing.assert_allclose(rules.energy_term(res.energy_j.sum(1), cfg), res.energy_term, rtol=1e-14)


def test_encode_cap_rounds_half_up_and_energy_per_latent_is_the_energy_model() -> None:
    np.testing.assert_array_equal(rules.encode_cap(np.array([0.0, 0.124, 0.125, 0.5, 1.0]), 4), [0, 0, 1, 2, 4])
    cfg = vmimo_env.make_config("small")
    e = rules.energy_per_latent(16, 0.1, 5000.0, 2.0, cfg)
    t = 8 / 5000.0
    assert e == pytest.approx((0.1 / cfg.pa_efficiency + cfg.circuit_power_w) * t + 2.0 * cfg.encode_energy_j_per_mflop)
    assert rules.latents_that_fit(5000.0, 16, 0.01) == 6 and rules.latents_that_fit(5000.0, 128, 0.01) == 0
    assert rules.latents_sent(3, 6, 2) == 2
    n, c, w = np.array([0, 1, 5]), np.array([16, 64, 4]), np.array([5000.0, 2500.0, 1e4])
    np.testing.assert_allclose(rules.airtime_s(n, c, w), energy.channel_airtime_s(n * (c // 2), w), rtol=1e-15)
    noise = rules.receiver_noise_w(np.array([[0.5, 0.0]]), cfg)
    assert noise[0, 0] == rules.IDLE_NOISE_W and noise[0, 2] > 0
    assert noise[0, 1] == pytest.approx(0.5 * cfg.total_bandwidth_hz * cfg.noise_psd_w_hz)


# ====================================================================== replicas
def test_replicate_rows_steps_exactly_like_the_source() -> None:
    a, b = warmed(n=3, seed=4, scenario="small"), warmed(n=3, seed=4, scenario="small")
    rows = np.array([2, 0, 2, 1])
    rep = a.core.replicate(rows)
    cfg = a.cfg
    rng = np.random.default_rng(5)
    acts = [random_native(rng, 3, cfg.num_devices, cfg.num_groups, len(cfg.power_levels_db),
                          len(cfg.compression_levels)) for _ in range(8)]
    got = [rep.step(*(x[rows] for x in (c["group"], c["power"], c["compression"], c["bandwidth"]))) for c in acts]
    for c, r in zip(acts, got, strict=True):  # the source is untouched by its replica and steps as its twin
        ra = a.core.step(c["group"], c["power"], c["compression"], c["bandwidth"])
        rb = b.core.step(c["group"], c["power"], c["compression"], c["bandwidth"])
        np.testing.assert_array_equal(ra.reward, rb.reward)
        np.testing.assert_array_equal(r.reward, ra.reward[rows])
        np.testing.assert_array_equal(r.sinr, ra.sinr[rows])
    np.testing.assert_array_equal(rep.observe(), a.core.observe()[rows])
    with pytest.raises(ValueError, match="rows must be"):
        a.core.replicate([3])
    np.testing.assert_array_equal(a.core.replicate(1, 2).observe(), a.core.observe()[[1, 1]])


def test_block_rng_take_continues_each_stream() -> None:
    from vmimo_env.rng import BlockRNG

    rng = BlockRNG(3, 2, 3, block=4)
    rng.seed(np.arange(3), [7, 8, 9])
    for _ in range(3):
        rng.next()
    copy = rng.take(np.array([1, 1, 0]))
    for _ in range(6):  # across a block refill
        u, z = rng.next()
        cu, cz = copy.next()
        np.testing.assert_array_equal(cu, u[[1, 1, 0]])
        np.testing.assert_array_equal(cz, z[[1, 1, 0]])
