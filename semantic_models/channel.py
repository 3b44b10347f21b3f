"""The analog (joint source-channel) link the environment applies, and the random conditions used in training.

Noise model, identical to the environment's: a device sends the first ``prefix_len`` values of its unit-power
nested latent; each received real value is ``latent + n / sqrt(SNR_linear)`` with ``n ~ N(0, 1)``; values beyond
the prefix are zero; ``prefix_len == 0`` means the modality did not arrive. Training draws, per sample and
modality, an SNR uniform in dB over ``TRAIN_SNR_DB``, a prefix uniform over ``PREFIX_LENGTHS`` and a random
modality dropout that always keeps at least one modality, so the frozen head has seen every situation the
scheduler can create.
"""

from __future__ import annotations

import numpy as np
import torch

from .spec import LATENT_DIM, PREFIX_LENGTHS, TRAIN_SNR_DB

KEEP_PROB = 0.7  # per-modality keep probability in training (all five kept ≈ 17% of the time)


def sample_conditions(n: int, num_modalities: int, gen: torch.Generator, keep_prob: float = KEEP_PROB,
                      snr_db: tuple[float, float] = TRAIN_SNR_DB) -> tuple[torch.Tensor, torch.Tensor]:
    """Random training conditions: SNR dB float (n, M) and prefix length int64 (n, M), 0 where dropped."""
    lo, hi = snr_db
    snr = lo + (hi - lo) * torch.rand(n, num_modalities, generator=gen)
    choice = torch.randint(0, len(PREFIX_LENGTHS), (n, num_modalities), generator=gen)
    prefix = torch.tensor(PREFIX_LENGTHS)[choice]
    keep = torch.rand(n, num_modalities, generator=gen) < keep_prob
    # at least one modality: where all were dropped, keep one at random
    none = ~keep.any(1)
    if none.any():
        forced = torch.randint(0, num_modalities, (int(none.sum()),), generator=gen)
        keep[none.nonzero().squeeze(1), forced] = True
    return snr, prefix * keep


def analog_channel(latents: torch.Tensor, prefix_len: torch.Tensor, snr_db: torch.Tensor,
                   gen: torch.Generator | None = None) -> torch.Tensor:
    """Received latents (n, M, 64): AWGN at ``snr_db`` on the first ``prefix_len`` values, zeros beyond."""
    noise = torch.randn(latents.shape, generator=gen, dtype=latents.dtype)
    std = torch.pow(10.0, -snr_db / 20.0).to(latents.dtype)[..., None]
    keep = (torch.arange(LATENT_DIM) < prefix_len[..., None]).to(latents.dtype)
    return (latents + std * noise) * keep


def analog_channel_np(latents: np.ndarray, prefix_len: np.ndarray, snr_db: np.ndarray | float,
                      rng: np.random.Generator) -> np.ndarray:
    """Numpy twin of :func:`analog_channel` (used by the accuracy tables and the tests)."""
    snr_db = np.broadcast_to(np.asarray(snr_db, dtype=np.float64), prefix_len.shape)
    std = (10.0 ** (-snr_db / 20.0))[..., None]
    keep = np.arange(LATENT_DIM) < prefix_len[..., None]
    out = (latents + std * rng.standard_normal(latents.shape)) * keep
    return out.astype(np.float32)
