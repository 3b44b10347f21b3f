"""Facade over the physical layer: the start state of an environment's links, the per-slot fading update, and a
reference composition of one physics slot (fading -> SINR for all groups -> energy).

The start state has one composition, :func:`initial_link_state`, used by the environment core at every reset and
by :func:`init_links` here, so the benchmark (``benchmarks/bench_physics.py``), the tests and users who want the
channel without the queues start from exactly the environment's law.
Shapes: N environments, K devices, Nr BS antennas, G groups.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
from dataclasses import dataclass

import numpy as np

from vmimo_env import channel, energy, geometry, pathloss, receivers, resources
from vmimo_env.config import ScenarioConfig


@dataclass
class LinkStart:
    """One environment's start: device drop, LOS state, large-scale gain, fading and resource state (K devices)."""

    d2d_m: np.ndarray  # (K,) BS-device horizontal distance
    los: np.ndarray  # (K,) bool, LOS state (Rician) or NLOS (Rayleigh)
    gain: np.ndarray  # (K,) large-scale linear power gain (path loss and shadowing)
    h_los: np.ndarray  # (K, Nr) sqrt(K/(K+1)) a(theta): the static LOS part of h before the large-scale gain
    scat_scale: np.ndarray  # (K,) sqrt(1/(K+1))
    h_scat: np.ndarray  # (K, Nr) scattered part, stationary CN(0, C)
    res_state: np.ndarray  # (K, 2) compute/memory resource state, stationary law


def initial_link_state(g: np.random.Generator, cfg: ScenarioConfig, spatial_sqrt: np.ndarray | None) -> LinkStart:
    """Draw one environment's start from generator ``g``: the environment's start-state composition.

    Devices are dropped uniformly by area in the annulus [min_distance_m, cell_radius_m]; the LOS state (3GPP UMi
    probability, or all-Rician / all-Rayleigh), path loss and shadowing per TR 38.901 UMi; the LOS direction of
    arrival uniform in [-pi/2, pi/2); the scattered fading and the resource process from their stationary laws.
    ``spatial_sqrt`` is the BS correlation's Cholesky factor (None: i.i.d. antennas). ``VMIMOCore.reset`` and
    :func:`init_links` both use it, so the physics facade starts exactly where the environment does.
    """
    K, Nr = cfg.num_devices, cfg.num_antennas
    d2d = geometry.drop_devices(g, K, cfg.min_distance_m, cfg.cell_radius_m)
    d3d = np.sqrt(d2d**2 + (cfg.bs_height_m - cfg.ut_height_m) ** 2)
    if cfg.fading == "umi":
        los = g.random(K) < pathloss.umi_los_probability(d2d)
    else:
        los = np.full(K, cfg.fading == "rician")
    pl_db = pathloss.umi_pathloss_db(d3d, d2d, cfg.carrier_hz, cfg.bs_height_m, cfg.ut_height_m, los)
    shadow = g.standard_normal(K) * pathloss.umi_shadowing_std_db(los) if cfg.shadowing else np.zeros(K)
    gain_db = -(pl_db + shadow)
    los_w, scat_w = channel.rician_weights(np.where(los, 10.0 ** (cfg.rician_k_db / 10.0), 0.0))
    h_los_dir = channel.ula_steering(g.uniform(-np.pi / 2, np.pi / 2, K), Nr)
    h_scat = channel.correlate(channel.sample_rayleigh(g, (K, Nr)), spatial_sqrt)
    res = resources.stationary_state(g, (K,), cfg)
    return LinkStart(d2d, los, 10.0 ** (gain_db / 10.0), h_los_dir * los_w[:, None], scat_w, h_scat, res)


@dataclass
class LinkState:
    """Per-link state of N environments (arrays with a leading N axis), in the environment core's representation."""

    d2d_m: np.ndarray  # (N, K) BS-device horizontal distance
    los: np.ndarray  # (N, K) bool, LOS state (Rician) or NLOS (Rayleigh)
    gain: np.ndarray  # (N, K) large-scale linear power gain (path loss and shadowing)
    h_los: np.ndarray  # (N, K, Nr) sqrt(K/(K+1)) a(theta), before the large-scale gain
    scat_scale: np.ndarray  # (N, K) sqrt(1/(K+1))
    scatter: np.ndarray  # (N, K, Nr) Gauss-Markov scattered part, stationary CN(0, C)
    res_state: np.ndarray  # (N, K, 2) resource state
    rho: float  # slot-to-slot correlation J0(2 pi f_d T)
    corr_sqrt: np.ndarray | None  # (Nr, Nr) Cholesky factor of the spatial correlation, None if i.i.d.

    def channel(self) -> np.ndarray:
        """Current channel h (N, K, Nr) including the large-scale amplitude (the core's composition)."""
        return channel.compose_channel(self.scatter, self.h_los, self.scat_scale, self.gain)


def init_links(cfg: ScenarioConfig, rng: np.random.Generator, num_envs: int) -> LinkState:
    """Start ``num_envs`` environments with :func:`initial_link_state`, environment i from ``rng.spawn``'s i-th
    child: ``init_links(cfg, np.random.default_rng(s), 1)`` is the start of ``VMIMOEnv`` reset with seed ``s``."""
    corr_sqrt = channel.exponential_correlation_sqrt(cfg.num_antennas, cfg.spatial_correlation)
    starts = [initial_link_state(child, cfg, corr_sqrt) for child in rng.spawn(num_envs)]
    stack = {name: np.stack([getattr(s, name) for s in starts]) for name in LinkStart.__dataclass_fields__}
    rho = float(channel.doppler_rho(cfg.speed_mps, cfg.carrier_hz, cfg.slot_s))
    return LinkState(stack["d2d_m"], stack["los"], stack["gain"], stack["h_los"], stack["scat_scale"],
                     stack["h_scat"], stack["res_state"], rho, corr_sqrt)


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
