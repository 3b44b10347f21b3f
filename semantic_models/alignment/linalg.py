"""Complex packing, prewhitening and small Hermitian linear-algebra helpers.

Conventions used throughout :mod:`semantic_models.alignment`:

* Real latents are arrays ``(n, d)`` (one sample per row, as the models produce them).
* The maths works on complex matrices with one sample per *column*: a real latent ``x ∈ R^d`` (``d`` even) is
  packed into ``x_c = x[:d/2] + j·x[d/2:] ∈ C^{d/2}`` ("half real, half imaginary"), so a batch becomes
  ``X ∈ C^{d/2 × n}``. :func:`pack_complex` and :func:`unpack_complex` are exact inverses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "Whitener",
    "check_finite",
    "hermitian_right_solve",
    "pack_complex",
    "unpack_complex",
]


def check_finite(name: str, a: np.ndarray) -> None:
    """Raise ``ValueError`` if ``a`` holds NaN or ±inf (a silent NaN would poison every later solve)."""
    if not np.all(np.isfinite(a)):
        bad = int(np.size(a) - np.count_nonzero(np.isfinite(a)))
        raise ValueError(f"{name} contains {bad} non-finite value(s) (NaN or inf)")


def pack_complex(x: np.ndarray, name: str = "x") -> np.ndarray:
    """Pack real latents ``(n, d)`` into complex columns ``(d/2, n)``: ``x[:, :d/2] + j·x[:, d/2:]``, transposed.

    Raises ``ValueError`` for a non-2-D input, an odd ``d`` or non-finite values.
    """
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (n, d) of real latents, got shape {x.shape}")
    if np.iscomplexobj(x):
        raise ValueError(f"{name} must be real (it is packed into complex here), got dtype {x.dtype}")
    n, d = x.shape
    if d % 2 != 0 or d == 0:
        raise ValueError(f"{name} must have an even, positive latent dimension to pack into complex, got d={d}")
    if n == 0:
        raise ValueError(f"{name} has no samples")
    check_finite(name, x)
    x = x.astype(np.float64, copy=False)
    h = d // 2
    return (x[:, :h] + 1j * x[:, h:]).T.copy()


def unpack_complex(xc: np.ndarray) -> np.ndarray:
    """Inverse of :func:`pack_complex`: complex columns ``(d/2, n)`` to real rows ``(n, d)`` (float64)."""
    xc = np.asarray(xc)
    if xc.ndim != 2:
        raise ValueError(f"expected a 2-D complex array (d/2, n), got shape {xc.shape}")
    return np.concatenate([xc.real.T, xc.imag.T], axis=1)


def hermitian_right_solve(b: np.ndarray, m: np.ndarray, rcond: float = 1e-12) -> np.ndarray:
    """Return ``B M⁺`` for a Hermitian positive semi-definite ``M`` (pseudo-inverse by eigendecomposition).

    Eigenvalues below ``rcond · λ_max`` are treated as zero, so a rank-deficient Gram matrix (noise-free fit with
    more receive antennas than streams) gives the minimum-norm least-squares solution instead of blowing up.
    """
    m = 0.5 * (m + m.conj().T)  # symmetrise: round-off makes Gram products slightly non-Hermitian
    lam, v = np.linalg.eigh(m)
    lam_max = float(lam[-1]) if lam.size else 0.0
    if lam_max <= 0.0:
        return np.zeros((b.shape[0], m.shape[0]), dtype=np.result_type(b, m))
    keep = lam > rcond * lam_max
    inv = np.zeros_like(lam)
    inv[keep] = 1.0 / lam[keep]
    return ((b @ v) * inv) @ v.conj().T


@dataclass(frozen=True)
class Whitener:
    """Complex prewhitening ``x_w = W (x − μ)`` with ``W = C^{-1/2}`` (ZCA), ``C = E[(x−μ)(x−μ)^H]``.

    After whitening ``E[x_w x_w^H] = I``, so ``E‖F x_w‖² = tr(F F^H)``: the constraint ``tr(FF^H) ≤ P`` is then
    exactly the average transmit power. The inverse transform ``x = W⁻¹ x_w + μ`` is kept (``w_inv``).
    Directions with variance below ``eps · λ_max`` are not amplified (their gain is capped) so a degenerate
    latent (for example zero padding beyond a nested prefix) does not turn into amplified noise.
    """

    mean: np.ndarray  # (m,) complex
    w: np.ndarray  # (m, m) complex, C^{-1/2}
    w_inv: np.ndarray  # (m, m) complex, C^{1/2}

    @staticmethod
    def fit(xc: np.ndarray, eps: float = 1e-8) -> Whitener:
        """Fit on complex columns ``(m, n)``."""
        check_finite("whitener input", xc)
        mean = xc.mean(axis=1)
        xc0 = xc - mean[:, None]
        c = (xc0 @ xc0.conj().T) / xc.shape[1]
        c = 0.5 * (c + c.conj().T)
        lam, v = np.linalg.eigh(c)
        lam_floor = max(float(lam[-1]), 1e-300) * eps
        lam = np.maximum(lam, lam_floor)
        w = (v / np.sqrt(lam)) @ v.conj().T
        w_inv = (v * np.sqrt(lam)) @ v.conj().T
        return Whitener(mean=mean, w=w, w_inv=w_inv)

    def transform(self, xc: np.ndarray) -> np.ndarray:
        """``W (x − μ)`` on complex columns."""
        return self.w @ (xc - self.mean[:, None])

    def inverse_transform(self, xw: np.ndarray) -> np.ndarray:
        """``W⁻¹ x_w + μ`` on complex columns."""
        return self.w_inv @ xw + self.mean[:, None]
