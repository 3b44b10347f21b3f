"""Facade over the physical layer: the start state of an environment's links, the per-slot fading update, the
per-slot large-scale evolution of moving devices, and a reference composition of one physics slot (fading -> SINR
for all groups -> energy).

The start state has one composition, :func:`initial_link_states` (:func:`initial_link_state` for one generator),
used by the environment core at every reset and by :func:`init_links` here, so the benchmark
(``benchmarks/bench_physics.py``), the tests and users who want the channel without the queues start from exactly
the environment's law. With ``ScenarioConfig.mobility`` the core
moves the large-scale state every slot with :func:`large_scale_step` (one compiled loop over (N, K)).
Shapes: N environments, K devices, Nr BS antennas, G groups.
"""

from __future__ import annotations

import cmath
import ctypes
import ctypes.util
import math
from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np
from numba import njit
from scipy.special import ndtri

from vmimo_env import channel, energy, geometry, pathloss, receivers, resources
from vmimo_env.config import ScenarioConfig


@dataclass
class LinkStart:
    """One environment's start: device drop, LOS state, large-scale gain, fading and resource state (K devices)."""

    d2d_m: np.ndarray  # (K,) BS-device horizontal distance
    los: np.ndarray  # (K,) bool, LOS state (Rician) or NLOS (Rayleigh)
    gain: np.ndarray  # (K,) large-scale linear power gain (path loss and shadowing)
    h_los: np.ndarray  # (K, Nr) sqrt(K/(K+1)) a(theta): the LOS part of h before the large-scale gain
    scat_scale: np.ndarray  # (K,) sqrt(1/(K+1))
    h_scat: np.ndarray  # (K, Nr) scattered part, stationary CN(0, C)
    res_state: np.ndarray  # (K, 2) compute/memory resource state, stationary law
    pos_xy: np.ndarray  # (K, 2) device position (m); without mobility (d cos theta, d sin theta), no draw
    heading: np.ndarray  # (K,) direction of motion (rad), drawn with mobility only (else 0)
    k_factor: np.ndarray  # (K,) linear Rician K-factor the device has when LOS (fixed or log-normal)
    shadow_z: np.ndarray  # (K, 2) normalised shadowing fields (LOS, NLOS), N(0, 1); used with mobility
    los_z: np.ndarray  # (K,) Gaussian LOS field, LOS iff Phi(los_z) < Pr_LOS (umi); used with mobility


def los_term(theta_rad: np.ndarray, d3d_m: np.ndarray, los: np.ndarray, k_factor: np.ndarray, num_antennas: int,
             carrier_hz: float | None) -> tuple[np.ndarray, np.ndarray]:
    """``(h_los (..., Nr), scat_scale (...))``: the LOS part ``sqrt(K/(K+1)) a(theta)`` (times the propagation
    phase ``exp(-j 2 pi d_3D / lambda)`` when ``carrier_hz`` is given, i.e. with mobility) and ``sqrt(1/(K+1))``,
    with the device's K-factor where it is LOS and 0 (Rayleigh) where not."""
    los_w, scat_w = channel.rician_weights(np.where(los, k_factor, 0.0))
    h = channel.ula_steering(theta_rad, num_antennas)
    if carrier_hz is not None:
        los_w = los_w * np.exp(-2j * np.pi * d3d_m * (carrier_hz / pathloss.SPEED_OF_LIGHT_MPS))
    h *= los_w[..., None]
    return h, scat_w


def initial_link_state(g: np.random.Generator, cfg: ScenarioConfig, spatial_sqrt: np.ndarray | None) -> LinkStart:
    """Draw one environment's start from generator ``g``: the environment's start-state composition
    (:func:`initial_link_states` of one generator, its arrays without the leading axis).

    Devices are dropped uniformly by area in the annulus [min_distance_m, cell_radius_m]; the LOS state (3GPP UMi
    probability, or all-Rician / all-Rayleigh), path loss and shadowing per TR 38.901 UMi; the LOS direction of
    arrival uniform in [-pi/2, pi/2); the scattered fading and the resource process from their stationary laws.
    ``spatial_sqrt`` is the BS correlation's Cholesky factor (None: i.i.d. antennas). ``VMIMOCore.reset`` and
    :func:`init_links` both use it, so the physics facade starts exactly where the environment does.

    Draw order (v0): distances, LOS uniforms (``umi``), shadowing normals (if on), angles, scattered fading,
    resources. Then, only when enabled, so that v0 streams are unchanged: the log-normal K-factors (K normals),
    and with mobility the headings (K uniforms) and the shadowing field of the other LOS state (K normals). With
    mobility the angle draw is read as the azimuth ``phi = 2 theta`` (uniform in [-pi, pi)), so the position
    ``d (cos phi, sin phi)`` is uniform by area, the broadside angle is ``arcsin(sin phi)`` and the LOS field
    starts at ``Phi^-1`` of the LOS uniform (the same LOS state).
    """
    both = initial_link_states([g], cfg, spatial_sqrt)
    return LinkStart(*(getattr(both, f.name)[0] for f in fields(LinkStart)))


