"""The BS's scoring of a slot: what arrived of each closing scene, through the frozen head, to the reward.

The head is the frozen student's compiled loop (``semantic_models.head_kernel``: numpy and numba, no torch). It is
imported at module level because numba resolves a compiled callee when the caller compiles; the torch model and
its loader stay lazy (``vmimo_env.scenes``). Each scene is scored alone, from the received values
``kernels.received_into`` defines, so its logits are the same bits whichever scenes share the slot.

Numba's cache keys a compiled function by its own file only, and these functions carry compiled copies of
``head_kernel.scene_logits`` and of kernels from ``vmimo_env/kernels.py``: after an update that changes only those
files (a ``git pull`` on an editable install), the cached scoring would keep the old code. So the first core of a
process runs :func:`check_compiled_scoring`: one synthetic scene through the cached functions against the same
scene through the pieces they call; a stale function is recompiled (its cache rewritten).
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numba.experimental import structref

from semantic_models.head_kernel import head_logits, head_scratch, scene_logits
from vmimo_env.kernels import (
    LATENT_DIM,
    BoundArgsType,
    gather_received,
    prefetch_scene,
    received_scene,
    slot_outcome,
    slot_outcome_into,
)

PREFETCH_AHEAD = 2  # closing scenes whose pool latents and noise windows are requested before they are scored

__all__ = ["SCORE_FIELDS", "ScoreArgs", "check_compiled_scoring", "closing_logits", "closing_logits_with",
           "head_logits", "head_scratch", "make_score_args", "slot_score", "slot_score_bound"]


@njit(cache=True, nogil=True)  # shards of a core run it on their own threads (the soft reward)
def closing_logits(close_env, close_pos, nc, ring_scene, rx_len, rx_snr, rx_off, pool_latents, noise_table,
                   out_len, out_scene, embed_t, embed_table, w_fuse, blocks_t, out_t, logits):
    """The frozen head's logits of the ``nc`` closing scenes into ``logits[:nc]``, scene by scene from what
    arrived (``kernels.received_scene``, the values ``kernels.gather_received`` writes) through
    ``head_kernel.scene_logits`` (weights ``FrozenStudent.head_weights``), without materialising the batch of
    received latents; prefix lengths into ``out_len`` and pool scenes into ``out_scene`` as ``gather_received``
    writes them. A scene's logits are the same bits whichever envs and scenes share the slot (single env,
    vector env, replica)."""
    lat = np.empty((rx_len.shape[2], LATENT_DIM), dtype=np.float32)
    work, nzi = head_scratch(embed_t, w_fuse)
    closing_logits_with(close_env, close_pos, nc, ring_scene, rx_len, rx_snr, rx_off, pool_latents, noise_table,
                        out_len, out_scene, embed_t, embed_table, w_fuse, blocks_t, out_t, logits, lat, work, nzi)


@njit(cache=True, inline="always")
def closing_logits_with(close_env, close_pos, nc, ring_scene, rx_len, rx_snr, rx_off, pool_latents, noise_table,
                        out_len, out_scene, embed_t, embed_table, w_fuse, blocks_t, out_t, logits, lat, work, nzi):
    """:func:`closing_logits` with its scratch given: ``lat`` (M, L) float32 for one scene's received latents and
    ``work`` and ``nzi`` of ``head_kernel.head_scratch`` (the fused slot binds them once)."""
    for j in range(nc):  # the first scenes were requested by the fused slot (kernels.PREFETCH_SCENES)
        if j + PREFETCH_AHEAD < nc:  # the scene after next: its reads overlap this scene's head
            prefetch_scene(j + PREFETCH_AHEAD, close_env, close_pos, ring_scene, rx_len, rx_off, pool_latents,
                           noise_table)
        out_scene[j] = received_scene(j, close_env, close_pos, ring_scene, rx_len, rx_snr, rx_off, pool_latents,
                                      noise_table, lat, out_len[j])
        scene_logits(lat, out_len[j], embed_t, embed_table, w_fuse, blocks_t, out_t, work, nzi, logits[j])


@njit(cache=True, inline="always")
def slot_score(nc,  # this slot's number of closing scenes
               close_env, close_pos, ring_scene, rx_len, rx_snr, rx_off, pool_latents, noise_table, lens, scene,
               embed_t, embed_table, w_fuse, blocks_t, out_t, logits,  # the frozen head (FrozenStudent.head_weights)
               labels, no_soft, arrival_rate, energy_scale, energy_j, correct, acc_term, en_term, reward,
               lat, work, nzi):  # scratch of closing_logits_with
    """The slot's scoring in one call: :func:`closing_logits` of the ``nc`` closing scenes and
    :func:`kernels.slot_outcome_into` with the argmax ("model") reward (``no_soft`` is the empty array) on the
    slot's energy parts ``energy_j`` into ``correct``, ``acc_term``, ``en_term`` and ``reward``: the calls the
    reference path makes one by one (``VMIMOCore._classify``), so the same bits. The fused slot uses it when the
    reward is the argmax count and the BS runs no aligner; arguments after ``nc`` are bound once
    (``VMIMOCore._bind_slot``)."""
    closing_logits_with(close_env, close_pos, nc, ring_scene, rx_len, rx_snr, rx_off, pool_latents, noise_table,
                        lens, scene, embed_t, embed_table, w_fuse, blocks_t, out_t, logits, lat, work, nzi)
    slot_outcome_into(logits[:nc], scene[:nc], labels, close_env[:nc], no_soft, energy_j, arrival_rate,
                      energy_scale, correct, acc_term, en_term, reward)


@structref.register
class ScoreArgsType(BoundArgsType):
    """Numba type of :class:`ScoreArgs`."""


SCORE_FIELDS: tuple[str, ...] = (
    "close_env", "close_pos", "ring_scene", "rx_len", "rx_snr", "rx_off", "pool_latents", "noise_table", "lens",
    "scene", "embed_t", "embed_table", "w_fuse", "blocks_t", "out_t", "logits", "labels", "no_soft", "arrival_rate",
    "energy_scale", "energy_j", "correct", "acc_term", "en_term", "reward", "lat", "work", "nzi",
)


class ScoreArgs(structref.StructRefProxy):
    """The fixed arguments of :func:`slot_score` (:data:`SCORE_FIELDS`, those after ``nc``) as one compiled
    struct, unboxed once per call instead of one by one (``kernels.SlotArgs`` says why)."""


structref.define_proxy(ScoreArgs, ScoreArgsType, list(SCORE_FIELDS))


@njit(cache=True)
def make_score_args(*fields):
    """A :class:`ScoreArgs` of :data:`SCORE_FIELDS` in order, built in compiled code (cached, as
    ``kernels.make_slot_args``)."""
    return ScoreArgs(*fields)


@njit(cache=True, nogil=True)  # shards of a core run it on their own threads
def slot_score_bound(nc, st):
    """:func:`slot_score` with its fixed arguments taken from ``st`` (a :class:`ScoreArgs`)."""
    slot_score(nc, st.close_env, st.close_pos, st.ring_scene, st.rx_len, st.rx_snr, st.rx_off, st.pool_latents,
               st.noise_table, st.lens, st.scene, st.embed_t, st.embed_table, st.w_fuse, st.blocks_t, st.out_t,
               st.logits, st.labels, st.no_soft, st.arrival_rate, st.energy_scale, st.energy_j, st.correct,
               st.acc_term, st.en_term, st.reward, st.lat, st.work, st.nzi)


# ====================================================================== stale-cache guard
_checked = False


def _stale(name: str, pool_latents: np.ndarray, labels: np.ndarray, noise_table: np.ndarray,
           head_weights: tuple) -> bool:
    """Whether scoring function ``name`` disagrees with the pieces it calls (``kernels.gather_received``,
    ``head_kernel.head_logits``, ``kernels.slot_outcome``) on one synthetic closing scene: pool scene 0 received
    with prefixes 64, 32, 16, 8, 0, ... at assorted noise offsets, in arrays of the dtypes and layouts the core
    passes (so the same compiled specialisations run)."""
    M, C = pool_latents.shape[1], head_weights[-1].shape[0]
    one = np.zeros(1, dtype=np.int64)
    ring = np.zeros((1, 1), dtype=np.int64)
    rx_len = np.array([[[LATENT_DIM >> (m % 5) if m % 5 < 4 else 0 for m in range(M)]]], dtype=np.int64)
    rx_snr = np.full((1, 1, M), 3.0)
    rx_off = (np.arange(M, dtype=np.int64) * 7).reshape(1, 1, M)
    energy_j = np.array([[1e-3, 2e-3, 3e-4, 0.0]])
    no_soft = np.zeros(0)
    lat = np.zeros((1, M, LATENT_DIM), dtype=np.float32)
    ref_lens, ref_scene = np.zeros((1, M), dtype=np.int64), np.zeros(1, dtype=np.int64)
    gather_received(one, one, 1, ring, rx_len, rx_snr, rx_off, pool_latents, noise_table, lat, ref_lens, ref_scene)
    ref = head_logits(lat, ref_lens, *head_weights)
    want = slot_outcome(ref, ref_scene, labels, one, no_soft, energy_j, 1.5, 2.0)
    lens, scene, logits = np.zeros((1, M), dtype=np.int64), np.zeros(1, dtype=np.int64), np.zeros((1, C), np.float32)
    args = (one, one, ring, rx_len, rx_snr, rx_off, pool_latents, noise_table, lens, scene, *head_weights, logits)
    got = want
    scratch = (np.zeros((M, LATENT_DIM), dtype=np.float32), *head_scratch(head_weights[0], head_weights[2]))
    if name == "closing_logits":
        closing_logits(one, one, 1, *args[2:])
    elif name == "closing_logits_with":
        closing_logits_with(one, one, 1, *args[2:], *scratch)
    else:
        got = (np.zeros(1, dtype=np.int64), np.zeros(1), np.zeros(1), np.zeros(1))  # correct, acc, en, reward
        bound = (*args, labels, no_soft, 1.5, 2.0, energy_j, *got, *scratch)
        if name == "slot_score":
            slot_score(1, *bound)
        else:
            slot_score_bound(1, make_score_args(*bound))
    same = np.array_equal(logits, ref) and np.array_equal(lens, ref_lens) and np.array_equal(scene, ref_scene)
    return not (same and all(np.array_equal(a, b) for a, b in zip(got, want, strict=True)))


def check_compiled_scoring(pool_latents: np.ndarray, labels: np.ndarray, noise_table: np.ndarray,
                           head_weights: tuple, force: bool = False) -> list[str]:
    """Recompile any scoring function whose cached code no longer matches the head and kernels it calls (see the
    module docstring), callees first; once per process unless ``force``. Arguments are the core's pool latents,
    labels, noise table and ``FrozenStudent.head_weights``. Returns the names recompiled (empty: the cache was
    fresh); raises ``RuntimeError`` if a function still disagrees after recompiling (a bug, not a stale cache).
    Cores bind the compiled entries after this check (``VMIMOCore._bind_slot``); a core built before a forced
    recompile keeps the code it bound."""
    global _checked
    if _checked and not force:
        return []
    module = globals()
    names = ("closing_logits_with", "closing_logits", "slot_score", "slot_score_bound")  # callees first
    recompiled = []
    for name in names:
        if _stale(name, pool_latents, labels, noise_table, head_weights):
            module[name].recompile()
            recompiled.append(name)
    wrong = [n for n in recompiled if _stale(n, pool_latents, labels, noise_table, head_weights)]
    if wrong:
        raise RuntimeError(f"compiled scoring {wrong} disagrees with the head and kernels it calls even after "
                           "recompiling: a bug in vmimo_env/scoring.py")
    _checked = True
    return recompiled
