"""Compiled per-slot large-scale evolution of moving devices (``ScenarioConfig.mobility``), in place over (N, K).

The model is stated in ``physics.large_scale_step`` (its public entry point) and in docs/MODEL.md ("Mobility"):
motion as ``geometry.mobility_step``, AR(1) shadowing and LOS fields along the track, path loss and LOS probability
of ``pathloss`` (TR 38.901 UMi), the LOS term of ``physics.los_term``. Why a compiled loop: at the environment's
sizes (K = 8 devices) a numpy composition of these few scalar formulas costs one array pass per operation, several
times a whole v0 slot; one loop over (N, K) costs a few microseconds. The scalar formulas are restated here, next
to the kernel, because numba's on-disk cache of a kernel is keyed on its own source file only;
``tests/test_fading_mobility.py`` checks them against the numpy definitions they restate.
"""

from __future__ import annotations

import cmath
import math

from numba import njit

_TWO_PI = 2.0 * math.pi
_SQRT_HALF = math.sqrt(0.5)
_MIN_D2D_M = 10.0  # pathloss.UMI_MIN_D2D_M


@njit(cache=True, inline="always")
def _umi_pathloss_db(d2d, log_fc_ghz, h_bs, h_ut, d_bp, log_bp_term, los):
    """``pathloss.umi_pathloss_db`` for one device (d_3D from d_2D and the heights); ``log_fc_ghz`` =
    log10(f_c / GHz) and ``log_bp_term`` = log10(d'_BP^2 + (h_BS - h_UT)^2) are per-scenario constants."""
    d2 = max(d2d, _MIN_D2D_M)
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
    wavenumber = _TWO_PI * fc_hz / 299_792_458.0
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
            heading[i, k] = (hd + math.pi) % _TWO_PI - math.pi
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
                los[i, k] = 0.5 * math.erfc(-lz * _SQRT_HALF) < _umi_los_probability(d2d)
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