def initial_link_states(gens: Sequence[np.random.Generator], cfg: ScenarioConfig,
                        spatial_sqrt: np.ndarray | None) -> LinkStart:
    """The starts of ``len(gens)`` environments, environment j drawn from ``gens[j]`` in the order
    :func:`initial_link_state` documents; arrays with a leading environment axis. Each generator makes its own
    draws, one environment after another; the transforms that follow are elementwise, so they run on all
    environments at once and each environment's start is the one it would have alone (a vector env's reset of many
    environments pays the numpy calls once, not once per environment)."""
    K, Nr = cfg.num_devices, cfg.num_antennas
    n = len(gens)
    umi = cfg.fading == "umi"
    lognormal_k = cfg.k_factor_model == "lognormal"
    d2d = np.empty((n, K))
    u_los = np.empty((n, K)) if umi else None
    shadow_n = np.zeros((n, K))
    angle = np.empty((n, K))
    h_scat = np.empty((n, K, Nr), dtype=np.complex128)
    res = np.empty((n, K, 2))
    k_normal = np.empty((n, K)) if lognormal_k else None
    heading = np.zeros((n, K))
    other = np.empty((n, K)) if cfg.mobility else None
    for j, g in enumerate(gens):  # the draws, in the documented order of each generator
        d2d[j] = geometry.drop_devices(g, K, cfg.min_distance_m, cfg.cell_radius_m)
        if u_los is not None:
            u_los[j] = g.random(K)
        if cfg.shadowing:
            shadow_n[j] = g.standard_normal(K)
        angle[j] = g.uniform(-np.pi / 2, np.pi / 2, K)
        h_scat[j] = channel.correlate(channel.sample_rayleigh(g, (K, Nr)), spatial_sqrt)
        res[j] = resources.stationary_state(g, (K,), cfg)
        # ---- draws of the v1 options, after every v0 draw
        if k_normal is not None:
            k_normal[j] = g.standard_normal(K)
        if other is not None:
            heading[j] = g.uniform(-np.pi, np.pi, K)
            other[j] = g.standard_normal(K)  # the field of the state the device is not in (TR 38.901 keeps both)
    d3d = np.sqrt(d2d**2 + (cfg.bs_height_m - cfg.ut_height_m) ** 2)
    if u_los is not None:
        los = u_los < pathloss.umi_los_probability(d2d)
    else:
        los = np.full((n, K), cfg.fading == "rician")
    pl_db = pathloss.umi_pathloss_db(d3d, d2d, cfg.carrier_hz, cfg.bs_height_m, cfg.ut_height_m, los)
    gain_db = -(pl_db + shadow_n * pathloss.umi_shadowing_std_db(los))
    if k_normal is not None:
        k_db = cfg.rician_k_mu_db + cfg.rician_k_sigma_db * k_normal
        k_factor = 10.0 ** (k_db / 10.0)
    else:  # the scalar power v0 computed, so the weights are bit-identical
        k_factor = np.full((n, K), 10.0 ** (cfg.rician_k_db / 10.0))
    los_z = np.zeros((n, K))
    if other is not None:
        shadow_z = np.stack([np.where(los, shadow_n, other), np.where(los, other, shadow_n)], axis=-1)
        phi = 2.0 * angle
        pos = d2d[..., None] * np.stack([np.cos(phi), np.sin(phi)], axis=-1)
        theta = geometry.broadside_angle_rad(pos)
        if u_los is not None:
            los_z = ndtri(np.clip(u_los, 1e-300, 1.0 - 1e-16))
        h_los, scat_w = los_term(theta, d3d, los, k_factor, Nr, cfg.carrier_hz)
    else:
        shadow_z = np.stack([np.where(los, shadow_n, 0.0), np.where(los, 0.0, shadow_n)], axis=-1)
        pos = d2d[..., None] * np.stack([np.cos(angle), np.sin(angle)], axis=-1)
        h_los, scat_w = los_term(angle, d3d, los, k_factor, Nr, None)
    return LinkStart(d2d, los, 10.0 ** (gain_db / 10.0), h_los, scat_w, h_scat, res, pos, heading, k_factor,
                     shadow_z, los_z)


