"""Device energy per slot (joules): transmit, circuit, on-device encoding and D2D exchange.

All functions are vectorised (arrays of any broadcastable shape, typically ``(N, K)``) and return float64 joules.

- Transmit: the power amplifier draws ``p / eta_PA`` from the battery to radiate ``p`` watts, for the time the
  device is on air: ``E_tx = p / eta_PA * t_air`` (linear PA model, e.g. Auer et al., EARTH power model).
- Circuit: mixers, filters, DAC and synthesiser draw a constant ``P_c`` while transmitting: ``E_c = P_c * t_air``.
- Encoding: the on-device encoder costs ``F`` MFLOPs per latent at ``e`` J/MFLOP: ``E_enc = n * F * e``.
- D2D exchange (cooperative mode): ``E_d2d = symbols * e_sym`` J for the latent symbols sent to group peers.

Air time of a device that sends ``u`` complex channel uses in a band of ``W`` Hz is ``u / W`` seconds
(one complex symbol per Hz per second at Nyquist signalling).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def channel_airtime_s(channel_uses: ArrayLike, bandwidth_hz: ArrayLike) -> np.ndarray:
    """Seconds on air to send ``channel_uses`` complex symbols in ``bandwidth_hz`` (0 where the band is 0); the
    slot's air time of ``n`` latents is ``vmimo_env.rules.airtime_s``, this for ``n · (prefix // 2)`` uses."""
    uses = np.asarray(channel_uses, dtype=np.float64)
    bw = np.asarray(bandwidth_hz, dtype=np.float64)
    return np.divide(uses, bw, out=np.zeros(np.broadcast(uses, bw).shape), where=bw > 0)


def transmit_energy_j(power_w: ArrayLike, airtime_s: ArrayLike, pa_efficiency: float) -> np.ndarray:
    """Battery energy of the power amplifier, ``p / eta_PA * t_air`` (J); ``power_w`` radiated (W)."""
    return np.asarray(power_w, dtype=np.float64) * (1.0 / pa_efficiency) * np.asarray(airtime_s, dtype=np.float64)


def circuit_energy_j(airtime_s: ArrayLike, circuit_power_w: float) -> np.ndarray:
    """Transmitter circuit energy ``P_c * t_air`` (J); zero for a device that does not transmit."""
    return circuit_power_w * np.asarray(airtime_s, dtype=np.float64)


def encode_energy_j(num_latents: ArrayLike, mflops_per_latent: ArrayLike, j_per_mflop: float) -> np.ndarray:
    """On-device encoder energy ``n * F * e`` (J) for ``num_latents`` latents of ``mflops_per_latent`` MFLOPs."""
    return np.asarray(num_latents, dtype=np.float64) * np.asarray(mflops_per_latent, dtype=np.float64) * j_per_mflop


def d2d_energy_j(num_symbols: ArrayLike, j_per_symbol: float) -> np.ndarray:
    """D2D latent-exchange energy ``symbols * e_sym`` (J) in cooperative mode."""
    return np.asarray(num_symbols, dtype=np.float64) * j_per_symbol


def device_energy_j(power_w: ArrayLike, airtime_s: ArrayLike, num_latents: ArrayLike, mflops_per_latent: ArrayLike,
                    *, pa_efficiency: float, circuit_power_w: float, j_per_mflop: float,
                    d2d_symbols: ArrayLike = 0.0, j_per_symbol: float = 0.0) -> np.ndarray:
    """Total energy (J) per device: transmit + circuit + encoding + D2D (the sum of the four functions above)."""
    radio = (np.asarray(power_w, dtype=np.float64) * (1.0 / pa_efficiency) + circuit_power_w) * airtime_s
    total = radio + num_latents * (np.asarray(mflops_per_latent, dtype=np.float64) * j_per_mflop)
    if np.ndim(d2d_symbols) or d2d_symbols:  # skip two array operations in the usual non-cooperative case
        total += np.asarray(d2d_symbols, dtype=np.float64) * j_per_symbol
    return total
