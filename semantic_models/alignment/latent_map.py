r"""Semantic-only alignment at the base station (no MIMO design): the piece the environment calls.

In VMIMO-v0 the physical layer is abstracted by the environment (it turns SINR into noisy received latent values,
zero beyond each device's nested prefix). When a device runs an encoder different from the one the BS fusion head
was trained with, the BS maps what it receives into its own latent space with an affine LMMSE map fitted once
from pairs of latents of the same inputs (device encoder vs BS encoder)::

    ŷ[:p] = A_{p,σ²} (x̃[:p] − μ_x[:p]) + μ_y[:p],   A_{p,σ²} = C_yx,p (C_xx,p + σ² I)⁻¹

one map per prefix length ``p`` (the BS head reads only ``y[:p]`` when ``p`` values arrived) and per assumed noise
variance ``σ²`` of the received values (the noise term makes the map shrink unreliable directions, the same role
as ``σ²||G||²`` in the ADMM objective). Real-valued maps (a complex map is the special case with tied blocks).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .linalg import check_finite

__all__ = ["LatentAligner", "fit_latent_aligner"]


@dataclass(frozen=True)
class LatentAligner:
    """Per-prefix, per-noise-level affine maps from device latents to BS latents (both ``d`` reals)."""

    prefix_lengths: tuple[int, ...]
    noise_vars: np.ndarray  # (L,) ascending
    maps: dict[int, np.ndarray]  # p -> (L, p, p)
    x_mean: np.ndarray  # (d_src,)
    y_mean: np.ndarray  # (d_dst,)
    d: int

    def apply(self, latents: np.ndarray, prefix_len: np.ndarray | int,
              noise_var: np.ndarray | float | None = None) -> np.ndarray:
        """Map received device latents into the BS latent space.

        Args:
            latents: ``(..., d)`` received values (zero beyond the prefix is fine; those entries are ignored).
            prefix_len: ``(...)`` int prefix length per latent (must be one of ``prefix_lengths`` or 0 = missing).
            noise_var: ``(...)`` noise variance per received real value; the map fitted for the nearest level
                (in log scale) is used. ``None`` = the smallest fitted level.

        Returns:
            float32 ``(..., d)``: the aligned latent, zero beyond each prefix and all-zero where ``prefix_len == 0``.
        """
        lat = np.asarray(latents)
        if lat.shape[-1] != self.d:
            raise ValueError(f"latents must end with dimension d={self.d}, got shape {lat.shape}")
        check_finite("latents", lat)
        batch = lat.shape[:-1]
        flat = lat.reshape(-1, self.d).astype(np.float64)
        pl = np.broadcast_to(np.asarray(prefix_len), batch).reshape(-1)
        bad = ~np.isin(pl, (0, *self.prefix_lengths))
        if np.any(bad):
            raise ValueError(f"prefix_len values {np.unique(pl[bad]).tolist()} not in {self.prefix_lengths} (or 0)")
        if noise_var is None:
            lvl = np.zeros(flat.shape[0], dtype=np.int64)
        else:
            nv = np.broadcast_to(np.asarray(noise_var, dtype=np.float64), batch).reshape(-1)
            if np.any(~np.isfinite(nv)) or np.any(nv < 0):
                raise ValueError("noise_var must be finite and >= 0")
            lvl = _nearest_level(nv, self.noise_vars)
        out = np.zeros_like(flat)
        # Loop over the (few) prefix lengths and noise levels, never over samples or devices.
        for p in self.prefix_lengths:
            for li in range(len(self.noise_vars)):
                sel = (pl == p) & (lvl == li)
                if not np.any(sel):
                    continue
                x0 = flat[sel, :p] - self.x_mean[:p]
                out[sel, :p] = x0 @ self.maps[p][li].T + self.y_mean[:p]
        return out.reshape(*batch, self.d).astype(np.float32)


def _nearest_level(nv: np.ndarray, levels: np.ndarray) -> np.ndarray:
    floor = 1e-12
    return np.argmin(np.abs(np.log(np.maximum(nv, floor))[:, None] - np.log(np.maximum(levels, floor))[None, :]),
                     axis=1)


def fit_latent_aligner(x_src: np.ndarray, y_dst: np.ndarray, prefix_lengths: Sequence[int] = (4, 8, 16, 32, 64),
                       noise_vars: Sequence[float] = (0.0,), ridge: float = 1e-6) -> LatentAligner:
    """Fit the BS-side maps from paired latents of the same inputs.

    Args:
        x_src: ``(n, d)`` latents from the device's encoder (what the BS receives, noise-free).
        y_dst: ``(n, d)`` latents of the same inputs from the encoder the BS head expects.
        prefix_lengths: the nested prefix lengths the environment uses.
        noise_vars: noise variances per received real value to fit maps for (e.g. ``1/SINR`` on a grid).
        ridge: relative diagonal loading (times the mean variance) for numerical safety.
    """
    x = np.asarray(x_src, dtype=np.float64)
    y = np.asarray(y_dst, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2:
        raise ValueError(f"x_src and y_dst must be 2-D (n, d), got {x.shape} and {y.shape}")
    if x.shape != y.shape:
        raise ValueError(f"x_src and y_dst must have the same shape (n, d), got {x.shape} and {y.shape}")
    check_finite("x_src", x)
    check_finite("y_dst", y)
    n, d = x.shape
    if n < 2:
        raise ValueError("need at least 2 paired samples")
    pls = tuple(int(p) for p in prefix_lengths)
    if not pls or any(p < 1 or p > d for p in pls) or len(set(pls)) != len(pls):
        raise ValueError(f"prefix_lengths must be distinct integers in [1, {d}], got {prefix_lengths!r}")
    nvs = np.sort(np.asarray(noise_vars, dtype=np.float64))
    if nvs.size == 0 or np.any(~np.isfinite(nvs)) or np.any(nvs < 0):
        raise ValueError(f"noise_vars must be a non-empty list of finite values >= 0, got {noise_vars!r}")
    mx, my = x.mean(0), y.mean(0)
    x0, y0 = x - mx, y - my
    cxx = x0.T @ x0 / n
    cyx = y0.T @ x0 / n
    maps: dict[int, np.ndarray] = {}
    for p in pls:
        load = ridge * max(float(np.trace(cxx[:p, :p])) / p, 1e-12)
        maps[p] = np.stack([np.linalg.solve(cxx[:p, :p] + (s2 + load) * np.eye(p), cyx[:p, :p].T).T for s2 in nvs])
    return LatentAligner(prefix_lengths=pls, noise_vars=nvs, maps=maps, x_mean=mx, y_mean=my, d=d)
