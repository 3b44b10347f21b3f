"""Shared machinery of the heuristic schedulers: state access, grouping, link adaptation, batched MMSE SINR.

Every heuristic is built for one environment (single ``VMIMOEnv`` or batched ``VMIMOVectorEnv``) or directly for a
``VMIMOCore`` (what the oracle uses for its rollouts), and computes actions for all N environments of the core at
once with array operations. What a heuristic reads (all known to the BS in the model: it estimates CSI and
receives queue/resource reports):

- ``core.h`` (N, K, Nr) complex channels incl. large-scale amplitude, ``core.gain`` (N, K) large-scale gain,
- ``core.queue_lengths()`` (N, K) scenes queued before this slot's arrivals, ``core.p_joint`` (N, K) from which
  the encode cap ``round(encode_capacity · p_joint)`` (latents a device can encode this slot) follows,
- ``core.device_modality`` (K,), ``core.cfg`` (``ScenarioConfig``),
- ``core.power_levels_w`` and ``core.prefix_levels`` (the discrete action grids).

Default knobs for schedulers that only decide *who* transmits (round-robin, greedy, proportional fair, SUS):
maximum power, a fixed latent prefix of 16 reals, and bandwidth shared among the groups in use in proportion to
their size. Every heuristic takes ``power_level``/``prefix`` keywords to change them.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

DEFAULT_PREFIX = 16


def resolve_core(env: Any) -> tuple[Any, bool]:
    """(core, single) for a ``VMIMOEnv``/``VMIMOVectorEnv`` (wrapped or not) or a bare ``VMIMOCore``."""
    if hasattr(env, "rng") and hasattr(env, "queue_lengths"):  # a VMIMOCore
        return env, False
    base = env.unwrapped
    core = getattr(base, "core", None)
    if core is None:
        raise TypeError(f"{type(base).__name__} is not a VMIMO environment (no .core); heuristics need VMIMO")
    return core, not isinstance(base, gym.vector.VectorEnv)


class Heuristic:
    """Base class: holds the core, seeds a generator, and turns batched native arrays into the right action."""

    name = "heuristic"

    def __init__(self, env: Any, power_level: int | None = None, prefix: int | None = None) -> None:
        self.core, self.single = resolve_core(env)
        cfg = self.core.cfg
        self.K, self.G, self.Nr = cfg.num_devices, cfg.num_groups, cfg.num_antennas
        self.L_p = len(cfg.power_levels_db)
        self.power_level = self.L_p - 1 if power_level is None else int(power_level)
        self.comp_level = nearest_level(self.core.prefix_levels, DEFAULT_PREFIX if prefix is None else prefix)
        self.rng = np.random.default_rng()

    # ------------------------------------------------------------------ Policy API
    def reset(self, seed: int | None = None) -> None:
        self.rng = np.random.default_rng(seed)

    def act(self, obs: Any, info: dict[str, Any] | None = None) -> dict[str, np.ndarray]:
        native = self.act_batch(info or {})
        return self.finish(native)

    def act_batch(self, info: dict[str, Any]) -> dict[str, np.ndarray]:
        """Native arrays for all N environments of the core (``group``/``power``/``compression`` (N, K),
        ``bandwidth`` (N, G))."""
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
        return self.core.N

    def queue(self) -> np.ndarray:
        return self.core.queue_lengths()

    def encode_cap(self) -> np.ndarray:
        return encode_cap(self.core)

    def backlog(self) -> np.ndarray:
        """Expected latents waiting at each device once this slot's scenes have arrived, (N, K).

        The core queues a slot's arrivals before the devices send, but ``queue_lengths()`` is read before the
        step, so it misses them: add the arrival rate (every device gets every scene).
        """
        return self.queue() + self.core.cfg.arrival_rate

    def has_data(self) -> np.ndarray:
        """Devices that may send this slot, (N, K) bool: encode capacity left (``round(cap · p_joint) > 0``).

        Scheduling a device whose queue turns out empty costs nothing (it is on air only while it sends), and
        most slots bring new scenes, so an empty queue before the step does not exclude a device.
        """
        return self.encode_cap() > 0

    def channel_norm2(self) -> np.ndarray:
        h = self.core.h
        return (h.real**2 + h.imag**2).sum(axis=-1)

    def snr_full_band(self, power_w: np.ndarray | float | None = None) -> np.ndarray:
        """Interference-free SNR (linear) of each device over the whole band, at max power unless given."""
        cfg = self.core.cfg
        p = cfg.max_power_w if power_w is None else power_w
        return p * self.channel_norm2() / (cfg.noise_psd_w_hz * cfg.total_bandwidth_hz)

    def defaults(self, group: np.ndarray) -> dict[str, np.ndarray]:
        """Native action for a grouping with this heuristic's fixed power, prefix and proportional shares."""
        N, K = group.shape
        return {"group": group, "power": np.full((N, K), self.power_level),
                "compression": np.full((N, K), self.comp_level), "bandwidth": proportional_shares(group, self.G)}


