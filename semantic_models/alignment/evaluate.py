"""Small evaluation helpers: a least-squares linear classifier, alignment MSE, and FLOPs of any fitted method."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .admm import LinearAligner
from .baselines import BaselineAligner
from .channel import SVDMMSELink
from .flops import baseline_flops, linear_aligner_flops, svd_mmse_link_flops
from .neural import NeuralAligner, neural_flops

__all__ = ["LinearClassifier", "aligner_flops", "alignment_mse", "fit_linear_classifier"]


@dataclass(frozen=True)
class LinearClassifier:
    """``argmax(W y + b)``; fitted by ridge least squares on one-hot targets (a stand-in receiver task head)."""

    w: np.ndarray  # (d, C)
    b: np.ndarray  # (C,)

    def predict(self, y: np.ndarray) -> np.ndarray:
        """Class indices ``(n,)`` for latents ``(n, d)``."""
        return np.argmax(np.asarray(y) @ self.w + self.b, axis=1)

    def accuracy(self, y: np.ndarray, labels: np.ndarray) -> float:
        """Fraction of correct predictions."""
        return float(np.mean(self.predict(y) == np.asarray(labels)))


def fit_linear_classifier(y: np.ndarray, labels: np.ndarray, num_classes: int | None = None,
                          ridge: float = 1e-3) -> LinearClassifier:
    """Ridge regression of one-hot labels on centred latents ``y`` ``(n, d)``."""
    y = np.asarray(y, dtype=np.float64)
    labels = np.asarray(labels)
    c = int(labels.max()) + 1 if num_classes is None else num_classes
    t = np.eye(c)[labels]
    mu = y.mean(0)
    y0 = y - mu
    w = np.linalg.solve(y0.T @ y0 / len(y) + ridge * np.eye(y.shape[1]), y0.T @ (t - t.mean(0)) / len(y))
    return LinearClassifier(w=w, b=t.mean(0) - mu @ w)


def alignment_mse(y_hat: np.ndarray, y: np.ndarray) -> float:
    """Mean over samples of ``||ŷ − y||²`` (the per-sample alignment error in the receiver's space)."""
    return float(np.mean(np.sum((np.asarray(y_hat) - np.asarray(y)) ** 2, axis=1)))


def aligner_flops(aligner: LinearAligner | BaselineAligner | NeuralAligner) -> int:
    """Inference FLOPs per sample of a fitted method, including its physical link (rule in :mod:`.flops`)."""
    if isinstance(aligner, NeuralAligner):
        link = aligner.link
        extra = svd_mmse_link_flops(link.h.shape[1], link.h.shape[0], link.k) if isinstance(link, SVDMMSELink) else 0
        return neural_flops(aligner) + extra
    if isinstance(aligner, LinearAligner):
        n_rx, n_tx = aligner.link.h.shape
        return linear_aligner_flops(aligner.d_tx, aligner.d_rx, n_tx, n_rx,
                                    channel_aware=not isinstance(aligner.link, SVDMMSELink))
    if isinstance(aligner, BaselineAligner):
        n_rx, n_tx = aligner.link.h.shape
        return baseline_flops(aligner.method, aligner.d_tx, aligner.d_rx, aligner.k, n_tx, n_rx)
    raise TypeError(f"unknown aligner type {type(aligner).__name__}")