@dataclass(frozen=True)
class MobilityParams:
    """Per-slot constants of the large-scale evolution (``cfg.mobility``), computed once per core.

    ``step_m = v T`` is the path length a device travels per slot; each decorrelation factor is
    ``exp(-step_m / d_corr)``, so a field sampled along the track has the Gudmundson correlation
    ``exp(-s / d_corr)`` at travelled distance ``s``; ``turn_std_rad = sqrt(step_m / HEADING_DIFFUSION_M)``.
    """

    step_m: float
    turn_std_rad: float
    shadow_a: np.ndarray  # (2,) LOS, NLOS shadowing fields
    los_a: float  # LOS field
    speed_mps: float
    slot_s: float
    min_distance_m: float
    cell_radius_m: float
    bs_height_m: float
    ut_height_m: float
    carrier_hz: float
    num_antennas: int
    umi: bool
    shadowing: bool

    @classmethod
    def from_config(cls, cfg: ScenarioConfig) -> MobilityParams:
        step = cfg.speed_mps * cfg.slot_s
        return cls(step, math.sqrt(step / geometry.HEADING_DIFFUSION_M),
                   np.exp(-step / np.array([cfg.shadow_corr_los_m, cfg.shadow_corr_nlos_m])),
                   math.exp(-step / cfg.los_corr_m), cfg.speed_mps, cfg.slot_s, cfg.min_distance_m,
                   cfg.cell_radius_m, cfg.bs_height_m, cfg.ut_height_m, cfg.carrier_hz, cfg.num_antennas,
                   cfg.fading == "umi", cfg.shadowing)


MOBILITY_NORMALS_PER_DEVICE = 4  # per slot: heading turn, LOS shadowing, NLOS shadowing, LOS field


# ====================================================================== compiled mobility slot
# Why a compiled loop: at the environment's sizes (K = 8 devices) a numpy composition of these few scalar formulas
# costs one array pass per operation, several times a whole v0 slot; one loop over (N, K) costs a few microseconds.
# The scalar formulas of pathloss (TR 38.901 UMi), geometry.mobility_step and los_term are restated here, next to
# the kernel, because numba's on-disk cache of a kernel is keyed on its own source file only;
# tests/test_fading_mobility.py checks them against the numpy definitions they restate.
_MOB_TWO_PI = 2.0 * math.pi
_MOB_SQRT_HALF = math.sqrt(0.5)
_MOB_MIN_D2D_M = 10.0  # pathloss.UMI_MIN_D2D_M (a module constant read inside a compiled kernel is frozen into it)


@njit(cache=True, inline="always")
def _umi_pathloss_db(d2d, log_fc_ghz, h_bs, h_ut, d_bp, log_bp_term, los):
    """``pathloss.umi_pathloss_db`` for one device (d_3D from d_2D and the heights); ``log_fc_ghz`` =
    log10(f_c / GHz) and ``log_bp_term`` = log10(d'_BP^2 + (h_BS - h_UT)^2) are per-scenario constants."""
    d2 = max(d2d, _MOB_MIN_D2D_M)
    log_d3 = math.log10(max(math.sqrt(d2d * d2d + (h_bs - h_ut) ** 2), d2))
    if d2 <= d_bp:
        pl_los = 32.4 + 21.0 * log_d3 + 20.0 * log_fc_ghz
    else:
        pl_los = 32.4 + 40.0 * log_d3 + 20.0 * log_fc_ghz - 9.5 * log_bp_term
    if los:
        return pl_los
    pl_nlos = 35.3 * log_d3 + 22.4 + 21.3 * log_fc_ghz - 0.3 * (h_ut - 1.5)
    return max(pl_los, pl_nlos)


