"""Shared machinery of the heuristic schedulers: the BS view they decide from, grouping, link adaptation.

Every heuristic is built for one environment front end and computes actions for all N environments of it at once
with array operations. It decides from what the BS knows at the start of the slot, a
:class:`~vmimo_env.bs_view.BSView` (``info["bs_view"]`` when the env adds it, ``info_bs_view=True``; otherwise the
env's public ``bs_view()``: ``env.get_wrapper_attr("bs_view")()`` for Gymnasium envs, ``env_method("bs_view")``
for SB3 VecEnvs incl. ``SubprocVecEnv``), and predicts the effect of an action with the environment's own rules
(``vmimo_env.rules``, ``vmimo_env.bs_view.predict_sinr``), never with a copy of them. So a heuristic runs behind
any wrapper or process boundary. What the schedulers read from the view:

- ``h`` (N, K, Nr) complex channels incl. large-scale amplitude, ``gain`` (N, K) large-scale gain,
- ``queue`` (N, K) scenes queued before this slot's arrivals, ``encode_cap`` (N, K) latents a device can encode
  this slot (``rules.encode_cap`` of ``p_joint``), ``p_joint`` (N, K),
- ``device_modality`` (K,), ``encoder_mflops`` (K,), ``cfg`` (``ScenarioConfig``),
- ``power_levels_w`` and ``prefix_levels`` (the discrete action grids).

Default knobs for schedulers that only decide *who* transmits (round-robin, greedy, proportional fair, SUS):
maximum power, a fixed latent prefix of 16 reals, and bandwidth shared among the groups in use in proportion to
their size. Every heuristic takes ``power_level``/``prefix`` keywords to change them.

Power rules (``power_rule`` keyword of every scheduler that does no power control of its own; one implementation
each, here):

- ``"level"`` (default): the fixed level ``power_level`` (default the top one);
- ``"fpc"``: 3GPP open-loop fractional power control, ``P = min(P_max, P0 + α · PL)`` from the large-scale path
  loss (:func:`fpc_power_levels`; keywords ``p0_dbm``, ``fpc_alpha``);
- ``"target"``: SINR-target link adaptation from the slot's CSI, the lowest level whose SINR predicted with the
  group's members at the same level reaches ``target_snr_db`` (:func:`target_power_levels`, keyword
  ``fallback_level`` for devices that cannot reach it).

``coverage=True`` schedules only devices that hold queued latents of scenes whose modality the BS still lacks
(``view.queue_unheld > 0``): a copy of a modality the BS already holds costs a latent's energy and is kept only
when it is the better one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from vmimo_env import rules
from vmimo_env.bs_view import BSView, predict_sinr, view_from_info
from vmimo_env.frontend import view_fetcher

DEFAULT_PREFIX = 16
# the power rules a scheduler without power control of its own accepts (its first entry is its default)
POWER_RULES: tuple[str, ...] = ("level", "fpc", "target")
FPC_P0_DBM = -90.0  # fractional power control defaults: the median device (PL ≈ 100 dB) ~15 dB above the noise
FPC_ALPHA = 0.8
TARGET_SNR_DB = 6.0  # the SINR the "target" power rule aims every device at (chosen on exploration seeds)


class Heuristic:
    """Base class: gets the BS view, seeds a generator, and turns batched native arrays into the right action.

    ``env`` is any VMIMO front end (``gym.make`` env, wrapped or not; the native vector env; an SB3 VecEnv incl.
    ``SubprocVecEnv``; a ``VMIMOCore``) or a ``BSView`` (then every call must bring its view, through
    ``info["bs_view"]`` or :meth:`act_view`). Subclasses implement :meth:`act_batch`, reading ``self.view``.
    """

    name = "heuristic"
    # the power rules this heuristic accepts, its default first (see the module docstring)
    power_rules: tuple[str, ...] = POWER_RULES

    def __init__(self, env: Any, power_level: int | None = None, prefix: int | None = None,
                 power_rule: str | None = None, p0_dbm: float = FPC_P0_DBM, fpc_alpha: float = FPC_ALPHA,
                 target_snr_db: float = TARGET_SNR_DB, fallback_level: int | None = None,
                 coverage: bool = False) -> None:
        self._fetch, self.single = view_fetcher(env)
        self.view: BSView = self._fetch()
        cfg = self.cfg = self.view.cfg
        self.K, self.G, self.Nr = cfg.num_devices, cfg.num_groups, cfg.num_antennas
        self.L_p = len(cfg.power_levels_db)
        self.power_level = self.L_p - 1 if power_level is None else int(power_level)
        self.comp_level = nearest_level(self.view.prefix_levels, DEFAULT_PREFIX if prefix is None else prefix)
        power_rule = self.power_rules[0] if power_rule is None else power_rule
        if power_rule not in self.power_rules:
            raise ValueError(f"{self.name}: power_rule must be one of {list(self.power_rules)}, got {power_rule!r}")
        self.power_rule = power_rule
        self.p0_dbm, self.fpc_alpha, self.target_snr_db = float(p0_dbm), float(fpc_alpha), float(target_snr_db)
        self.fallback_level = self.L_p - 1 if fallback_level is None else int(fallback_level)
        self.coverage = bool(coverage)
        self.rng = np.random.default_rng()

    # ------------------------------------------------------------------ Policy API
    def reset(self, seed: int | None = None) -> None:
        self.rng = np.random.default_rng(seed)

    def act(self, obs: Any, info: Mapping[str, Any] | list[Mapping[str, Any]] | None = None) -> dict[str, np.ndarray]:
        """The native action for the current slot (``(K,)`` arrays on a single env, ``(N, K)`` batched).

        ``info`` is the last reset/step info (a list of per-environment infos from an SB3 VecEnv is merged); its
        ``"bs_view"`` is used when present, otherwise the view is fetched from the env."""
        view = view_from_info(info)
        return self.finish(self.act_view(self._fetch() if view is None else view, merge_infos(info)))

    def act_view(self, view: BSView, info: Mapping[str, Any] | None = None) -> dict[str, np.ndarray]:
        """Native arrays for all N environments of ``view`` (``group``/``power``/``compression`` (N, K),
        ``bandwidth`` (N, G)), before the casts of :meth:`finish`."""
        self.view = view
        return self.act_batch(dict(info or {}))

    def act_batch(self, info: dict[str, Any]) -> dict[str, np.ndarray]:
        """Native arrays for all N environments of ``self.view`` (see :meth:`act_view`)."""
        raise NotImplementedError

    def finish(self, native: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = {"group": native["group"].astype(np.int64), "power": native["power"].astype(np.int64),
               "compression": native["compression"].astype(np.int64),
               "bandwidth": np.clip(native["bandwidth"], 0.0, 1.0).astype(np.float32)}
        if self.single:
            return {k: v[0] for k, v in out.items()}
        return out

    # ------------------------------------------------------------------ state helpers
    @property
    def N(self) -> int:
        return self.view.N

    def queue(self) -> np.ndarray:
        return np.asarray(self.view.queue)

    def encode_cap(self) -> np.ndarray:
        return np.asarray(self.view.encode_cap)

    def backlog(self) -> np.ndarray:
        """Expected latents waiting at each device once this slot's scenes have arrived, (N, K).

        The core queues a slot's arrivals before the devices send, but the view is taken before the step, so it
        misses them: add the arrival rate (every device gets every scene).
        """
        return self.queue() + self.cfg.arrival_rate

    def has_data(self) -> np.ndarray:
        """Devices that may send this slot, (N, K) bool: encode capacity left (``rules.encode_cap > 0``).

        Scheduling a device whose queue turns out empty costs nothing (it is on air only while it sends), and
        most slots bring new scenes, so an empty queue before the step does not exclude a device.
        """
        return self.encode_cap() > 0

    def eligible(self) -> np.ndarray:
        """Devices a scheduler may pick this slot, (N, K) bool: :meth:`has_data`, and with ``coverage`` only those
        holding queued latents of scenes whose modality the BS lacks (``view.queue_unheld > 0``)."""
        ok = self.has_data()
        return ok & (np.asarray(self.view.queue_unheld) > 0) if self.coverage else ok

    def power_levels(self, group: np.ndarray, shares: np.ndarray) -> np.ndarray:
        """Power indices (N, K) of this heuristic's ``power_rule`` for a grouping and its band shares."""
        if self.power_rule == "fpc":
            return fpc_power_levels(self.view, self.p0_dbm, self.fpc_alpha)
        if self.power_rule == "target":
            return target_power_levels(self.view, group, shares, self.target_snr_db, self.fallback_level)
        if self.power_rule != "level":
            raise ValueError(f"{self.name}: power rule {self.power_rule!r} is the heuristic's own")
        return np.full(group.shape, self.power_level)

    def channel_norm2(self) -> np.ndarray:
        h = self.view.h
        return (h.real**2 + h.imag**2).sum(axis=-1)

    def snr_full_band(self, power_w: np.ndarray | float | None = None) -> np.ndarray:
        """Interference-free SNR (linear) of each device over the whole band, at max power unless given."""
        p = self.cfg.max_power_w if power_w is None else power_w
        return p * self.channel_norm2() / rules.band_noise_w(1.0, self.cfg)

    def defaults(self, group: np.ndarray) -> dict[str, np.ndarray]:
        """Native action for a grouping with this heuristic's power rule, fixed prefix and proportional shares."""
        N, K = group.shape
        shares = proportional_shares(group, self.G)
        return {"group": group, "power": self.power_levels(group, shares),
                "compression": np.full((N, K), self.comp_level), "bandwidth": shares}


