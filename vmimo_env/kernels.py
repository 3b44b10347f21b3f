"""Compiled inner loops of the slot: queues, delivery, deadlines and the gather of received latents.

Why compiled loops here and numpy elsewhere: the physics (fading, SINR, energy) is dense linear algebra on
``(N, K, Nr)`` arrays and vectorises well, but queue bookkeeping is sparse and irregular (a few latents move per
device per slot). Vectorising it means sweeping whole ``(N, scenes, K)`` tables every slot, which made a naive
slot 16x slower than its budget; these loops touch only what moves. All kernels loop over the environments
inside, so a single call serves N = 1 and N = 1024 alike and the per-call Python overhead is paid once. A few
element-wise physics steps have compiled twins here too (the fading step, the MMSE receiver): at N = 1 a numpy
call costs more in overhead than in arithmetic. The fading twins do the same real operations in the same order as
``vmimo_env.channel``, so they give the same bits (tested).

The queue model they implement: every environment keeps an arrival-ordered ring of ``S`` pending scenes with
global sequence numbers ``[head, tail)``. Devices send FIFO, so device k's backlog is exactly the suffix
``[max(next_seq[k], head), tail)`` of the ring: a queue is two integers, not a table. Scenes complete in arrival
order too, so closing a slot's scenes is advancing ``head``. Under ``close_rule="modalities"`` the devices of one
modality share their queue start after each slot (the modality's frontier, see ``deliver_and_close``): what one
of them delivered the others skip, and the queues stay suffixes.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from llvmlite import ir
from llvmlite.binding import llvm_version_info
from numba import njit, vectorize
from numba.core import cgutils, types
from numba.experimental import structref
from numba.extending import intrinsic

from vmimo_env.obs_spec import (
    BURST_BELIEF,
    CORRELATION,
    CSI,
    GAIN_DB,
    HOL_AGE,
    MODALITY,
    P_JOINT,
    QUEUE,
    QUEUE_UNHELD,
    SCENE_HELD,
    SNR_DB,
    TIME,
    UNHELD_URGENCY,
)

LATENT_DIM = 64


# ====================================================================== the slot's rules (public in vmimo_env.rules)
# Defined here, beside the kernels that inline them, because numba's on-disk cache of a kernel is keyed on its own
# source file only: a rule edited in another module would leave the cached kernels running the old one.
IDLE_NOISE_W = 1.0  # column 0 of a receiver noise array: finite and positive, never read (idle devices)
MIN_BAND_HZ = 1e-30  # an empty band still gets a positive noise power, so a receiver never divides by zero


@vectorize(["int64(float64, float64)"], cache=True)
def encode_cap(p_joint, capacity):
    """Latents a device can encode this slot, ``floor(capacity · p_joint + 0.5)`` (round half up), int64.

    ``p_joint`` is the device's compute × memory availability, ``capacity`` ``ScenarioConfig.encode_capacity``
    (latents per slot at ``p_joint = 1``). Broadcasts like a numpy ufunc.
    """
    return np.int64(np.floor(capacity * p_joint + 0.5))


@vectorize(["float64(float64, float64)"], cache=True)
def band_hz_noise_w(band_hz, noise_psd_w_hz):
    """Noise power (W) of a band of ``band_hz`` Hz at PSD ``noise_psd_w_hz``: ``max(band_hz, 1e-30) · N0``."""
    return max(band_hz, MIN_BAND_HZ) * noise_psd_w_hz


@vectorize(["int64(int64)"], cache=True)
def uses_per_latent(prefix):
    """Complex channel uses of one latent of ``prefix`` reals (analog, two reals per complex use): ``c // 2``."""
    return prefix // 2


