"""The observation spec is the one source of the layout: the core, the compiled kernel, the observation space,
the env docstring and the per-device gather all follow it."""

from __future__ import annotations

import numpy as np
import pytest

from vmimo_env import obs_spec
from vmimo_env.config import MODALITIES, ScenarioConfig
from vmimo_env.env import VMIMOEnv
from vmimo_env.obs_spec import OBS_SPEC, ObsEntry


def _reference_observation(env: VMIMOEnv) -> np.ndarray:
    """The observation of env 0 recomputed in numpy from each entry's documented definition and the spec's
    scaling: a second implementation to hold the compiled kernel to."""
    core, cfg = env.core, env.cfg
    K, D = cfg.num_devices, cfg.deadline_slots
    h, gain = core.h[0], core.gain[0]
    norm2 = (np.abs(h) ** 2).sum(1)
    first = np.maximum(core.next_seq[0], core.head[0])
    queue = core.tail[0] - first
    t = int(core.t[0])
    age = np.zeros(K)
    for k in range(K):
        if queue[k] > 0:
            age[k] = sum(1 for d in range(D) if t - d >= 0 and core.slot_start[0, (t - d) % (D + 1)] > first[k])
    iu, ju = np.triu_indices(K, 1)
    corr = np.abs(np.einsum("kr,kr->k", h[iu].conj(), h[ju])) / np.sqrt(norm2[iu] * norm2[ju])
    hn = h / np.sqrt(gain)[:, None]
    ref_noise_w = cfg.noise_psd_w_hz * cfg.total_bandwidth_hz / cfg.num_groups
    # coverage blocks: per device the queued scenes whose modality the BS lacks, and D + 1 - the oldest one's slack
    S = cfg.max_pending
    head, tail = int(core.head[0]), int(core.tail[0])
    unheld, urgency = np.zeros(K), np.zeros(K)
    for k in range(K):
        m = core.device_modality[k]
        lacking = [seq for seq in range(int(first[k]), tail) if core.rx_len[0, seq % S, m] == 0]
        unheld[k] = len(lacking)
        if lacking:
            seq = lacking[0]
            scene_age = sum(1 for d in range(D) if t - d >= 0 and core.slot_start[0, (t - d) % (D + 1)] > seq)
            urgency[k] = D + 1 - (D - scene_age)
    held = np.zeros((S, len(MODALITIES)))
    for j in range(tail - head):
        held[j] = core.rx_len[0, (head + j) % S] > 0
    raw = {"gain_db": 10 * np.log10(gain), "snr_db": 10 * np.log10(cfg.max_power_w * norm2 / ref_noise_w),
           "queue": queue, "hol_age": age, "p_joint": core.p_joint[0], "modality": core.modality_onehot.ravel(),
           "correlation": corr, "csi": np.concatenate([hn.real.ravel(), hn.imag.ravel()]), "time": np.array([t]),
           "queue_unheld": unheld, "unheld_urgency": urgency, "scene_held": held.ravel()}
    parts = []
    for e in obs_spec.active_entries(cfg):
        v = (np.asarray(raw[e.name], dtype=np.float64) + e.offset) / e.scale(cfg)
        if e.clip:
            v = np.clip(v, e.low(cfg), e.high(cfg))
        parts.append(v)
    return np.concatenate(parts).astype(np.float32)


@pytest.mark.parametrize("kwargs", [{}, {"obs_full_csi": True, "num_devices": 5, "num_antennas": 3},
                                    {"scenario": "small", "deadline_slots": 6}, {"obs_coverage": True},
                                    {"obs_coverage": True, "obs_mode": "dict", "close_rule": "modalities",
                                     "max_pending": 12}])
def test_compiled_observation_follows_the_spec(kwargs: dict) -> None:
    env = VMIMOEnv(**kwargs)
    obs, _ = env.reset(seed=5)
    rng = np.random.default_rng(0)
    for _ in range(9):
        flat = np.concatenate(list(obs.values())) if isinstance(obs, dict) else obs
        np.testing.assert_allclose(flat, _reference_observation(env), rtol=2e-5, atol=2e-6)
        a = env.action_space.sample()
        a["bandwidth"] = rng.uniform(0, 1, env.cfg.num_groups).astype(np.float32)
        obs, *_ = env.step(a)


