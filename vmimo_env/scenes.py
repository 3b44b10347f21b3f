"""The pool of pre-encoded scenes the environment draws tasks from.

Encoding every arriving scene with the on-device encoders inside ``step`` would put a neural-network call per
device on the hot path for a result that does not depend on the action: a device's nested latent of a scene is
fixed, only its prefix length and the channel noise are chosen by the schedule. So the pool is encoded once per
process: ``pool_size`` scenes drawn from the semantic model's ``"env"`` split (disjoint from the splits the model
was trained and tested on), each encoded by every modality's frozen encoder. Arrivals draw pool indices uniformly
with replacement from the environment's own random stream, so the pool introduces no bias; 4,096 scenes at 10
classes leave every class hundreds of times.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from vmimo_env.config import check_pool_size


@dataclass(frozen=True)
class ScenePool:
    """Encoded scenes: ``latents`` float32 (P, M, 64), ``labels`` int64 (P,).

    ``seed`` and ``checkpoint`` name where the scenes came from (``build_pool``'s arguments; None for a pool built
    by hand), which heterogeneous devices need to re-encode the same scenes; ``encoder_mflops`` (per modality) is
    what a device spends per encode when it differs from the BS model's encoders (None: the model's).
    """

    latents: np.ndarray
    labels: np.ndarray
    seed: int | None = None
    checkpoint: str | None = None
    encoder_mflops: tuple[float, ...] | None = None
    # (function, args) that rebuild this pool deterministically (cached per process); None for a hand-built pool
    source: tuple[Any, tuple] | None = field(default=None, compare=False, repr=False)

    @property
    def size(self) -> int:
        return int(self.labels.shape[0])

    def __reduce__(self):
        # pickled as its recipe, not its megabytes: a subprocess or Ray worker rebuilds (or finds in its cache) the
        # same scenes bit for bit instead of receiving them
        if self.source is not None:
            return self.source
        return (ScenePool, (self.latents, self.labels, self.seed, self.checkpoint, self.encoder_mflops))


def load_model(checkpoint: str | None = None):
    """The frozen student: ``checkpoint``, else ``$VMIMO_CHECKPOINT``, else the shipped one (cached per process:
    loading checks a SHA-256 and copies the weights to numpy)."""
    return _load_model(checkpoint or os.environ.get("VMIMO_CHECKPOINT") or None)


@lru_cache(maxsize=4)
def _load_model(checkpoint: str | None):
    from semantic_models import load_frozen_student

    return load_frozen_student(checkpoint)


def build_pool(pool_size: int = 4096, seed: int = 2024, checkpoint: str | None = None) -> ScenePool:
    """Encode ``pool_size`` scenes of the ``env`` split with every modality's frozen encoder (cached)."""
    return _build_pool(check_pool_size(pool_size), int(seed), checkpoint)  # one cache entry per value


@lru_cache(maxsize=4)
def _build_pool(pool_size: int, seed: int, checkpoint: str | None) -> ScenePool:
    from semantic_models.data import SceneGenerator

    model = load_model(checkpoint)
    feats, labels, _ = SceneGenerator(seed=int(model.metadata["data_seed"])).sample(
        pool_size, split="env", seed_offset=seed)
    lat = np.stack([model.encode(m, feats[name]) for m, name in enumerate(model.modalities)], axis=1)
    lat = np.ascontiguousarray(lat, dtype=np.float32)
    lat.setflags(write=False)
    labels = np.asarray(labels, dtype=np.int64)
    labels.setflags(write=False)
    return ScenePool(lat, labels, seed=seed, checkpoint=checkpoint, source=(build_pool, (pool_size, seed, checkpoint)))