@vectorize(["int64(float64, int64, float64)"], cache=True)
def latents_that_fit(band_hz, prefix, slot_s):
    """Latents of ``prefix`` reals that fit in one slot of ``slot_s`` s on a band of ``band_hz`` Hz:
    ``floor(band_hz · slot_s) // (prefix // 2)`` (int64; the band carries ``floor(W T)`` complex uses)."""
    uses = np.floor(band_hz * slot_s)
    return np.int64(uses // uses_per_latent(prefix))


@vectorize(["int64(int64, int64, int64)"], cache=True)
def latents_sent(queue, fit, cap):
    """Latents a scheduled device sends this slot: ``min(queue, fit, encode cap)`` (queue after the arrivals)."""
    return min(queue, fit, cap)


@vectorize(["float64(int64, int64, float64)"], cache=True)
def airtime_s(num_latents, prefix, band_hz):
    """Seconds on air to send ``num_latents`` latents of ``prefix`` reals on ``band_hz`` Hz (0 when it sends none):
    ``n · (prefix // 2) / band_hz``: ``energy.channel_airtime_s`` of the latents' channel uses (one per Hz·s)."""
    if num_latents <= 0:
        return 0.0
    return num_latents * uses_per_latent(prefix) / band_hz


@njit(cache=True)
def share_scale(bw_row):
    """Factor applied to one environment's raw shares (G,): ``1 / max(Σ shares, 1)`` (sum in float64, in order)."""
    total = 0.0
    for g in range(bw_row.shape[0]):
        total += bw_row[g]
    return 1.0 / max(total, 1.0)


@njit(cache=True)
def band_shares_into(bw, out):
    """Shares of the band (N, G) the slot uses for raw shares ``bw`` (N, G), written into ``out``."""
    for i in range(bw.shape[0]):
        scale = share_scale(bw[i])
        for g in range(bw.shape[1]):
            out[i, g] = bw[i, g] * scale


# ====================================================================== kernels
@njit(cache=True)
def plan_slot(t, head, tail, next_seq, slot_start, ring_scene, rx_len, rx_score,  # state (modified)
              group, power_idx, comp_idx, bw_raw, p_joint, u,  # action and this slot's uniforms
              arrival_cdf, phase, pool_size, power_levels_w, prefix_levels, encode_capacity, total_bw_hz, slot_s,
              noise_psd, max_arrivals,
              n_send, geff, power_w, prefix, airtime, band_hz, noise_w, arrived, dropped):  # outputs
    """Arrivals, bandwidth split and how many latents each device sends this slot (before the receiver)."""
    N, K = group.shape
    G = bw_raw.shape[1]
    S = ring_scene.shape[1]
    D1 = slot_start.shape[1]
    n_cdf = arrival_cdf.shape[1]
    for i in range(N):
        # Poisson arrivals of the env's phase (one row for Poisson) by inversion: n = CDF entries below the uniform
        cdf = arrival_cdf[phase[i]]
        ua = u[i, 0]
        n = 0
        while n < n_cdf - 1 and ua > cdf[n]:
            n += 1
        n_in = min(n, max_arrivals, S - (tail[i] - head[i]))
        arrived[i] = n_in
        dropped[i] = n - n_in
        for a in range(n_in):
            pos = (tail[i] + a) % S
            ring_scene[i, pos] = min(int(u[i, 1 + a] * pool_size), pool_size - 1)
            rx_len[i, pos, :] = 0
            rx_score[i, pos, :] = 0.0
        tail[i] += n_in
        slot_start[i, (t[i] + 1) % D1] = tail[i]

        scale = share_scale(bw_raw[i])  # the slot's rules (vmimo_env.rules), compiled inline
        noise_w[i, 0] = IDLE_NOISE_W
        for g in range(G):
            band_hz[i, g] = bw_raw[i, g] * scale * total_bw_hz
            noise_w[i, g + 1] = band_hz_noise_w(band_hz[i, g], noise_psd)

        for k in range(K):
            c = prefix_levels[comp_idx[i, k]]
            prefix[i, k] = c
            g = group[i, k]
            ns = 0
            if g > 0:
                queue = tail[i] - max(next_seq[i, k], head[i])
                fit = latents_that_fit(band_hz[i, g - 1], c, slot_s)
                cap = encode_cap(p_joint[i, k], encode_capacity)
                ns = latents_sent(queue, fit, cap)
            n_send[i, k] = ns
            if ns > 0:
                geff[i, k] = g
                power_w[i, k] = power_levels_w[power_idx[i, k]]
                airtime[i, k] = airtime_s(ns, c, band_hz[i, g - 1])
            else:
                geff[i, k] = 0
                power_w[i, k] = 0.0
                airtime[i, k] = 0.0


@njit(cache=True)
def deliver_and_close(t, head, tail, next_seq, slot_start, rx_len, rx_score, rx_snr, rx_off,  # state
                      n_send, prefix, sinr, u_off, device_modality, modality_present, noise_span, deadline,
                      by_modality, close_all_from, close_env, close_pos, closed, empty, full):
    """Record delivered latents (best copy per scene and modality), then close complete or expired scenes.

    Close rule (``ScenarioConfig.close_rule``): a scene is complete once every device has sent it (the lowest
    ``next_seq``). With ``by_modality`` (``close_rule="modalities"``) each device's queue start is first raised
    to its modality's frontier, the furthest ``next_seq`` among the devices of that modality: the BS holds that
    modality of every pending scene before the frontier (a FIFO device sends a contiguous run, and every latent
    sent is received), so its twins skip those scenes in every later slot, whatever prefix they would send. A
    queue stays the suffix ``[max(next_seq, head), tail)`` and a scene is complete once every sensed modality
    arrived. Devices of one modality scheduled in the same slot still start from the same scene (the BS keeps the
    better copy, as ever). Every scene is closed when ``t >= close_all_from`` (``score_at_truncation``: the
    episode's last slot; a value beyond the horizon disables it).

    Returns the number of closed scenes that hold at least one modality (written to ``close_env`` /
    ``close_pos`` for the classifier); scenes closed with nothing received are counted in ``empty``, and those
    holding every modality of ``modality_present`` (M,) bool, the modalities some device senses, in ``full``.
    """
    N, K = n_send.shape
    S = rx_len.shape[1]
    M = rx_len.shape[2]
    D1 = slot_start.shape[1]
    frontier = np.empty(M, dtype=np.int64)
    nc = 0
    for i in range(N):
        for k in range(K):
            ns = n_send[i, k]
            start = max(next_seq[i, k], head[i])
            if ns == 0:
                next_seq[i, k] = start
                continue
            m = device_modality[k]
            s = sinr[i, k]
            # a longer prefix always wins; among equal prefixes the higher SINR (s / (1 + s) lies in [0, 1))
            score = prefix[i, k] + s / (1.0 + s)
            base = int(u_off[i, k] * noise_span)
            for j in range(ns):
                pos = (start + j) % S
                if score > rx_score[i, pos, m]:
                    rx_score[i, pos, m] = score
                    rx_len[i, pos, m] = prefix[i, k]
                    rx_snr[i, pos, m] = s
                    rx_off[i, pos, m] = base + LATENT_DIM * pos  # disjoint windows within one device's slot
            next_seq[i, k] = start + ns

        if by_modality:  # what a twin delivered is held: move every device of the modality to its frontier
            frontier[:] = 0
            for k in range(K):
                frontier[device_modality[k]] = max(frontier[device_modality[k]], next_seq[i, k])
            for k in range(K):
                next_seq[i, k] = frontier[device_modality[k]]
        lowest = tail[i]
        for k in range(K):
            lowest = min(lowest, next_seq[i, k])
        tau = t[i] - deadline + 2  # scenes that arrived before slot tau have had their `deadline` slots
        expired = slot_start[i, tau % D1] if tau > 0 else 0
        new_head = max(head[i], lowest, expired)
        if t[i] >= close_all_from:
            new_head = tail[i]
        c = 0
        e = 0
        f = 0
        for seq in range(head[i], new_head):
            pos = seq % S
            got = False
            every = True
            for m in range(M):
                if rx_len[i, pos, m] > 0:
                    got = True
                elif modality_present[m]:
                    every = False
            if every:
                f += 1
            if got:
                close_env[nc] = i
                close_pos[nc] = pos
                nc += 1
            else:
                e += 1
            c += 1
        closed[i] = c
        empty[i] = e
        full[i] = f
        head[i] = new_head
    return nc


@njit(cache=True, inline="always")
def received_into(pool_latents, noise_table, sc, m, L, snr, off, out):
    """The first ``L`` values of what the BS holds of modality ``m`` of pool scene ``sc`` into ``out``: the clean
    latent plus unit noise from the table at ``off`` scaled by 1 / sqrt(SINR) (the one definition of a received
    latent, which :func:`received_scene` applies for the gather and for ``scoring.closing_logits``)."""
    sd = 1.0 / np.sqrt(max(snr, 1e-12))
    for d in range(L):
        out[d] = pool_latents[sc, m, d] + noise_table[off + d] * sd


PREFETCH_SCENES = 4  # closing scenes whose reads the fused slot requests ahead of the scoring call

# LLVM's name of its prefetch intrinsic for an i8 pointer: mangled by the pointer type, which is opaque from LLVM 17
_PREFETCH = "llvm.prefetch.p0" if llvm_version_info >= (17,) else "llvm.prefetch.p0i8"


@intrinsic
def _prefetch(typingctx, arr, index):
    """Ask the CPU to bring the cache line holding ``arr[index]`` (``index``: a tuple of ints, one per axis) into
    its caches (LLVM's ``llvm.prefetch``: read, keep in all levels). A hint only: no value anywhere changes."""
    if not isinstance(arr, types.Array) or not isinstance(index, types.BaseTuple) or len(index) != arr.ndim:
        return None
    sig = types.void(arr, index)

    def codegen(context, builder, signature, args):
        aryty, idxty = signature.args
        ary = context.make_array(aryty)(context, builder, args[0])
        inds = [context.cast(builder, builder.extract_value(args[1], n), idxty[n], types.intp)
                for n in range(len(idxty))]
        ptr = builder.bitcast(cgutils.get_item_pointer(context, builder, aryty, ary, inds, wraparound=False),
                              ir.IntType(8).as_pointer())
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [ptr.type, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, _PREFETCH)
        builder.call(fn, [ptr, ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return sig, codegen


@njit(cache=True, inline="always")
def prefetch_scene(j, close_env, close_pos, ring_scene, rx_len, rx_off, pool_latents, noise_table):
    """Prefetch what :func:`received_scene` will read of the ``j``-th closing scene (its pool latents and noise
    windows, one hint per 64-byte line) so that the head's scoring finds them in cache; values are untouched."""
    i = close_env[j]
    pos = close_pos[j]
    sc = ring_scene[i, pos]
    for m in range(rx_len.shape[2]):
        L = rx_len[i, pos, m]
        if L > 0:
            off = rx_off[i, pos, m]
            for d in range(0, L, 16):  # 16 float32 values per line
                _prefetch(pool_latents, (sc, m, d))
                _prefetch(noise_table, (off + d,))
            _prefetch(pool_latents, (sc, m, L - 1))  # the last line of a window that straddles a boundary
            _prefetch(noise_table, (off + L - 1,))


@njit(cache=True, inline="always")
def received_scene(j, close_env, close_pos, ring_scene, rx_len, rx_snr, rx_off, pool_latents, noise_table, out_lat,
                   out_len):
    """What the BS holds of the ``j``-th closing scene: each modality's prefix length into ``out_len`` (M,) and its
    received values into the first that many entries of row m of ``out_lat`` (M, >= 64); returns its pool scene.
    The walk :func:`gather_received` and ``scoring.closing_logits`` share."""
    i = close_env[j]
    pos = close_pos[j]
    sc = ring_scene[i, pos]
    for m in range(out_len.shape[0]):
        L = rx_len[i, pos, m]
        out_len[m] = L
        if L > 0:
            received_into(pool_latents, noise_table, sc, m, L, rx_snr[i, pos, m], rx_off[i, pos, m], out_lat[m])
    return sc


@njit(cache=True)
def gather_received(close_env, close_pos, nc, ring_scene, rx_len, rx_snr, rx_off, pool_latents, noise_table,
                    out_lat, out_len, out_scene):
    """Materialise what the BS holds for each closing scene: latent + noise / sqrt(SINR), zero past the prefix."""
    M = rx_len.shape[2]
    for j in range(nc):
        out_scene[j] = received_scene(j, close_env, close_pos, ring_scene, rx_len, rx_snr, rx_off, pool_latents,
                                      noise_table, out_lat[j], out_len[j])
        for m in range(M):
            for d in range(max(out_len[j, m], 0), LATENT_DIM):
                out_lat[j, m, d] = 0.0


@njit(cache=True, inline="always")
def _scaled(x, ident, off, sc, lo, hi):
    """Observation value of raw quantity ``x``: (x + off) / sc clipped to [lo, hi] (one block's spec constants).

    ``ident`` marks an "as is" block (off 0, sc 1, no clip): its value is ``x`` itself, and skipping the
    arithmetic (a loop-invariant branch) keeps the generic kernel as fast as one with the constants written in.
    """
    if ident:
        return x
    return min(max((x + off) / sc, lo), hi)


@njit(cache=True, inline="always")
def _block(j, start, offset, scale, clip_low, clip_high):
    """Block ``j``'s (start, "as is", offset, scale, clip low, clip high)."""
    off, sc, lo, hi = offset[j], scale[j], clip_low[j], clip_high[j]
    return start[j], off == 0.0 and sc == 1.0 and lo == -np.inf and hi == np.inf, off, sc, lo, hi


@njit(cache=True)
def scene_age(t, slot_start_row, seq, deadline):
    """Slots since scene ``seq`` arrived (at most ``deadline``): the slot starts after its sequence number, among the
    last ``deadline`` ones (``slot_start[tau]`` counts the scenes that arrived before slot ``tau``)."""
    D1 = slot_start_row.shape[0]
    age = 0
    p = t % D1  # slot tau's ring entry is tau % D1: walked down from t's (one division, not one per slot)
    for _ in range(min(deadline, t + 1)):
        if slot_start_row[p] > seq:
            age += 1
        p = p - 1 if p > 0 else D1 - 1
    return age


@njit(cache=True, inline="always")
def held_prefix(head_i, tail_i, rx_len_row, j, m):
    """Prefix (reals) of modality ``m`` the BS holds of the ``j``-th oldest pending scene (0: not held, or no such
    scene); ``rx_len_row`` is one environment's (S, M) table."""
    seq = head_i + j
    if seq >= tail_i:
        return 0
    return rx_len_row[seq % rx_len_row.shape[0], m]


@njit(cache=True)
def unheld_queued(t_i, head_i, tail_i, next_seq_ik, slot_start_row, rx_len_row, m, deadline):
    """``(count, slack)`` of one device's queued scenes whose modality ``m`` the BS does not hold yet: how many,
    and the smallest slack among them (slots left to deliver, this one included; 0 when there are none).

    The one definition behind ``BSView.queue_unheld`` and the ``queue_unheld`` / ``unheld_urgency`` observation
    blocks. Slack falls with age and the queue is arrival-ordered, so the first unheld scene has the smallest.
    """
    count = 0
    slack = 0
    S = rx_len_row.shape[0]
    start = max(next_seq_ik, head_i)
    pos = start % S  # held_prefix's ring entry of ``seq``, walked up (one division, not one per scene)
    for seq in range(start, tail_i):
        if rx_len_row[pos, m] == 0:  # held_prefix(...) == 0: seq < tail_i here
            if count == 0:
                slack = deadline - scene_age(t_i, slot_start_row, seq, deadline)
            count += 1
        pos = pos + 1 if pos < S - 1 else 0
    return count, slack


@njit(cache=True)
def pending_scenes(t, head, tail, next_seq, slot_start, rx_len, device_modality, deadline,  # state (read only)
                   hol_age, valid, held, slack, queued, unheld):  # outputs
    """What the BS knows of its pending scenes, oldest first (row j = sequence number ``head + j``).

    ``hol_age`` (N, K) age of each device's head-of-line scene (0 with an empty queue), ``valid`` (N, S) pending
    rows, ``held`` (N, S, M) prefix the BS holds per modality (0: not held), ``slack`` (N, S) slots left to deliver
    the scene, this one included (``deadline - age``), ``queued`` (N, S, K) the scene waits in device k's queue,
    ``unheld`` (N, K) queued latents of each device whose modality the BS does not hold yet.
    """
    N, K = next_seq.shape
    S = rx_len.shape[1]
    M = rx_len.shape[2]
    for i in range(N):
        for k in range(K):
            first = max(next_seq[i, k], head[i])
            hol_age[i, k] = scene_age(t[i], slot_start[i], first, deadline) if tail[i] > first else 0
            unheld[i, k] = unheld_queued(t[i], head[i], tail[i], next_seq[i, k], slot_start[i], rx_len[i],
                                         device_modality[k], deadline)[0]
        for j in range(S):
            seq = head[i] + j
            ok = seq < tail[i]
            valid[i, j] = ok
            slack[i, j] = deadline - scene_age(t[i], slot_start[i], seq, deadline) if ok else 0
            for m in range(M):
                held[i, j, m] = held_prefix(head[i], tail[i], rx_len[i], j, m)
            for k in range(K):
                queued[i, j, k] = ok and seq >= next_seq[i, k]


@njit(cache=True)
def observe(h, gain, t, head, tail, next_seq, slot_start, p_joint, burst_belief, modality_onehot, rx_len,
            device_modality, max_power_w, ref_noise_w, deadline, start, offset, scale, clip_low, clip_high, out):
    """Write the flat observation of every environment into ``out`` (N, obs_dim).

    Where each block goes and how it is scaled and clipped comes from ``vmimo_env.obs_spec`` (``ObsLayout``):
    ``start``, ``offset``, ``scale``, ``clip_low``, ``clip_high`` are indexed by the spec's block ids, and a block
    whose ``start`` is negative is absent. The in-block order is the one the spec's ``axes`` document. The coverage
    blocks (``obs_coverage``) come from :func:`unheld_queued` and :func:`held_prefix`, as the BS view's fields do.
    """
    N, K, Nr = h.shape
    M = modality_onehot.shape[1]
    S = rx_len.shape[1]
    # each block's constants as scalars, read once (loads from the arrays inside the loops are not hoisted)
    s_gain, i_gain, o_gain, c_gain, l_gain, h_gain = _block(GAIN_DB, start, offset, scale, clip_low, clip_high)
    s_snr, i_snr, o_snr, c_snr, l_snr, h_snr = _block(SNR_DB, start, offset, scale, clip_low, clip_high)
    s_q, i_q, o_q, c_q, l_q, h_q = _block(QUEUE, start, offset, scale, clip_low, clip_high)
    s_age, i_age, o_age, c_age, l_age, h_age = _block(HOL_AGE, start, offset, scale, clip_low, clip_high)
    s_pj, i_pj, o_pj, c_pj, l_pj, h_pj = _block(P_JOINT, start, offset, scale, clip_low, clip_high)
    s_mod, i_mod, o_mod, c_mod, l_mod, h_mod = _block(MODALITY, start, offset, scale, clip_low, clip_high)
    s_cor, i_cor, o_cor, c_cor, l_cor, h_cor = _block(CORRELATION, start, offset, scale, clip_low, clip_high)
    s_csi, i_csi, o_csi, c_csi, l_csi, h_csi = _block(CSI, start, offset, scale, clip_low, clip_high)
    s_t, i_t, o_t, c_t, l_t, h_t = _block(TIME, start, offset, scale, clip_low, clip_high)
    s_uq, i_uq, o_uq, c_uq, l_uq, h_uq = _block(QUEUE_UNHELD, start, offset, scale, clip_low, clip_high)
    s_ur, i_ur, o_ur, c_ur, l_ur, h_ur = _block(UNHELD_URGENCY, start, offset, scale, clip_low, clip_high)
    s_sh, i_sh, o_sh, c_sh, l_sh, h_sh = _block(SCENE_HELD, start, offset, scale, clip_low, clip_high)
    s_bb, i_bb, o_bb, c_bb, l_bb, h_bb = _block(BURST_BELIEF, start, offset, scale, clip_low, clip_high)
    norm2 = np.empty(K)
    for i in range(N):
        for k in range(K):
            s = 0.0
            for r in range(Nr):
                s += h[i, k, r].real ** 2 + h[i, k, r].imag ** 2
            norm2[k] = s
            out[i, s_gain + k] = _scaled(10.0 * np.log10(gain[i, k]), i_gain, o_gain, c_gain, l_gain, h_gain)
            snr_db = 10.0 * np.log10(max(max_power_w * s / ref_noise_w, 1e-30))
            out[i, s_snr + k] = _scaled(snr_db, i_snr, o_snr, c_snr, l_snr, h_snr)
            first = max(next_seq[i, k], head[i])
            q = tail[i] - first
            out[i, s_q + k] = _scaled(float(q), i_q, o_q, c_q, l_q, h_q)
            age = scene_age(t[i], slot_start[i], first, deadline) if q > 0 else 0
            out[i, s_age + k] = _scaled(float(age), i_age, o_age, c_age, l_age, h_age)
            out[i, s_pj + k] = _scaled(p_joint[i, k], i_pj, o_pj, c_pj, l_pj, h_pj)
        for k in range(K):
            for m in range(M):
                out[i, s_mod + k * M + m] = _scaled(float(modality_onehot[k, m]), i_mod, o_mod, c_mod, l_mod, h_mod)
        c = s_cor
        for a in range(K):
            for b in range(a + 1, K):
                re = 0.0
                im = 0.0
                for r in range(Nr):
                    x = h[i, a, r]
                    y = h[i, b, r]
                    re += x.real * y.real + x.imag * y.imag
                    im += x.real * y.imag - x.imag * y.real
                rho = np.sqrt(re * re + im * im) / np.sqrt(max(norm2[a] * norm2[b], 1e-300))
                out[i, c] = _scaled(rho, i_cor, o_cor, c_cor, l_cor, h_cor)
                c += 1
        if s_csi >= 0:
            c = s_csi
            for k in range(K):
                amp = 1.0 / np.sqrt(gain[i, k])
                for r in range(Nr):
                    out[i, c] = _scaled(h[i, k, r].real * amp, i_csi, o_csi, c_csi, l_csi, h_csi)
                    out[i, c + K * Nr] = _scaled(h[i, k, r].imag * amp, i_csi, o_csi, c_csi, l_csi, h_csi)
                    c += 1
        out[i, s_t] = _scaled(float(t[i]), i_t, o_t, c_t, l_t, h_t)
        if s_bb >= 0:
            out[i, s_bb] = _scaled(burst_belief[i], i_bb, o_bb, c_bb, l_bb, h_bb)
        if s_uq >= 0:  # coverage blocks (obs_coverage), present together
            for k in range(K):
                n_un, slack = unheld_queued(t[i], head[i], tail[i], next_seq[i, k], slot_start[i], rx_len[i],
                                            device_modality[k], deadline)
                out[i, s_uq + k] = _scaled(float(n_un), i_uq, o_uq, c_uq, l_uq, h_uq)
                urgency = deadline + 1 - slack if n_un > 0 else 0
                out[i, s_ur + k] = _scaled(float(urgency), i_ur, o_ur, c_ur, l_ur, h_ur)
        if s_sh >= 0:
            for j in range(S):
                for m in range(M):
                    got = held_prefix(head[i], tail[i], rx_len[i], j, m) > 0
                    out[i, s_sh + j * M + m] = _scaled(1.0 if got else 0.0, i_sh, o_sh, c_sh, l_sh, h_sh)


@njit(cache=True, nogil=True)  # shards of a core run it on their own threads
def observe_bound(st):
    """:func:`observe` with its arguments taken from ``st`` (an :class:`ObserveArgs`)."""
    observe(st.h, st.gain, st.t, st.head, st.tail, st.next_seq, st.slot_start, st.p_joint, st.burst_belief,
            st.modality_onehot, st.rx_len, st.device_modality, st.max_power_w, st.ref_noise_w, st.deadline, st.start,
            st.offset, st.scale, st.clip_low, st.clip_high, st.out)


@njit(cache=True)
def mmse_sinr_into(h, power_w, group, noise_w, num_groups, out):
    """Post-MMSE SINR of every device, written into ``out`` (N, K); the compiled twin of
    ``receivers.post_receiver_sinr(..., receiver="mmse")`` (tested equal), used on the hot path.

    For member k of a group: SINR_k = p_k h_kᴴ R_k⁻¹ h_k with R_k = σ² I + Σ_{j≠k} p_j h_j h_jᴴ built without k
    (not by the inversion lemma q / (1 − q), which loses digits to cancellation above ~50 dB), factored by
    Cholesky R_k = L Lᴴ, so SINR_k = p_k ‖L⁻¹ h_k‖² by one forward substitution.
    """
    N, K, Nr = h.shape
    R = np.empty((Nr, Nr), dtype=np.complex128)
    L = np.empty((Nr, Nr), dtype=np.complex128)
    y = np.empty(Nr, dtype=np.complex128)
    for i in range(N):
        for k in range(K):
            out[i, k] = 0.0
            g = group[i, k]
            if g <= 0:
                continue
            for a in range(Nr):
                for b in range(a + 1):
                    R[a, b] = 0.0
                R[a, a] = noise_w[i, g]
            for j in range(K):
                if j == k or group[i, j] != g:
                    continue
                p = power_w[i, j]
                for a in range(Nr):
                    ha = h[i, j, a] * p
                    for b in range(a + 1):
                        R[a, b] += ha * np.conj(h[i, j, b])
            for c in range(Nr):  # lower Cholesky factor of R_k
                s = R[c, c].real
                for m in range(c):
                    s -= L[c, m].real ** 2 + L[c, m].imag ** 2
                d = np.sqrt(max(s, 1e-300))
                L[c, c] = d
                for a in range(c + 1, Nr):
                    v = R[a, c]
                    for m in range(c):
                        v -= L[a, m] * np.conj(L[c, m])
                    L[a, c] = v / d
            q = 0.0
            for a in range(Nr):  # forward substitution L y = h_k
                v = h[i, k, a]
                for m in range(a):
                    v -= L[a, m] * y[m]
                y[a] = v / L[a, a].real
                q += y[a].real ** 2 + y[a].imag ** 2
            out[i, k] = q * power_w[i, k]


# ====================================================================== fading (compiled twins of vmimo_env.channel)
@njit(cache=True)
def gauss_markov_into(z, rho, c, h_scat):
    """In place: ``h_scat = rho h_scat + c w`` with ``w = (z_re + j z_im) / sqrt 2`` read from the slot's normal
    draws ``z`` (N, >= 2 K Nr): real and imaginary parts of device k's antenna r at ``k Nr + r`` and
    ``K Nr + k Nr + r``. The compiled twin of ``channel.gauss_markov_step`` with a scalar ``rho`` and
    ``c = sqrt(1 - rho^2)`` (the same real operations in the same order, so the same bits; tested)."""
    N, K, Nr = h_scat.shape
    s = np.sqrt(0.5)
    half = K * Nr
    for i in range(N):
        for k in range(K):
            for r in range(Nr):
                j = k * Nr + r
                wr = z[i, j] * s
                wi = z[i, half + j] * s
                v = h_scat[i, k, r]
                h_scat[i, k, r] = complex(rho * v.real + c * wr, rho * v.imag + c * wi)


@intrinsic
def _fma(typingctx, a, b, c):
    """``a b + c`` rounded once (LLVM's ``llvm.fma.f64``: the hardware instruction, or an exact software fallback
    where the CPU has none)."""
    sig = types.float64(types.float64, types.float64, types.float64)

    def codegen(context, builder, signature, args):
        fnty = ir.FunctionType(ir.DoubleType(), [ir.DoubleType()] * 3)
        return builder.call(cgutils.get_or_insert_function(builder.module, fnty, "llvm.fma.f64"), args)

    return sig, codegen


@intrinsic
def _call_ndtr(typingctx, addr, x):
    """``ndtr(x)`` through the C function at ``addr`` (:func:`scipy_ndtr_address`): the address is an argument,
    not a constant, so the calling kernel stays cacheable across processes."""
    sig = types.float64(types.int64, types.float64)

    def codegen(context, builder, signature, args):
        # Cython's signature of a module-level cpdef function: (double x, int skip_dispatch), the flag unused
        fnty = ir.FunctionType(ir.DoubleType(), [ir.DoubleType(), ir.IntType(32)])
        fn = builder.inttoptr(args[0], fnty.as_pointer())
        return builder.call(fn, [args[1], ir.Constant(ir.IntType(32), 0)])

    return sig, codegen


NDTR_EXPORT = ("scipy.special.cython_special", "__pyx_fuse_1ndtr", b"double (double, int __pyx_skip_dispatch)")


def cython_function_address(module: str, name: str, signature: bytes) -> int:
    """Address of the C function ``name`` that Cython module ``module`` exports, if its capsule declares exactly
    ``signature``; 0 otherwise (module or name missing, or another signature: calling it would be undefined)."""
    import ctypes
    import importlib

    try:
        capsule = importlib.import_module(module).__pyx_capi__[name]
    except (ImportError, AttributeError, KeyError):
        return 0
    get_name, get_pointer = ctypes.pythonapi.PyCapsule_GetName, ctypes.pythonapi.PyCapsule_GetPointer
    get_name.restype, get_name.argtypes = ctypes.c_char_p, [ctypes.py_object]
    get_pointer.restype, get_pointer.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    declared = get_name(capsule)
    if declared != signature:
        return 0
    return int(get_pointer(capsule, declared) or 0)


@functools.cache
def scipy_ndtr_address() -> int:
    """Address of SciPy's own normal CDF, the C function behind ``scipy.special.ndtr`` (exported for compiled
    callers by ``scipy.special.cython_special`` as :data:`NDTR_EXPORT` says), or 0 where this SciPy does not export
    it under that name and signature: then the caller computes the CDF with the ufunc instead. Compiled code that
    calls it gets the ufunc's bits (tested)."""
    return cython_function_address(*NDTR_EXPORT)


@njit(cache=True)
def ar1_step_into(res_state, z, base, phi, innov_t, ndtr_arg, slope, offset):
    """In place: ``res_state = res_state · phi + eps @ innov_t`` with ``eps`` (N, K, 2) read from the slot's normal
    draws ``z`` at ``base + 2 k + x``, and the availability CDF's argument ``res_state · slope − offset`` into
    ``ndtr_arg`` (N, K, 2). The compiled twin of ``resources.ar1_step``: each innovation is the two-term product
    rounded as an FMA-using BLAS does (``fma(e1, c1, e0 c0)``), so the same bits as numpy's product there and
    the same bits on every machine (tested)."""
    N, K, _ = res_state.shape
    for i in range(N):
        for k in range(K):
            e0 = z[i, base + 2 * k]
            e1 = z[i, base + 2 * k + 1]
            for x in range(2):
                innov = _fma(e1, innov_t[1, x], e0 * innov_t[0, x])
                v = res_state[i, k, x] * phi[x] + innov
                res_state[i, k, x] = v
                ndtr_arg[i, k, x] = v * slope[x] - offset[x]


@njit(cache=True)
def compose_into(h_scat, h_los, scat_scale, gain, h):
    """In place: ``h = sqrt(gain) (h_los + scat_scale h_scat)``, the compiled twin of ``channel.compose_channel``."""
    N, K, Nr = h_scat.shape
    for i in range(N):
        for k in range(K):
            amp = np.sqrt(gain[i, k])
            w = scat_scale[i, k]
            for r in range(Nr):
                v = h_scat[i, k, r]
                los = h_los[i, k, r]
                h[i, k, r] = complex(amp * (los.real + w * v.real), amp * (los.imag + w * v.imag))


# ====================================================================== action checks (the front ends' fast path)
@njit(cache=True)
def native_action_status(g, p, c, b, num_groups, num_power, num_compression):
    """One pass over a native action's arrays: 0 when every index is in range and every share finite in [0, 1],
    1 when the shares only need clipping to [0, 1], -1 when anything else is off (the caller's full validation
    then names it). ``g``/``p``/``c`` int64 and ``b`` float arrays of any shape, read flat."""
    gf, pf, cf, bf = g.ravel(), p.ravel(), c.ravel(), b.ravel()
    for j in range(gf.size):
        if gf[j] < 0 or gf[j] > num_groups or pf[j] < 0 or pf[j] >= num_power or cf[j] < 0 or cf[j] >= num_compression:
            return -1
    status = 0
    for j in range(bf.size):
        x = bf[j]
        if not np.isfinite(x):
            return -1
        if x < 0.0 or x > 1.0:
            status = 1
    return status


@njit(cache=True)
def indices_in_range(a, nvec):
    """Whether every entry of the int64 array ``a`` (..., L) lies in ``[0, nvec)`` (``nvec`` (L,) int64)."""
    L = nvec.size
    af = a.ravel()
    for j in range(af.size):
        x = af[j]
        if x < 0 or x >= nvec[j % L]:
            return False
    return True


# ====================================================================== bound arguments as one compiled struct
# Unboxing an array argument costs ~60 ns, and the fused slot takes ~50 of them every step, all fixed per core.
# A struct holding them (numba structref: references to the same buffers, not copies) is unboxed once.
class BoundArgsType(types.StructRef):
    """Base of the bound-argument struct types: fields typed from the values given at construction."""

    def preprocess_fields(self, fields):
        return tuple((name, types.unliteral(typ)) for name, typ in fields)


def bound_entry(dispatcher, *args):
    """The compiled entry of ``dispatcher`` for the types of ``args`` (compiled, or loaded from the cache, if
    needed). Calling it skips numba's type dispatch, which costs ~0.4 µs a call for a struct argument (the
    ``typeof`` of a proxy); it checks nothing, so it is only for calls whose argument types are fixed for good:
    the bound structs and a Python int."""
    from numba import typeof

    return dispatcher.compile(tuple(typeof(a) for a in args))


@structref.register
class SlotArgsType(BoundArgsType):
    """Numba type of :class:`SlotArgs`."""


SLOT_FIELDS: tuple[str, ...] = (
    "group", "power_idx", "comp_idx", "bw_raw", "u_block", "z_block", "draw_ptr", "u", "z",
    "t", "head", "tail", "next_seq", "slot_start", "ring_scene", "rx_len", "rx_score", "rx_snr", "rx_off", "h_scat",
    "h_los", "scat_scale", "gain", "h", "res_state", "p_joint", "arrival_cdf", "phase", "pool_size", "power_levels_w",
    "prefix_levels", "encode_capacity", "total_bw_hz", "slot_s", "noise_psd", "max_arrivals", "num_groups",
    "inv_sinr_cap", "device_modality", "modality_present", "noise_span", "deadline", "by_modality", "close_all_from",
    "encoder_mflops", "inv_pa_efficiency", "circuit_power_w", "j_per_mflop", "rho", "rho_c", "phi", "innov_t",
    "slope", "offset", "ndtr_addr", "n_send", "geff", "power_w", "prefix", "airtime", "band_hz", "noise_w", "arrived",
    "dropped", "sinr", "sinr_db_out", "close_env", "close_pos", "closed", "empty", "full", "ndtr_arg", "energy_j",
    "queue", "pool_latents", "noise_table",
)


@structref.register
class ObserveArgsType(BoundArgsType):
    """Numba type of :class:`ObserveArgs`."""


class SlotArgs(structref.StructRefProxy):
    """The fused slot's arguments (:data:`SLOT_FIELDS`, the parameters of :func:`slot_physics`: the core's action
    buffers, random blocks, state, constants and per-step buffers), held by reference as one compiled struct: pass
    it to :func:`slot_physics_bound`. Not picklable; ``VMIMOCore`` builds it again after unpickling
    (``_bind_slot``)."""


structref.define_proxy(SlotArgs, SlotArgsType, list(SLOT_FIELDS))

OBSERVE_FIELDS: tuple[str, ...] = (
    "h", "gain", "t", "head", "tail", "next_seq", "slot_start", "p_joint", "burst_belief", "modality_onehot",
    "rx_len", "device_modality", "max_power_w", "ref_noise_w", "deadline", "start", "offset", "scale", "clip_low",
    "clip_high", "out",
)


class ObserveArgs(structref.StructRefProxy):
    """The arguments of :func:`observe` (:data:`OBSERVE_FIELDS`, all fixed per core) as one compiled struct, for
    :func:`observe_bound`."""


structref.define_proxy(ObserveArgs, ObserveArgsType, list(OBSERVE_FIELDS))


@njit(cache=True)
def make_slot_args(*fields):
    """A :class:`SlotArgs` of :data:`SLOT_FIELDS` in order, built in compiled code (cached: a proxy built from
    Python compiles its constructor in every process)."""
    return SlotArgs(*fields)


@njit(cache=True)
def make_observe_args(*fields):
    """An :class:`ObserveArgs` of :data:`OBSERVE_FIELDS` in order, built in compiled code (cached, as
    :func:`make_slot_args`)."""
    return ObserveArgs(*fields)


# ====================================================================== the slot in one call
@njit(cache=True)
def draw_rows_into(u_block, z_block, ptr, u, z):
    """This slot's draws of every environment: row ``ptr[i]`` of its uniform and normal blocks (``rng.BlockRNG``,
    (N, block, n)) into ``u[i]`` and ``z[i]``, then ``ptr[i] += 1``: what ``BlockRNG.next`` returns, read in the
    kernel. The caller refills exhausted blocks first (``BlockRNG.refill``); a pointer past its block is an error."""
    N, B = u_block.shape[0], u_block.shape[1]
    for i in range(N):
        p = ptr[i]
        if p < 0 or p >= B:
            raise IndexError("a random block ran out: BlockRNG.refill() must run before the fused slot")
        u[i, :] = u_block[i, p]
        z[i, :] = z_block[i, p]
        ptr[i] = p + 1


@njit(cache=True)
def action_into(group, power_idx, comp_idx, bw_raw, out_group, out_power, out_comp, out_bw):
    """Copy a batch's native action ((N, K) indices, (N, G) raw shares) into the fused slot's bound buffers
    (int64, int64, int64, float64: the same values, so the same slot); shapes must match the buffers."""
    if group.shape != out_group.shape or power_idx.shape != out_power.shape or comp_idx.shape != out_comp.shape \
            or bw_raw.shape != out_bw.shape:
        raise ValueError("action arrays must have shapes (N, K), (N, K), (N, K), (N, G)")
    out_group[:] = group
    out_power[:] = power_idx
    out_comp[:] = comp_idx
    out_bw[:] = bw_raw


@njit(cache=True)
def action_row_into(group, power_idx, comp_idx, bw_raw, out_group, out_power, out_comp, out_bw):
    """:func:`action_into` for one environment's action ((K,) and (G,)) into row 0 of the buffers (N = 1)."""
    if out_group.shape[0] != 1 or group.shape[0] != out_group.shape[1] or power_idx.shape[0] != out_power.shape[1] \
            or comp_idx.shape[0] != out_comp.shape[1] or bw_raw.shape[0] != out_bw.shape[1]:
        raise ValueError("one environment's action must have shapes (K,), (K,), (K,), (G,)")
    out_group[0, :] = group
    out_power[0, :] = power_idx
    out_comp[0, :] = comp_idx
    out_bw[0, :] = bw_raw


@njit(cache=True)
def slot_physics(group, power_idx, comp_idx, bw_raw,  # this slot's action (VMIMOCore's buffers, action_into)
                 u_block, z_block, draw_ptr, u, z,  # the random blocks and pointers (rng.BlockRNG), this slot's rows
                 t, head, tail, next_seq, slot_start, ring_scene, rx_len, rx_score, rx_snr, rx_off,  # queue state
                 h_scat, h_los, scat_scale, gain, h, res_state, p_joint,  # channel and resources (in place)
                 arrival_cdf, phase, pool_size, power_levels_w, prefix_levels, encode_capacity, total_bw_hz, slot_s,
                 noise_psd, max_arrivals, num_groups, inv_sinr_cap, device_modality, modality_present, noise_span,
                 deadline, by_modality, close_all_from, encoder_mflops, inv_pa_efficiency, circuit_power_w,
                 j_per_mflop, rho, rho_c, phi, innov_t, slope, offset, ndtr_addr,  # constants
                 n_send, geff, power_w, prefix, airtime, band_hz, noise_w, arrived, dropped, sinr, sinr_db_out,
                 close_env, close_pos, closed, empty, full, ndtr_arg, energy_j, queue,  # per-step buffers
                 pool_latents, noise_table):  # what the scoring reads (prefetched only)
    """Everything of one slot but the fusion head, in one call (the single env's hot
    path pays one dispatch instead of a dozen numpy calls): :func:`plan_slot`, :func:`mmse_sinr_into` and the EVM
    cap (``inv_sinr_cap = 10^(-cap/10)``, 0 for none) and its dB values for the info (:func:`sinr_db_into` into
    ``sinr_db_out``), :func:`deliver_and_close`, the energy parts per env
    (transmit, circuit, encoding; D2D 0, as the scenarios this path serves are not cooperative), then the fading
    step (:func:`gauss_markov_into`, :func:`compose_into`) and the resource AR(1) step (:func:`ar1_step_into`,
    which writes the CDF's argument into ``ndtr_arg``) and, where ``ndtr_addr`` is SciPy's normal CDF
    (:func:`scipy_ndtr_address`; 0: the caller applies the ufunc), the availability ``p_joint`` from it; last, the
    slot counter ``t`` advances and the queues after the slot go into ``queue`` (:func:`queue_into`). ``innov_t``
    is ``resources.step_coefficients``'s innovation matrix. Returns the number of closing scenes.

    Every argument is bound once (``VMIMOCore._bind_slot``), so a step is one compiled call with one argument
    (:func:`slot_physics_bound` through its compiled entry): the action is copied into ``group``, ``power_idx``,
    ``comp_idx`` and ``bw_raw`` first (:func:`action_into`), and the slot's uniform and normal draws are this
    slot's rows of the environments' blocks (``rng.BlockRNG``, refilled by the caller where a block ran out),
    copied into ``u`` and ``z`` with the pointers advanced (:func:`draw_rows_into`); ``energy_j`` (N, 4)
    receives the energy.
    For scenarios without spatial correlation or mobility, with the compiled MMSE receiver (``VMIMOCore``
    decides); the same operations as the numpy path, so the same bits, except that each energy part sums its
    devices in index order (numpy's reduction order may differ in the last bit; tested to 1e-12).
    """
    draw_rows_into(u_block, z_block, draw_ptr, u, z)
    plan_slot(t, head, tail, next_seq, slot_start, ring_scene, rx_len, rx_score, group, power_idx, comp_idx, bw_raw,
              p_joint, u, arrival_cdf, phase, pool_size, power_levels_w, prefix_levels, encode_capacity, total_bw_hz,
              slot_s, noise_psd, max_arrivals, n_send, geff, power_w, prefix, airtime, band_hz, noise_w, arrived,
              dropped)
    mmse_sinr_into(h, power_w, geff, noise_w, num_groups, sinr)
    N, K = sinr.shape
    if inv_sinr_cap > 0.0:
        for i in range(N):
            for k in range(K):
                s = sinr[i, k]
                sinr[i, k] = s / (1.0 + s * inv_sinr_cap)
    sinr_db_into(sinr, geff, sinr_db_out)
    nc = deliver_and_close(t, head, tail, next_seq, slot_start, rx_len, rx_score, rx_snr, rx_off, n_send, prefix,
                           sinr, u[:, 1 + max_arrivals:], device_modality, modality_present, noise_span, deadline,
                           by_modality, close_all_from, close_env, close_pos, closed, empty, full)
    for j in range(min(nc, PREFETCH_SCENES)):  # what the head reads first, requested while the rest of the slot runs
        prefetch_scene(j, close_env, close_pos, ring_scene, rx_len, rx_off, pool_latents, noise_table)
    for i in range(N):
        e_tx = 0.0
        e_circ = 0.0
        e_enc = 0.0
        for k in range(K):
            e_tx += power_w[i, k] * inv_pa_efficiency * airtime[i, k]
            e_circ += circuit_power_w * airtime[i, k]
            e_enc += float(n_send[i, k]) * encoder_mflops[k] * j_per_mflop
        energy_j[i, 0] = e_tx
        energy_j[i, 1] = e_circ
        energy_j[i, 2] = e_enc
        energy_j[i, 3] = 0.0
    gauss_markov_into(z, rho, rho_c, h_scat)
    compose_into(h_scat, h_los, scat_scale, gain, h)
    ar1_step_into(res_state, z, 2 * K * h.shape[2], phi, innov_t, ndtr_arg, slope, offset)
    if ndtr_addr != 0:  # the availability CDF here too (else the caller applies scipy's ufunc to ndtr_arg)
        for i in range(N):
            for k in range(K):
                p_joint[i, k] = _call_ndtr(ndtr_addr, ndtr_arg[i, k, 0]) * _call_ndtr(ndtr_addr, ndtr_arg[i, k, 1])
    for i in range(N):
        t[i] += 1
    queue_into(head, tail, next_seq, queue)
    return nc


@njit(cache=True, nogil=True)  # shards of a core run it on their own threads
def slot_physics_bound(st):
    """:func:`slot_physics` with its arguments taken from ``st`` (a :class:`SlotArgs`)."""
    return slot_physics(st.group, st.power_idx, st.comp_idx, st.bw_raw, st.u_block, st.z_block, st.draw_ptr, st.u,
                        st.z, st.t, st.head, st.tail, st.next_seq, st.slot_start, st.ring_scene, st.rx_len, st.rx_score,
                        st.rx_snr, st.rx_off, st.h_scat, st.h_los, st.scat_scale, st.gain, st.h, st.res_state,
                        st.p_joint, st.arrival_cdf, st.phase, st.pool_size, st.power_levels_w, st.prefix_levels,
                        st.encode_capacity, st.total_bw_hz, st.slot_s, st.noise_psd, st.max_arrivals, st.num_groups,
                        st.inv_sinr_cap, st.device_modality, st.modality_present, st.noise_span, st.deadline,
                        st.by_modality, st.close_all_from, st.encoder_mflops, st.inv_pa_efficiency,
                        st.circuit_power_w, st.j_per_mflop, st.rho, st.rho_c, st.phi, st.innov_t, st.slope, st.offset,
                        st.ndtr_addr, st.n_send, st.geff, st.power_w, st.prefix, st.airtime, st.band_hz, st.noise_w,
                        st.arrived, st.dropped, st.sinr, st.sinr_db_out, st.close_env, st.close_pos, st.closed,
                        st.empty, st.full, st.ndtr_arg, st.energy_j, st.queue, st.pool_latents, st.noise_table)


@njit(cache=True)
def slot_outcome(logits, scene, labels, close_env, soft_numerator, energy_j, arrival_rate, energy_scale):
    """:func:`slot_outcome_into` into fresh arrays: ``(correct, accuracy_term, energy_term, reward)``."""
    N = energy_j.shape[0]
    correct = np.zeros(N, dtype=np.int64)
    acc = np.empty(N)
    en = np.empty(N)
    reward = np.empty(N)
    slot_outcome_into(logits, scene, labels, close_env, soft_numerator, energy_j, arrival_rate, energy_scale,
                      correct, acc, en, reward)
    return correct, acc, en, reward


@njit(cache=True, inline="always")
def slot_outcome_into(logits, scene, labels, close_env, soft_numerator, energy_j, arrival_rate, energy_scale,
                      correct, acc, en, reward):
    """The slot's score and reward per env, into the (N,) arrays ``correct``, ``acc``, ``en`` and ``reward``.

    ``correct`` counts the closing scenes (rows of ``logits``, of pool scenes ``scene`` in envs ``close_env``)
    whose first arg-max is their label (``numpy.argmax``'s tie rule); ``acc`` (the accuracy term) is ``correct``,
    or ``soft_numerator`` when it holds one value per env (``reward_mode="soft"``), over ``arrival_rate``;
    ``en = Σ energy_j · energy_scale`` (the four parts in order), ``reward`` their difference. The compiled twin
    of the reference path's scoring (``VMIMOCore._classify``) and ``rules.energy_term``.
    """
    N = energy_j.shape[0]
    correct[:] = 0
    for j in range(logits.shape[0]):
        row = logits[j]
        best = 0
        for c in range(1, row.shape[0]):
            if row[c] > row[best]:
                best = c
        if best == labels[scene[j]]:
            correct[close_env[j]] += 1
    soft = soft_numerator.shape[0] == N
    for i in range(N):
        total = energy_j[i, 0] + energy_j[i, 1] + energy_j[i, 2] + energy_j[i, 3]
        a = (soft_numerator[i] if soft else float(correct[i])) / arrival_rate
        e = total * energy_scale
        acc[i] = a
        en[i] = e
        reward[i] = a - e


# ====================================================================== what the step's info reports
@njit(cache=True)
def queue_lengths(head, tail, next_seq):
    """:func:`queue_into` a fresh (N, K) array."""
    out = np.empty(next_seq.shape, dtype=np.int64)
    queue_into(head, tail, next_seq, out)
    return out


@njit(cache=True)
def queue_into(head, tail, next_seq, out):
    """Scenes waiting at each device into ``out`` (N, K): ``tail − max(next_seq, head)`` (the queue of the module
    docstring)."""
    N, K = next_seq.shape
    for i in range(N):
        for k in range(K):
            out[i, k] = tail[i] - max(next_seq[i, k], head[i])


@njit(cache=True)
def sinr_db_into(sinr, group, out):
    """Post-receiver SINR in dB into ``out`` where the device transmitted (``group > 0``), 0 elsewhere (same
    shape): ``10 log10(max(SINR, 1e-30))``. The fused slot writes the step's copy; the info reports it."""
    flat_s = sinr.reshape(-1)
    flat_g = group.reshape(-1)
    flat_o = out.reshape(-1)
    for j in range(flat_s.shape[0]):
        flat_o[j] = 10.0 * math.log10(max(flat_s[j], 1e-30)) if flat_g[j] > 0 else 0.0


