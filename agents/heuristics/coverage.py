"""The coverage-aware scheduler: devices chosen by the latents the BS still lacks, SINR-target power control.

:class:`ComponentPolicy` builds a scheduler from one rule per action component (group, power, compression,
bandwidth), each fixed or state-dependent and causal (decided from the BS view of the slot only); the calibration
study ``benchmarks.headroom`` varies them one at a time. :class:`CoveragePolicy`, registered as ``"coverage"``, is
the combination of its state-dependent rules (:data:`ADAPTIVE`), the strongest causal scheduler of the study.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from agents.heuristics.accuracy import accuracy_table_for
from agents.heuristics.base import (
    TARGET_SNR_DB,
    Heuristic,
    fill_groups,
    proportional_shares,
    target_power_levels,
)
from agents.policies import register_policy
from vmimo_env import rules
from vmimo_env.bs_view import band_hz, predict_sinr

# the state-dependent rule of every component: the default of the registered "coverage" scheduler
ADAPTIVE: dict[str, Any] = {"group": "cover1", "power": "adaptive", "compression": "fused", "bandwidth": "search"}
BANDWIDTH_RULES = ("equal", "size", "demand", "fit", "search")
DYNAMIC_COMPRESSION = ("snr", "adaptive", "value", "fused")


class ComponentPolicy(Heuristic):
    """A scheduler built from one rule per action component, each either fixed (state-independent) or
    state-dependent and causal (decided from the BS view of this slot only).

    Parameters
    ----------
    group:
        ``"rr<n>"``: round-robin in cyclic device order, ``n`` groups of ``Nr`` (fixed: ignores the state except
        the encode cap every heuristic respects); ``"cover"``: coverage first: devices holding queued latents of
        scenes whose modality the BS lacks (``view.queue_unheld``) first, the strongest device of each modality
        before any second copy, in as many groups of ``Nr`` as those devices need (at most G); ``"cover1"``: the
        same with only that one device per modality (a second copy of a modality costs a full latent's energy for
        a latent the BS keeps only when it is the better one).
    power:
        an index into ``power_levels_db`` (fixed); ``"adaptive"``: per device the lowest level at which the SINR
        predicted with its group-mates at the same level (``predict_sinr``: the slot's receiver and cap) reaches
        ``target_snr_db``, ``fallback_level`` (default the top) when none does: channel inversion, the
        power-control rule of TS 38.213 §7.1.1 with full compensation; ``"value"``: the level of highest
        predicted accuracy value net of energy (:meth:`_value`).
    compression:
        an index into ``compression_levels`` (fixed); ``"snr"``: one level above the shortest per threshold of
        ``comp_thresholds_db`` the SINR predicted at full power clears (a longer prefix only where the link
        carries its extra reals), never longer than what fits the band; ``"adaptive"``: the longest prefix whose
        latents fit; ``"value"``: the prefix of highest predicted value net of energy among those that fit;
        ``"fused"``: per device the prefix maximising ``value_scale`` × the fused accuracy of a scene whose five
        modalities arrive at the device's predicted SINR and that prefix (the frozen model's accuracy table), per
        modality and arrival, minus the latent's energy in reward units (``rules.energy_per_latent`` at the level
        the power rule picks), among the prefixes that fit (:meth:`_fused_value`).
    bandwidth:
        ``"equal"``: equal shares of the groups in use; ``"size"``: shares proportional to group size (the
        heuristics' default); ``"demand"``: shares proportional to the channel uses the group needs this slot (its
        busiest member's latents to send × uses per latent); ``"fit"``: just the uses each group needs, the rest
        unused (a narrower band is less noise); ``"search"``: the split of the band among the groups in use, on a
        grid of ``1 / bw_steps`` (and the demand split), of highest predicted :meth:`_fused_value` summed over the
        scheduled devices, each at the level its power rule picks on that split, among the splits on which every
        device's latents fit. In this model band and power both set a latent's energy per channel use, so the split
        trades a power-limited group's SINR against the circuit energy of the others' longer air time.
    """

    name = "component"

    def __init__(self, env: Any, group: str = "cover", power: int | str = "adaptive", compression: int | str = 2,
                 bandwidth: str = "demand", target_snr_db: float = TARGET_SNR_DB, fallback_level: int | None = None,
                 comp_thresholds_db: tuple[float, ...] = (15.0,), value_scale: float = 1.0, bw_steps: int = 10,
                 **kwargs: Any) -> None:
        super().__init__(env, **kwargs)
        if isinstance(compression, str) and compression.isdigit():  # a level index from YAML or the CLI
            compression = int(compression)
        if not (group in ("cover", "cover1") or (group.startswith("rr") and group[2:].isdigit())):
            raise ValueError(f"group must be 'cover', 'cover1' or 'rr<n>', got {group!r}")
        if bandwidth not in BANDWIDTH_RULES:
            raise ValueError(f"bandwidth must be one of {BANDWIDTH_RULES}, got {bandwidth!r}")
        if isinstance(compression, str) and compression not in DYNAMIC_COMPRESSION:
            raise ValueError(f"compression must be a level index or one of {DYNAMIC_COMPRESSION}, got {compression!r}")
        if not (isinstance(bw_steps, (int, np.integer)) and 2 <= bw_steps <= 20):
            raise ValueError(f"bw_steps must be an int in [2, 20], got {bw_steps!r}")
        if not (np.isfinite(value_scale) and value_scale > 0):
            raise ValueError(f"value_scale must be a positive number, got {value_scale!r}")
        self.group_rule, self.power_rule, self.comp_rule, self.bw_rule = group, power, compression, bandwidth
        self.target_snr_db = float(target_snr_db)
        self.table: Any = None
        self.comp_thresholds_db = tuple(float(x) for x in comp_thresholds_db)
        self.value_scale, self.bw_steps = float(value_scale), int(bw_steps)
        L = len(self.cfg.power_levels_db)
        self.fallback_level = L - 1 if fallback_level is None else int(fallback_level)
        self.pointer = np.zeros(self.N, dtype=np.int64)

    def reset(self, seed: int | None = None) -> None:
        super().reset(seed)
        self.pointer = np.zeros(self.N, dtype=np.int64)

    # ------------------------------------------------------------------ rules
    def _groups(self) -> np.ndarray:
        eligible = self.has_data()
        if self.group_rule.startswith("rr"):
            n = max(1, min(int(self.group_rule[2:]), self.G))
            dist = (np.arange(self.K)[None, :] - self.pointer[:, None]) % self.K
            group = fill_groups(-dist.astype(float), eligible, self.Nr, n)
            last = np.where(group > 0, dist, -1).max(axis=1)
            self.pointer = np.where(last >= 0, (self.pointer + last + 1) % self.K, self.pointer)
            return group
        view = self.view
        unheld = np.asarray(view.queue_unheld)
        n2 = self.channel_norm2()
        mod = view.device_modality
        # the strongest device of each modality with something the BS lacks ranks above every second copy
        first = np.zeros_like(eligible)
        for m in np.unique(mod):
            devs = np.flatnonzero(mod == m)
            key = np.where(eligible[:, devs] & (unheld[:, devs] > 0), n2[:, devs], -np.inf)
            best = key.argmax(axis=1)
            ok = np.isfinite(key[np.arange(self.N), best])
            first[np.arange(self.N)[ok], devs[best[ok]]] = True
        rank_db = 10.0 * np.log10(np.maximum(n2, 1e-300))
        priority = 1e4 * first + 1e2 * (unheld > 0) + rank_db / 1e3 + np.asarray(view.hol_age) * 1e-1
        if self.group_rule == "cover1":  # one copy per modality: a second copy costs energy for a rarely better latent
            eligible = eligible & first
        n_groups = np.clip(np.ceil(np.maximum((eligible & (unheld > 0)).sum(axis=1), 1) / self.Nr), 1, self.G)
        group = fill_groups(priority, eligible, self.Nr, self.G)
        return np.where(group <= n_groups[:, None], group, 0).astype(np.int64)

    def _compression(self, group: np.ndarray, shares: np.ndarray) -> np.ndarray:
        if self.comp_rule == "snr":
            # a longer prefix only where the link carries it: one level more per threshold the SINR predicted at
            # full power clears (a latent's extra reals are worth little under heavy noise, and cost air time)
            top = np.full(group.shape, len(self.view.power_levels_w) - 1)
            sinr_db = 10.0 * np.log10(np.maximum(predict_sinr(self.view, group, top, shares), 1e-30))
            idx = (sinr_db[..., None] >= np.asarray(self.comp_thresholds_db)[None, None, :]).sum(axis=-1)
            fit = self._fit(group, shares)
            longest_fit = fit.shape[-1] - 1 - np.argmax(fit[..., ::-1], axis=-1)
            return np.where(fit.any(axis=-1), np.minimum(idx, longest_fit), 0)
        if self.comp_rule == "value":
            # the prefix of highest predicted value net of energy at the reference power, among those that fit
            fit = self._fit(group, shares)
            top = np.full(group.shape, len(self.view.power_levels_w) - 1)
            power = top if self.power_rule in ("adaptive", "value") else np.full(group.shape, int(self.power_rule))
            u = np.stack([np.where(fit[..., j], self._value(group, shares, np.full(group.shape, j), power), -np.inf)
                          for j in range(len(self.view.prefix_levels))], axis=-1)
            return np.where(fit.any(axis=-1), u.argmax(axis=-1), 0)
        if self.comp_rule == "fused":
            fit = self._fit(group, shares)
            # the power rule's level does not depend on the prefix (SINR per channel use does not either)
            power = self._power(group, shares, np.zeros_like(group))
            u = np.stack([np.where(fit[..., j], self._fused_value(group, shares, np.full(group.shape, j), power),
                                   -np.inf) for j in range(len(self.view.prefix_levels))], axis=-1)
            return np.where(fit.any(axis=-1), u.argmax(axis=-1), 0)
        if self.comp_rule != "adaptive":
            return np.full(group.shape, int(self.comp_rule))
        fits = self._fit(group, shares)
        longest = fits.shape[-1] - 1 - np.argmax(fits[..., ::-1], axis=-1)
        return np.where(fits.any(axis=-1), longest, 0)

    def _fit(self, group: np.ndarray, shares: np.ndarray) -> np.ndarray:
        """(N, K, L_c): the latents the device has to send this slot (backlog capped by its encode cap) fit its
        band at that prefix (``rules.latents_that_fit``)."""
        view = self.view
        need = np.minimum(self.backlog(), self.encode_cap())
        own = np.take_along_axis(band_hz(view, shares), np.maximum(group - 1, 0), axis=1)
        fit = rules.latents_that_fit(own[..., None], view.prefix_levels[None, None, :], self.cfg.slot_s)
        return fit >= np.maximum(need, 1)[..., None]

    def _shares(self, group: np.ndarray, comp: np.ndarray | None) -> np.ndarray:
        if self.bw_rule == "search":
            return self._search_shares(group, comp)
        return self._rule_shares(self.bw_rule, group, comp)

    def _search_shares(self, group: np.ndarray, comp: np.ndarray | None) -> np.ndarray:
        used = np.stack([(group == g + 1).any(axis=1) for g in range(self.G)], axis=1)
        if comp is None:  # the prefix is chosen on this split: start from equal shares
            return self._rule_shares("equal", group, None)
        steps = np.arange(1, self.bw_steps)
        grid = [c for c in itertools.product(steps, repeat=self.G) if sum(c) == self.bw_steps]
        cands = [self._rule_shares("demand", group, comp)] + [
            np.where(used, np.asarray(c, dtype=float)[None, :], 0.0) for c in grid]
        best, best_u = cands[0], np.full(self.N, -np.inf)
        for sh in cands:
            sh = sh / np.maximum(sh.sum(axis=1, keepdims=True), 1e-12) * used.any(axis=1, keepdims=True)
            fits = np.take_along_axis(self._fit(group, sh), comp[..., None], axis=-1)[..., 0] | (group == 0)
            u = np.where(group > 0, self._fused_value(group, sh, comp, self._power(group, sh, comp)), 0.0).sum(axis=1)
            better = fits.all(axis=1) & (u > best_u)
            best = np.where(better[:, None], sh, best)
            best_u = np.where(better, u, best_u)
        return best

    def _rule_shares(self, rule: str, group: np.ndarray, comp: np.ndarray | None) -> np.ndarray:
        if rule == "size":
            return proportional_shares(group, self.G)
        if rule == "equal" or comp is None:
            used = np.stack([(group == g + 1).any(axis=1) for g in range(self.G)], axis=1).astype(float)
            return used / np.maximum(used.sum(axis=1, keepdims=True), 1.0)
        need = np.minimum(self.backlog(), self.encode_cap()) * (self.view.prefix_levels[comp] // 2)
        need = np.where(group > 0, need, 0.0)
        # a group's members send at once on its band, so the band a group needs is its busiest member's uses
        per_group = np.stack([np.where(group == g + 1, need, 0.0).max(axis=1) for g in range(self.G)], axis=1)
        total = per_group.sum(axis=1, keepdims=True)
        if rule == "fit":  # just the uses the group needs: a narrower band is less noise
            uses = self.cfg.total_bandwidth_hz * self.cfg.slot_s
            return np.where(total > 0, np.minimum(per_group / uses, 1.0), proportional_shares(group, self.G))
        return np.where(total > 0, per_group / np.maximum(total, 1e-12), proportional_shares(group, self.G))

    def _value(self, group: np.ndarray, shares: np.ndarray, comp: np.ndarray, power: np.ndarray) -> np.ndarray:
        """Predicted reward of one latent per device (N, K): the modality's share of the fused accuracy at the
        predicted SINR (``predict_sinr``: the slot's receiver, interference and cap) and prefix, from the frozen
        model's accuracy table, minus its energy in reward units (``rules.energy_per_latent``)."""
        view = self.view
        if self.table is None:
            self.table = accuracy_table_for(view)
            marg = self.table.marginal_value()
            top = float(self.table.lookup(tuple(range(self.table.M)), np.array(40.0), np.array(64))) - self.table.chance
            self.scale = marg / marg.sum() * max(top, 0.05)
            best = np.array([float(self.table.lookup((m,), np.array(40.0), np.array(64))) for m in range(self.table.M)])
            self.denom = np.maximum(best - self.table.chance, 0.02)
        sinr = predict_sinr(view, group, power, shares)
        c = view.prefix_levels[comp]
        m = np.broadcast_to(view.device_modality, group.shape)
        acc = self.table.single(m, 10.0 * np.log10(np.maximum(sinr, 1e-30)), c)
        value = self.scale[m] * np.clip(acc - self.table.chance, 0.0, None) / self.denom[m] / self.cfg.arrival_rate
        own = np.take_along_axis(band_hz(view, shares), np.maximum(group - 1, 0), axis=1)
        cost = rules.energy_term(rules.energy_per_latent(c, view.power_levels_w[power], own, view.encoder_mflops,
                                                         self.cfg), self.cfg)
        return value - cost

    def _fused_value(self, group: np.ndarray, shares: np.ndarray, comp: np.ndarray, power: np.ndarray) -> np.ndarray:
        """Predicted reward of one latent per device (N, K): ``value_scale`` × the accuracy of a scene whose every
        modality arrives at the device's predicted SINR (``predict_sinr``) and prefix (the frozen model's accuracy
        table), per modality and per arrival (``/ M / arrival_rate``), minus the latent's energy in reward units."""
        view = self.view
        if self.table is None:
            self.table = accuracy_table_for(view)
        sinr_db = 10.0 * np.log10(np.maximum(predict_sinr(view, group, power, shares), 1e-30))
        c = view.prefix_levels[comp]
        acc = self.table.lookup(tuple(range(self.table.M)), sinr_db, c)
        own = np.take_along_axis(band_hz(view, shares), np.maximum(group - 1, 0), axis=1)
        cost = rules.energy_term(rules.energy_per_latent(c, view.power_levels_w[power], np.maximum(own, 1e-9),
                                                         view.encoder_mflops, self.cfg), self.cfg)
        return self.value_scale * acc / self.table.M / self.cfg.arrival_rate - cost

    def _power(self, group: np.ndarray, shares: np.ndarray, comp: np.ndarray) -> np.ndarray:
        if self.power_rule == "value":
            L = len(self.view.power_levels_w)
            u = np.stack([self._value(group, shares, comp, np.full(group.shape, j)) for j in range(L)], axis=-1)
            return u.argmax(axis=-1)
        if self.power_rule != "adaptive":
            return np.full(group.shape, int(self.power_rule))
        # the "target" rule of every heuristic (agents.heuristics.base): one implementation
        return target_power_levels(self.view, group, shares, self.target_snr_db, self.fallback_level)

    def act_batch(self, info: dict[str, Any]) -> dict[str, np.ndarray]:
        group = self._groups()
        # the uses a prefix needs depend on the band and the band on the prefix: fixed or equal shares first
        dynamic = isinstance(self.comp_rule, str)
        comp0 = None if dynamic else np.full(group.shape, int(self.comp_rule))
        shares = self._shares(group, comp0)
        comp = self._compression(group, shares)
        if dynamic and self.bw_rule in ("demand", "fit", "search"):
            shares = self._shares(group, comp)
        return {"group": group, "power": self._power(group, shares, comp), "compression": comp, "bandwidth": shares}


@register_policy("coverage")
class CoveragePolicy(ComponentPolicy):
    """Coverage- and deadline-aware scheduling with SINR-target power control (:class:`ComponentPolicy` with the
    state-dependent rule of every component, :data:`ADAPTIVE`).

    Objective: deliver, each slot, one latent of every modality the BS still lacks for a queued scene, at the
    least energy that keeps it decodable. Rules (see :class:`ComponentPolicy` for each): ``group="cover1"``, the
    strongest device of each modality holding queued latents of scenes whose modality the BS lacks
    (``view.queue_unheld``), ties broken by head-of-line age, in as many groups of ``Nr`` as they need;
    ``power="adaptive"``, the lowest level whose predicted SINR (``predict_sinr``, group-mates at the same level)
    reaches ``target_snr_db`` (default 6 dB), the top level (``fallback_level``) when none does;
    ``compression="fused"``, per device the prefix of highest predicted fused-accuracy value net of its energy, among
    those that fit; ``bandwidth="search"``, the split of the band (grid of ``1 / bw_steps``) of highest predicted
    value net of energy over the scheduled devices. Any rule can be overridden by keyword. Reads ``view.h``,
    ``view.queue``, ``view.queue_unheld``, ``view.hol_age``, ``view.encode_cap``, ``view.device_modality`` and
    ``view.cfg``. Source: channel-inversion power control of 3GPP TS 38.213 §7.1.1 (full compensation, truncated
    at the top level); coverage-first selection and the other rules from the calibration study
    (``benchmarks.headroom``, ``docs/headroom.md``).
    """

    name = "coverage"

    def __init__(self, env: Any, **kwargs: Any) -> None:
        super().__init__(env, **{**ADAPTIVE, **kwargs})