@njit(cache=True, inline="always")
def _umi_los_probability(d2d):
    """``pathloss.umi_los_probability`` for one device."""
    d = max(d2d, 1e-9)
    if d <= 18.0:
        return 1.0
    return 18.0 / d + math.exp(-d / 36.0) * (1.0 - 18.0 / d)


@njit(cache=True)
def large_scale_kernel(pos, heading, shadow_z, los_z, los, k_factor, z,  # state (modified) and the slot's normals
                       step_m, turn_std, a_los, a_nlos, a_field, r_min, r_max, h_bs, h_ut, fc_hz, d_bp,
                       sigma_los_db, sigma_nlos_db, umi, shadowing,
                       d2d_out, gain_out, h_los_out, scat_out):
    """Advance every device of every environment one slot (see the module docstring); ``z`` is (N, 4, K)."""
    n_env, n_dev = heading.shape
    n_ant = h_los_out.shape[2]
    b_los, b_nlos, b_field = math.sqrt(1 - a_los * a_los), math.sqrt(1 - a_nlos * a_nlos), math.sqrt(1 - a_field ** 2)
    wavenumber = _MOB_TWO_PI * fc_hz / 299_792_458.0
    log_fc_ghz = math.log10(fc_hz / 1e9)
    log_bp_term = math.log10(d_bp * d_bp + (h_bs - h_ut) ** 2)
    for i in range(n_env):
        for k in range(n_dev):
            # motion: diffusing heading, step, mirror back into the annulus and reflect the heading there
            hd = heading[i, k] + turn_std * z[i, 0, k]
            ux, uy = math.cos(hd), math.sin(hd)
            x = pos[i, k, 0] + step_m * ux
            y = pos[i, k, 1] + step_m * uy
            r = max(math.hypot(x, y), 1e-12)
            if r > r_max or r < r_min:
                r_new = 2.0 * r_max - r if r > r_max else 2.0 * r_min - r
                x, y = x * (r_new / r), y * (r_new / r)
                nx, ny = x / r_new, y / r_new
                dot = ux * nx + uy * ny
                hd = math.atan2(uy - 2.0 * dot * ny, ux - 2.0 * dot * nx)
            heading[i, k] = (hd + math.pi) % _MOB_TWO_PI - math.pi
            pos[i, k, 0] = x
            pos[i, k, 1] = y
            d2d = math.hypot(x, y)
            d2d_out[i, k] = d2d
            # fields along the track (Gudmundson), the LOS state, the large-scale gain
            shadow_z[i, k, 0] = a_los * shadow_z[i, k, 0] + b_los * z[i, 1, k]
            shadow_z[i, k, 1] = a_nlos * shadow_z[i, k, 1] + b_nlos * z[i, 2, k]
            if umi:
                lz = a_field * los_z[i, k] + b_field * z[i, 3, k]
                los_z[i, k] = lz
                los[i, k] = 0.5 * math.erfc(-lz * _MOB_SQRT_HALF) < _umi_los_probability(d2d)
            is_los = los[i, k]
            loss_db = _umi_pathloss_db(d2d, log_fc_ghz, h_bs, h_ut, d_bp, log_bp_term, is_los)
            if shadowing:
                loss_db += sigma_los_db * shadow_z[i, k, 0] if is_los else sigma_nlos_db * shadow_z[i, k, 1]
            gain_out[i, k] = 10.0 ** (-loss_db / 10.0)
            # the LOS term at the new angle and path length
            kf = k_factor[i, k] if is_los else 0.0
            scat_out[i, k] = math.sqrt(1.0 / (kf + 1.0))
            if not is_los:  # Rayleigh: no LOS term (and no transcendental to pay for it)
                for m in range(n_ant):
                    h_los_out[i, k, m] = 0.0
                continue
            d3d = math.sqrt(d2d * d2d + (h_bs - h_ut) ** 2)
            w = math.sqrt(kf / (kf + 1.0)) * cmath.exp(-1j * wavenumber * d3d)
            s = min(max(y / max(d2d, 1e-12), -1.0), 1.0)  # sin of the broadside angle
            step = cmath.exp(1j * math.pi * s)  # a_m = step^m: one complex exp per device, not one per antenna
            for m in range(n_ant):
                h_los_out[i, k, m] = w
                w *= step


