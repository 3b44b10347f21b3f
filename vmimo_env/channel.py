"""Small-scale fading of the device -> BS uplink: Rayleigh / Rician block fading, Gauss-Markov in time,
optional exponential spatial correlation across the BS antennas.

Model (per device k, BS antennas m = 0..Nr-1, slot t), all arrays shaped ``(N, K, Nr)``::

    h_k[t] = sqrt(beta_k) ( sqrt(K_k / (K_k + 1)) a(theta_k)  +  sqrt(1 / (K_k + 1)) s_k[t] )
    s_k[t] = rho s_k[t-1] + sqrt(1 - rho^2) C^{1/2} w_k[t],     w_k[t] ~ CN(0, I_Nr) i.i.d.
    rho    = J0(2 pi f_d T),  f_d = v f_c / c,  clipped to [0, 1)          (Clarke/Jakes, Gauss-Markov AR(1))
             (rule "j0_first_zero": 0 beyond J0's first zero, see ``doppler_rho``)
    C_ij   = r^|i - j|                                                      (exponential correlation model)
    a_m(theta) = exp(j pi m sin theta)                                      (ULA, half-wavelength spacing)

``beta_k`` is the large-scale power gain (``pathloss.py``), ``K_k`` the linear Rician K-factor (0 = Rayleigh).
The Gauss-Markov recursion runs on the scattered part ``s`` only, so the deterministic LOS part is kept and the
stationary statistics hold in every slot: if ``s[t-1] ~ CN(0, C)`` then ``s[t] ~ CN(0, C)`` (the innovation is
correlated with the same ``C^{1/2}``), hence ``E|h_km|^2 = beta_k`` for every antenna, and the lag-1
autocorrelation of the scattered part is ``rho``. (With a static LOS term the full channel's normalised
correlation is ``(K + rho) / (K + 1)``.) Without mobility the LOS phase is kept static within an episode
(block-fading abstraction); with mobility (``physics.large_scale_step``) the LOS term follows the device: its
steering vector takes the new angle and its phase the new path length, ``exp(-j 2 pi d_3D / lambda)``.

Functions are pure: random draws are arguments. ``sample_*`` helpers draw from a ``numpy.random.Generator``.
``scipy.special.j0`` is only used at set-up time (``doppler_rho``), never per slot.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import j0

from vmimo_env.config import DOPPLER_RULES
from vmimo_env.pathloss import SPEED_OF_LIGHT_MPS

RHO_MAX = 1.0 - 1e-9  # rho = 1 would freeze the channel for ever; a static device still keeps a tiny innovation
J0_FIRST_ZERO = 2.404825557695773  # first positive zero j_{0,1} of the Bessel function J0

_SQRT_HALF = math.sqrt(0.5)


def doppler_hz(speed_mps: ArrayLike, fc_hz: float) -> np.ndarray:
    """Maximum Doppler shift f_d = v f_c / c (Hz) for device speed ``speed_mps`` (m/s) at carrier ``fc_hz``."""
    return np.asarray(speed_mps, dtype=np.float64) * fc_hz / SPEED_OF_LIGHT_MPS


def doppler_rho(speed_mps: ArrayLike, fc_hz: float, slot_s: float, rule: str = "j0_clipped") -> np.ndarray:
    """Slot-to-slot fading correlation rho from Clarke's autocorrelation J0(2 pi f_d T), in [0, 1).

    ``rule = "j0_clipped"`` (v0): negative values of J0 (``f_d T`` between 0.38 and 0.88, and so on) are clipped
    to 0, positive side lobes beyond the first zero are used as they are, so rho is not monotone in speed.
    ``rule = "j0_first_zero"``: rho = J0(x) for ``x = 2 pi f_d T`` up to J0's first zero ``x = 2.405``
    (``f_d T = 0.383``) and 0 beyond. Why: the AR(1) recursion keeps only the lag-T value, and its implied
    autocorrelation ``rho^n`` decays monotonically; J0's side lobes belong to the idealised isotropic ring of
    scatterers (measured autocorrelations decay without them), and a slot longer than the coherence time sees
    independent fading, so a faster device is never more correlated than a slower one. J0 decreases on
    [0, 2.405], so the rule is non-increasing in speed and continuous (J0 is 0 at the cut).
    ``rho = 1`` (a static device) is clipped to ``RHO_MAX`` under both rules. Scalar in, 0-d array out; arrays
    broadcast.
    """
    if rule not in DOPPLER_RULES:
        raise ValueError(f"rule must be one of {list(DOPPLER_RULES)}, got {rule!r}")
    x = 2.0 * np.pi * doppler_hz(speed_mps, fc_hz) * slot_s
    rho = j0(x)
    if rule == "j0_first_zero":
        rho = np.where(x < J0_FIRST_ZERO, rho, 0.0)
    return np.clip(rho, 0.0, RHO_MAX)


def exponential_correlation(num_antennas: int, r: float) -> np.ndarray:
    """Exponential spatial correlation matrix C_ij = r^|i-j| (Nr x Nr, real), 0 <= r < 1 (Loyka 2001)."""
    idx = np.arange(num_antennas)
    return float(r) ** np.abs(idx[:, None] - idx[None, :]).astype(np.float64)


def correlation_sqrt(corr: ArrayLike) -> np.ndarray:
    """Lower Cholesky factor L of a Hermitian positive-definite correlation matrix, C = L L^H.

    A white draw ``w ~ CN(0, I)`` (rows of ``(..., Nr)``) becomes ``w @ L.T ~ CN(0, C)``.
    """
    return np.linalg.cholesky(np.asarray(corr))


def exponential_correlation_sqrt(num_antennas: int, r: float) -> np.ndarray | None:
    """Cholesky factor of ``exponential_correlation(num_antennas, r)``; ``None`` for i.i.d. antennas (r = 0)."""
    if r == 0.0:
        return None
    return correlation_sqrt(exponential_correlation(num_antennas, r))


def correlate(w: np.ndarray, corr_sqrt: np.ndarray | None) -> np.ndarray:
    """Apply spatial correlation to white draws ``w`` (..., Nr): ``w @ L.T`` (identity when ``corr_sqrt`` is None)."""
    return w if corr_sqrt is None else w @ corr_sqrt.T


def ula_steering(angle_rad: ArrayLike, num_antennas: int) -> np.ndarray:
    """ULA steering vectors a_m = exp(j pi m sin(theta)), half-wavelength spacing; shape ``angle.shape + (Nr,)``.

    Unit-modulus entries, so the LOS part carries power 1 per antenna before the K-factor weighting.
    """
    s = np.sin(np.asarray(angle_rad, dtype=np.float64))
    return np.exp(1j * np.pi * s[..., None] * np.arange(num_antennas))


def rician_weights(k_factor: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """``(sqrt(K / (K + 1)), sqrt(1 / (K + 1)))`` for a linear Rician K-factor (0 = Rayleigh: (0, 1))."""
    k = np.asarray(k_factor, dtype=np.float64)
    return np.sqrt(k / (k + 1.0)), np.sqrt(1.0 / (k + 1.0))


def complex_normal(z_re: ArrayLike, z_im: ArrayLike) -> np.ndarray:
    """CN(0, 1) samples from two arrays of standard-normal draws: (z_re + j z_im) / sqrt(2)."""
    return (np.asarray(z_re) + 1j * np.asarray(z_im)) * _SQRT_HALF


def sample_rayleigh(rng: np.random.Generator, shape: int | tuple[int, ...]) -> np.ndarray:
    """i.i.d. CN(0, 1) draws of ``shape`` (Rayleigh fading, unit average power)."""
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    return complex_normal(rng.standard_normal(shape), rng.standard_normal(shape))


def sample_rician(rng: np.random.Generator, shape: tuple[int, ...], k_factor: ArrayLike,
                  angle_rad: ArrayLike) -> np.ndarray:
    """Rician draws of ``shape = (..., Nr)``: LOS steering vector at ``angle_rad`` (shape[:-1]) plus CN(0, 1)
    scatter, weighted by the linear K-factor (broadcast to shape[:-1]); unit average power per antenna."""
    los_w, scat_w = rician_weights(k_factor)
    los = ula_steering(angle_rad, shape[-1])
    return los_w[..., None] * los + scat_w[..., None] * sample_rayleigh(rng, shape)


def gauss_markov_step(state: np.ndarray, rho: ArrayLike, innovation: np.ndarray) -> np.ndarray:
    """One Gauss-Markov (AR(1)) fading step: ``rho * state + sqrt(1 - rho^2) * innovation``.

    ``innovation`` is CN(0, C) (white draws already passed through ``correlate``), so a stationary
    ``state ~ CN(0, C)`` stays stationary. ``rho`` is a scalar or broadcasts against ``state`` (use
    ``rho[..., None]`` for a per-device rho of shape (N, K)).
    """
    if np.ndim(rho) == 0:
        r = float(rho)
        return r * state + math.sqrt(1.0 - r * r) * innovation
    rho = np.asarray(rho, dtype=np.float64)
    return rho * state + np.sqrt(1.0 - rho * rho) * innovation


def compose_channel(scatter: np.ndarray, los_term: np.ndarray, scatter_weight: ArrayLike,
                    gain: ArrayLike) -> np.ndarray:
    """Channel including large-scale fading: ``sqrt(gain) (los_term + scatter_weight * scatter)``.

    ``scatter`` and ``los_term`` are ``(N, K, Nr)`` (``los_term`` = sqrt(K/(K+1)) a(theta)), ``scatter_weight``
    = sqrt(1/(K+1)) and ``gain`` (linear power gain) are ``(N, K)``.
    """
    amp = np.sqrt(np.asarray(gain, dtype=np.float64))[..., None]
    return amp * (los_term + np.asarray(scatter_weight, dtype=np.float64)[..., None] * scatter)
