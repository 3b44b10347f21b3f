"""The slot's rules, each written once: encode cap, bandwidth split, band noise, fit, air time, energy, receiver.

The compiled kernels (``vmimo_env.kernels``), the core (``vmimo_env.core``) and every policy that predicts what an
action will do (``agents``, through ``vmimo_env.bs_view``) call these functions, so a rule cannot drift between
the simulator and a scheduler's model of it: this module is where to read and change them. The element-wise
rules are numba ufuncs (``@vectorize``): called from numpy they broadcast like any ufunc; called from a ``@njit``
kernel on scalars they compile inline, so the hot path pays nothing for the indirection. They are defined in
``vmimo_env.kernels`` next to the kernels that inline them (numba's on-disk cache of a kernel only tracks its own
source file) and exported here; the numpy-level rules are defined here.

=========================  =====================================================================================
rule                       definition
=========================  =====================================================================================
:func:`encode_cap`         latents a device can encode this slot: ``floor(capacity · p_joint + 0.5)``
:func:`band_shares`        raw group shares (N, G) used as given when they sum to ≤ 1, else scaled to sum to 1
:func:`band_noise_w`       noise power of a band of ``share · W`` Hz: ``max(share · W, 1e-30) · N0`` (W)
:func:`receiver_noise_w`   the (N, G + 1) noise array the receivers read (column 0, idle, is 1 W and unused)
:func:`uses_per_latent`    complex channel uses of a latent of ``c`` reals: ``c // 2``
:func:`latents_that_fit`   latents of ``c`` reals that fit in a slot on ``W_g`` Hz: ``floor(W_g T) // (c // 2)``
:func:`latents_sent`       what a scheduled device sends: ``min(queue, fit, encode cap)``
:func:`airtime_s`          seconds on air for ``n`` latents of ``c`` reals on ``W_g`` Hz: ``n (c // 2) / W_g``
:func:`energy_per_latent`  device energy (J) of one latent: radio ``(p / η + P_c) · airtime`` + encoding
:func:`device_energy_j`    device energy (J) of a slot from the latents each device sends (transmit+circuit+encode)
:func:`d2d_symbols`        cooperative mode: D2D symbols a device sends its group peers
:func:`energy_term`        reward units of an energy: ``λ_E · E / E_ref``
:func:`slot_sinr`          the post-receiver SINR the slot applies (receiver dispatch of the core, EVM cap)
:func:`apply_sinr_cap`     EVM-style impairment: ``1 / (1/SINR + 10^(-cap/10))`` (identity when the cap is None)
=========================  =====================================================================================
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vmimo_env import energy, kernels, receivers
from vmimo_env.kernels import (  # noqa: F401  (defined next to the kernels that inline them, public here)
    IDLE_NOISE_W,
    MIN_BAND_HZ,
    airtime_s,
    band_hz_noise_w,
    encode_cap,
    latents_sent,
    latents_that_fit,
    share_scale,
    uses_per_latent,
)


def band_shares(bw_raw: Any) -> np.ndarray:
    """Shares of the band (..., G) the slot uses for raw group shares ``bw_raw`` (..., G) in [0, 1]: used as given
    when they sum to at most 1, scaled down to sum to 1 otherwise (unused bandwidth is possible, over-use is not).

    Pass the dtype the core receives (the environments cast actions to float32) to reproduce it bit for bit.
    """
    raw = np.asarray(bw_raw)
    if raw.ndim == 0:
        raise ValueError(f"bw_raw must have a last axis of G group shares, got a scalar {raw!r}")
    flat = np.ascontiguousarray(raw.reshape(-1, raw.shape[-1]), dtype=np.float64 if raw.dtype.kind != "f" else None)
    out = np.empty(flat.shape)
    kernels.band_shares_into(flat, out)
    return out.reshape(raw.shape)


def band_noise_w(shares: Any, cfg: Any) -> np.ndarray:
    """Noise power (W) in a band holding ``shares`` (any shape) of ``cfg.total_bandwidth_hz``, noise figure included:
    ``max(share · W, 1e-30) · N0``."""
    return band_hz_noise_w(np.asarray(shares, dtype=np.float64) * cfg.total_bandwidth_hz, cfg.noise_psd_w_hz)


def receiver_noise_w(shares: Any, cfg: Any) -> np.ndarray:
    """The (N, G + 1) noise array the receivers read for band ``shares`` (N, G): column g + 1 is group g's
    :func:`band_noise_w`, column 0 (idle devices, never read) ``IDLE_NOISE_W``."""
    shares = np.asarray(shares, dtype=np.float64)
    if shares.ndim != 2:
        raise ValueError(f"shares must be (N, G), got shape {shares.shape}")
    out = np.empty((shares.shape[0], shares.shape[1] + 1))
    out[:, 0] = IDLE_NOISE_W
    out[:, 1:] = band_noise_w(shares, cfg)
    return out


# ====================================================================== energy
def energy_per_latent(prefix: Any, power_w: Any, band_hz: Any, encoder_mflops: Any, cfg: Any) -> np.ndarray:
    """Device energy (J) of sending one latent of ``prefix`` reals at ``power_w`` W on ``band_hz`` Hz (broadcast):
    transmit + circuit energy over its air time plus the encoder's ``encoder_mflops`` MFLOPs (``vmimo_env.energy``).
    """
    t_air = airtime_s(np.int64(1), np.asarray(prefix, dtype=np.int64), np.asarray(band_hz, dtype=np.float64))
    return energy.device_energy_j(power_w, t_air, 1.0, encoder_mflops, pa_efficiency=cfg.pa_efficiency,
                                  circuit_power_w=cfg.circuit_power_w, j_per_mflop=cfg.encode_energy_j_per_mflop)


def device_energy_j(power_w: np.ndarray, airtime: np.ndarray, num_latents: np.ndarray, encoder_mflops: np.ndarray,
                    cfg: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-device energy parts of a slot (J), what the core charges: ``(transmit, circuit, encoding)``, each shaped
    like ``power_w``, from the transmit powers (W), air times (s) and latents sent (``vmimo_env.energy``)."""
    return (energy.transmit_energy_j(power_w, airtime, cfg.pa_efficiency),
            energy.circuit_energy_j(airtime, cfg.circuit_power_w),
            energy.encode_energy_j(num_latents, encoder_mflops, cfg.encode_energy_j_per_mflop))


