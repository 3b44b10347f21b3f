"""``obs_coverage``: the observation shows what the BS still lacks, from the same compiled helper as the BS view."""

from __future__ import annotations

import numpy as np
import pytest

from vmimo_env import obs_spec
from vmimo_env.config import MODALITIES, ScenarioConfig
from vmimo_env.env import VMIMOEnv
from vmimo_env.vector import VMIMOVectorEnv


def _random_action(cfg: ScenarioConfig, rng: np.random.Generator, batch: int | None = None) -> dict[str, np.ndarray]:
    K, G = cfg.num_devices, cfg.num_groups
    shape = (K,) if batch is None else (batch, K)
    return {"group": rng.integers(0, G + 1, shape), "power": rng.integers(0, len(cfg.power_levels_db), shape),
            "compression": rng.integers(0, len(cfg.compression_levels), shape),
            "bandwidth": rng.uniform(0.1, 1.0, (*shape[:-1], G)).astype(np.float32)}


def _expected_from_view(view, cfg: ScenarioConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(queue_unheld, urgency, held bitmap) per environment as the BS view states them: the urgency is
    D + 1 - the smallest slack among the device's queued scenes whose modality the BS lacks (0 when none)."""
    D = cfg.deadline_slots
    lacking = view.scene_queued & (np.take(view.scene_held, view.device_modality, axis=2) == 0)  # (N, S, K)
    slack = np.where(lacking, view.scene_slack[:, :, None], D + 1).min(axis=1)  # (N, K)
    urgency = np.where(lacking.any(axis=1), D + 1 - slack, 0)
    return view.queue_unheld, urgency, (view.scene_held > 0).reshape(view.N, -1)


def _blocks(obs, layout: dict[str, slice], name: str) -> np.ndarray:
    return obs[name] if isinstance(obs, dict) else obs[..., layout[name]]


@pytest.mark.parametrize("kwargs", [{"obs_coverage": True},
                                    {"obs_coverage": True, "obs_mode": "dict", "close_rule": "modalities"},
                                    {"obs_coverage": True, "scenario": "small", "num_devices": 7, "deadline_slots": 6,
                                     "obs_mode": "dict"}])
def test_coverage_observation_equals_the_bs_view(kwargs: dict) -> None:
    env = VMIMOEnv(**kwargs)
    cfg = env.cfg
    lay = env.obs_layout()
    scale_q = cfg.arrival_rate * cfg.deadline_slots
    obs, _ = env.reset(seed=2)
    rng = np.random.default_rng(1)
    seen_partial = 0
    for _ in range(min(cfg.horizon, 60)):
        view = env.bs_view()
        unheld, urgency, held = _expected_from_view(view, cfg)
        np.testing.assert_allclose(_blocks(obs, lay, "queue_unheld") * scale_q, unheld[0], atol=1e-5)
        np.testing.assert_allclose(_blocks(obs, lay, "unheld_urgency") * cfg.deadline_slots, urgency[0], atol=1e-5)
        if cfg.obs_mode == "dict":
            np.testing.assert_array_equal(obs["scene_held"], held[0].astype(np.float32))
            assert obs["scene_held"].shape == (cfg.max_pending * len(MODALITIES),)
        if cfg.close_rule == "modalities":  # queues skip held latents: coverage follows queue and age
            q, age = _blocks(obs, lay, "queue"), _blocks(obs, lay, "hol_age")
            np.testing.assert_allclose(_blocks(obs, lay, "queue_unheld"), q, atol=1e-6)
            np.testing.assert_allclose(_blocks(obs, lay, "unheld_urgency"),
                                       np.where(q > 0, age + 1 / cfg.deadline_slots, 0), atol=1e-6)
        seen_partial += int((view.queue_unheld < view.queue).any())
        obs, _, _, truncated, _ = env.step(_random_action(cfg, rng))
        if truncated:
            obs, _ = env.reset()
    if cfg.close_rule == "devices":
        assert seen_partial > 5  # twins: the new entry says something the queue does not


def test_coverage_observation_equals_the_bs_view_on_the_vector_env() -> None:
    venv = VMIMOVectorEnv(num_envs=3, obs_coverage=True)
    cfg = venv.cfg
    lay = venv.frontend.obs_slices()
    obs, _ = venv.reset(seed=4)
    rng = np.random.default_rng(2)
    for _ in range(30):
        unheld, urgency, _ = _expected_from_view(venv.bs_view(), cfg)
        np.testing.assert_allclose(obs[:, lay["queue_unheld"]] * cfg.arrival_rate * cfg.deadline_slots, unheld,
                                   atol=1e-5)
        np.testing.assert_allclose(obs[:, lay["unheld_urgency"]] * cfg.deadline_slots, urgency, atol=1e-5)
        obs, *_ = venv.step(_random_action(cfg, rng, batch=3))


def test_coverage_shows_what_a_twin_already_delivered() -> None:
    """Device 0 (visual) sends its whole queue; its twin, device 5, still queues the same scenes (close rule
    "devices") but lacks none of them: its queue_unheld and urgency fall to 0 while its queue and age do not."""
    env = VMIMOEnv(obs_coverage=True, encode_capacity=16)
    cfg = env.cfg
    lay = env.obs_layout()
    K = cfg.num_devices
    act = {"group": np.array([1] + [0] * (K - 1)), "power": np.full(K, len(cfg.power_levels_db) - 1),
           "compression": np.zeros(K, dtype=np.int64), "bandwidth": np.array([1.0, 0.0, 0.0], dtype=np.float32)}
    obs, _ = env.reset(seed=0)
    checked = 0
    for _ in range(20):
        obs, _, _, _, info = env.step(act)
        q = obs[lay["queue"]]
        if q[5] > 0 and info["queue"][0] == 0:
            assert obs[lay["queue_unheld"]][5] == 0.0 and obs[lay["unheld_urgency"]][5] == 0.0
            # device 6 (radar twin of the silent device 1): everything it queues is still lacking
            np.testing.assert_allclose(obs[lay["queue_unheld"]][6], q[6])
            assert obs[lay["unheld_urgency"]][6] > 0.0
            checked += 1
    assert checked > 10


def test_coverage_blocks_are_absent_by_default_and_gathered_per_device() -> None:
    v0 = obs_spec.resolve(ScenarioConfig())
    v1 = obs_spec.resolve(ScenarioConfig(obs_coverage=True))
    v1_dict = obs_spec.resolve(ScenarioConfig(obs_coverage=True, obs_mode="dict"))
    K, M, S = 8, len(MODALITIES), ScenarioConfig().max_pending
    assert not {"queue_unheld", "unheld_urgency", "scene_held"} & set(v0.slices)
    assert v0.start[obs_spec.QUEUE_UNHELD] == v0.start[obs_spec.SCENE_HELD] == -1
    assert v1.dim == v0.dim + 2 * K and "scene_held" not in v1.slices
    assert v1_dict.dim == v1.dim + S * M
    f0, _ = obs_spec.device_gather(v0.slices, K)
    f1, _ = obs_spec.device_gather(v1_dict.slices, K)  # the per-scene bitmap is no device feature
    assert f1.shape == (K, f0.shape[1] + 2)
    names = [e.name for e in obs_spec.active_entries(ScenarioConfig(obs_coverage=True)) if e.axes == "device"]
    col = names.index("queue_unheld")
    assert list(f1[:, col]) == [v1_dict.slices["queue_unheld"][0] + k for k in range(K)]
    assert list(f1[:, col + 1]) == [v1_dict.slices["unheld_urgency"][0] + k for k in range(K)]


def test_device_policy_reads_each_devices_coverage_entries() -> None:
    """The per-device actor picks the new blocks up from the spec: device k's row holds its own two entries."""
    import torch as th
    from stable_baselines3 import PPO

    from agents.common.device_policy import DevicePolicy, device_policy_kwargs
    from vmimo_env.sb3 import VMIMOSB3VecEnv

    th.set_num_threads(1)
    venv = VMIMOSB3VecEnv(2, seed=0, obs_coverage=True, scenario="small")
    model = PPO(DevicePolicy, venv, n_steps=8, batch_size=16, n_epochs=1, seed=0,
                policy_kwargs=device_policy_kwargs(venv))
    core = venv.venv.core
    lay = core.obs_layout()
    obs = th.arange(core.obs_dim, dtype=th.float32)[None] + 1000.0  # entry value = its index + 1000
    rows = model.policy.mlp_extractor.actor.device_rows(obs)[0].numpy() - 1000.0
    for k in range(core.K):
        for name in ("queue_unheld", "unheld_urgency"):
            assert lay[name][0] + k in rows[k].tolist()
            assert not any(lay[name][0] + j in rows[k].tolist() for j in range(core.K) if j != k)
