"""Cell geometry: device drops in an annulus around the BS, distances, angles and slow mobility.

The BS sits at the origin at height ``h_BS``; devices move in the horizontal plane at height ``h_UT``. Positions
are ``(..., 2)`` arrays of (x, y) in metres, for example ``(N, K, 2)``. The BS antenna array is a uniform linear
array along the y axis, so a device's angle from broadside is ``theta = arcsin(y / d_2D)`` in [-pi/2, pi/2]
(a ULA cannot tell front from back, which is why the arcsin is enough).

The pure functions take their uniform / normal draws as arguments so the caller owns all randomness; the
``drop_devices`` / ``drop_positions`` helpers draw from a ``numpy.random.Generator`` for tests and initial states.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

# Heading diffusion of the environment's mobility (``physics.large_scale_step``): the heading is a Brownian motion
# in travelled distance s with variance s / HEADING_DIFFUSION_M, so E[cos(heading change)] = exp(-s / (2 x 25 m)):
# a pedestrian or car keeps its direction for about a street block (project choice).
HEADING_DIFFUSION_M = 25.0


def drop_in_annulus(u_radius: ArrayLike, u_angle: ArrayLike, min_distance_m: float, radius_m: float) -> np.ndarray:
    """Positions uniform by area in the annulus ``min_distance_m <= r <= radius_m`` (m), shape ``(..., 2)``.

    ``u_radius`` and ``u_angle`` are U[0, 1) draws of equal shape. Uniform by area means the CDF of r is
    ``(r^2 - r_min^2) / (R^2 - r_min^2)``, inverted here: ``r = sqrt(r_min^2 + u (R^2 - r_min^2))``.
    """
    u_r = np.asarray(u_radius, dtype=np.float64)
    r = np.sqrt(min_distance_m**2 + u_r * (radius_m**2 - min_distance_m**2))
    phi = 2.0 * np.pi * np.asarray(u_angle, dtype=np.float64)
    return np.stack([r * np.cos(phi), r * np.sin(phi)], axis=-1)


def drop_positions(rng: np.random.Generator, shape: int | tuple[int, ...], min_distance_m: float,
                   radius_m: float) -> np.ndarray:
    """Draw positions (m) of ``shape`` devices uniformly by area in the annulus; returns ``shape + (2,)``."""
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    return drop_in_annulus(rng.random(shape), rng.random(shape), min_distance_m, radius_m)


def drop_devices(rng: np.random.Generator, shape: int | tuple[int, ...], min_distance_m: float,
                 radius_m: float) -> np.ndarray:
    """2D BS-device distances (m) of ``shape`` devices dropped uniformly by area in the annulus."""
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    u = rng.random(shape)
    return np.sqrt(min_distance_m**2 + u * (radius_m**2 - min_distance_m**2))


def distances_m(pos_xy: ArrayLike, h_bs_m: float, h_ut_m: float) -> tuple[np.ndarray, np.ndarray]:
    """``(d_2D, d_3D)`` in metres from the BS (origin, height ``h_bs_m``) to devices at height ``h_ut_m``."""
    pos = np.asarray(pos_xy, dtype=np.float64)
    d2d = np.hypot(pos[..., 0], pos[..., 1])
    return d2d, np.sqrt(d2d**2 + (h_bs_m - h_ut_m) ** 2)


def broadside_angle_rad(pos_xy: ArrayLike) -> np.ndarray:
    """Angle (rad) of each device from the broadside of the BS array (a ULA along the y axis)."""
    pos = np.asarray(pos_xy, dtype=np.float64)
    d2d = np.maximum(np.hypot(pos[..., 0], pos[..., 1]), 1e-12)
    return np.arcsin(np.clip(pos[..., 1] / d2d, -1.0, 1.0))


def mobility_step(pos_xy: ArrayLike, heading_rad: ArrayLike, speed_mps: ArrayLike, slot_s: float,
                  turn_rad: ArrayLike, min_distance_m: float, radius_m: float) -> tuple[np.ndarray, np.ndarray]:
    """One slot of the random-direction mobility model with reflection at the annulus boundaries.

    The heading performs a random walk (``turn_rad`` is the caller's draw, e.g. ``std * N(0, 1)``); the device
    then moves ``speed * slot_s`` metres along it. A device that leaves the annulus is mirrored back across the
    boundary circle (radially, ``r' = 2 R - r`` outside, ``r' = 2 r_min - r`` inside) and its direction is
    reflected about the boundary normal, like a ball off a wall, so the stationary distribution stays uniform
    over the annulus. Assumes a step much shorter than the annulus width (1 m/s x 10 ms = 1 cm here).

    Returns the new ``(pos_xy (..., 2), heading_rad (...))``.
    """
    pos = np.asarray(pos_xy, dtype=np.float64)
    heading = np.asarray(heading_rad, dtype=np.float64) + np.asarray(turn_rad, dtype=np.float64)
    step = np.asarray(speed_mps, dtype=np.float64) * slot_s
    ux, uy = np.cos(heading), np.sin(heading)
    x = pos[..., 0] + step * ux
    y = pos[..., 1] + step * uy
    r = np.maximum(np.hypot(x, y), 1e-12)
    outside, inside = r > radius_m, r < min_distance_m
    crossed = outside | inside
    r_new = np.where(outside, 2.0 * radius_m - r, np.where(inside, 2.0 * min_distance_m - r, r))
    scale = r_new / r
    x, y = x * scale, y * scale
    # reflect the direction about the radial normal n = (x, y) / r where a boundary was crossed
    nx, ny = x / r_new, y / r_new
    dot = ux * nx + uy * ny
    rx, ry = ux - 2.0 * dot * nx, uy - 2.0 * dot * ny
    heading = np.where(crossed, np.arctan2(ry, rx), heading)
    heading = np.mod(heading + np.pi, 2.0 * np.pi) - np.pi  # keep the angle bounded over long episodes
    return np.stack([x, y], axis=-1), heading
