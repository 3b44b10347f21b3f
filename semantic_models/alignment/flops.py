r"""Inference FLOPs per sample (per transmitted latent) of every method.

Counting rule (stated once, used everywhere):

* a real multiply-add (MAC) = 2 FLOPs; a real add, multiply, compare, sqrt or division = 1 FLOP;
* a complex multiply-add = 8 real FLOPs (4 real multiplies + 2 adds for the product, 2 adds to accumulate), so a
  complex ``(p × q)`` matrix–vector product costs ``8pq``;
* only per-sample work is counted. Work done once per channel realisation or per fit (ADMM iterations, SVD of
  ``H``, the MMSE filter, whitening matrices, training) is excluded; constant transforms are folded into the
  adjacent matrix (whitening into ``F``, input/output standardisation into the first/last layer);
* centring a real ``d``-vector (or adding a mean back) = ``d`` FLOPs; scaling ``m`` complex symbols = ``2m``.
* selecting the top ``k`` of ``m`` magnitudes: ``3m`` for ``|x|²`` (2 multiplies + 1 add) and ``m⌈log₂ k⌉``
  compares (heap selection); the indices are side information and cost nothing at the receiver.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = [
    "COMPLEX_MAC",
    "REAL_MAC",
    "baseline_flops",
    "complex_matvec_flops",
    "linear_aligner_flops",
    "neural_flops_from_layers",
    "svd_mmse_link_flops",
]

REAL_MAC = 2
COMPLEX_MAC = 8


def complex_matvec_flops(rows: int, cols: int) -> int:
    """``8 · rows · cols``: a complex ``rows × cols`` matrix times a vector."""
    return COMPLEX_MAC * rows * cols


def svd_mmse_link_flops(n_tx: int, n_rx: int, k: int) -> int:
    """Per-sample cost of the conventional link: precoding ``V_k s`` (``Nt × k``) + MMSE ``W r`` (``k × Nr``)."""
    return complex_matvec_flops(n_tx, k) + complex_matvec_flops(k, n_rx)


def linear_aligner_flops(d_tx: int, d_rx: int, n_tx: int, n_rx: int, channel_aware: bool = True) -> int:
    """ADMM aligner: centre ``x`` (``d_tx``), ``F W`` (``Nt × d_tx/2``), ``G`` (``d_rx/2 × Nr``), add ``μ_y``.

    Channel-aware: ``F``/``G`` are the whole MIMO precoder/equaliser. Channel-unaware: ``F`` is ``k × d_tx/2``,
    ``G`` is ``d_rx/2 × k`` (``k = min(Nr, Nt)``) plus the SVD-MMSE link.
    """
    if channel_aware:
        return d_tx + complex_matvec_flops(n_tx, d_tx // 2) + complex_matvec_flops(d_rx // 2, n_rx) + d_rx
    k = min(n_tx, n_rx)
    return (d_tx + complex_matvec_flops(k, d_tx // 2) + complex_matvec_flops(d_rx // 2, k) + d_rx
            + svd_mmse_link_flops(n_tx, n_rx, k))


def baseline_flops(method: str, d_tx: int, d_rx: int, k: int, n_tx: int, n_rx: int) -> int:
    """First-K / Top-K / Eigen-K: selector + power scaling + SVD-MMSE link + receiver map ``T`` + ``μ_y``."""
    m_tx = d_tx // 2
    if method == "first_k":
        tx = 2 * k + 2 * k  # centre the k sent coordinates (2k reals), scale k complex symbols
    elif method == "top_k":
        tx = d_tx + 3 * m_tx + m_tx * max(1, math.ceil(math.log2(max(k, 2)))) + 2 * k
    elif method == "eigen_k":
        tx = d_tx + complex_matvec_flops(k, m_tx)  # scale folded into V_k^H W
    else:
        raise ValueError(f"unknown baseline {method!r}")
    # Top-K: T has d_tx/2 columns but only the k told ones are non-zero per sample.
    rx = complex_matvec_flops(d_rx // 2, k) + d_rx
    return tx + svd_mmse_link_flops(n_tx, n_rx, k) + rx


def neural_flops_from_layers(layers: Sequence[tuple[int, int, bool]]) -> int:
    """Sum over dense layers ``(nnz weights, out features, followed by ReLU)``: ``2·nnz + out (+ out)``."""
    return sum(REAL_MAC * nnz + out + (out if relu else 0) for nnz, out, relu in layers)
