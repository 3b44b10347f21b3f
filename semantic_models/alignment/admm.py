r"""Linear semantic MIMO precoder/decoder by ADMM (the channel-aware linear aligner).

Problem (complex columns, one sample per column; ``X`` prewhitened so ``XX^H/n = I``, ``Y`` centred)::

    min_{F, G}  J(F, G) = (1/n) ||Y − G H F X||_F² + σ² ||G||_F²      s.t.  tr(F F^H) ≤ P

with ``X ∈ C^{m_tx×n}`` (``m_tx = d_tx/2``), ``Y ∈ C^{m_rx×n}``, ``H ∈ C^{Nr×Nt}``, ``F ∈ C^{Nt×m_tx}``,
``G ∈ C^{m_rx×Nr}``. ``σ² ||G||²`` is the expected noise energy ``E||G N||²/n`` of ``N ~ CN(0, σ² I)``. The paper's
objective ``||Y − GHFX||² + nσ²||G||²`` is ``n·J``: dividing by ``n`` changes no minimiser and makes ``ρ``
independent of the sample count.

ADMM with the splitting ``F = Z``, ``Z ∈ B_P = {tr(ZZ^H) ≤ P}`` and scaled dual ``U`` (augmented term
``(ρ/2)||F − Z + U||²``) iterates, with the Gram matrices ``C_xx = XX^H/n``, ``C_yx = YX^H/n``:

* G-step (regularised least squares, exact)::

      G = C_yx (HF)^H [HF C_xx (HF)^H + σ² I]⁻¹

* F-step (ridge / Sylvester; ``A = G H``): setting the Wirtinger gradient to zero gives::

      (A^H A) F C_xx + (ρ/2) F = A^H C_yx + (ρ/2)(Z − U)

  With ``A^H A = Q₁ diag(a) Q₁^H`` and ``C_xx = Q₂ diag(c) Q₂^H`` this decouples entry-wise:
  ``F = Q₁ [ (Q₁^H R Q₂)_{ij} / (a_i c_j + ρ/2) ] Q₂^H``.

* Z-step (projection onto the power ball, a scaling)::

      Z = (F + U) · min(1, sqrt(P / tr((F+U)(F+U)^H)))

* U-step: ``U ← U + F − Z``.

Stopping (Boyd et al. 2011, §3.3): primal residual ``r = ||F − Z||_F`` and dual residual ``s = ρ ||Z − Z_prev||_F``
below ``ε_pri = √p ε_abs + ε_rel max(||F||, ||Z||)`` and ``ε_dual = √p ε_abs + ε_rel ρ ||U||`` (``p = Nt·m_tx``),
or the iteration cap. The returned precoder is the projected ``Z`` (always feasible) and ``G`` is re-solved for it,
which can only lower the objective.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from ..blas import single_threaded_blas
from .channel import RawLink, SVDMMSELink, noise_variance, real_channel
from .linalg import Whitener, check_finite, hermitian_right_solve, pack_complex, unpack_complex

__all__ = [
    "ADMMHistory",
    "ADMMResult",
    "LinearAligner",
    "admm_align",
    "alignment_objective",
    "f_step",
    "fit_linear_aligner",
    "g_step",
    "project_power_ball",
]


@dataclass
class ADMMHistory:
    """Per-iteration record of an ADMM run.

    ``objective[k]`` is ``J(Z_k, G_{k+1})`` at the feasible iterate ``Z_k`` with the decoder of the next G-step,
    ``primal_residual``/``dual_residual`` are ``||F − Z||`` and ``ρ||ΔZ||``.
    """

    objective: list[float] = field(default_factory=list)
    primal_residual: list[float] = field(default_factory=list)
    dual_residual: list[float] = field(default_factory=list)
    iterations: int = 0
    converged: bool = False


@dataclass
class ADMMResult:
    """Output of :func:`admm_align`: feasible precoder ``f`` (= projected ``Z``), decoder ``g``, history."""

    f: np.ndarray
    g: np.ndarray
    objective: float
    history: ADMMHistory


def project_power_ball(z: np.ndarray, power: float) -> np.ndarray:
    """Euclidean projection onto ``{Z : tr(ZZ^H) ≤ P}``: scale down only if outside."""
    e = float(np.real(np.vdot(z, z)))
    if e <= power:
        return z
    return z * np.sqrt(power / e)


def alignment_objective(f: np.ndarray, g: np.ndarray, h: np.ndarray, cxx: np.ndarray, cyx: np.ndarray,
                        tr_yy: float, sigma2: float) -> float:
    """``J = (1/n)||Y − GHFX||² + σ²||G||²`` from Gram matrices: ``tr C_yy − 2Re tr(B C_yx^H) + tr(B C_xx B^H)``."""
    b = g @ h @ f
    fit = tr_yy - 2.0 * float(np.real(np.vdot(cyx, b))) + float(np.real(np.vdot(b, b @ cxx)))
    return max(fit, 0.0) + sigma2 * float(np.real(np.vdot(g, g)))


def g_step(f: np.ndarray, h: np.ndarray, cxx: np.ndarray, cyx: np.ndarray, sigma2: float) -> np.ndarray:
    """Exact minimiser over ``G``: ``C_yx (HF)^H [HF C_xx (HF)^H + σ² I]⁻¹`` (pseudo-inverse if singular)."""
    hf = h @ f
    m = hf @ cxx @ hf.conj().T + sigma2 * np.eye(h.shape[0])
    b = cyx @ hf.conj().T
    if sigma2 > 0:
        # σ² > 0 makes M positive definite: a plain solve (B M⁻¹ = (M⁻¹ B^H)^H, M Hermitian) is several times
        # cheaper than the eigendecomposition-based pseudo-inverse needed for the singular noise-free case.
        return np.linalg.solve(0.5 * (m + m.conj().T), b.conj().T).conj().T
    return hermitian_right_solve(b, m)


def gram_eig(cxx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigendecomposition ``C_xx = Q₂ diag(c) Q₂^H`` (eigenvalues clipped at 0); constant over the iterations."""
    lam, q = np.linalg.eigh(0.5 * (cxx + cxx.conj().T))
    return np.maximum(lam, 0.0), q