def test_layout_bounds_and_space_come_from_the_spec() -> None:
    for cfg in (ScenarioConfig(), ScenarioConfig(obs_full_csi=True, num_devices=3, num_antennas=6),
                ScenarioConfig(obs_coverage=True), ScenarioConfig(obs_coverage=True, obs_mode="dict", max_pending=7)):
        env = VMIMOEnv(config=cfg)
        spec = obs_spec.resolve(cfg)
        K, M, Nr = cfg.num_devices, len(MODALITIES), cfg.num_antennas
        coverage = ("queue_unheld", "unheld_urgency") if cfg.obs_coverage else ()
        coverage += ("scene_held",) if cfg.obs_coverage and cfg.obs_mode == "dict" else ()
        names = [e.name for e in OBS_SPEC if e.condition is None or (e.name == "csi" and cfg.obs_full_csi)
                 or e.name in coverage]
        assert list(env.core.obs_layout()) == names == list(spec.slices)
        pos = 0
        for e in obs_spec.active_entries(cfg):
            a, b = spec.slices[e.name]
            assert (a, b) == (pos, pos + e.size(K, M, Nr, cfg.max_pending))
            space = env.observation_space
            low, high = (space[e.name].low, space[e.name].high) if cfg.obs_mode == "dict" else (
                space.low[a:b], space.high[a:b])
            assert np.all(low == np.float32(e.low(cfg))) and np.all(high == np.float32(e.high(cfg)))
            assert spec.start[e.block] == a
            pos = b
        assert (cfg.obs_mode == "dict" or env.observation_space.shape == (pos,)) and pos == env.core.obs_dim
        expected = 10 * K + K * (K - 1) // 2 + 1 + (2 * K * Nr if cfg.obs_full_csi else 0)
        expected += (2 * K if cfg.obs_coverage else 0) + len(coverage[2:]) * M * cfg.max_pending
        assert pos == expected  # the size formula of the docstring's Box line
        if not cfg.obs_full_csi:
            assert spec.start[obs_spec.CSI] == -1


def test_env_docstring_observation_table_is_rendered_from_the_spec() -> None:
    doc = "\n".join(line.strip() for line in VMIMOEnv.__doc__.splitlines())
    assert obs_spec.markdown_table() in doc
    assert len(obs_spec.markdown_table().splitlines()) == len(OBS_SPEC) + 2


def test_changing_a_spec_constant_changes_the_observation() -> None:
    """The kernel takes its scaling and clipping from the spec, not from constants of its own."""
    env = VMIMOEnv(scenario="small")
    env.reset(seed=1)
    env.step(env.action_space.sample())
    before = env.core.observe()[0]
    lay = env.obs_layout()
    spec = env.core.obs_spec  # this core's resolved arrays (resolve builds fresh ones per core)
    spec.offset[obs_spec.GAIN_DB] += 20.0  # (dB + 120) / 20: one unit up
    spec.scale[obs_spec.TIME] = 2.0
    spec.clip_high[obs_spec.SNR_DB] = 0.25
    after = env.core.observe()[0]
    np.testing.assert_allclose(after[lay["gain_db"]], np.clip(before[lay["gain_db"]] + 1.0, -5, 5), atol=1e-5)
    assert after[lay["time"]][0] == 0.5 and before[lay["time"]][0] == np.float32(1 / env.cfg.horizon)
    np.testing.assert_array_equal(after[lay["snr_db"]], np.minimum(before[lay["snr_db"]], 0.25))
    np.testing.assert_array_equal(after[lay["queue"]], before[lay["queue"]])


def test_device_gather_reads_each_devices_entries() -> None:
    K, Nr = 4, 3
    spec = obs_spec.resolve(ScenarioConfig(num_devices=K, num_antennas=Nr, obs_full_csi=True))
    feat, pair = obs_spec.device_gather(spec.slices, K)
    M = len(MODALITIES)
    lay = spec.slices
    assert feat.shape == (K, 5 + M + 2 * Nr + 1)
    for k in range(K):
        assert list(feat[k, :5]) == [lay[n][0] + k for n in ("gain_db", "snr_db", "queue", "hol_age", "p_joint")]
        assert list(feat[k, 5:5 + M]) == list(range(lay["modality"][0] + k * M, lay["modality"][0] + (k + 1) * M))
        re0 = lay["csi"][0] + k * Nr
        assert list(feat[k, 5 + M:5 + M + Nr]) == list(range(re0, re0 + Nr))
        assert list(feat[k, 5 + M + Nr:5 + M + 2 * Nr]) == list(range(re0 + K * Nr, re0 + K * Nr + Nr))
        assert feat[k, -1] == lay["time"][0]
    iu, ju = np.triu_indices(K, 1)
    assert np.all(pair[iu, ju] == np.arange(*lay["correlation"])) and np.all(pair == pair.T)
    assert np.all(np.diag(pair) == -1)
    with pytest.raises(ValueError, match="lacks block 'queue'"):
        obs_spec.device_gather({k: v for k, v in lay.items() if k != "queue"}, K)


def test_entry_rejects_unknown_axes() -> None:
    with pytest.raises(ValueError, match="axes"):
        ObsEntry("x", 0, lambda K, M, Nr: K, "K", "x", "1", "as is", "per_device")
