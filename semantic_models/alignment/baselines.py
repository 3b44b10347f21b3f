r"""Baselines: choose ``k`` complex symbols, carry them over an SVD-MMSE link, map them at the receiver.

Every baseline has the same three parts:

1. a *selector* at the transmitter giving ``k`` complex symbols per sample from the centred, packed latent
   ``x_c − μ`` (``k ≤ min(Nr, Nt)`` so that one channel use carries them — the same channel uses as an aligner
   with ``Nt`` transmit antennas):

   * **First-K** — the first ``k`` complex coordinates (meaningful for nested / Matryoshka latents whose prefix
     carries the most information);
   * **Top-K** — per sample, the ``k`` largest-magnitude complex coordinates, in decreasing magnitude (the largest
     rides the strongest eigenmode); the receiver is told the indices (side information, not counted);
   * **Eigen-K** — the rank-``k`` truncation of the least-squares alignment map ``M`` on whitened ``x``
     (``M = U Σ V^H``): the transmitter sends ``V_k^H W (x_c − μ)``, the clean receiver map is ``U_k Σ_k``;

   scaled by one constant so that the average transmit power is ``P``;
2. the conventional physical link :class:`~semantic_models.alignment.channel.SVDMMSELink` (``ŝ = B s + w``);
3. a least-squares *alignment map* ``T`` at the receiver from the features ``f`` — ``ŝ`` itself, or for Top-K
   the length-``d_tx/2`` vector ``x̃`` with ``ŝ`` scattered at the told indices and zeros elsewhere — to
   ``y − μ_y``.

Channel-aware (default): ``T`` is the LMMSE map for the actual link, ``T = E[y f^H] E[f f^H]⁺`` with
``f_i = P_i (B s_i + w_i)``, ``w ~ CN(0, σ² W W^H)`` (exact expectation over the noise, sample average over the
training data). Channel-unaware: ``T`` is fitted with ``B = I`` and no noise (for Eigen-K that is exactly the
truncated map ``U_k Σ_k``) and then used on the real link.

``representation="complex"`` (the paper's model) makes ``T`` complex-linear in ``f``; ``"real"`` fits a real map
on ``[Re f; Im f]`` to real ``y`` (and, for Eigen-K, truncates the real LS map to ``2k`` real directions), the same
extension as the real-pair ADMM aligner.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from .admm import Representation, _prepare_pair, _real_pairs, check_channel_matrix, resolve_sigma2
from .channel import SVDMMSELink
from .linalg import Whitener, hermitian_right_solve, pack_complex, unpack_complex

__all__ = ["BASELINES", "BaselineAligner", "fit_baseline", "mimo_capacity_bits", "top_k_index_bits",
           "top_k_with_charged_indices"]

BaselineName = Literal["first_k", "top_k", "eigen_k"]
BASELINES: tuple[str, ...] = ("first_k", "top_k", "eigen_k")


def _real_cov(q: np.ndarray) -> np.ndarray:
    """Covariance of ``[Re w; Im w]`` for circular complex ``w`` with covariance ``Q``."""
    return 0.5 * np.block([[q.real, -q.imag], [q.imag, q.real]])


@dataclass
class BaselineAligner:
    """A fitted First-K / Top-K / Eigen-K baseline (see the module docstring)."""

    method: str
    k: int
    x_mean: np.ndarray  # (m_tx,) complex
    enc: np.ndarray | None  # eigen_k: scale · V_k^H W, on centred complex (k, m_tx) or real (2k, d_tx) latents
    scale: float  # power normalisation of the selected coordinates (first_k/top_k)
    t: np.ndarray  # receiver map on the features
    y_mean: np.ndarray  # (m_rx,) complex or (d_rx,) real
    link: SVDMMSELink
    d_tx: int
    d_rx: int
    channel_aware: bool
    representation: Representation = "complex"

    def select(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Real latents ``(n, d_tx)`` → symbols ``(k, n)`` and, for Top-K, the sent indices ``(n, k)``."""
        xc = pack_complex(x, "x")
        if 2 * xc.shape[0] != self.d_tx:
            raise ValueError(f"x has d={2 * xc.shape[0]}, the baseline was fitted for d_tx={self.d_tx}")
        return _select(self.method, xc - self.x_mean[:, None], self.k, self.enc, self.scale, self.representation)

    def encode(self, x: np.ndarray) -> np.ndarray:
        """Symbols ``(k, n)`` sent over the link."""
        return self.select(x)[0]

    def decode(self, s_hat: np.ndarray, idx: np.ndarray | None = None) -> np.ndarray:
        """Equalised symbols ``(k, n)`` (+ Top-K indices) → real receiver latents ``(n, d_rx)``."""
        if self.method == "top_k" and idx is None:
            raise ValueError("top_k decoding needs the indices the transmitter selected")
        feat = _features(self.method, s_hat, idx, self.d_tx // 2)
        if self.representation == "complex":
            return unpack_complex(self.t @ feat + self.y_mean[:, None])
        return (self.t @ _real_pairs(feat) + self.y_mean[:, None]).T

    def simulate(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """End to end over the SVD-MMSE link with fresh noise."""
        s, idx = self.select(x)
        return self.decode(self.link.transmit(s, rng), idx)


def _features(method: str, s_hat: np.ndarray, idx: np.ndarray | None, m_tx: int) -> np.ndarray:
    if method != "top_k":
        return s_hat
    assert idx is not None
    xt = np.zeros((m_tx, s_hat.shape[1]), dtype=np.complex128)
    xt[idx.T, np.arange(s_hat.shape[1])[None, :]] = s_hat
    return xt


def _select(method: str, x0: np.ndarray, k: int, enc: np.ndarray | None, scale: float,
            representation: str) -> tuple[np.ndarray, np.ndarray | None]:
    if method == "first_k":
        return scale * x0[:k], None
    if method == "top_k":
        # Stable argsort on -|x| so ties resolve to the lower index (deterministic for the receiver).
        idx = np.argsort(-np.abs(x0), axis=0, kind="stable")[:k].T  # (n, k), decreasing magnitude
        return scale * np.take_along_axis(x0, idx.T, axis=0), idx
    if method == "eigen_k":
        assert enc is not None
        if representation == "complex":
            return enc @ x0, None
        sr = enc @ _real_pairs(x0)  # (2k, n) real directions of the real LS map
        return sr[:k] + 1j * sr[k:], None
    raise ValueError(f"unknown baseline {method!r}; choose one of {list(BASELINES)}")


def _one_hot_placement(idx: np.ndarray, m: int) -> np.ndarray:
    """``E[i, a, j] = 1`` iff sample ``i`` sends coordinate ``a`` on stream ``j``; ``idx`` is ``(n, k)``."""
    n, k = idx.shape
    e = np.zeros((n, m, k))
    e[np.arange(n)[:, None], idx, np.arange(k)[None, :]] = 1.0
    return e


def fit_baseline(method: BaselineName, x_tx: np.ndarray, y_rx: np.ndarray, h: np.ndarray, *,
                 snr_db: float | None = None, sigma2: float | None = None, power: float = 1.0,
                 k: int | None = None, channel_aware: bool = True,
                 representation: Representation = "complex") -> BaselineAligner:
    """Fit a baseline from paired real latents ``(n, d_tx)`` / ``(n, d_rx)`` for the channel ``H`` (``Nr × Nt``).

    ``k`` defaults to ``min(Nr, Nt, d_tx/2)`` (one channel use). ``channel_aware=False`` fits the receiver map
    with ``B = I`` and no noise (see the module docstring). Exactly one of ``snr_db`` / ``sigma2``.
    """
    if method not in BASELINES:
        raise ValueError(f"unknown baseline {method!r}; choose one of {list(BASELINES)}")
    if representation not in ("complex", "real"):
        raise ValueError(f"representation must be 'complex' or 'real', got {representation!r}")
    s2 = resolve_sigma2(snr_db, sigma2, power)
    xc, yc = _prepare_pair(x_tx, y_rx)
    h = check_channel_matrix(h)
    m_tx, n = xc.shape
    k_max = min(h.shape[0], h.shape[1], m_tx)
    k = k_max if k is None else int(k)
    if not 1 <= k <= k_max:
        raise ValueError(f"k must be in [1, min(Nr, Nt, d_tx/2)] = [1, {k_max}], got {k}")

    x_mean = xc.mean(axis=1)
    x0 = xc - x_mean[:, None]
    y = yc if representation == "complex" else np.asarray(y_rx, dtype=np.float64).T
    y_mean = y.mean(axis=1)
    y0 = y - y_mean[:, None]

    enc = None
    scale = 1.0
    if method == "eigen_k":
        # Whitened directions have unit variance, so q orthonormal directions carry power q · scale².
        xs = x0 if representation == "complex" else _real_pairs(x0)
        q = k if representation == "complex" else 2 * k
        wh = Whitener.fit(xs)
        xw = wh.transform(xs)
        _, _, vh = np.linalg.svd((y0 @ xw.conj().T) / n)  # LS map on whitened x (C_xx = I)
        enc = np.sqrt(power / q) * (vh[:q] @ wh.w)
    s, idx = _select(method, x0, k, enc, 1.0, representation)
    if method != "eigen_k":
        e_s = float(np.real(np.vdot(s, s))) / n
        scale = float(np.sqrt(power / e_s)) if e_s > 0 else 1.0
        s = scale * s

    link = SVDMMSELink(h, s2, k, power)
    b, q_noise = (link.b, link.noise_cov) if channel_aware else (np.eye(k), np.zeros((k, k)))
    clean = _features(method, b @ s, idx, m_tx)
    if method == "top_k":
        assert idx is not None
        e = _one_hot_placement(idx, m_tx)
        noise = np.einsum("iaj,jl,ibl->ab", e, q_noise, e, optimize=True) / n
    else:
        noise = q_noise
    if representation == "real":
        clean, noise = _real_pairs(clean), _real_cov(noise)
    r_ff = (clean @ clean.conj().T) / n + noise
    r_yf = (y0 @ clean.conj().T) / n
    t = hermitian_right_solve(r_yf, r_ff)
    return BaselineAligner(method=method, k=k, x_mean=x_mean, enc=enc, scale=scale, t=t, y_mean=y_mean, link=link,
                           d_tx=2 * m_tx, d_rx=2 * yc.shape[0], channel_aware=channel_aware,
                           representation=representation)


def mimo_capacity_bits(h: np.ndarray, sigma2: float, power: float = 1.0) -> float:
    """Capacity with equal power on the ``min(Nr, Nt)`` eigenmodes, ``Σ_i log₂(1 + (P/k) σ_i² / σ²)`` bits/use."""
    h = check_channel_matrix(h)
    sv = np.linalg.svd(h, compute_uv=False)
    if sigma2 == 0:
        return float("inf")
    return float(np.sum(np.log2(1.0 + (power / sv.size) * sv**2 / sigma2)))


def top_k_index_bits(m: int, k: int) -> float:
    """Bits to tell the receiver an ordered choice of ``k`` of ``m`` coordinates: ``log₂(m!/(m−k)!)``."""
    return float(sum(np.log2(m - j) for j in range(k)))


def top_k_with_charged_indices(h: np.ndarray, sigma2: float, m: int, power: float = 1.0) -> int:
    """Largest ``k`` for Top-K when its index side information is paid for within the same channel use.

    The indices are sent digitally at capacity ``C`` (optimistic: error-free at the Shannon rate) by time-sharing
    the channel use with the analog symbols: ``k / k_max + bits(k) / C ≤ 1`` with ``k_max = min(Nr, Nt, m)``.
    Returns 0 when not even one coordinate fits (the receiver then only knows its own mean latent).
    """
    h = check_channel_matrix(h)
    k_max = min(h.shape[0], h.shape[1], m)
    cap = mimo_capacity_bits(h, sigma2, power)
    best = 0
    for k in range(1, k_max + 1):
        if k / k_max + top_k_index_bits(m, k) / cap <= 1.0:
            best = k
    return best