def f_step(a: np.ndarray, cxx: np.ndarray, cyx: np.ndarray, v: np.ndarray, rho: float,
           cxx_eig: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Solve ``(A^H A) F C_xx + (ρ/2) F = A^H C_yx + (ρ/2) V`` (``V = Z − U``) by two eigendecompositions.

    This is the exact minimiser of ``tr(C_yy) − 2Re tr(AF C_yx^H) + tr(AF C_xx F^H A^H) + (ρ/2)||F − V||²``.
    ``cxx_eig`` is :func:`gram_eig` of ``C_xx`` (computed here if not given; ADMM passes it once for all
    iterations).
    """
    ata = a.conj().T @ a
    lam_a, q1 = np.linalg.eigh(0.5 * (ata + ata.conj().T))
    lam_c, q2 = cxx_eig if cxx_eig is not None else gram_eig(cxx)
    # Gram matrices are PSD; clip round-off negatives so the denominator stays >= ρ/2 > 0.
    lam_a = np.maximum(lam_a, 0.0)
    rhs = a.conj().T @ cyx + 0.5 * rho * v
    rt = q1.conj().T @ rhs @ q2
    ft = rt / (np.outer(lam_a, lam_c) + 0.5 * rho)
    return q1 @ ft @ q2.conj().T


def _init_precoder(h: np.ndarray, cxx: np.ndarray, cyx: np.ndarray, power: float,
                   init: Literal["svd", "random"] | np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
    n_tx = h.shape[1]
    m_tx = cxx.shape[0]
    if isinstance(init, np.ndarray):
        if init.shape != (n_tx, m_tx):
            raise ValueError(f"init precoder must have shape (Nt, d_tx/2) = {(n_tx, m_tx)}, got {init.shape}")
        check_finite("init precoder", init)
        return project_power_ball(init.astype(np.result_type(init, h, cyx)), power)
    if init == "random":
        rng = rng if rng is not None else np.random.default_rng(0)
        f0 = rng.standard_normal((n_tx, m_tx))
        if np.iscomplexobj(h) or np.iscomplexobj(cyx):
            f0 = f0 + 1j * rng.standard_normal((n_tx, m_tx))
        return f0 * np.sqrt(power / float(np.real(np.vdot(f0, f0))))
    if init != "svd":
        raise ValueError(f"init must be 'svd', 'random' or an (Nt, d_tx/2) array, got {init!r}")
    # Put the k strongest directions of the least-squares alignment map on the k strongest channel eigenmodes with
    # equal power: a good feasible start for a biconvex problem whose solution depends on the start.
    m_ls = hermitian_right_solve(cyx, cxx)
    _, _, vmh = np.linalg.svd(m_ls)
    _, _, vhh = np.linalg.svd(h)
    k = min(n_tx, h.shape[0], m_tx, vmh.shape[0])
    return np.sqrt(power / k) * (vhh.conj().T[:, :k] @ vmh[:k, :])


def admm_align(x: np.ndarray, y: np.ndarray, h: np.ndarray, power: float, sigma2: float, *,
               rho: float | None = None, max_iter: int = 500, eps_abs: float = 1e-7, eps_rel: float = 1e-4,
               init: Literal["svd", "random"] | np.ndarray = "svd",
               rng: np.random.Generator | None = None) -> ADMMResult:
    """Run ADMM on complex data (see the module docstring for the maths).

    Args:
        x: ``(m_tx, n)`` complex transmitter latents, prewhitened (``XX^H/n ≈ I``) for the constraint to be the
            average transmit power (not required for the maths).
        y: ``(m_rx, n)`` complex receiver latents (centred).
        h: ``(Nr, Nt)`` complex channel.
        power: budget ``P > 0`` on ``tr(FF^H)``.
        sigma2: noise variance per receive antenna, ``>= 0``.
        rho: ADMM penalty ``ρ > 0`` (on the per-sample objective ``J``). ``None`` (default) uses
            ``ρ = 0.1 tr(C_yy) / P``: the F-step curvature scales as ``||GH||² ≈ tr(C_yy)/P``, and this ratio gave a
            monotone objective and the fastest convergence over problem sizes and scales in our sweeps (smaller
            ratios oscillate, larger ones crawl).
        max_iter: iteration cap (``>= 1``).
        eps_abs, eps_rel: absolute / relative residual tolerances.
        init: ``"svd"`` (default, see ``_init_precoder``), ``"random"`` or an explicit ``(Nt, m_tx)`` precoder.
        rng: only used by ``init="random"``.

    Returns:
        :class:`ADMMResult` with the feasible precoder ``f`` (``tr(ff^H) ≤ P``), decoder ``g``, final objective and
        the history.
    """
    x, y, h = (np.asarray(a) for a in (x, y, h))
    for name, a in (("x", x), ("y", y), ("H", h)):
        if a.ndim != 2:
            raise ValueError(f"{name} must be 2-D, got shape {a.shape}")
        check_finite(name, a)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must have the same number of samples (columns), got {x.shape[1]} and {y.shape[1]}")
    if x.shape[1] == 0:
        raise ValueError("x and y have no samples")
    if not (np.isfinite(power) and power > 0):
        raise ValueError(f"power budget P must be a positive finite number, got {power!r}")
    if not (np.isfinite(sigma2) and sigma2 >= 0):
        raise ValueError(f"noise variance sigma2 must be finite and >= 0, got {sigma2!r}")
    if rho is not None and not (np.isfinite(rho) and rho > 0):
        raise ValueError(f"rho must be a positive finite number or None, got {rho!r}")
    if int(max_iter) < 1:
        raise ValueError(f"max_iter must be >= 1, got {max_iter!r}")
    if eps_abs < 0 or eps_rel < 0:
        raise ValueError(f"tolerances must be >= 0, got eps_abs={eps_abs}, eps_rel={eps_rel}")

    n = x.shape[1]
    # All-real inputs (the real-pair model) keep real arithmetic and return real F, G.
    real = not (np.iscomplexobj(x) or np.iscomplexobj(y) or np.iscomplexobj(h))
    h = h.astype(np.float64 if real else np.complex128)
    cxx = (x @ x.conj().T) / n
    cyx = (y @ x.conj().T) / n
    tr_yy = float(np.real(np.vdot(y, y))) / n
    if rho is None:
        rho = 0.1 * tr_yy / power if tr_yy > 0 else 1.0

    z = _init_precoder(h, cxx, cyx, power, init, rng)
    with single_threaded_blas():
        return _admm_loop(z, h, cxx, cyx, tr_yy, power, sigma2, float(rho), int(max_iter), eps_abs, eps_rel)


def _admm_loop(z: np.ndarray, h: np.ndarray, cxx: np.ndarray, cyx: np.ndarray, tr_yy: float, power: float,
               sigma2: float, rho: float, max_iter: int, eps_abs: float, eps_rel: float) -> ADMMResult:
    u = np.zeros_like(z)
    cxx_eig = gram_eig(cxx)
    g = g_step(z, h, cxx, cyx, sigma2)
    hist = ADMMHistory()
    sqrt_p = np.sqrt(z.size)
    for it in range(max_iter):
        f = f_step(g @ h, cxx, cyx, z - u, rho, cxx_eig)
        z_old = z
        z = project_power_ball(f + u, power)
        u = u + f - z
        g = g_step(f, h, cxx, cyx, sigma2)
        r = float(np.linalg.norm(f - z))
        s = rho * float(np.linalg.norm(z - z_old))
        # Record the objective at the feasible point Z with its own optimal decoder (what fit() would return now).
        hist.objective.append(alignment_objective(z, g_step(z, h, cxx, cyx, sigma2), h, cxx, cyx, tr_yy, sigma2))
        hist.primal_residual.append(r)
        hist.dual_residual.append(s)
        hist.iterations = it + 1
        eps_pri = sqrt_p * eps_abs + eps_rel * max(float(np.linalg.norm(f)), float(np.linalg.norm(z)))
        eps_dual = sqrt_p * eps_abs + eps_rel * rho * float(np.linalg.norm(u))
        if it > 0 and r <= eps_pri and s <= eps_dual:
            hist.converged = True
            break
    g = g_step(z, h, cxx, cyx, sigma2)
    obj = alignment_objective(z, g, h, cxx, cyx, tr_yy, sigma2)
    return ADMMResult(f=z, g=g, objective=obj, history=hist)


Representation = Literal["complex", "real"]


def _real_pairs(r: np.ndarray) -> np.ndarray:
    """Complex ``(m, n)`` → real ``(2m, n)`` ``[Re; Im]`` (the real-pair view of received values)."""
    return np.concatenate([r.real, r.imag], axis=0)


@dataclass
class LinearAligner:
    """A fitted linear semantic precoder/decoder pair working on real latents.

    ``representation="complex"`` (the paper's model): ``x_c`` packed complex, ``s = F W (x_c − μ_x)``,
    ``ŷ_c = G r + μ_y``, unpacked to real — ``F``, ``G`` complex-linear.
    ``representation="real"`` (real-pair / widely-linear extension): the same ADMM on the real-equivalent model
    ``x ∈ R^{d_tx}``, ``H_r = [[Re H, −Im H], [Im H, Re H]]``, ``F ∈ R^{2Nt×d_tx}``, ``G ∈ R^{d_rx×2Nr}``, noise
    ``σ²/2`` per real component; ``s = F[:Nt] + j F[Nt:]`` applied to ``x``. It contains every complex-linear
    aligner, at the same FLOPs (a real ``2p × 2q`` product costs ``4pq`` MACs = one complex ``p × q`` product).

    Whitening is folded into the precoder at inference. ``link`` is the physical link it was designed for:
    :class:`RawLink` (channel-aware: ``F``/``G`` are the MIMO precoder/equaliser) or :class:`SVDMMSELink`
    (channel-unaware: ``F``/``G`` fitted with ``H = I``, no noise, then carried by a conventional link).
    """

    f: np.ndarray
    g: np.ndarray
    whitener: Whitener
    y_mean: np.ndarray
    link: RawLink | SVDMMSELink
    history: ADMMHistory
    d_tx: int
    d_rx: int
    representation: Representation = "complex"

    @property
    def transmit_power(self) -> float:
        """Average transmit power ``tr(FF^H)`` (``X`` whitened)."""
        return float(np.real(np.vdot(self.f, self.f)))

    def encode(self, x: np.ndarray) -> np.ndarray:
        """Real latents ``(n, d_tx)`` → complex symbols ``(Nt, n)`` (``k`` for a channel-unaware aligner)."""
        xc = pack_complex(x, "x")  # validates shape, even d and finiteness in both representations
        if 2 * xc.shape[0] != self.d_tx:
            raise ValueError(f"x has d={2 * xc.shape[0]}, the aligner was fitted for d_tx={self.d_tx}")
        if self.representation == "complex":
            return self.f @ self.whitener.transform(xc)
        s = self.f @ self.whitener.transform(np.asarray(x, dtype=np.float64).T)
        half = s.shape[0] // 2
        return s[:half] + 1j * s[half:]

    def decode(self, r: np.ndarray) -> np.ndarray:
        """Received complex values ``(Nr, n)`` (or equalised ``(k, n)``) → real receiver latents ``(n, d_rx)``."""
        if self.representation == "complex":
            return unpack_complex(self.g @ r + self.y_mean[:, None])
        return (self.g @ _real_pairs(r) + self.y_mean[:, None]).T

    def simulate(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """End to end: encode, send over ``link`` (fresh noise from ``rng``), decode."""
        return self.decode(self.link.transmit(self.encode(x), rng))


def _prepare_pair(x_tx: np.ndarray, y_rx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    xc = pack_complex(x_tx, "x_tx")
    yc = pack_complex(y_rx, "y_rx")
    if xc.shape[1] != yc.shape[1]:
        raise ValueError(f"x_tx and y_rx must hold the same samples, got n={xc.shape[1]} and n={yc.shape[1]}")
    return xc, yc


def resolve_sigma2(snr_db: float | None, sigma2: float | None, power: float) -> float:
    """Exactly one of ``snr_db`` / ``sigma2`` must be given; returns ``σ²``."""
    if not (np.isfinite(power) and power > 0):
        raise ValueError(f"power budget must be a positive finite number, got {power!r}")
    if (snr_db is None) == (sigma2 is None):
        raise ValueError("give exactly one of snr_db or sigma2")
    if sigma2 is not None:
        if not (np.isfinite(sigma2) and sigma2 >= 0):
            raise ValueError(f"sigma2 must be finite and >= 0, got {sigma2!r}")
        return float(sigma2)
    return noise_variance(float(snr_db), power)  # type: ignore[arg-type]


def check_channel_matrix(h: np.ndarray) -> np.ndarray:
    """Validate ``H`` (2-D, finite) and return it as complex128."""
    h = np.asarray(h)
    if h.ndim != 2:
        raise ValueError(f"H must be a 2-D (Nr, Nt) matrix, got shape {h.shape}")
    check_finite("H", h)
    return h.astype(np.complex128)


def fit_linear_aligner(x_tx: np.ndarray, y_rx: np.ndarray, h: np.ndarray, *, snr_db: float | None = None,
                       sigma2: float | None = None, power: float = 1.0, channel_aware: bool = True,
                       representation: Representation = "complex", **admm_kwargs: object) -> LinearAligner:
    """Fit the ADMM aligner from paired real latents of the same inputs.

    Args:
        x_tx: ``(n, d_tx)`` transmitter latents (``d_tx`` even).
        y_rx: ``(n, d_rx)`` receiver latents of the same ``n`` inputs (``d_rx`` even).
        h: ``(Nr, Nt)`` complex channel (``Nt`` = complex symbols per channel use).
        snr_db / sigma2: the operating noise level (exactly one); ``SNR = P/σ²``.
        power: transmit power budget ``P``.
        channel_aware: ``False`` fits with ``H = I_k`` and ``σ² = 0`` (``k = min(Nr, Nt)``) and sends the ``k``
            semantic symbols over an :class:`SVDMMSELink` of the true channel.
        representation: ``"complex"`` (paper) or ``"real"`` (real-pair extension), see :class:`LinearAligner`.
        **admm_kwargs: forwarded to :func:`admm_align` (``rho``, ``max_iter``, ``eps_abs``, ``eps_rel``, ``init``).
    """
    if representation not in ("complex", "real"):
        raise ValueError(f"representation must be 'complex' or 'real', got {representation!r}")
    s2 = resolve_sigma2(snr_db, sigma2, power)
    xc, yc = _prepare_pair(x_tx, y_rx)
    h = check_channel_matrix(h)
    k = min(h.shape)
    h_fit, s2_fit = (h, s2) if channel_aware else (np.eye(k, dtype=np.complex128), 0.0)
    if representation == "complex":
        x_fit, y_fit = xc, yc
    else:
        # Real-equivalent model: circular CN(0, σ²) noise has variance σ²/2 on each real component.
        x_fit = np.asarray(x_tx, dtype=np.float64).T
        y_fit = np.asarray(y_rx, dtype=np.float64).T
        h_fit, s2_fit = real_channel(h_fit), s2_fit / 2.0
    wh = Whitener.fit(x_fit)
    y_mean = y_fit.mean(axis=1)
    res = admm_align(wh.transform(x_fit), y_fit - y_mean[:, None], h_fit, power, s2_fit,
                     **admm_kwargs)  # type: ignore[arg-type]
    link: RawLink | SVDMMSELink = RawLink(h, s2) if channel_aware else SVDMMSELink(h, s2, k, power)
    return LinearAligner(f=res.f, g=res.g, whitener=wh, y_mean=y_mean, link=link, history=res.history,
                         d_tx=2 * xc.shape[0], d_rx=2 * yc.shape[0], representation=representation)