def merge_infos(info: Any) -> dict[str, Any]:
    """One info dict: as is, or the per-environment infos of an SB3 VecEnv stacked key by key (keys all share)."""
    if isinstance(info, Mapping):
        return dict(info)
    if isinstance(info, (list, tuple)) and info and all(isinstance(i, Mapping) for i in info):
        keys = set(info[0]).intersection(*info[1:]) - {"bs_view", "terminal_observation", "episode"}
        out = {}
        for key in keys:
            try:
                out[key] = np.stack([np.asarray(i[key]) for i in info])
            except (ValueError, TypeError):
                continue
        return out
    return {}


# ====================================================================== grouping and bandwidth
def nearest_level(levels: np.ndarray, value: float) -> int:
    return int(np.argmin(np.abs(np.asarray(levels, dtype=float) - value)))


def proportional_shares(group: np.ndarray, G: int) -> np.ndarray:
    """Band shares (N, G) proportional to the number of members of each group (0 for empty groups).

    Every member of a group uses all of its band, so splitting the band in proportion to group size gives every
    scheduled device the same air time per latent.
    """
    counts = np.stack([(group == g + 1).sum(axis=1) for g in range(G)], axis=1).astype(np.float64)
    total = counts.sum(axis=1, keepdims=True)
    return np.where(total > 0, counts / np.maximum(total, 1.0), 0.0)


