"""MIMO channel, noise and the two physical links the aligners are evaluated over.

SNR convention: ``SNR = P / σ²`` with ``P`` the total transmit power per channel use (summed over the ``Nt``
antennas) and ``σ²`` the complex noise variance per receive antenna. With i.i.d. ``CN(0, 1)`` channel entries
this is the average receive SNR per antenna.

* :class:`RawLink` — ``r = H s + n``: the semantic precoder/decoder *is* the MIMO precoder/equaliser (the
  channel-aware ADMM and neural aligners).
* :class:`SVDMMSELink` — a conventional physical layer: SVD precoding on the ``k`` strongest eigenmodes
  (``H = U Σ V^H``, transmit ``V_k s``) and linear MMSE equalisation of ``s``; its output ``ŝ`` is an estimate of
  the ``k`` transmitted symbols (the baselines and the channel-unaware variants).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .linalg import check_finite

__all__ = [
    "RawLink",
    "SVDMMSELink",
    "apply_link",
    "complex_noise",
    "noise_variance",
    "rayleigh_channel",
    "real_channel",
]


def rayleigh_channel(n_rx: int, n_tx: int, rng: np.random.Generator) -> np.ndarray:
    """Draw ``H ∈ C^{Nr×Nt}`` with i.i.d. ``CN(0, 1)`` entries."""
    if n_rx < 1 or n_tx < 1:
        raise ValueError(f"antenna counts must be >= 1, got n_rx={n_rx}, n_tx={n_tx}")
    return (rng.standard_normal((n_rx, n_tx)) + 1j * rng.standard_normal((n_rx, n_tx))) / np.sqrt(2.0)


def real_channel(h: np.ndarray) -> np.ndarray:
    """Real ``(2Nr, 2Nt)`` equivalent ``[[Re H, −Im H], [Im H, Re H]]`` of ``H`` acting on ``[Re s; Im s]``."""
    return np.block([[h.real, -h.imag], [h.imag, h.real]])


def noise_variance(snr_db: float, power: float = 1.0) -> float:
    """Complex noise variance per receive antenna, ``σ² = P / 10^{SNR/10}``."""
    if not np.isfinite(snr_db):
        raise ValueError(f"snr_db must be finite, got {snr_db!r}")
    if not (np.isfinite(power) and power > 0):
        raise ValueError(f"power must be a positive finite number, got {power!r}")
    return float(power / 10.0 ** (snr_db / 10.0))


def complex_noise(shape: tuple[int, ...], sigma2: float, rng: np.random.Generator) -> np.ndarray:
    """Circularly-symmetric ``CN(0, σ²)`` samples."""
    if sigma2 == 0.0:
        return np.zeros(shape, dtype=np.complex128)
    return np.sqrt(sigma2 / 2.0) * (rng.standard_normal(shape) + 1j * rng.standard_normal(shape))


def apply_link(g: np.ndarray, h: np.ndarray, f: np.ndarray, x: np.ndarray, sigma2: float,
               rng: np.random.Generator) -> np.ndarray:
    """Return ``Ŷ = G (H F X + N)`` with ``N`` i.i.d. ``CN(0, σ²)`` (complex columns in and out)."""
    return g @ RawLink(h, sigma2).transmit(f @ x, rng)


def _check_channel(h: np.ndarray, sigma2: float) -> np.ndarray:
    h = np.asarray(h)
    if h.ndim != 2:
        raise ValueError(f"H must be a 2-D (Nr, Nt) matrix, got shape {h.shape}")
    check_finite("H", h)
    if not (np.isfinite(sigma2) and sigma2 >= 0):
        raise ValueError(f"noise variance sigma2 must be finite and >= 0, got {sigma2!r}")
    return h.astype(np.complex128, copy=False)


@dataclass
class RawLink:
    """``r = H s + n``; ``s`` has ``Nt`` rows, ``r`` has ``Nr`` rows."""

    h: np.ndarray
    sigma2: float

    def __post_init__(self) -> None:
        self.h = _check_channel(self.h, self.sigma2)

    @property
    def n_in(self) -> int:
        """Number of complex symbols per channel use the link accepts (``Nt``)."""
        return int(self.h.shape[1])

    @property
    def n_out(self) -> int:
        """Number of complex values the receiver sees (``Nr``)."""
        return int(self.h.shape[0])

    def transmit(self, s: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Send the columns of ``s`` (``Nt × n``)."""
        if s.shape[0] != self.n_in:
            raise ValueError(f"symbols have {s.shape[0]} rows, the link expects Nt={self.n_in}")
        return self.h @ s + complex_noise((self.n_out, s.shape[1]), self.sigma2, rng)


