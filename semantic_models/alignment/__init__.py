"""Latent-space alignment over MIMO (Pandolfo et al., "Latent Space Alignment for AI-Native MIMO Semantic
Communications"): a transmitter's latents ``X`` must be understood by a receiver expecting latents ``Y``.

Public API (numpy in/out; torch only inside :mod:`.neural`):

* :func:`fit_linear_aligner` — ADMM precoder/decoder ``(F, G)`` (:mod:`.admm`, core :func:`admm_align`);
* :func:`fit_neural_aligner` — real-pair MLP precoder/decoder, hard per-sample power, pruning knob;
* :func:`fit_baseline` — First-K / Top-K / Eigen-K over an SVD-MMSE link;
* every fitted method has ``encode(x) -> symbols``, ``decode(received) -> ŷ``, ``simulate(x, rng) -> ŷ`` and
  ``link``; :func:`aligner_flops` gives its per-sample inference FLOPs;
* :func:`fit_latent_aligner` — the semantic-only BS-side map the environment uses for heterogeneous devices.
"""

from .admm import ADMMHistory, ADMMResult, LinearAligner, admm_align, f_step, fit_linear_aligner, g_step
from .baselines import BASELINES, BaselineAligner, fit_baseline
from .channel import RawLink, SVDMMSELink, apply_link, noise_variance, rayleigh_channel
from .evaluate import LinearClassifier, aligner_flops, alignment_mse, fit_linear_classifier
from .latent_map import LatentAligner, fit_latent_aligner
from .linalg import Whitener, pack_complex, unpack_complex
from .neural import NeuralAligner, fit_neural_aligner, neural_flops

__all__ = [
    "BASELINES",
    "ADMMHistory",
    "ADMMResult",
    "BaselineAligner",
    "LatentAligner",
    "LinearAligner",
    "LinearClassifier",
    "NeuralAligner",
    "RawLink",
    "SVDMMSELink",
    "Whitener",
    "admm_align",
    "aligner_flops",
    "alignment_mse",
    "apply_link",
    "f_step",
    "fit_baseline",
    "fit_latent_aligner",
    "fit_linear_aligner",
    "fit_linear_classifier",
    "fit_neural_aligner",
    "g_step",
    "neural_flops",
    "noise_variance",
    "pack_complex",
    "rayleigh_channel",
    "unpack_complex",
]
