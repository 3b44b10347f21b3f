"""A synthetic pair of linearly related latent spaces with class structure (for tests and sanity checks).

Not a scene generator: the project's data come from :class:`semantic_models.data.SceneGenerator`. Here a hidden
semantic vector ``z = μ_c + ε`` (class ``c``) is seen by two "devices" through different random linear maps,
``x = A z + ν_x`` (transmitter latent, ``d_tx``) and ``y = B z + ν_y`` (receiver latent, ``d_rx``), so the best
alignment ``y ≈ M x`` is linear and a linear classifier on ``y`` recovers ``c``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["LatentPair", "linear_latent_pair"]


@dataclass(frozen=True)
class LatentPair:
    """Train/test split of paired latents: ``x_*`` ``(n, d_tx)``, ``y_*`` ``(n, d_rx)``, labels ``(n,)``."""

    x_train: np.ndarray
    y_train: np.ndarray
    labels_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    labels_test: np.ndarray


def linear_latent_pair(n_train: int = 2000, n_test: int = 1000, d_tx: int = 16, d_rx: int = 16, d_sem: int = 12,
                       num_classes: int = 8, class_sep: float = 1.5, obs_noise: float = 0.05,
                       seed: int = 0) -> LatentPair:
    """Draw the pair; ``class_sep`` is the class-mean scale relative to the unit within-class spread."""
    rng = np.random.default_rng(seed)
    means = class_sep * rng.standard_normal((num_classes, d_sem))
    a = rng.standard_normal((d_tx, d_sem)) / np.sqrt(d_sem)
    b = rng.standard_normal((d_rx, d_sem)) / np.sqrt(d_sem)

    def draw(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        c = rng.integers(0, num_classes, n)
        z = means[c] + rng.standard_normal((n, d_sem))
        x = z @ a.T + obs_noise * rng.standard_normal((n, d_tx))
        y = z @ b.T + obs_noise * rng.standard_normal((n, d_rx))
        return x, y, c

    xtr, ytr, ctr = draw(n_train)
    xte, yte, cte = draw(n_test)
    return LatentPair(xtr, ytr, ctr, xte, yte, cte)
