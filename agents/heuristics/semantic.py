"""Semantic-aware heuristics: max-weight with accuracy/energy link adaptation, and the NAS-VMIMO controller.

Both value a latent by what it does to the frozen model's accuracy, read from
:class:`~agents.heuristics.accuracy.AccuracyTable` (accuracy vs SNR × prefix × modality subset of the same frozen
model that scores the reward), and price it with the environment's own energy model, called not copied
(``vmimo_env.rules.energy_per_latent``: ``E_k(c, p) = (p / η + P_c) · (c / 2) / W_g + F_k · e_enc`` joules per
latent of ``c`` reals at power ``p`` on a band of ``W_g`` Hz, ``F_k`` the encoder's MFLOPs; in reward units
``rules.energy_term``, ``λ_E · E_k / E_ref``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from agents.heuristics.accuracy import accuracy_table_for
from agents.heuristics.base import Heuristic, fill_groups, proportional_shares
from agents.policies import register_policy
from vmimo_env import rules
from vmimo_env.bs_view import BSView


def energy_cost_per_latent(view: BSView, prefix: Any, power_w: np.ndarray, band_hz: np.ndarray | float
                           ) -> np.ndarray:
    """Reward-units energy cost ``λ_E E / E_ref`` of one latent (broadcast over the inputs; device axis last),
    from the environment's energy rule."""
    e = rules.energy_per_latent(prefix, power_w, band_hz, view.encoder_mflops, view.cfg)
    return rules.energy_term(e, view.cfg)