def d2d_symbols(group: np.ndarray, num_latents: np.ndarray, prefix: np.ndarray, num_groups: int) -> np.ndarray:
    """Cooperative mode: D2D symbols (N, K) each transmitting device sends, its latents to every other member of
    its group (``group`` the effective groups, 0 = idle)."""
    members = np.stack([(group == g + 1).sum(1) for g in range(num_groups)], axis=1)  # (N, G)
    gidx = np.maximum(group - 1, 0)
    others = np.where(group > 0, np.take_along_axis(members, gidx, axis=1) - 1, 0)
    return num_latents * uses_per_latent(prefix) * others


def energy_term(energy_j: Any, cfg: Any) -> Any:
    """Reward units of an energy ``energy_j`` (J): ``energy_j · (λ_E / E_ref)`` (the reward subtracts this)."""
    return energy_j * (cfg.energy_weight / cfg.energy_ref_j)


# ====================================================================== receiver
def uses_compiled_mmse(cfg: Any, receiver: str | None = None) -> bool:
    """Whether the slot computes MMSE SINR with the compiled kernel (``receiver`` overrides ``cfg.receiver``): it
    builds each device's covariance without it, fastest up to 8 antennas (measured in
    ``benchmarks/bench_physics.py --compiled``); beyond, numpy's batched LAPACK wins."""
    return (cfg.receiver if receiver is None else receiver) == "mmse" and cfg.num_antennas <= 8


def slot_sinr(cfg: Any, h: np.ndarray, power_w: np.ndarray, group: np.ndarray, noise_w: np.ndarray,
              out: np.ndarray | None = None, receiver: str | None = None) -> np.ndarray:
    """Post-receiver SINR (N, K) of every device, computed exactly as the slot does (linear).

    ``h`` (N, K, Nr) channels, ``power_w`` (N, K) W, ``group`` (N, K) effective groups (0 = idle: a device that
    sends nothing neither transmits nor interferes), ``noise_w`` (N, G + 1) from :func:`receiver_noise_w`.
    ``receiver`` overrides ``cfg.receiver`` (``None``: the scenario's own receiver, or the cooperative SVD array
    when ``cfg.cooperative``); ``out`` (N, K) is written by the compiled MMSE kernel when it is used.

    The scenario's EVM cap (``cfg.sinr_cap_db``, :func:`apply_sinr_cap`) is applied to the result, so a
    prediction from the BS view and the slot see the same impaired SINR.
    """
    if receiver is None and cfg.cooperative:
        sinr = receivers.cooperative_svd_sinr(h, power_w, group, noise_w, cfg.num_groups)
    else:
        rx = cfg.receiver if receiver is None else receiver
        if uses_compiled_mmse(cfg, rx):  # compiled twin of receivers.post_receiver_sinr (tested equal)
            if out is None:
                out = np.empty(group.shape)
            kernels.mmse_sinr_into(h, power_w, group, noise_w, cfg.num_groups, out)
            sinr = out
        else:
            sinr = receivers.post_receiver_sinr(h, power_w, group, noise_w, cfg.num_groups, receiver=rx)
    return apply_sinr_cap(sinr, getattr(cfg, "sinr_cap_db", None))


def apply_sinr_cap(sinr: np.ndarray, cap_db: float | None) -> np.ndarray:
    """EVM-style impairment of a linear SINR array: ``SINR / (1 + SINR · 10^(-cap/10))``, i.e.
    ``1 / (1/SINR + 1/cap)`` written so that a silent device (SINR 0) stays 0; in place, returned.

    The residual error vector of the transmitter (and receiver) adds a distortion power ``10^(-cap/10)`` relative
    to the signal that no transmit power removes (3GPP TS 38.101-1 §6.4.2.1 EVM limits: 17.5 % QPSK, 12.5 %
    16QAM, 8 % 64QAM, i.e. −15.1, −18.1, −21.9 dB). ``cap_db=None`` returns ``sinr`` unchanged (bit for bit).
    """
    if cap_db is None:
        return sinr
    inv_cap = 10.0 ** (-float(cap_db) / 10.0)
    sinr /= 1.0 + sinr * inv_cap
    return sinr