def encode_cap(core: Any) -> np.ndarray:
    """Latents each device can encode this slot, (N, K): ``round(encode_capacity · p_joint)`` as in the core."""
    return np.floor(core.cfg.encode_capacity * core.p_joint + 0.5).astype(np.int64)


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


# ====================================================================== receiver model (what the BS predicts)
def mmse_sinr(h: np.ndarray, power_w: np.ndarray, group: np.ndarray, noise_w: np.ndarray, G: int) -> np.ndarray:
    """Linear-MMSE post-receiver SINR (N, K) of every device in its group (0 when idle).

    ``SINR_k = p_k h_kᴴ (Σ_{j≠k in g} p_j h_j h_jᴴ + σ_g² I)⁻¹ h_k`` with the interference-plus-noise covariance
    of each device formed explicitly (the inversion-lemma shortcut ``q / (1 − q)`` loses all precision above
    ~60 dB). ``noise_w`` is (N, G) noise power per group band. This is the heuristics' own model (DESIGN.md §3),
    used to predict; the environment computes the SINR it actually applies.
    """
    N, K, Nr = h.shape
    sinr = np.zeros((N, K))
    eye = np.eye(Nr)
    for g in range(G):
        member = group == g + 1
        rows = np.flatnonzero(member.any(axis=1))
        if rows.size == 0:
            continue
        m = member[rows]
        hp = h[rows] * np.sqrt(np.where(m, power_w[rows], 0.0))[..., None]  # (n, K, Nr)
        R = np.einsum("nki,nkj->nij", hp, hp.conj()) + noise_w[rows, g, None, None] * eye  # (n, Nr, Nr)
        R_minus = R[:, None] - hp[..., :, None] * hp[..., None, :].conj()  # (n, K, Nr, Nr) without device k
        x = np.linalg.solve(R_minus, hp[..., None])[..., 0]
        s = np.einsum("nki,nki->nk", hp.conj(), x).real
        sinr[rows] = np.where(m, np.maximum(s, 0.0), sinr[rows])
    return sinr


def group_noise_w(core: Any, shares: np.ndarray) -> np.ndarray:
    """Noise power (N, G) in each group's band (W)."""
    cfg = core.cfg
    return np.maximum(shares * cfg.total_bandwidth_hz, 1e-30) * cfg.noise_psd_w_hz


def predicted_sinr(core: Any, native: dict[str, np.ndarray]) -> np.ndarray:
    """MMSE SINR (N, K) the BS predicts for a batched native action on the current channels."""
    from vmimo_env.spaces import normalise_shares

    shares = normalise_shares(native["bandwidth"].astype(np.float64))
    power_w = core.power_levels_w[native["power"]]
    return mmse_sinr(core.h, power_w, native["group"], group_noise_w(core, shares), core.cfg.num_groups)


def power_for_snr(core: Any, snr_target_db: float, share: np.ndarray | float = 1.0) -> np.ndarray:
    """Lowest power level (N, K) whose interference-free SNR over ``share`` of the band reaches the target
    (the top level when none does): the usual link adaptation for an energy-aware transmitter."""
    cfg = core.cfg
    n2 = (core.h.real**2 + core.h.imag**2).sum(axis=-1)
    noise = cfg.noise_psd_w_hz * cfg.total_bandwidth_hz * np.maximum(share, 1e-6)
    snr = core.power_levels_w[None, None, :] * (n2 / noise)[..., None]  # (N, K, L)
    ok = 10.0 * np.log10(np.maximum(snr, 1e-30)) >= snr_target_db
    first = np.argmax(ok, axis=-1)
    return np.where(ok.any(axis=-1), first, len(core.power_levels_w) - 1)