def link_adaptation(view: BSView, table: Any, share: float = 1.0, value_scale: np.ndarray | None = None
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per device, the (prefix index, power index) maximising value − cost of one latent, and that utility.

    ``value = scale_m · (acc_m(c, SNR_k(p)) − chance) / (acc_m(c_max, ∞) − chance) / arrival_rate``: a correct scene
    is worth ``1 / arrival_rate`` reward, and modality m's latent is credited with its share ``scale_m`` of the
    fused accuracy (default: its marginal value in the table, normalised to sum to the fused accuracy above
    chance), degraded by the single-modality accuracy curve at this prefix and interference-free SNR over
    ``share`` of the band. ``cost = λ_E E_k(c, p) / E_ref``. Returns (comp (N, K), power (N, K), utility (N, K)).
    """
    cfg = view.cfg
    m = view.device_modality
    n2 = (view.h.real**2 + view.h.imag**2).sum(axis=-1)  # (N, K)
    band = cfg.total_bandwidth_hz * share
    noise = rules.band_noise_w(share, cfg)
    P = view.power_levels_w  # (L_p,)
    C = view.prefix_levels  # (L_c,)
    snr_db = 10.0 * np.log10(np.maximum(P[None, None, :] * (n2 / noise)[..., None], 1e-30))  # (N, K, L_p)
    if value_scale is None:
        marg = table.marginal_value()
        full = float(table.lookup(tuple(range(table.M)), np.array(40.0), np.array(int(C.max())))) - table.chance
        value_scale = marg / marg.sum() * max(full, 0.05)
    top = np.array([float(table.lookup((j,), np.array(40.0), np.array(int(C.max())))) for j in range(table.M)])
    denom = np.maximum(top - table.chance, 0.02)
    N, K = n2.shape
    best_u = np.full((N, K), -np.inf)
    best_c = np.zeros((N, K), dtype=np.int64)
    best_p = np.zeros((N, K), dtype=np.int64)
    for ci, c in enumerate(C):
        acc = table.single(np.broadcast_to(m[None, :, None], snr_db.shape), snr_db, np.full(snr_db.shape, c))
        value = value_scale[m][None, :, None] * np.clip(acc - table.chance, 0, None) / denom[m][None, :, None]
        value = value / cfg.arrival_rate
        cost = energy_cost_per_latent(view, c, P[None, :, None] * np.ones((1, 1, K)), band)  # (1, L_p, K)
        u = value - np.swapaxes(cost, 1, 2)
        pi = u.argmax(axis=-1)
        ui = np.take_along_axis(u, pi[..., None], axis=-1)[..., 0]
        better = ui > best_u
        best_u = np.where(better, ui, best_u)
        best_c = np.where(better, ci, best_c)
        best_p = np.where(better, pi, best_p)
    return best_c, best_p, best_u


@register_policy("max_weight")
class MaxWeightPolicy(Heuristic):
    """Max-weight scheduling with the weight ``backlog_k × predicted accuracy value of k's latent``.

    Each slot, every device's best (prefix, power) pair is chosen by :func:`link_adaptation` (value of a latent
    from the frozen model's accuracy table minus its energy cost, over the band of one group); its weight is
    ``w_k = backlog_k × max(utility_k, 0)`` where ``backlog_k`` is the queue plus this slot's expected arrivals.
    The ``Nr`` heaviest devices with positive weight form one group holding the whole band (``num_groups``
    groups of ``Nr`` with proportional shares if set higher). Optimises ``Σ_k queue_k · service value_k``, the
    Lyapunov-drift-minimising rule for queue stability, with the service valued in task accuracy net of energy.
    ``power_rule="value"`` (default) keeps the link adaptation's power; ``"fpc"`` or ``"target"`` replace it by that
    rule of ``agents.heuristics.base`` (the prefix stays the link adaptation's); ``coverage=True`` weighs only
    devices holding latents the BS still lacks.
    Reads ``view.h``, ``view.queue``, ``view.encode_cap``, ``view.device_modality``, ``view.encoder_mflops``,
    ``view.cfg`` and the frozen model's accuracy table (the model named by ``view.checkpoint``).
    Source: Tassiulas & Ephremides, "Stability properties of constrained queueing systems and scheduling policies
    for maximum throughput in multihop radio networks", IEEE Trans. Autom. Control 37(12), 1992.
    """

    name = "max_weight"
    # "value": the power of the link adaptation; "fpc" / "target": that rule (agents.heuristics.base) instead
    power_rules = ("value", "fpc", "target")

    def __init__(self, env: Any, num_groups: int = 1, **kwargs: Any) -> None:
        super().__init__(env, **kwargs)
        self.num_groups = min(num_groups, self.G)
        self.table = accuracy_table_for(self.view)

    def act_batch(self, info: dict[str, Any]) -> dict[str, np.ndarray]:
        share = 1.0 / self.num_groups
        comp, power, util = link_adaptation(self.view, self.table, share=share)
        weight = self.backlog() * np.maximum(util, 0.0)
        group = fill_groups(weight, self.eligible() & (weight > 0), self.Nr, self.num_groups)
        shares = proportional_shares(group, self.G)
        if self.power_rule != "value":
            power = self.power_levels(group, shares)
        return {"group": group, "power": power, "compression": comp, "bandwidth": shares}


@register_policy("nas_vmimo")
class NASVMIMOControllerPolicy(Heuristic):
    """The NAS-VMIMO seed's Algorithm 1 (virtual-MIMO controller), mapped onto this action space.

    With ``r'`` the number of devices that may transmit (streams) and ``r = Nr`` the spatial degrees of freedom
    of one group (the rank of the group channel):

    1. ``r' ≤ r``: **parallel mapping** (``A_k = I``): every stream in one group on the whole band, full latent
       (longest prefix).
    2. ``r' > r`` and ``p_joint < η1`` (devices short of compute/memory; mean over the streams): **soft selection**
       (``A_k = A_soft``): modality weights ``w(m) = softmax(β(m)/τ + λ (1 − P_succ(m)) + μ β̄(m))`` allocate
       the ``r`` DoF, ``r_m = ⌊r w(m)⌋`` plus the largest remainders (the seed's Remark 2); each modality's
       ``r_m`` DoF go to its devices of strongest channel; one group, whole band, prefix 32. ``β(m)`` is the
       modality's stand-alone accuracy above chance from the frozen model's table (the seed learns it as a
       task-attention score), ``β̄`` the uniform historical prior, ``P_succ = p_joint · 1[SNR ≥ 0 dB]``; the
       ``+λ(1 − P_succ)`` reliability term is the seed's, kept as published.
    3. ``r' > r`` and ``p_joint ≥ η1``: **joint compression** (``A_k = A_c``, bottleneck ``q_m = 8``): every
       stream, ``⌈r'/r⌉`` groups (at most G) of strongest-first devices with shares proportional to size, prefix
       8 reals.

    Power is the maximum throughout by default (the seed's controller maps streams, it does no power control);
    ``power_rule="fpc"`` or ``"target"`` adds that rule of ``agents.heuristics.base``, ``coverage=True`` counts
    only the streams of devices holding latents the BS still lacks. Defaults from
    the seed's ``configs/default.yaml``: ``η1 = 0.6``, ``λ = 1``, ``μ = 0.5``, ``q_m = 8``. Optimises the
    seed's end-to-end objective heuristically: use all DoF when they suffice, otherwise spend them on the
    modalities that matter or compress everything. Reads ``view.h``, ``view.p_joint``, ``view.encode_cap``,
    ``view.device_modality`` and the frozen model's accuracy table. Source: NAS-VMIMO (Qiu et al., "Task-oriented
    multimodal wireless semantic communication via lightweight language models and virtual MIMO", public code
    Qiu1118/NAS_VMIMO, ``models/vmimo.py``, Algorithm 1 / Eq. 7–13).
    """

    name = "nas_vmimo"

    def __init__(self, env: Any, eta1: float = 0.6, lam: float = 1.0, mu: float = 0.5, tau: float = 0.1,
                 soft_prefix: int = 32, compress_prefix: int = 8, **kwargs: Any) -> None:
        super().__init__(env, **kwargs)
        self.eta1, self.lam, self.mu, self.tau = eta1, lam, mu, tau
        self.table = accuracy_table_for(self.view)
        C = self.view.prefix_levels
        self.full_level = len(C) - 1
        self.soft_level = int(np.abs(C - soft_prefix).argmin())
        self.comp_level_q = int(np.abs(C - compress_prefix).argmin())
        self.beta = self.table.modality_prior()

    def act_batch(self, info: dict[str, Any]) -> dict[str, np.ndarray]:
        N, K, G, r = self.N, self.K, self.G, self.Nr
        active = self.eligible()
        n_streams = active.sum(axis=1)
        n2 = self.channel_norm2()
        pj = np.where(active, self.view.p_joint, np.nan)
        mean_pj = np.nan_to_num(np.nanmean(np.where(active.any(1, keepdims=True), pj, 1.0), axis=1), nan=1.0)
        case1 = n_streams <= r
        case2 = ~case1 & (mean_pj < self.eta1)
        case3 = ~case1 & ~case2

        group = np.zeros((N, K), dtype=np.int64)
        comp = np.full((N, K), self.full_level)
        # case 1: parallel mapping, everything in one group
        group = np.where(case1[:, None] & active, 1, group)
        # case 3: joint compression of all streams, ceil(r'/r) groups
        if case3.any():
            n_groups = np.minimum(np.ceil(n_streams / r).astype(int), G)
            g3 = fill_groups(n2, active, r, G)
            g3 = np.where(g3 <= n_groups[:, None], g3, 0)
            group = np.where(case3[:, None], g3, group)
            comp = np.where(case3[:, None], self.comp_level_q, comp)
        # case 2: soft selection of the most useful modalities
        if case2.any():
            group = np.where(case2[:, None], self._soft_selection(active, n2), group)
            comp = np.where(case2[:, None], self.soft_level, comp)
        shares = proportional_shares(group, G)
        return {"group": group, "power": self.power_levels(group, shares), "compression": comp, "bandwidth": shares}

    def _soft_selection(self, active: np.ndarray, n2: np.ndarray) -> np.ndarray:
        N, K, r, M = self.N, self.K, self.Nr, self.table.M
        mod = self.view.device_modality
        snr_ok = self.snr_full_band() >= 1.0
        p_succ_dev = self.view.p_joint * snr_ok  # (N, K)
        # per-modality success: the best device of that modality (NaN-free; absent modalities get -inf weight)
        present = np.zeros((N, M), dtype=bool)
        p_succ = np.zeros((N, M))
        for m in range(M):
            devs = (mod == m)[None, :] & active
            present[:, m] = devs.any(axis=1)
            p_succ[:, m] = np.where(devs, p_succ_dev, 0.0).max(axis=1)
        logits = self.beta[None, :] / self.tau + self.lam * (1.0 - p_succ) + self.mu * (1.0 / M)
        # an environment with no modality present (nothing eligible: its row is not used) gets uniform weights
        logits = np.where(present, logits, -np.inf)
        logits = np.where(present.any(axis=1, keepdims=True), logits, 0.0)
        w = np.exp(logits - logits.max(axis=1, keepdims=True))
        w = w / w.sum(axis=1, keepdims=True)
        # floor + largest-remainder allocation of the r DoF (seed's Remark 2)
        rm = np.floor(r * w).astype(int)
        rem = r * w - rm
        short = r - rm.sum(axis=1)
        order = np.argsort(-rem, axis=1)
        for j in range(M):
            add = (j < short) & present[np.arange(N), order[:, j]]
            rm[np.arange(N), order[:, j]] += add
        # each modality's DoF go to its devices of strongest channel
        group = np.zeros((N, K), dtype=np.int64)
        for m in range(M):
            devs = np.flatnonzero(mod == m)
            if devs.size == 0:
                continue
            key = np.where(active[:, devs], n2[:, devs], -np.inf)
            rank = np.argsort(np.argsort(-key, axis=1), axis=1)
            chosen = (rank < rm[:, m:m + 1]) & np.isfinite(key)
            group[:, devs] = np.where(chosen, 1, group[:, devs])
        return group
