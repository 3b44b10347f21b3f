"""Classic schedulers: random, round-robin, greedy best-channel, proportional fair, fractional power control, SUS.

They decide *who* transmits and in which virtual-MIMO group; unless stated otherwise, power, prefix and band
shares are the fixed defaults of :class:`~agents.heuristics.base.Heuristic` (max power, 16-real prefix, shares
proportional to group size). Every one but ``random`` takes the power rules of ``agents.heuristics.base``
(``power_rule="level"`` (default), ``"fpc"`` or ``"target"``) and ``coverage=True`` (only devices holding latents
the BS still lacks). Devices without encode capacity this slot (``round(cap · p_joint) = 0``) are never
scheduled. A device with an empty queue may be: this slot's scenes arrive before devices send, and an idle slot
costs nothing.

By default the single-group schedulers put at most ``Nr`` devices (the spatial degrees of freedom of one band) in
one group holding the whole band. Why one group: a device's air time per latent is ``c / (2 W_g)``, so splitting
the band into several groups multiplies every device's air time (and circuit energy) by the number of groups,
while a second slot comes 10 ms later, well within the deadline. ``num_groups`` changes it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from agents.heuristics.base import FPC_ALPHA, FPC_P0_DBM, Heuristic, fill_groups, proportional_shares
from agents.policies import register_policy
from vmimo_env.bs_view import predict_sinr


@register_policy("random")
class RandomPolicy(Heuristic):
    """Uniformly random native action (every component independently), seeded by ``reset(seed)``.

    Optimises nothing: the floor every scheduler must clear. Uses only the action grid sizes of ``view.cfg``.
    """

    name = "random"
    power_rules = ("level",)  # it draws every component itself

    def act_batch(self, info: dict[str, Any]) -> dict[str, np.ndarray]:
        N, K, G = self.N, self.K, self.G
        cfg = self.cfg
        return {"group": self.rng.integers(0, G + 1, (N, K)), "power": self.rng.integers(0, self.L_p, (N, K)),
                "compression": self.rng.integers(0, len(cfg.compression_levels), (N, K)),
                "bandwidth": self.rng.random((N, G))}


@register_policy("round_robin")
class RoundRobinPolicy(Heuristic):
    """Round-robin: serve devices in cyclic order, ``Nr`` per group (Kleinrock's processor sharing).

    Optimises fairness of access (every device gets the same number of transmission opportunities), ignoring
    channels and content. Reads ``view.encode_cap``; keeps a per-environment pointer.
    """

    name = "round_robin"

    def __init__(self, env: Any, num_groups: int = 1, **kwargs: Any) -> None:
        super().__init__(env, **kwargs)
        self.num_groups = min(num_groups, self.G)
        self.pointer = np.zeros(self.N, dtype=np.int64)

    def reset(self, seed: int | None = None) -> None:
        super().reset(seed)
        self.pointer = np.zeros(self.N, dtype=np.int64)

    def act_batch(self, info: dict[str, Any]) -> dict[str, np.ndarray]:
        K = self.K
        eligible = self.eligible()
        # priority = how soon each device comes after the pointer in cyclic order
        dist = (np.arange(K)[None, :] - self.pointer[:, None]) % K
        group = fill_groups(-dist.astype(float), eligible, self.Nr, self.num_groups)
        served = group > 0
        # advance past the last served device (in cyclic order)
        last = np.where(served, dist, -1).max(axis=1)
        self.pointer = np.where(last >= 0, (self.pointer + last + 1) % K, self.pointer)
        return self.defaults(group)


@register_policy("greedy")
class GreedyBestChannelPolicy(Heuristic):
    """Greedy best channel (max-SNR / max-C/I scheduling): the ``Nr`` devices of strongest channel.

    Optimises instantaneous sum SNR (throughput) with no regard to fairness or to what the data is worth; far
    devices may starve. Reads ``view.h`` (‖h_k‖²) and ``view.encode_cap``.
    Source: Knopp & Humblet, "Information capacity and power control in single-cell multiuser communications",
    ICC 1995 (opportunistic max-SNR scheduling).
    """

    name = "greedy"

    def __init__(self, env: Any, num_groups: int = 1, **kwargs: Any) -> None:
        super().__init__(env, **kwargs)
        self.num_groups = min(num_groups, self.G)

    def act_batch(self, info: dict[str, Any]) -> dict[str, np.ndarray]:
        group = fill_groups(self.channel_norm2(), self.eligible(), self.Nr, self.num_groups)
        return self.defaults(group)


@register_policy("proportional_fair")
class ProportionalFairPolicy(Heuristic):
    """Proportional fair: the ``Nr`` devices of largest ``rate_k / avg_k``.

    ``rate_k = log2(1 + SNR_k)`` is the instantaneous interference-free spectral efficiency over the band and
    ``avg_k`` an exponentially weighted average (window ``t_c`` slots) of the rate a device was actually served
    at, served meaning it delivered latents (``info["sent"]``; without it, being scheduled). Maximises
    ``Σ_k log(avg throughput_k)`` in the long run. Reads ``view.h``, ``view.encode_cap`` and ``info["sent"]``.
    Source: Viswanath, Tse & Laroia, "Opportunistic beamforming using dumb antennas", IEEE Trans. Inf. Theory
    48(6), 2002; Kelly 1997 for the utility.
    """

    name = "proportional_fair"

    def __init__(self, env: Any, t_c: float = 50.0, num_groups: int = 1, **kwargs: Any) -> None:
        super().__init__(env, **kwargs)
        self.t_c = float(t_c)
        self.num_groups = min(num_groups, self.G)
        self._reset_state()

    def _reset_state(self) -> None:
        self.avg = np.full((self.N, self.K), 1e-3)
        self.last_rate = np.zeros((self.N, self.K))
        self.last_group = np.zeros((self.N, self.K), dtype=np.int64)

    def reset(self, seed: int | None = None) -> None:
        super().reset(seed)
        self._reset_state()

    def act_batch(self, info: dict[str, Any]) -> dict[str, np.ndarray]:
        # credit the previous slot's service now that its outcome is known
        sent = info.get("sent")
        served = (np.asarray(sent).reshape(self.N, self.K) > 0) if sent is not None else self.last_group > 0
        self.avg += (served * self.last_rate - self.avg) / self.t_c
        rate = np.log2(1.0 + self.snr_full_band())
        group = fill_groups(rate / self.avg, self.eligible(), self.Nr, self.num_groups)
        self.last_rate, self.last_group = rate, group
        return self.defaults(group)


@register_policy("fractional_power")
class FractionalPowerControlPolicy(RoundRobinPolicy):
    """Round-robin selection with 3GPP open-loop fractional power control.

    ``P_k = min(P_max, P0 + α · PL_k)`` (dBm) with the path loss ``PL_k = −10 log10(gain_k)`` (large-scale only,
    as a UE estimates it from the downlink reference signal), rounded *up* to the next power level
    (``agents.heuristics.base.fpc_power_levels``, the ``"fpc"`` rule every scheduler can use). ``α < 1``
    compensates path loss only partly, trading cell-edge SNR for less interference and energy. Defaults
    ``P0 = −90 dBm``, ``α = 0.8`` put the median device (PL ≈ 100 dB) ~15 dB above the noise in the full band.
    Reads ``view.gain`` plus what round-robin reads. Source: 3GPP TS 38.213 §7.1.1 (PUSCH power control);
    Castellanos et al., "Performance of uplink fractional power control in UTRAN LTE", VTC Spring 2008.
    """

    name = "fractional_power"
    power_rules = ("fpc",)  # round-robin with any other power rule is ``round_robin``

    def __init__(self, env: Any, p0_dbm: float = FPC_P0_DBM, alpha: float = FPC_ALPHA, **kwargs: Any) -> None:
        super().__init__(env, p0_dbm=p0_dbm, fpc_alpha=alpha, **kwargs)
        self.alpha = self.fpc_alpha


@register_policy("sus")
class SUSPolicy(Heuristic):
    """Semi-orthogonal user selection (SUS) grouping, received by the linear MMSE receiver.

    Every device with encode capacity is scheduled; groups are formed one after another by SUS: the first member is the
    strongest channel, each next one the candidate with the largest component orthogonal to the span of the
    members chosen so far, and only candidates whose correlation with every chosen member stays below ``alpha``
    remain eligible, up to ``Nr`` members per group. Devices that fit in no group (more than ``G·Nr``, or too
    correlated with every group) stay idle this slot. Then devices whose predicted MMSE SINR falls below
    ``min_sinr_db`` are dropped (they would deliver noise and still cost energy). Shares proportional to group
    size, max power, 16-real prefix. Optimises spatial separability (sum rate under zero-forcing-like
    reception). Reads ``view.h`` and ``view.encode_cap``; the SINR prediction is the environment's own MMSE
    receiver on the view (``vmimo_env.bs_view.predict_sinr(..., receiver="mmse")``).
    Source: Yoo & Goldsmith, "On the optimality of multiantenna broadcast scheduling using zero-forcing
    beamforming", IEEE JSAC 24(3), 2006 (SUS, Section III).
    """

    name = "sus"

    def __init__(self, env: Any, alpha: float = 0.5, min_sinr_db: float = 0.0, **kwargs: Any) -> None:
        super().__init__(env, **kwargs)
        self.alpha = float(alpha)
        self.min_sinr_db = float(min_sinr_db)

    def act_batch(self, info: dict[str, Any]) -> dict[str, np.ndarray]:
        group = sus_groups(np.asarray(self.view.h), self.eligible(), self.Nr, self.G, self.alpha)
        native = self.defaults(group)
        if self.min_sinr_db > -np.inf:
            sinr = predict_sinr(self.view, group, native["power"], native["bandwidth"], receiver="mmse")
            weak = (group > 0) & (10.0 * np.log10(np.maximum(sinr, 1e-30)) < self.min_sinr_db)
            if weak.any():
                native["group"] = np.where(weak, 0, group)
                native["bandwidth"] = proportional_shares(native["group"], self.G)
                if self.power_rule == "target":  # the dropped devices no longer interfere: re-aim the others
                    native["power"] = self.power_levels(native["group"], native["bandwidth"])
        return native


def sus_groups(h: np.ndarray, eligible: np.ndarray, per_group: int, num_groups: int, alpha: float) -> np.ndarray:
    """SUS (Yoo & Goldsmith 2006) applied repeatedly: groups (N, K) of ≤ ``per_group`` semi-orthogonal devices."""
    N, K, _ = h.shape
    rows = np.arange(N)
    norm = np.sqrt((np.abs(h) ** 2).sum(-1)) + 1e-300
    hn = h / norm[..., None]
    group = np.zeros((N, K), dtype=np.int64)
    left = eligible.copy()
    for g in range(1, num_groups + 1):
        cand = left.copy()
        basis: list[np.ndarray] = []  # orthonormalised directions of the members, each (N, Nr)
        for _ in range(per_group):
            # component of every channel orthogonal to the span of the chosen members
            resid = h.copy()
            for b in basis:
                resid = resid - np.einsum("nr,nkr->nk", b.conj(), resid)[..., None] * b[:, None, :]
            score = np.where(cand, (np.abs(resid) ** 2).sum(-1), -1.0)
            best = score.argmax(axis=1)
            ok = score[rows, best] > 0
            if not ok.any():
                break
            group[rows[ok], best[ok]] = g
            cand[rows, best] = False
            left[rows[ok], best[ok]] = False
            r_best = resid[rows, best]
            r_norm = np.sqrt((np.abs(r_best) ** 2).sum(-1, keepdims=True)) + 1e-300
            g_dir = np.where(ok[:, None], r_best / r_norm, 0.0)
            basis.append(g_dir)
            # semi-orthogonality (Y&G eq. 20): keep candidates with |h_k^H g| / (|h_k| |g|) < alpha
            corr = np.abs(np.einsum("nr,nkr->nk", g_dir.conj(), hn))
            cand &= ~(ok[:, None] & (corr >= alpha))
        if not left.any():
            break
    return group
