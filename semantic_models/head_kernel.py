"""The frozen fusion head as one compiled loop, for the few scenes a single environment closes per slot.

At one or a few scenes a slot the numpy head (``FrozenStudent._classify``) is a dozen small array calls whose
overhead is most of a single environment's step; this loop does the same products on the folded weights of
``FrozenStudent._export_head`` in one call, scene by scene:

* each modality's embedding is the precomputed row of its prefix length (present bit, prefix / 64 and bias,
  ``embed_table``) plus a dot product of the first ``prefix`` latent values only (values at and beyond the prefix
  are never read, so prefix 0 is exactly "absent"), then a ReLU;
* the fusion layer adds the rows of the nonzero embeddings (after a ReLU most are zero), then a ReLU;
* residual blocks and the output layer are dot products over the hidden units.

The dot products are compiled with reassociation allowed (``FASTMATH``), so they vectorise: the logits equal the
numpy head's to float32 rounding (about 1e-6 relative, tested), not bit for bit, and may differ in the last bits
on a CPU with other vector units. On one machine they are deterministic, and a scene's logits do not depend on
which other scenes share its call. ``FrozenStudent.classify`` uses this loop up to ``COMPILED_BATCH`` scenes and
BLAS above (where BLAS's blocking of many scenes per weight load wins).
"""

from __future__ import annotations

import numpy as np
from numba import njit

# scenes per call up to which the compiled loop beats the numpy head (the crossover of benchmarks/bench_semantic.py)
COMPILED_BATCH = 24
# reassociation (vectorised sums) and fused multiply-add; no "no NaN / no inf" assumptions
FASTMATH = {"reassoc", "contract", "nsz"}


@njit(cache=True, inline="always", fastmath=FASTMATH)
def _dot(x, w, n):
    """``x[:n] @ w[:n]`` in float32."""
    s = np.float32(0.0)
    for q in range(n):
        s += x[q] * w[q]
    return s


@njit(cache=True, fastmath=FASTMATH)
def head_logits(latents, prefix_len, embed_t, embed_table, w_fuse, blocks_t, out_t):
    """Logits float32 (n, C) of received latents (n, M, L) with prefix lengths (n, M) in 0..L.

    Folded, bias-free weights (``FrozenStudent._export_head``): ``embed_t`` (M, E, L) the latent part of each
    modality's embedding, transposed; ``embed_table`` (M (L + 1), E) the rest of it per prefix length; ``w_fuse``
    (M E, H) the fusion layer; ``blocks_t`` (B, H, H) the residual blocks and ``out_t`` (C, H) the output layer,
    both transposed (output unit first).
    """
    n, M, L = latents.shape
    E = embed_t.shape[1]
    C, H = out_t.shape
    ME = M * E
    out = np.empty((n, C), dtype=np.float32)
    z = np.empty(ME, dtype=np.float32)
    h = np.empty(H, dtype=np.float32)
    r = np.empty(H, dtype=np.float32)
    for j in range(n):
        for m in range(M):
            p = prefix_len[j, m]
            row = embed_table[m * (L + 1) + p]
            lat = latents[j, m]
            for u in range(E):
                v = row[u] + _dot(lat, embed_t[m, u], p)
                z[m * E + u] = v if v > 0.0 else np.float32(0.0)
        h[:] = 0.0
        for q in range(ME):
            zq = z[q]
            if zq != 0.0:
                wq = w_fuse[q]
                for u in range(H):
                    h[u] += zq * wq[u]
        for u in range(H):
            if h[u] < 0.0:
                h[u] = 0.0
        for b in range(blocks_t.shape[0]):
            for u in range(H):
                r[u] = _dot(h, blocks_t[b, u], H)
            for u in range(H):
                if r[u] > 0.0:
                    h[u] += r[u]
        for c in range(C):
            out[j, c] = _dot(h, out_t[c], H)
    return out
