"""Heterogeneous devices (``heterogeneous_devices="variant"``): foreign device encoders and the BS-side aligner.

The BS fusion head is the shipped student's, trained on its own encoders' latent space. With heterogeneous devices,
the devices of the modalities in ``heterogeneous_modalities`` run the *variant* encoders instead
(``semantic_models/assets/variant_student.pt``: another NAS Pareto architecture, another seed; built by
``python -m semantic_models.build_variant``). Their latents carry the same information in an unrelated space, so
fed raw to the head (``aligner="none"``) they are close to noise. With ``aligner="lmmse"`` (default) the BS maps
every received foreign latent into its own space before the head, with the affine LMMSE map of
``semantic_models.alignment.fit_latent_aligner``: one map per modality, prefix length and assumed noise level, the
level nearest (in log scale) to the received value's noise variance ``1 / SINR``. The reward then reflects how well
the alignment works at the SINR and prefix the schedule chose.

Why per modality and not per device: the scene pool and the BS keep one latent per scene and modality (the better
copy wins), so "which encoder produced this modality" must be a property of the modality; it also matches a fleet
where one kind of sensor comes from another vendor. Devices of a heterogeneous modality also pay the variant
encoder's (smaller) FLOPs for encoding energy.

Fitting data: ``N_FIT`` scenes of the ``env`` split at seed offset ``FIT_SEED_OFFSET``, an independent stream from
the pool's (``build_pool`` draws the ``env`` split at offset ``seed``, 2024 by default; equal offsets are refused),
so the aligner is never fitted on the scenes the environment scores. Pool and aligner are built once per process
(cached; about 0.8 s on top of a homogeneous env's set-up) and shared by every environment; nothing is
trained or downloaded at run time. Both are deterministic functions of their arguments, so both pickle as their
recipes: a subprocess or Ray worker refits the same maps bit for bit (or finds them in its cache) instead of
receiving megabytes of tables.

Hot path: :meth:`BSAligner.apply` is one compiled call over every closing scene and modality (the maps are stored
as zero-padded 64 x 64 tables, so a received prefix of ``p`` values costs ``p²`` multiply-adds); the homogeneous
environment never calls it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
from numba import njit

from vmimo_env.config import MODALITIES, ScenarioConfig
from vmimo_env.kernels import LATENT_DIM
from vmimo_env.scenes import ScenePool, build_pool, load_model

if TYPE_CHECKING:  # torch-backed types, for annotations only: this module stays importable without loading torch
    from semantic_models.alignment import LatentAligner
    from semantic_models.frozen import FrozenStudent

#: Assumed noise variances per received value the maps are fitted for: 1/SINR from 40 dB down to -10 dB in
#: half-decade steps (the nearest level is at most a quarter decade, ~2.5 dB, off).
NOISE_VARS: tuple[float, ...] = tuple(float(v) for v in 10.0 ** np.arange(-4.0, 1.01, 0.5))
FIT_SPLIT = "env"
FIT_SEED_OFFSET = 1_000_003
N_FIT = 8192


def load_variant() -> FrozenStudent:
    """The shipped variant device encoders (SHA-256 checked, cached per process)."""
    return _load_variant()


@lru_cache(maxsize=1)
def _load_variant() -> FrozenStudent:
    from semantic_models import load_frozen_student
    from semantic_models.build_variant import VARIANT_CHECKPOINT

    return load_frozen_student(VARIANT_CHECKPOINT)


def _modality_indices(names: tuple[str, ...]) -> tuple[int, ...]:
    return tuple(sorted(MODALITIES.index(n) for n in names))


def _check_same_data(model: FrozenStudent, variant: FrozenStudent) -> int:
    seed = int(model.metadata["data_seed"])
    if int(variant.metadata["data_seed"]) != seed:
        raise ValueError(f"the variant encoders were trained on SceneGenerator({variant.metadata['data_seed']}) but "
                         f"the BS model on SceneGenerator({seed}); rebuild: python -m semantic_models.build_variant")
    return seed


@lru_cache(maxsize=4)
def device_pool(pool_size: int, seed: int, checkpoint: str | None, modalities: tuple[int, ...]) -> ScenePool:
    """``build_pool(pool_size, seed, checkpoint)`` with the latents of ``modalities`` from the variant encoders."""
    from semantic_models.data import SceneGenerator

    base = build_pool(pool_size, seed, checkpoint)
    model, variant = load_model(checkpoint), load_variant()
    feats, labels, _ = SceneGenerator(seed=_check_same_data(model, variant)).sample(pool_size, "env",
                                                                                     seed_offset=seed)
    if not np.array_equal(labels, base.labels):
        raise RuntimeError("the scene generator did not reproduce the pool's scenes")
    lat = base.latents.copy()
    mflops = list(model.encoder_mflops)
    for m in modalities:
        lat[:, m] = variant.encode(m, feats[MODALITIES[m]])
        mflops[m] = variant.encoder_mflops[m]
    lat.setflags(write=False)
    return ScenePool(lat, base.labels, seed=seed, checkpoint=checkpoint, encoder_mflops=tuple(mflops),
                     source=(device_pool, (pool_size, seed, checkpoint, modalities)))


@dataclass(frozen=True)
class BSAligner:
    """The BS-side maps of every heterogeneous modality, fitted once and applied in place on the hot path.

    ``weights[m, i, l]`` is the transposed map (input row, output column) for prefix ``prefix_lengths[i]`` and noise
    level ``noise_vars[l]``, zero outside its top-left ``p x p`` block; ``bias[m, i, l]`` is ``μ_y − A μ_x`` on the
    first ``p`` values. ``aligners[m]`` keeps the fitted ``LatentAligner`` (None for homogeneous modalities).
    ``source`` is the ``(function, args)`` that rebuilds it (what it pickles as; None: pickled in full).
    """

    modalities: tuple[int, ...]
    prefix_lengths: tuple[int, ...]
    noise_vars: np.ndarray  # (L,)
    weights: np.ndarray  # float32 (M, P, L, 64, 64)
    bias: np.ndarray  # float32 (M, P, L, 64)
    active: np.ndarray  # bool (M,)
    prefix_index: np.ndarray  # int64 (65,): prefix length -> index in prefix_lengths (-1 if not one)
    log_mid: np.ndarray  # float64 (L - 1,): midpoints between consecutive log noise levels
    aligners: tuple[LatentAligner, ...]  # the fitted maps, one per heterogeneous modality (for inspection)
    fit_split: str
    fit_seed_offset: int
    n_fit: int
    source: tuple[Any, tuple] | None = field(default=None, compare=False, repr=False)

    def __reduce__(self):
        # the maps are a deterministic fit (shipped weights, fixed scenes): a pickled environment carries the recipe
        # (a few hundred bytes) instead of the 7.5 MB of tables, and the receiving process refits or hits its cache
        if self.source is not None:
            return self.source
        return (BSAligner, tuple(getattr(self, f.name) for f in fields(self)))

    def apply(self, latents: np.ndarray, prefix_len: np.ndarray, sinr: np.ndarray) -> None:
        """Map received latents (n, M, 64) of the heterogeneous modalities into the BS space, in place.

        ``prefix_len`` (n, M) as received (0 = missing, left untouched), ``sinr`` (n, M) linear SINR of each
        received latent: its values carry noise of variance ``1 / sinr``. Values beyond each prefix stay zero.
        """
        align_received(latents, prefix_len, sinr, latents.shape[0], self.active, self.prefix_index, self.log_mid,
                       self.weights, self.bias)

    def fixed_noise(self, noise_var: float) -> BSAligner:
        """The same maps, always the one fitted for the level nearest ``noise_var`` whatever the SINR (the ablations
        in ``benchmarks/heterogeneous_env.py``; the smallest level is an aligner that ignores the noise)."""
        li = int(np.argmin(np.abs(np.log(self.noise_vars) - np.log(max(noise_var, 1e-12)))))
        # the kernel walks up the midpoints while the log noise exceeds them: -inf below li, +inf from li stops at li
        mids = np.where(np.arange(self.log_mid.shape[0]) < li, -np.inf, np.inf)
        return replace(self, log_mid=mids, source=(BSAligner.fixed_noise, (self, noise_var)))


@njit(cache=True)
def align_received(lat, lens, sinr, n, active, prefix_index, log_mid, weights, bias):
    """``lat[j, m, :p] = lat[j, m, :p] @ W + b`` with the map of (m, p, nearest log noise level); see BSAligner."""
    M = lat.shape[1]
    n_mid = log_mid.shape[0]
    acc = np.empty(LATENT_DIM, dtype=np.float32)
    for j in range(n):
        for m in range(M):
            p = lens[j, m]
            if p <= 0 or not active[m]:
                continue
            pi = prefix_index[p]
            log_nv = -np.log(max(sinr[j, m], 1e-12))  # log of the noise variance 1 / SINR
            li = 0
            while li < n_mid and log_nv > log_mid[li]:  # ties go to the lower level, as LatentAligner's argmin
                li += 1
            for i in range(p):
                acc[i] = bias[m, pi, li, i]
            for k in range(p):  # row-wise axpy: contiguous, vectorises without reassociating a reduction
                xk = lat[j, m, k]
                for i in range(p):
                    acc[i] += xk * weights[m, pi, li, k, i]
            for i in range(p):
                lat[j, m, i] = acc[i]


def fit_bs_aligner(checkpoint: str | None, prefix_lengths: tuple[int, ...], modalities: tuple[int, ...],
                   n_fit: int = N_FIT, fit_seed_offset: int = FIT_SEED_OFFSET) -> BSAligner:
    """Fit one LMMSE aligner per heterogeneous modality on the fitting split (variant latents → BS latents).

    Cached per process by the normalised arguments (the aligner's recipe, which is also what it pickles as), so a
    second environment, or an unpickled one, reuses the fit however the arguments were spelled.
    """
    return _fit_bs_aligner(checkpoint, tuple(int(p) for p in prefix_lengths), tuple(int(m) for m in modalities),
                           int(n_fit), int(fit_seed_offset))


@lru_cache(maxsize=8)
def _fit_bs_aligner(checkpoint: str | None, prefix_lengths: tuple[int, ...], modalities: tuple[int, ...],
                    n_fit: int, fit_seed_offset: int) -> BSAligner:
    from semantic_models.alignment import fit_latent_aligner
    from semantic_models.blas import single_threaded_blas
    from semantic_models.data import SceneGenerator

    model, variant = load_model(checkpoint), load_variant()
    feats, _, _ = SceneGenerator(seed=_check_same_data(model, variant)).sample(n_fit, FIT_SPLIT,
                                                                                seed_offset=fit_seed_offset)
    M, P, L, D = len(MODALITIES), len(prefix_lengths), len(NOISE_VARS), LATENT_DIM
    weights = np.zeros((M, P, L, D, D), dtype=np.float32)
    bias = np.zeros((M, P, L, D), dtype=np.float32)
    aligners: list = [None] * M
    for m in modalities:
        x = feats[MODALITIES[m]]
        with single_threaded_blas():  # small products: a second OpenBLAS thread mostly spins (semantic_models.blas)
            al = fit_latent_aligner(variant.encode(m, x), model.encode(m, x), prefix_lengths=prefix_lengths,
                                    noise_vars=NOISE_VARS)
        aligners[m] = al
        for i, p in enumerate(al.prefix_lengths):
            for li in range(L):
                a = al.maps[p][li]  # (p, p): y = A (x - μ_x) + μ_y
                weights[m, i, li, :p, :p] = a.T
                bias[m, i, li, :p] = al.y_mean[:p] - a @ al.x_mean[:p]
    active = np.zeros(M, dtype=np.bool_)
    active[list(modalities)] = True
    prefix_index = np.full(D + 1, -1, dtype=np.int64)
    prefix_index[list(prefix_lengths)] = np.arange(P)
    log_levels = np.log(np.asarray(NOISE_VARS))
    return BSAligner(tuple(modalities), tuple(prefix_lengths), np.asarray(NOISE_VARS), weights, bias, active,
                     prefix_index, (log_levels[1:] + log_levels[:-1]) / 2.0, tuple(aligners), FIT_SPLIT,
                     fit_seed_offset, n_fit,
                     source=(fit_bs_aligner, (checkpoint, prefix_lengths, modalities, n_fit, fit_seed_offset)))


def setup(cfg: ScenarioConfig, pool: ScenePool, model: FrozenStudent) -> tuple[ScenePool, BSAligner | None]:
    """The devices' pool and the BS aligner (None for ``aligner="none"``) for a heterogeneous ``cfg``.

    ``pool`` must come from ``build_pool`` (it names the scenes and the BS checkpoint): the heterogeneous pool holds
    the same scenes, with the heterogeneous modalities re-encoded by the variant. ``model`` is the BS model the
    environment classifies with; it must be the pool's (the aligner maps into its latent space).
    """
    if pool.seed is None:
        raise ValueError("heterogeneous_devices needs a scene pool from vmimo_env.scenes.build_pool (it re-encodes "
                         "the pool's scenes with the variant encoders)")
    if model.metadata.get("sha256") != load_model(pool.checkpoint).metadata.get("sha256"):
        raise ValueError("heterogeneous_devices: the BS model is not the one the scene pool was encoded with")
    if pool.seed == FIT_SEED_OFFSET:
        raise ValueError(f"pool seed {pool.seed} is the aligner's fitting offset; pick another pool seed")
    mods = _modality_indices(cfg.heterogeneous_modalities)
    dev_pool = device_pool(pool.size, pool.seed, pool.checkpoint, mods)
    if cfg.aligner == "none":
        return dev_pool, None
    return dev_pool, fit_bs_aligner(pool.checkpoint, tuple(cfg.compression_levels), mods)