@dataclass
class SVDMMSELink:
    """Conventional physical layer: SVD precoding on ``k`` eigenmodes + LMMSE equalisation; ``ŝ = B s + W n``.

    The physical layer knows ``H`` and ``σ²`` but not the semantics: it assumes, as a conventional MIMO link does,
    ``k`` independent streams of equal power ``P/k`` (``C_s = (P/k) I``). The precoder ``V_k`` has orthonormal
    columns, so the transmit power is ``E||s||²``. The equaliser is the LMMSE estimator of ``s`` under that
    assumption, ``W = (P/k) H_e^H (H_e (P/k) H_e^H + σ² I)⁻¹`` with ``H_e = H V_k = U_k Σ_k`` — i.e. per
    eigenmode ``ŝ_i = (P/k)σ_i u_i^H r / ((P/k)σ_i² + σ²)``, a shrinking estimate. It is computed once per
    channel, not per sample.
    ``b = W H_e`` (``k × k``) and ``noise_cov = σ² W W^H`` describe the end-to-end link exactly, so a channel-aware
    receiver map can be fitted to it analytically; a channel-unaware one assumes ``ŝ = s``.
    """

    h: np.ndarray
    sigma2: float
    k: int
    power: float = 1.0

    def __post_init__(self) -> None:
        self.h = _check_channel(self.h, self.sigma2)
        n_rx, n_tx = self.h.shape
        if not 1 <= self.k <= min(n_rx, n_tx):
            raise ValueError(f"k={self.k} streams need 1 <= k <= min(Nr, Nt) = {min(n_rx, n_tx)}")
        if not (np.isfinite(self.power) and self.power > 0):
            raise ValueError(f"power must be a positive finite number, got {self.power!r}")
        _, sv, vh = np.linalg.svd(self.h)
        self.v = vh.conj().T[:, : self.k]  # Nt × k precoder (orthonormal columns: no power change)
        he = self.h @ self.v
        p = self.power / self.k
        m = p * (he @ he.conj().T) + self.sigma2 * np.eye(n_rx)
        # Tiny diagonal loading only matters when σ² = 0 and k < Nr (then M is rank deficient).
        m += 1e-12 * max(float(np.real(np.trace(m))), 1e-300) / n_rx * np.eye(n_rx)
        self.w = p * np.linalg.solve(m.T, he.conj()).T  # k × Nr; M is Hermitian so M⁻ᵀ H_e^* = (H_e^H M⁻¹)ᵀ
        self.b = self.w @ he
        self.noise_cov = self.sigma2 * (self.w @ self.w.conj().T)
        self.singular_values = sv[: self.k]

    @property
    def n_in(self) -> int:
        """Number of complex symbols per channel use (``k``)."""
        return self.k

    @property
    def n_out(self) -> int:
        """Number of equalised symbols handed to the receiver (``k``)."""
        return self.k

    def transmit(self, s: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Send ``s`` (``k × n``) and return the MMSE estimate ``ŝ`` (``k × n``)."""
        if s.shape[0] != self.k:
            raise ValueError(f"symbols have {s.shape[0]} rows, the link expects k={self.k}")
        r = self.h @ (self.v @ s) + complex_noise((self.h.shape[0], s.shape[1]), self.sigma2, rng)
        return self.w @ r
