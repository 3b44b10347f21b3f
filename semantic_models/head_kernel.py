"""The frozen fusion head as one compiled loop, for the few scenes a single environment closes per slot.

At one or two scenes a slot the numpy head (``FrozenStudent._classify``) is a dozen small array calls whose
overhead is most of a single environment's step; this loop does the same products on the folded weights of
``FrozenStudent._export_head`` (augmented rows, ReLU embeddings, fusion, residual blocks, output) in one call.
It accumulates in float32 like BLAS but in its own order, so its logits equal the numpy head's to float32
rounding (about 1e-6 relative, tested), not bit for bit; ``FrozenStudent.classify`` uses it below
``COMPILED_BATCH`` scenes and BLAS above.
"""

from __future__ import annotations

import numpy as np
from numba import njit

COMPILED_BATCH = 6  # scenes per call up to which the compiled loop beats the numpy head (benchmarks/bench_semantic.py)


@njit(cache=True, inline="always")
def _accumulate(x, w, out):
    """``out += x @ w`` for a vector ``x`` (skipping its zeros: after a ReLU many are) and a row-major ``w``."""
    for q in range(x.shape[0]):
        xq = x[q]
        if xq != 0.0:
            row = w[q]
            for u in range(out.shape[0]):
                out[u] += xq * row[u]


@njit(cache=True)
def head_logits(latents, prefix_len, aug, w_embed, w_fuse, w_blocks, w_out):
    """Logits float32 (n, C) of received latents (n, M, 64) with prefix lengths (n, M) in 0..64.

    ``aug`` (65, 67): per prefix length the mask row and the three extra inputs; ``w_embed`` (M, 67, E);
    ``w_fuse`` (M E, H); ``w_blocks`` (B, H, H); ``w_out`` (H, C): the folded, bias-free weights.
    """
    n, M, L = latents.shape
    E = w_embed.shape[2]
    H = w_fuse.shape[1]
    C = w_out.shape[1]
    X = aug.shape[1]
    out = np.zeros((n, C), dtype=np.float32)
    x = np.empty(X, dtype=np.float32)
    z = np.empty(M * E, dtype=np.float32)
    h = np.empty(H, dtype=np.float32)
    r = np.empty(H, dtype=np.float32)
    for j in range(n):
        for m in range(M):
            row = aug[prefix_len[j, m]]
            for d in range(L):
                x[d] = row[d] * latents[j, m, d]
            for d in range(L, X):
                x[d] = row[d]
            zm = z[m * E:(m + 1) * E]
            zm[:] = 0.0
            _accumulate(x, w_embed[m], zm)
            np.maximum(zm, 0.0, zm)
        h[:] = 0.0
        _accumulate(z, w_fuse, h)
        np.maximum(h, 0.0, h)
        for b in range(w_blocks.shape[0]):
            r[:] = 0.0
            _accumulate(h, w_blocks[b], r)
            for u in range(H):
                if r[u] > 0.0:
                    h[u] += r[u]
        _accumulate(h, w_out, out[j])
    return out