def large_scale_step(p: MobilityParams, pos_xy: np.ndarray, heading: np.ndarray, shadow_z: np.ndarray,
                     los_z: np.ndarray, los: np.ndarray, k_factor: np.ndarray, z: np.ndarray, d2d_m: np.ndarray,
                     gain: np.ndarray, h_los: np.ndarray, scat_scale: np.ndarray) -> None:
    """One slot of the large-scale evolution of moving devices (``cfg.mobility``), in place over (N, K).

    ``z`` holds the slot's standard normals, shape (N, 4, K): heading turn, LOS and NLOS shadowing innovations,
    LOS-field innovation. Devices move ``v T`` along a heading that diffuses (``geometry.mobility_step``, with
    reflection at the annulus edges); each shadowing field (``shadow_z`` (N, K, 2): LOS, NLOS) and the LOS field
    ``los_z`` are AR(1) along the track with coefficient ``exp(-v T / d_corr)`` (Gudmundson); with
    ``fading = "umi"`` a device is LOS iff ``Phi(los_z) < Pr_LOS(d_2D)`` (spatially consistent LOS state,
    TR 38.901 section 7.6.3.3), otherwise ``los`` is kept. Then ``d2d_m``, ``gain`` (path loss and the shadowing
    field of the current state), ``h_los`` (:func:`los_term` at the new angle and path length) and ``scat_scale``
    are overwritten. Runs the compiled loop :func:`large_scale_kernel`.
    """
    n, k = heading.shape
    if z.shape != (n, MOBILITY_NORMALS_PER_DEVICE, k):
        raise ValueError(f"z must have shape {(n, MOBILITY_NORMALS_PER_DEVICE, k)} (N, normals, K), got {z.shape}")
    d_bp = float(pathloss.breakpoint_distance_m(p.carrier_hz, p.bs_height_m, p.ut_height_m))
    large_scale_kernel(pos_xy, heading, shadow_z, los_z, los, k_factor, z, p.step_m, p.turn_std_rad,
                                float(p.shadow_a[0]), float(p.shadow_a[1]), p.los_a, p.min_distance_m,
                                p.cell_radius_m, p.bs_height_m, p.ut_height_m, p.carrier_hz, d_bp,
                                pathloss.UMI_SHADOW_STD_LOS_DB, pathloss.UMI_SHADOW_STD_NLOS_DB, p.umi, p.shadowing,
                                d2d_m, gain, h_los, scat_scale)


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
    rho: float  # slot-to-slot correlation from J0(2 pi f_d T) (``doppler_rule``)
    corr_sqrt: np.ndarray | None  # (Nr, Nr) Cholesky factor of the spatial correlation, None if i.i.d.
    pos_xy: np.ndarray  # (N, K, 2) device positions (m)
    heading: np.ndarray  # (N, K) direction of motion (rad)
    k_factor: np.ndarray  # (N, K) linear K-factor of each device when LOS
    shadow_z: np.ndarray  # (N, K, 2) normalised LOS / NLOS shadowing fields
    los_z: np.ndarray  # (N, K) Gaussian LOS field

    def channel(self) -> np.ndarray:
        """Current channel h (N, K, Nr) including the large-scale amplitude (the core's composition)."""
        return channel.compose_channel(self.scatter, self.h_los, self.scat_scale, self.gain)


def init_links(cfg: ScenarioConfig, rng: np.random.Generator, num_envs: int) -> LinkState:
    """Start ``num_envs`` environments with :func:`initial_link_states`, environment i from ``rng.spawn``'s i-th
    child: ``init_links(cfg, np.random.default_rng(s), 1)`` is the start of ``VMIMOEnv`` reset with seed ``s``."""
    corr_sqrt = channel.exponential_correlation_sqrt(cfg.num_antennas, cfg.spatial_correlation)
    st = initial_link_states(rng.spawn(num_envs), cfg, corr_sqrt)
    rho = float(channel.doppler_rho(cfg.speed_mps, cfg.carrier_hz, cfg.slot_s, cfg.doppler_rule))
    return LinkState(st.d2d_m, st.los, st.gain, st.h_los, st.scat_scale, st.h_scat, st.res_state, rho, corr_sqrt,
                     st.pos_xy, st.heading, st.k_factor, st.shadow_z, st.los_z)


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
