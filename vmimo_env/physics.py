"""Facade over the physical layer: one environment batch's link state, its per-slot fading update, and a
reference composition of one physics slot (fading -> SINR for all groups -> energy).

The environment core composes the modules itself; this module gives the same composition in one place for the
benchmark (``benchmarks/bench_physics.py``), for tests and for users who want the channel without the queues.
Shapes: N environments, K devices, Nr BS antennas, G groups.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
from dataclasses import dataclass

import numpy as np

from vmimo_env import channel, energy, geometry, pathloss, receivers
from vmimo_env.config import ScenarioConfig


@dataclass
class LinkState:
    """Per-link state of N environments (arrays with a leading N axis)."""

    d2d_m: np.ndarray  # (N, K) BS-device horizontal distance
    los: np.ndarray  # (N, K) bool, LOS state (Rician) or NLOS (Rayleigh)
    gain: np.ndarray  # (N, K) large-scale linear power gain (path loss and shadowing)
    los_amp: np.ndarray  # (N, K, Nr) sqrt(gain) sqrt(K/(K+1)) a(theta): the static LOS part of h
    scatter_amp: np.ndarray  # (N, K, 1) sqrt(gain) sqrt(1/(K+1))
    scatter: np.ndarray  # (N, K, Nr) Gauss-Markov scattered part, stationary CN(0, C)
    rho: float  # slot-to-slot correlation J0(2 pi f_d T)
    corr_sqrt: np.ndarray | None  # (Nr, Nr) Cholesky factor of the spatial correlation, None if i.i.d.

    def channel(self) -> np.ndarray:
        """Current channel h (N, K, Nr) including the large-scale amplitude."""
        return self.los_amp + self.scatter_amp * self.scatter


def init_links(cfg: ScenarioConfig, rng: np.random.Generator, num_envs: int) -> LinkState:
    """Drop K devices per environment and draw their large-scale gains and a stationary fading state."""
    shape = (num_envs, cfg.num_devices)
    pos = geometry.drop_positions(rng, shape, cfg.min_distance_m, cfg.cell_radius_m)
    d2d, d3d = geometry.distances_m(pos, cfg.bs_height_m, cfg.ut_height_m)
    if cfg.fading == "umi":
        los = rng.random(shape) < pathloss.umi_los_probability(d2d)
    else:
        los = np.full(shape, cfg.fading == "rician")
    pl_db = pathloss.umi_pathloss_db(d3d, d2d, cfg.carrier_hz, cfg.bs_height_m, cfg.ut_height_m, los)
    shadow_db = pathloss.umi_shadowing_std_db(los) * rng.standard_normal(shape) if cfg.shadowing else 0.0
    gain = 10.0 ** (pathloss.large_scale_gain_db(pl_db, shadow_db) / 10.0)
    los_w, scat_w = channel.rician_weights(np.where(los, 10.0 ** (cfg.rician_k_db / 10.0), 0.0))
    amp = np.sqrt(gain)
    steering = channel.ula_steering(geometry.broadside_angle_rad(pos), cfg.num_antennas)
    corr_sqrt = channel.exponential_correlation_sqrt(cfg.num_antennas, cfg.spatial_correlation)
    scatter = channel.correlate(channel.sample_rayleigh(rng, (*shape, cfg.num_antennas)), corr_sqrt)
    rho = float(channel.doppler_rho(cfg.speed_mps, cfg.carrier_hz, cfg.slot_s))
    return LinkState(d2d, los, gain, (amp * los_w)[..., None] * steering, (amp * scat_w)[..., None], scatter, rho,
                     corr_sqrt)


def fading_step(state: LinkState, white: np.ndarray) -> np.ndarray:
    """Advance the scattered part one slot with white CN(0, 1) draws ``white`` (N, K, Nr); returns the new h."""
    state.scatter = channel.gauss_markov_step(state.scatter, state.rho, channel.correlate(white, state.corr_sqrt))
    return state.channel()


def physics_slot(state: LinkState, white: np.ndarray, power_w: np.ndarray, group: np.ndarray,
                 noise_w: np.ndarray, airtime_s: np.ndarray, num_latents: np.ndarray, mflops_per_latent: np.ndarray,
                 cfg: ScenarioConfig) -> tuple[np.ndarray, np.ndarray]:
    """One physics slot: fading update, post-receiver SINR of every group, device energy.

    Returns ``(sinr (N, K), energy_j (N, K))``. ``white`` holds the slot's CN(0, 1) fading innovations.
    """
    h = fading_step(state, white)
    if cfg.cooperative:
        sinr = receivers.cooperative_svd_sinr(h, power_w, group, noise_w, cfg.num_groups)
    else:
        sinr = receivers.post_receiver_sinr(h, power_w, group, noise_w, cfg.num_groups, receiver=cfg.receiver)
    e = energy.device_energy_j(power_w, airtime_s, num_latents, mflops_per_latent, pa_efficiency=cfg.pa_efficiency,
                               circuit_power_w=cfg.circuit_power_w, j_per_mflop=cfg.encode_energy_j_per_mflop)
    return sinr, e


def tune_glibc_malloc(mmap_threshold_bytes: int = 64 << 20, trim_threshold_bytes: int = 256 << 20) -> bool:
    """Keep freed numpy temporaries in the heap instead of returning them to the OS (glibc only).

    Why: glibc serves blocks above ``M_MMAP_THRESHOLD`` (128 KiB by default) with a fresh ``mmap`` and unmaps
    them on free, so every large temporary pays page faults on first touch. On the project's 2-core VMs a
    240 KiB temporary measured ~165 us instead of ~6 us with the thresholds raised; a batched slot at N = 256
    creates several such temporaries. Process-wide and idempotent; returns False where it does not apply.
    """
    name = ctypes.util.find_library("c")
    if name is None or "libc" not in name:
        return False
    try:
        libc = ctypes.CDLL(name)
        m_trim_threshold, m_mmap_threshold = -1, -3  # mallopt parameter ids from <malloc.h>
        ok = libc.mallopt(m_mmap_threshold, int(mmap_threshold_bytes)) == 1
        return ok and libc.mallopt(m_trim_threshold, int(trim_threshold_bytes)) == 1
    except (OSError, AttributeError):
        return False


def complex_innovation(z: np.ndarray) -> np.ndarray:
    """CN(0, 1) innovations (..., Nr) from standard normals (..., 2 Nr): real parts first, imaginary parts last."""
    half = z.shape[-1] // 2
    return (z[..., :half] + 1j * z[..., half:]) * math.sqrt(0.5)