def equal_shares(group: np.ndarray, G: int) -> np.ndarray:
    used = np.stack([(group == g + 1).any(axis=1) for g in range(G)], axis=1).astype(np.float64)
    return used / np.maximum(used.sum(axis=1, keepdims=True), 1.0)


def fill_groups(priority: np.ndarray, eligible: np.ndarray, per_group: int, num_groups: int) -> np.ndarray:
    """Groups (N, K): the eligible devices of highest priority, ``per_group`` per group, groups 1..num_groups.

    Group 1 gets the best ``per_group`` devices, group 2 the next ones, and so on; the rest stay idle (0).
    """
    N, K = priority.shape
    key = np.where(eligible, priority, -np.inf)
    order = np.argsort(-key, axis=1, kind="stable")
    rank = np.empty_like(order)
    rank[np.arange(N)[:, None], order] = np.arange(K)[None, :]
    group = rank // per_group + 1
    ok = eligible & (rank < per_group * num_groups)
    return np.where(ok, group, 0).astype(np.int64)


def fpc_power_levels(view: BSView, p0_dbm: float = FPC_P0_DBM, alpha: float = FPC_ALPHA) -> np.ndarray:
    """3GPP open-loop fractional power control: power indices (N, K) of ``P_k = min(P_max, P0 + α · PL_k)`` dBm.

    ``PL_k = −10 log10(gain_k)`` is the large-scale path loss only (as a UE estimates it from the downlink
    reference signal); the target is rounded *up* to the next power level (the top level if it exceeds them all).
    ``α < 1`` compensates path loss only partly, trading cell-edge SNR for less interference and energy.
    Source: 3GPP TS 38.213 §7.1.1 (PUSCH power control); Castellanos et al., "Performance of uplink fractional
    power control in UTRAN LTE", VTC Spring 2008.
    """
    cfg = view.cfg
    pl_db = -10.0 * np.log10(view.gain)
    p_dbm = np.minimum(cfg.max_power_dbm, p0_dbm + alpha * pl_db)
    levels_dbm = cfg.max_power_dbm + np.asarray(cfg.power_levels_db)
    # smallest level at or above the target (the top level if the target exceeds them all)
    idx = np.searchsorted(levels_dbm, p_dbm - 1e-9)
    return np.minimum(idx, len(levels_dbm) - 1)


def target_power_levels(view: BSView, group: np.ndarray, shares: np.ndarray, target_snr_db: float,
                             fallback_level: int) -> np.ndarray:
    """SINR-target link adaptation: per device the lowest power index (N, K) whose SINR, predicted with its
    group-mates at the same level (``predict_sinr``: the slot's receiver, interference, noise and cap), reaches
    ``target_snr_db``; ``fallback_level`` when none does.

    Channel inversion (TS 38.213 §7.1.1 with full compensation) on the current CSI, truncated: a device that cannot
    reach the target even at full power is not chased there unless ``fallback_level`` says so.
    """
    # predicted SINR of each level with the group's members all at that level (the slot's receiver and cap)
    L = len(view.power_levels_w)
    ok = np.stack([10.0 * np.log10(np.maximum(predict_sinr(view, group, np.full(group.shape, j), shares),
                                              1e-30)) >= target_snr_db for j in range(L)], axis=-1)
    # a device that cannot reach the target even at full power is not chased there (truncated inversion)
    return np.where(ok.any(axis=-1), np.argmax(ok, axis=-1), fallback_level)
