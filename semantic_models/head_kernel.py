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
    B = w_blocks.shape[0]
    X = aug.shape[1]
    out = np.empty((n, C), dtype=np.float32)
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
            for d in range(X):
                xd = x[d]
                if xd != 0.0:
                    w = w_embed[m, d]
                    for e in range(E):
                        zm[e] += xd * w[e]
            for e in range(E):
                if zm[e] < 0.0:
                    zm[e] = 0.0
        h[:] = 0.0
        for q in range(M * E):
            zq = z[q]
            if zq != 0.0:
                w = w_fuse[q]
                for u in range(H):
                    h[u] += zq * w[u]
        for u in range(H):
            if h[u] < 0.0:
                h[u] = 0.0
        for b in range(B):
            r[:] = 0.0
            wb = w_blocks[b]
            for q in range(H):
                hq = h[q]
                if hq != 0.0:
                    w = wb[q]
                    for u in range(H):
                        r[u] += hq * w[u]
            for u in range(H):
                if r[u] > 0.0:
                    h[u] += r[u]
        for c in range(C):
            out[j, c] = 0.0
        for q in range(H):
            hq = h[q]
            if hq != 0.0:
                w = w_out[q]
                for c in range(C):
                    out[j, c] += hq * w[c]
    return out
