"""Seed NAS-VMIMO device resource process: log-domain AR(1) compute and memory availability.

Per device the state is ``X_t = (X_c, X_m)`` (log availability of compute and memory, 0 = nominal), shape
``(N, K, 2)``::

    X_{t+1} = phi * X_t + sigma * eps_t,     eps_t ~ N(0, [[1, rho], [rho, 1]])   (per resource, element-wise)
    p_x     = P(X_{x,t+1} > a_x | X_t) = 1 - Phi((a_x - phi_x X_{x,t}) / sigma_x) = Phi((phi_x X_{x,t} - a_x) / sigma_x)
    p_joint = p_comp * p_mem

(phi_c 0.85, phi_m 0.90, sigma_c 0.15, sigma_m 0.10, rho 0.3 from the seed; Phi is the standard normal CDF,
``scipy.special.ndtr``). ``p_joint`` is the seed's product form, i.e. it ignores the innovation correlation on
purpose. The stationary law is Gaussian with std ``sigma / sqrt(1 - phi^2)`` per resource and cross-covariance
``rho sigma_c sigma_m / (1 - phi_c phi_m)``.

Thresholds (``ScenarioConfig.resource_threshold_*``, default ``a_x = -2 sigma_x``): at the mean state X = 0 each
resource is available with probability Phi(2) = 0.977, so p_joint = 0.95; over the stationary
law p_joint has median ~0.86, inter-quartile range ~0.47-0.98 and mean ~0.71, so the encode cap binds often
enough to matter without starving devices.

``params`` arguments accept a ``ScenarioConfig`` or a ``ResourceParams``.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import ndtr


@dataclass(frozen=True)
class ResourceParams:
    """AR(1) coefficients, innovation std, innovation correlation and availability thresholds (log units)."""

    phi_compute: float = 0.85
    phi_memory: float = 0.90
    sigma_compute: float = 0.15
    sigma_memory: float = 0.10
    rho: float = 0.3
    threshold_compute: float = -0.30
    threshold_memory: float = -0.20

    @classmethod
    def from_config(cls, cfg: Any) -> ResourceParams:
        return cls(cfg.resource_phi_compute, cfg.resource_phi_memory, cfg.resource_sigma_compute,
                   cfg.resource_sigma_memory, cfg.resource_rho, cfg.resource_threshold_compute,
                   cfg.resource_threshold_memory)

    @property
    def phi(self) -> np.ndarray:
        return np.array([self.phi_compute, self.phi_memory])

    @property
    def sigma(self) -> np.ndarray:
        return np.array([self.sigma_compute, self.sigma_memory])

    @property
    def threshold(self) -> np.ndarray:
        return np.array([self.threshold_compute, self.threshold_memory])


@dataclass(frozen=True)
class _Coeffs:
    phi: np.ndarray  # (2,)
    innov_t: np.ndarray  # (2, 2): eps_white @ innov_t = sigma * correlated eps
    slope: np.ndarray  # phi / sigma
    offset: np.ndarray  # a / sigma
    stat_chol_t: np.ndarray  # (2, 2): white @ stat_chol_t ~ stationary law


@functools.lru_cache(maxsize=64)
def _coeffs(p: ResourceParams) -> _Coeffs:
    phi, sigma, a = p.phi, p.sigma, p.threshold
    # correlated innovations: eps_c = z0, eps_m = rho z0 + sqrt(1 - rho^2) z1, then scaled by sigma
    chol = np.array([[1.0, 0.0], [p.rho, math.sqrt(1.0 - p.rho**2)]])
    innov_t = (sigma[:, None] * chol).T
    return _Coeffs(phi, innov_t, phi / sigma, a / sigma, np.linalg.cholesky(stationary_cov(p)).T)


def _params(params: Any) -> ResourceParams:
    return params if isinstance(params, ResourceParams) else _from_config_cached(params)


@functools.lru_cache(maxsize=64)
def _from_config_cached(cfg: Any) -> ResourceParams:
    return ResourceParams.from_config(cfg)


def stationary_std(params: Any) -> np.ndarray:
    """Stationary std of (X_c, X_m): sigma / sqrt(1 - phi^2)."""
    p = _params(params)
    return p.sigma / np.sqrt(1.0 - p.phi**2)


def stationary_cov(params: Any) -> np.ndarray:
    """Stationary 2x2 covariance of (X_c, X_m): solves Sigma = diag(phi) Sigma diag(phi) + S_innovation."""
    p = _params(params)
    s2 = stationary_std(p) ** 2
    cross = p.rho * p.sigma_compute * p.sigma_memory / (1.0 - p.phi_compute * p.phi_memory)
    return np.array([[s2[0], cross], [cross, s2[1]]])


def ar1_step(state: np.ndarray, normal_draws: np.ndarray, params: Any) -> np.ndarray:
    """One AR(1) step for (N, K, 2) states given i.i.d. standard-normal draws (N, K, 2); correlation is applied here."""
    c = _coeffs(_params(params))
    return state * c.phi + normal_draws @ c.innov_t


def step_coefficients(params: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(phi, innov_t, slope, offset)`` of :func:`ar1_step` and :func:`availability_probs`, for the compiled
    slot (``kernels.slot_physics``): ``X' = X · phi + eps @ innov_t`` and ``p = ndtr(X' · slope − offset)``."""
    c = _coeffs(_params(params))
    return c.phi, c.innov_t, c.slope, c.offset


def availability_probs(state: np.ndarray, params: Any) -> np.ndarray:
    """Per-resource availability p_x = Phi((phi_x X_x - a_x) / sigma_x), shape (N, K, 2)."""
    c = _coeffs(_params(params))
    return ndtr(state * c.slope - c.offset)


def p_joint(state: np.ndarray, params: Any) -> np.ndarray:
    """p_joint = p_comp * p_mem for states (..., 2); returns (...)."""
    p = availability_probs(state, params)
    return p[..., 0] * p[..., 1]


def stationary_from_normals(normal_draws: np.ndarray, params: Any) -> np.ndarray:
    """Map standard-normal draws (..., 2) to samples of the stationary law (pure twin of ``stationary_state``)."""
    return normal_draws @ _coeffs(_params(params)).stat_chol_t


def stationary_state(rng: np.random.Generator, shape: int | tuple[int, ...], params: Any) -> np.ndarray:
    """Draw ``shape + (2,)`` states from the stationary law (start of an episode)."""
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    return stationary_from_normals(rng.standard_normal((*shape, 2)), params)
