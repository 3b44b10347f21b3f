"""Heterogeneous device encoders in VMIMO-v0 (``heterogeneous_devices``) and the BS-side aligner."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

import vmimo_env  # noqa: F401  (registers the ids)
from semantic_models.alignment import fit_latent_aligner
from semantic_models.build_variant import VARIANT_ARCH, VARIANT_CHECKPOINT, main, parse_arch_key
from semantic_models.data import SceneGenerator
from semantic_models.frozen import load_frozen_student, sha256_file
from vmimo_env import heterogeneous as het
from vmimo_env.config import MODALITIES, ScenarioConfig
from vmimo_env.core import VMIMOCore
from vmimo_env.env import VMIMOEnv
from vmimo_env.scenes import ScenePool, build_pool, load_model

torch.set_num_threads(1)
HET = {"heterogeneous_devices": "variant"}
SEEDS = range(6)


def fixed_action(env: VMIMOEnv, power: int, comp: int) -> dict[str, np.ndarray]:
    """Every device in a group (round robin), one power and prefix index for all, equal band shares."""
    K, G = env.cfg.num_devices, env.cfg.num_groups
    return {"group": np.arange(K) % G + 1, "power": np.full(K, power), "compression": np.full(K, comp),
            "bandwidth": np.full(G, 1.0 / G, dtype=np.float32)}


def episode_accuracy(power: int = 2, comp: int = 2, fixed_noise: float | None = None, seeds: range = SEEDS,
                     **kw: object) -> np.ndarray:
    """Mean accuracy term per slot of one fixed-schedule episode per seed (same seeds for every setting: CRN)."""
    env = VMIMOEnv(**kw)
    if fixed_noise is not None:
        env.core.bs_aligner = env.core.bs_aligner.fixed_noise(fixed_noise)
    action = fixed_action(env, power, comp)
    out = []
    for seed in seeds:
        env.reset(seed=seed)
        out.append(np.mean([env.step(action)[4]["accuracy_term"] for _ in range(env.cfg.horizon)]))
    return np.asarray(out)


# ---------------------------------------------------------------------------------------------- config
@pytest.mark.parametrize(("name", "value"), [
    ("heterogeneous_devices", "other"), ("heterogeneous_devices", True), ("aligner", "admm"), ("aligner", None),
    ("heterogeneous_modalities", ()), ("heterogeneous_modalities", ("visual", "lidar")),
    ("heterogeneous_modalities", ("radar", "radar")), ("heterogeneous_modalities", "visual"),
])
def test_config_rejects_bad_values_naming_the_field(name: str, value: object) -> None:
    with pytest.raises(ValueError, match=name):
        ScenarioConfig(**{name: value})
    with pytest.raises(ValueError, match=name):
        gym.make("VMIMO-v0", **{name: value})


def test_config_defaults_and_normalisation() -> None:
    cfg = ScenarioConfig()
    assert (cfg.heterogeneous_devices, cfg.aligner, cfg.heterogeneous_modalities) == ("none", "lmmse", MODALITIES)
    cfg = ScenarioConfig.from_dict({"heterogeneous_devices": "variant", "aligner": "none",
                                    "heterogeneous_modalities": ["audio", "visual"]})
    assert cfg.heterogeneous_modalities == ("audio", "visual")
    assert ScenarioConfig.from_dict(cfg.to_dict()) == cfg


# ---------------------------------------------------------------------------------------------- asset
def test_shipped_variant_asset_is_small_verified_and_a_different_student() -> None:
    meta = json.loads(VARIANT_CHECKPOINT.with_suffix(".json").read_text())
    assert VARIANT_CHECKPOINT.stat().st_size < 300_000
    assert meta["sha256"] == sha256_file(VARIANT_CHECKPOINT)
    variant, bs = load_frozen_student(VARIANT_CHECKPOINT), load_model()
    assert meta["architecture_key"] == VARIANT_ARCH == parse_arch_key(VARIANT_ARCH).key()
    assert meta["architecture"] != bs.metadata["architecture"]
    assert meta["data_seed"] == bs.metadata["data_seed"] and meta["bs_student_sha256"] == bs.metadata["sha256"]
    assert meta["training"]["train_seed"] != bs.metadata["build"]["config"]["train_seed"]
    assert sum(variant.encoder_mflops) < sum(bs.encoder_mflops)


def test_quick_variant_build_runs(tmp_path: Path) -> None:
    assert main(["--quick", "--out", str(tmp_path), "--no-progress"]) == 0
    ckpt = tmp_path / "variant_student.pt"
    meta = json.loads(ckpt.with_suffix(".json").read_text())
    assert meta["sha256"] == sha256_file(ckpt) and meta["build"]["quick"] is True
    fs = load_frozen_student(ckpt)
    assert fs.encode(0, np.zeros((2, fs.input_dims["visual"]), np.float32)).shape == (2, 64)


# ---------------------------------------------------------------------------------------------- pool and aligner
def test_pool_swaps_only_the_heterogeneous_modalities_on_the_same_scenes() -> None:
    env = VMIMOEnv(heterogeneous_devices="variant", heterogeneous_modalities=("radar", "audio"))
    base, pool = build_pool(), env.core.pool
    assert pool is not base and np.array_equal(pool.labels, base.labels)
    feats, _, _ = SceneGenerator(int(load_model().metadata["data_seed"])).sample(base.size, "env",
                                                                                   seed_offset=base.seed)
    variant = het.load_variant()
    for m, name in enumerate(MODALITIES):
        if name in ("radar", "audio"):
            assert np.array_equal(pool.latents[:, m], variant.encode(m, feats[name]))
            assert env.core.bs_aligner.active[m]
        else:
            assert np.array_equal(pool.latents[:, m], base.latents[:, m])
            assert not env.core.bs_aligner.active[m]
    # devices of a heterogeneous modality pay the variant encoder's FLOPs
    assert np.array_equal(env.core.encoder_mflops, np.asarray(pool.encoder_mflops)[env.core.device_modality])


def test_homogeneous_path_is_untouched() -> None:
    env = VMIMOEnv()
    assert env.core.bs_aligner is None and env.core.pool is build_pool()
    assert VMIMOEnv(heterogeneous_devices="variant", aligner="none").core.bs_aligner is None


def test_aligner_is_fitted_on_scenes_disjoint_from_the_pool() -> None:
    al = VMIMOEnv(**HET).core.bs_aligner
    pool = build_pool()
    assert (al.fit_split, al.fit_seed_offset) == ("env", het.FIT_SEED_OFFSET) and al.fit_seed_offset != pool.seed
    gen = SceneGenerator(int(load_model().metadata["data_seed"]))
    fit_feats, _, _ = gen.sample(al.n_fit, al.fit_split, seed_offset=al.fit_seed_offset)
    pool_feats, _, _ = gen.sample(pool.size, "env", seed_offset=pool.seed)
    for name in MODALITIES:
        seen = {row.tobytes() for row in pool_feats[name]}
        assert not any(row.tobytes() in seen for row in fit_feats[name]), name
    # ...and those are exactly the scenes it was fitted on: refitting on them reproduces the maps
    m = MODALITIES.index("audio")
    x = fit_feats["audio"]
    ref = fit_latent_aligner(het.load_variant().encode(m, x), load_model().encode(m, x),
                             prefix_lengths=al.prefix_lengths, noise_vars=het.NOISE_VARS)
    for p in al.prefix_lengths:
        np.testing.assert_allclose(ref.maps[p], al.aligners[m].maps[p], rtol=1e-9, atol=1e-12)


def test_compiled_apply_equals_latent_aligner_per_noise_level() -> None:
    al = VMIMOEnv(**HET).core.bs_aligner
    rng = np.random.default_rng(0)
    n = 300
    lens = rng.choice([0, *al.prefix_lengths], (n, len(MODALITIES)))
    lat = rng.standard_normal((n, len(MODALITIES), 64)).astype(np.float32) * (np.arange(64) < lens[..., None])
    sinr = 10.0 ** rng.uniform(-2.0, 5.0, lens.shape)
    out = lat.copy()
    al.apply(out, lens, sinr)
    for m in range(len(MODALITIES)):
        ref = al.aligners[m].apply(lat[:, m], lens[:, m], noise_var=1.0 / sinr[:, m])
        np.testing.assert_allclose(out[:, m], ref, rtol=1e-5, atol=1e-5)
    assert not np.allclose(out, lat)


def test_setup_refuses_a_pool_without_provenance() -> None:
    pool = build_pool()
    with pytest.raises(ValueError, match="build_pool"):
        VMIMOCore(ScenarioConfig(**HET), 1, ScenePool(pool.latents, pool.labels), load_model())


# ---------------------------------------------------------------------------------------------- environment
def test_check_env_passes() -> None:
    env = gym.make("VMIMO-v0", **HET)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped, skip_render_check=True)


def test_same_seed_same_trajectory_and_common_random_numbers() -> None:
    def roll(**kw: object) -> list[tuple]:
        env = VMIMOEnv(horizon=60, **kw)
        env.action_space.seed(3)
        obs, _ = env.reset(seed=5)
        out = []
        for _ in range(60):
            obs, r, _, _, info = env.step(env.action_space.sample())
            out.append((obs.copy(), r, info["correct"], info["energy_encode_j"]))
        return out

    a, b, c = roll(**HET), roll(**HET), roll()
    assert all(np.array_equal(x[0], y[0]) and x[1:] == y[1:] for x, y in zip(a, b, strict=True))
    # the random stream does not depend on the latents: same observations, only what is classified differs
    assert all(np.array_equal(x[0], y[0]) for x, y in zip(a, c, strict=True))
    assert sum(x[3] for x in a) < sum(y[3] for y in c)  # smaller variant encoders spend less encoding energy


def test_vector_env_runs_heterogeneous_like_the_single_env() -> None:
    venv = gym.make_vec("VMIMO-v0", num_envs=2, vectorization_mode="vector_entry_point", horizon=30, **HET)
    env = VMIMOEnv(horizon=30, **HET)
    venv.reset(seed=9)
    env.reset(seed=10)
    venv.action_space.seed(1)
    for _ in range(30):
        a = venv.action_space.sample()
        _, vr, _, _, _ = venv.step(a)
        _, r, _, _, _ = env.step({k: v[1] for k, v in a.items()})
        assert r == vr[1]


def test_reward_reflects_alignment_quality() -> None:
    homog = episode_accuracy()
    aligned = episode_accuracy(**HET)
    unaligned = episode_accuracy(**HET, aligner="none")
    # common random numbers: paired over the same seeds, scenes, channels and noise
    assert aligned.mean() > unaligned.mean() + 0.5  # measured 0.90 vs 0.08 over 20 seeds
    assert aligned.mean() <= homog.mean() + 0.01  # the aligner cannot beat the head's own encoders
    assert aligned.mean() >= homog.mean() - 0.05  # ...and recovers almost all of it (measured -0.009)
    partial = episode_accuracy(**HET, aligner="none", heterogeneous_modalities=("visual", "audio"))
    assert unaligned.mean() + 0.2 < partial.mean() < homog.mean() - 0.2  # two foreign modalities hurt less than five


def test_aligner_uses_the_received_sinr() -> None:
    # at -40 dB many latents arrive at low SINR: the SINR-matched map beats the one fitted for (almost) no noise
    aware = episode_accuracy(power=0, seeds=range(10), **HET)
    unaware = episode_accuracy(power=0, fixed_noise=1e-4, seeds=range(10), **HET)
    d = aware - unaware  # paired: same scenes, channels and noise
    assert d.mean() > 0.015 and d.mean() > 2.0 * d.std(ddof=1) / np.sqrt(len(d))  # measured +0.038 ± 0.006 (20 seeds)


class _Spy:
    """Records what the core hands the aligner, then aligns as usual."""

    def __init__(self, inner: het.BSAligner) -> None:
        self.inner, self.calls = inner, []

    def apply(self, latents: np.ndarray, prefix_len: np.ndarray, sinr: np.ndarray) -> None:
        self.calls.append((prefix_len.copy(), sinr.copy()))
        self.inner.apply(latents, prefix_len, sinr)


def test_core_passes_each_latent_its_delivery_sinr() -> None:
    # one device per modality and a 1-slot deadline: every scene closes in the slot it is sent, so the SINR the
    # aligner gets for modality m must be the SINR of modality m's device in that slot
    env = VMIMOEnv(num_devices=5, num_groups=2, deadline_slots=1, **HET)
    spy = _Spy(env.core.bs_aligner)
    env.core.bs_aligner = spy
    env.reset(seed=3)
    action = fixed_action(env, power=0, comp=2)
    checked = 0
    for _ in range(40):
        n_before = len(spy.calls)
        info = env.step(action)[4]
        for lens, sinr in spy.calls[n_before:]:
            rows, mods = np.nonzero(lens > 0)
            np.testing.assert_allclose(10.0 * np.log10(sinr[rows, mods]), info["sinr_db"][mods], rtol=1e-9)
            checked += rows.size
    assert checked > 100


@pytest.mark.parametrize("reward_mode", ["model", "soft"])
def test_an_aligner_set_after_construction_is_used(reward_mode: str) -> None:
    """``core.bs_aligner`` may be assigned later (benchmarks swap in fixed-noise aligners): a core built without one
    must then align every closing scene on both scoring paths, with batch buffers of the right size."""
    fitted = VMIMOEnv(**HET).core.bs_aligner
    env = VMIMOEnv(aligner="none", reward_mode=reward_mode, **HET)
    assert env.core.bs_aligner is None
    spy = _Spy(fitted)
    env.core.bs_aligner = spy
    env.reset(seed=5)
    classified = 0
    for _ in range(30):
        info = env.step(fixed_action(env, power=0, comp=2))[4]
        classified += info["closed"] - info["dropped"]  # dropped arrivals count closed but never reach the head
    assert classified > 0
    assert sum(len(lens) for lens, _ in spy.calls) == classified  # every classified scene went through it
