"""Scoring: accuracy under fixed random channel conditions (training/search) and the accuracy tables (frozen).

Every comparison uses common random numbers: the same scenes, the same SNR/prefix/dropout draws and the same noise
samples, so differences between candidates, SNRs or prefixes are differences of the model, not of the draw.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from .channel import KEEP_PROB
from .data import stack_features
from .spec import LATENT_DIM, MODALITIES, PREFIX_LENGTHS, TRAIN_SNR_DB


@dataclass
class FixedConditions:
    """A scored set: features, labels and one fixed draw of channel conditions and noise."""

    xs: list[torch.Tensor]
    y: torch.Tensor
    snr_db: torch.Tensor  # (n, M)
    prefix: torch.Tensor  # (n, M) int64, 0 = dropped
    noise: torch.Tensor  # (n, M, 64) standard normal

    def received(self, latents: torch.Tensor) -> torch.Tensor:
        std = torch.pow(10.0, -self.snr_db / 20.0)[..., None]
        keep = (torch.arange(LATENT_DIM) < self.prefix[..., None]).to(latents.dtype)
        return (latents + std * self.noise) * keep


def make_fixed_conditions(feats: dict[str, np.ndarray], labels: np.ndarray, seed: int,
                          keep_prob: float = KEEP_PROB) -> FixedConditions:
    """Draw conditions like training does (numpy, seeded, independent of torch's generator)."""
    rng = np.random.default_rng(seed)
    n, M = labels.shape[0], len(MODALITIES)
    lo, hi = TRAIN_SNR_DB
    snr = rng.uniform(lo, hi, (n, M))
    prefix = np.asarray(PREFIX_LENGTHS)[rng.integers(0, len(PREFIX_LENGTHS), (n, M))]
    keep = rng.random((n, M)) < keep_prob
    none = ~keep.any(1)
    keep[np.flatnonzero(none), rng.integers(0, M, int(none.sum()))] = True
    noise = rng.standard_normal((n, M, LATENT_DIM))
    return FixedConditions([torch.from_numpy(f.astype(np.float32)) for f in stack_features(feats)],
                           torch.from_numpy(labels), torch.from_numpy(snr.astype(np.float32)),
                           torch.from_numpy(prefix * keep), torch.from_numpy(noise.astype(np.float32)))


@torch.no_grad()
def accuracy_under_conditions(encode_all: Callable[[list[torch.Tensor]], torch.Tensor],
                              classify: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                              fc: FixedConditions) -> float:
    """Accuracy of an encoder/head pair on a fixed-condition set (eval mode is the caller's job)."""
    was = []
    for fn in (encode_all, classify):
        owner = getattr(fn, "__self__", None)
        if isinstance(owner, torch.nn.Module):
            was.append((owner, owner.training))
            owner.eval()
    logits = classify(fc.received(encode_all(fc.xs)), fc.prefix)
    for owner, training in was:
        owner.train(training)
    return float((logits.argmax(1) == fc.y).float().mean())


# ---------------------------------------------------------------------- tables on the frozen model
def modality_subsets() -> list[tuple[int, ...]]:
    """All 31 non-empty modality subsets, by size then lexicographically."""
    M = len(MODALITIES)
    return [s for r in range(1, M + 1) for s in itertools.combinations(range(M), r)]


def subset_name(subset: tuple[int, ...]) -> str:
    return "+".join(MODALITIES[m] for m in subset)


def accuracy_table(classify: Callable[[np.ndarray, np.ndarray], np.ndarray], latents: np.ndarray,
                   labels: np.ndarray, snr_grid: tuple[float, ...], seed: int,
                   subsets: list[tuple[int, ...]] | None = None,
                   prefixes: tuple[int, ...] = PREFIX_LENGTHS) -> dict:
    """Accuracy over SNR × prefix × modality subset (the same SNR and prefix for every present modality).

    ``latents`` are the clean encoded test scenes (n, M, 64). One noise draw per SNR is shared by all prefixes
    and subsets (common random numbers), so the table's trends are not sampling noise.
    """
    subsets = modality_subsets() if subsets is None else subsets
    rng = np.random.default_rng(seed)
    n, M, _ = latents.shape
    acc = np.zeros((len(subsets), len(prefixes), len(snr_grid)))
    noise = rng.standard_normal(latents.shape).astype(np.float32)
    for k, snr in enumerate(snr_grid):
        noisy = latents + noise * np.float32(10.0 ** (-snr / 20.0))
        for j, p in enumerate(prefixes):
            trunc = noisy.copy()
            trunc[:, :, p:] = 0.0
            for i, s in enumerate(subsets):
                present = np.zeros(M, dtype=bool)
                present[list(s)] = True
                plen = np.where(present, p, 0)[None, :].repeat(n, 0)
                rx = trunc * present[None, :, None]
                acc[i, j, k] = float((classify(rx, plen).argmax(1) == labels).mean())
    return {"snr_db": [float(s) for s in snr_grid], "prefix_lengths": list(prefixes),
            "subsets": [subset_name(s) for s in subsets], "n_test": int(n), "noise_seed": int(seed),
            "accuracy": np.round(acc, 4).tolist(),
            "layout": "accuracy[subset][prefix][snr]; same SNR and prefix for every present modality"}


def lookup(table: dict, subset: str, prefix: int, snr_db: float) -> float:
    """One cell of an accuracy table (``subset`` as "visual+radar"; exact grid values only)."""
    i = table["subsets"].index(subset)
    j = table["prefix_lengths"].index(prefix)
    k = table["snr_db"].index(float(snr_db))
    return float(table["accuracy"][i][j][k])
