"""The frozen fusion head as one compiled loop, scene by scene: the head the environment runs.

For a few scenes the numpy head (``FrozenStudent._classify``) is a dozen small array calls whose overhead exceeds
the arithmetic; this loop does the same products on the folded weights of ``FrozenStudent._export_head`` in one
call, one scene at a time (``vmimo_env.scoring`` calls :func:`scene_logits` on each closing scene):

* each modality's embedding is the precomputed row of its prefix length (present bit, prefix / 64 and bias,
  ``embed_table``) plus a dot product of the first ``prefix`` latent values only (values at and beyond the prefix
  are never read, so prefix 0 is exactly "absent"), then a ReLU;
* the fusion layer adds the rows of the nonzero embeddings (after a ReLU many are zero), their indices
  compacted first and four rows added per pass over the hidden units, each unit's sum in index order;
  then a ReLU;
* residual blocks and the output layer are dot products over the hidden units.

The dot products are compiled with reassociation allowed (``FASTMATH``), so they vectorise: the logits equal the
numpy head's to float32 rounding (about 1e-6 relative, tested), not bit for bit, and may differ in the last bits
on a CPU with other vector units. On one machine they are deterministic, and a scene's logits do not depend on
which other scenes share its call. ``FrozenStudent.classify`` uses this loop up to ``COMPILED_BATCH`` scenes and
BLAS above (where BLAS's blocking of many scenes per weight load wins; ``benchmarks/bench_semantic.py`` measures
both at every batch size).
"""

from __future__ import annotations

import numpy as np
from numba import njit

# scenes per call up to which the compiled loop beats the numpy head (the crossover of benchmarks/bench_semantic.py)
COMPILED_BATCH = 32
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
def scene_logits(lat, prefix, embed_t, embed_table, w_fuse, blocks_t, out_t, work, nzi, out):
    """One scene's logits into ``out`` (C,): received latents ``lat`` (M, >= max prefix) of which only the first
    ``prefix[m]`` values of row m are read; weights as in :func:`head_logits`; ``work`` float32 (M E + 2 H: the
    embeddings ``z``, the hidden units ``h`` and a block's residual ``r``) and ``nzi`` int64 (M E) scratch
    (:func:`head_scratch`). The one definition of the compiled head
    (``head_logits`` and the environment's scoring kernels call it), so every caller gets the same bits for the
    same scene. Not inlined into its callers on purpose: an inlined copy would take the caller's floating-point
    flags and lose the vectorised sums."""
    M = prefix.shape[0]
    E = embed_t.shape[1]
    C, H = out_t.shape
    P = embed_table.shape[0] // M  # prefix lengths 0..L
    ME = M * E
    z, h, r = work[:ME], work[ME:ME + H], work[ME + H:ME + 2 * H]
    nz = 0  # the nonzero embeddings' indices, compacted at the front of nzi without a branch per embedding
    for m in range(M):
        p = prefix[m]
        row = embed_table[m * P + p]
        x = lat[m]
        for u in range(E):
            v = row[u] + _dot(x, embed_t[m, u], p)
            q = m * E + u
            z[q] = v if v > 0.0 else np.float32(0.0)
            nzi[nz] = q
            nz += v > 0.0
    # the fusion layer adds the rows of the nonzero embeddings in index order, four rows per pass over h, with a
    # quarter of the loads and stores of h and no unpredictable branch per row; each h[u] is written to take them
    # one after another, and tests/test_semantic_frozen.py checks the compiled code gives the bits of one row per
    # pass (reassociation is allowed, so the check is on what the compiler made of it)
    h[:] = 0.0
    t = 0
    while t + 4 <= nz:
        qa, qb, qc, qd = nzi[t], nzi[t + 1], nzi[t + 2], nzi[t + 3]
        za, zb, zc, zd = z[qa], z[qb], z[qc], z[qd]
        wa, wb, wc, wd = w_fuse[qa], w_fuse[qb], w_fuse[qc], w_fuse[qd]
        for u in range(H):
            h[u] = (((h[u] + za * wa[u]) + zb * wb[u]) + zc * wc[u]) + zd * wd[u]
        t += 4
    while t < nz:
        qa = nzi[t]
        za = z[qa]
        wa = w_fuse[qa]
        for u in range(H):
            h[u] += za * wa[u]
        t += 1
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
        out[c] = _dot(h, out_t[c], H)


@njit(cache=True)
def head_scratch(embed_t, w_fuse):
    """The scratch of :func:`scene_logits`: ``work`` float32 (M E + 2 H) and ``nzi`` int64 (M E)."""
    ME = embed_t.shape[0] * embed_t.shape[1]
    return np.empty(ME + 2 * w_fuse.shape[1], dtype=np.float32), np.empty(ME, dtype=np.int64)


@njit(cache=True)
def head_logits(latents, prefix_len, embed_t, embed_table, w_fuse, blocks_t, out_t):
    """Logits float32 (n, C) of received latents (n, M, L) with prefix lengths (n, M) in 0..L.

    Folded, bias-free weights (``FrozenStudent._export_head``): ``embed_t`` (M, E, L) the latent part of each
    modality's embedding, transposed; ``embed_table`` (M (L + 1), E) the rest of it per prefix length; ``w_fuse``
    (M E, H) the fusion layer; ``blocks_t`` (B, H, H) the residual blocks and ``out_t`` (C, H) the output layer,
    both transposed (output unit first).
    """
    n = latents.shape[0]
    out = np.empty((n, out_t.shape[0]), dtype=np.float32)
    work, nzi = head_scratch(embed_t, w_fuse)
    for j in range(n):
        scene_logits(latents[j], prefix_len[j], embed_t, embed_table, w_fuse, blocks_t, out_t, work, nzi, out[j])
    return out
