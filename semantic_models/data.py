"""Procedural multimodal scene generator (numpy only, deterministic, no downloads).

A scene has a class ``c`` (10 classes) and shared nuisance variables: a sub-cluster ``k`` (3 per group, think
"pose" or "weather") and a curve position ``t`` in [-1, 1]. Every modality sees the scene through its own lens:

1. **Partial class information.** Modality ``m`` partitions the classes into a few groups (3 or 4). Classes in
   the same group differ in that modality only by a small offset, so no single modality can tell them apart
   reliably; the partitions are drawn so every pair of classes is split by at least ``min_distance`` modalities.
   Fusion therefore clearly beats the best single modality, and losing one modality degrades gracefully.
2. **Nonlinear manifolds.** Within a group the intrinsic code is a mixture of curved segments:
   ``u = centre[g] + offset[c] + S[g, k] + t V1[g, k] + (t² − 1/3) V2[g, k] + private noise``
   in a small intrinsic space, then mapped to ``d_m`` features by a fixed random two-layer tanh network and
   standardised. One Gaussian per class would fit this badly.
3. **Per-sample sensing SNR.** Gaussian sensing noise is added with an SNR drawn per sample and modality.

The class structure (partitions, centres, curves, nonlinear maps, standardisation) depends only on the structure
``seed``. The split name and ``seed_offset`` only choose which samples are drawn, so a model trained on ``train``
is scored fairly on ``val``/``test``/``env`` (the seed generator drew new class means for its test split, which
left its test accuracy at chance; ``tests/test_semantic_data.py`` shows that cannot happen here).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .spec import INPUT_DIMS, MODALITIES

#: Bump when the sampling code changes, so metadata can tell which data a checkpoint was built on.
GENERATOR_VERSION = "1"
SPLITS: tuple[str, ...] = ("train", "val", "test", "env")


@dataclass(frozen=True)
class GeneratorConfig:
    """Knobs of the generator (the defaults are calibrated; see ``docs/semantic_models.md``)."""

    num_classes: int = 10
    groups: tuple[int, ...] = (4, 3, 3, 4, 3)  # groups per modality, in ``MODALITIES`` order
    min_distance: int = 3  # every class pair is split by at least this many modalities
    intrinsic_dim: int = 6
    subclusters: int = 3
    centre_scale: float = 0.65 # distance scale between group centres (intrinsic units)
    class_offset: float = 0.3 # within-group class offset: a little class info survives in each modality
    subcluster_scale: float = 0.9
    curve_scale: float = 1.0
    private_noise: float = 1.05 # per-modality nuisance in the intrinsic space
    map_gain: float = 0.8  # pre-activation gain of the random tanh map (higher = more nonlinear)
    sensing_snr_db: tuple[float, float] = (0.0, 20.0)  # per-sample, per-modality sensing SNR range


class SceneGenerator:
    """Deterministic multimodal scenes with a fixed class structure.

    Args:
        seed: structure seed: fixes partitions, manifolds and maps. Same seed → same data for the same
            ``(n, split, seed_offset)``.
        config: generator knobs; the defaults are the shipped, calibrated setting.
    """

    def __init__(self, seed: int = 0, config: GeneratorConfig | None = None) -> None:
        self.seed = int(seed)
        self.config = cfg = config or GeneratorConfig()
        self.modalities = MODALITIES
        self.input_dims = dict(INPUT_DIMS)
        self.num_classes = cfg.num_classes
        rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(0,)))
        self.partition = self._draw_partitions(rng)  # (M, C) group id of each class per modality
        q, C, K = cfg.intrinsic_dim, cfg.num_classes, cfg.subclusters
        self._centre, self._offset, self._sub, self._v1, self._v2, self._maps = [], [], [], [], [], []
        for m, name in enumerate(MODALITIES):
            g = cfg.groups[m]
            self._centre.append(cfg.centre_scale * rng.standard_normal((g, q)))
            self._offset.append(cfg.class_offset * rng.standard_normal((C, q)))
            self._sub.append(cfg.subcluster_scale * rng.standard_normal((g, K, q)))
            self._v1.append(cfg.curve_scale * rng.standard_normal((g, K, q)))
            self._v2.append(cfg.curve_scale * rng.standard_normal((g, K, q)))
            d = INPUT_DIMS[name]
            h = 2 * d
            w1 = rng.standard_normal((q, h)) * (cfg.map_gain / np.sqrt(q * cfg.centre_scale**2))
            b1 = rng.uniform(-1.0, 1.0, h)
            w2 = rng.standard_normal((h, d)) / np.sqrt(h)
            self._maps.append((w1, b1, w2))
        # Standardisation constants from a structure-seeded clean batch, so features are O(1) per dimension and the
        # sensing SNR means the same thing in every modality.
        calib = self._clean_features(*self._draw_scene(4096, rng))
        self._mean = [f.mean(0) for f in calib]
        self._std = [f.std(0) + 1e-6 for f in calib]

    # ------------------------------------------------------------------ structure
    def _draw_partitions(self, rng: np.random.Generator) -> np.ndarray:
        """Balanced random class partitions per modality with pairwise code distance >= ``min_distance``."""
        cfg = self.config
        C, M = cfg.num_classes, len(MODALITIES)
        iu = np.triu_indices(C, 1)
        best, best_key = None, (-1, -1)
        for _ in range(2000):
            part = np.stack([rng.permutation(np.arange(C) % cfg.groups[m]) for m in range(M)])
            pair_dist = (part[:, :, None] != part[:, None, :]).sum(0)[iu]  # modalities splitting each class pair
            dist = int(pair_dist.min())
            # prefer the largest minimum distance, then the fewest pairs at that distance
            key = (dist, -int((pair_dist == dist).sum()))
            if key > best_key:
                best, best_key = part, key
            if dist >= cfg.min_distance and -key[1] <= 3:
                break
        assert best is not None
        if best_key[0] < cfg.min_distance:
            raise ValueError(f"no partition with code distance {cfg.min_distance} found (best {best_key[0]})")
        return best

    # ------------------------------------------------------------------ sampling
    def _draw_scene(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, list]:
        cfg = self.config
        labels = rng.integers(0, cfg.num_classes, n)
        sub = rng.integers(0, cfg.subclusters, n)
        t = rng.uniform(-1.0, 1.0, n)
        private = [cfg.private_noise * rng.standard_normal((n, cfg.intrinsic_dim)) for _ in MODALITIES]
        return labels, sub, t, private

    def _clean_features(self, labels: np.ndarray, sub: np.ndarray, t: np.ndarray, private: list) -> list[np.ndarray]:
        out = []
        for m in range(len(MODALITIES)):
            g = self.partition[m][labels]
            u = (self._centre[m][g] + self._offset[m][labels] + self._sub[m][g, sub]
                 + t[:, None] * self._v1[m][g, sub] + (t[:, None] ** 2 - 1.0 / 3.0) * self._v2[m][g, sub]
                 + private[m])
            w1, b1, w2 = self._maps[m]
            out.append(np.tanh(u @ w1 + b1) @ w2)
        return out

    def sample(self, n: int, split: str = "train", seed_offset: int = 0
               ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        """Draw ``n`` scenes of a split.

        Returns:
            feats: modality name -> float32 (n, d_m) standardised noisy features;
            labels: int64 (n,) in [0, num_classes);
            sensing_snr_db: float32 (n, M) the sensing SNR each modality's features were drawn at.
        """
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(1, SPLITS.index(split),
                                                                                   int(seed_offset))))
        labels, sub, t, private = self._draw_scene(n, rng)
        clean = self._clean_features(labels, sub, t, private)
        lo, hi = self.config.sensing_snr_db
        snr_db = rng.uniform(lo, hi, (n, len(MODALITIES)))
        feats = {}
        for m, name in enumerate(MODALITIES):
            x = (clean[m] - self._mean[m]) / self._std[m]
            sigma = 10.0 ** (-snr_db[:, m] / 20.0)  # features have unit power per dimension
            x = x + sigma[:, None] * rng.standard_normal(x.shape)
            feats[name] = x.astype(np.float32)
        return feats, labels.astype(np.int64), snr_db.astype(np.float32)

    def describe(self) -> dict:
        """JSON-able description for checkpoint metadata."""
        cfg = self.config
        return {"version": GENERATOR_VERSION, "seed": self.seed, "num_classes": cfg.num_classes,
                "groups_per_modality": dict(zip(MODALITIES, cfg.groups, strict=True)),
                "partition": {name: self.partition[m].tolist() for m, name in enumerate(MODALITIES)},
                "sensing_snr_db": list(cfg.sensing_snr_db)}


def stack_features(feats: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Features as a list in ``MODALITIES`` order (the order every model uses)."""
    return [feats[name] for name in MODALITIES]
