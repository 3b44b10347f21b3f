"""The rgb_array frame: a numpy image of the cell that shows positions, modality, group, power, prefix and band
shares, and changes with the action."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.colors import to_rgb

from vmimo_env.channel import ula_steering
from vmimo_env.env import VMIMOEnv
from vmimo_env.render import (
    BAR_AXES,
    FRAME_SIZE,
    GROUP_COLOURS,
    device_positions,
    group_colour,
    render_rgb_with_positions,
)


def _rgb(colour: str) -> np.ndarray:
    return np.rint(255 * np.array(to_rgb(colour)))


def _action(env: VMIMOEnv, group: list[int], bandwidth: list[float]) -> dict[str, np.ndarray]:
    K = env.cfg.num_devices
    return {"group": np.array(group, np.int64), "power": np.full(K, len(env.cfg.power_levels_db) - 1, np.int64),
            "compression": np.full(K, 1, np.int64), "bandwidth": np.array(bandwidth, np.float32)}


def _busy_env(seed: int = 5, steps: int = 6) -> VMIMOEnv:
    """Default scenario after a few slots in which every group transmits."""
    env = VMIMOEnv(render_mode="rgb_array")
    env.reset(seed=seed)
    a = _action(env, [1 + k % env.cfg.num_groups for k in range(env.cfg.num_devices)], [0.5, 0.3, 0.2])
    for _ in range(steps):
        env.step(a)
    return env


def test_frame_shape_dtype_and_determinism() -> None:
    env, twin = _busy_env(), _busy_env()
    frame = env.render()
    assert frame.shape == (*FRAME_SIZE, 3) and frame.dtype == np.uint8
    assert np.array_equal(frame, twin.render())  # same seed and actions: the same picture
    assert len(np.unique(frame.reshape(-1, 3), axis=0)) > 20  # a drawing, not a blank canvas


def test_frame_changes_with_the_action() -> None:
    a, b = VMIMOEnv(scenario="small", render_mode="rgb_array"), VMIMOEnv(scenario="small", render_mode="rgb_array")
    a.reset(seed=1)
    b.reset(seed=1)
    assert np.array_equal(a.render(), b.render())
    a.step(_action(a, [1, 1, 2, 2], [0.5, 0.5]))
    b.step(_action(b, [2, 2, 1, 1], [0.9, 0.1]))
    assert not np.array_equal(a.render(), b.render())


def test_device_positions_keep_distance_and_the_los_bearing() -> None:
    env = _busy_env(seed=11, steps=0)
    core = env.core
    x, y, known = device_positions(core, 0)
    np.testing.assert_allclose(np.hypot(x, y), core.dist_m[0], rtol=1e-9)
    assert (x[known] >= 0).all() and (x[~known] <= 0).all()
    # a LOS device's bearing reproduces its steering vector (up to the K-factor weight)
    for k in np.flatnonzero(known):
        steer = ula_steering(np.arctan2(y[k], x[k]), core.Nr)
        h = core.h_los[0, k]
        np.testing.assert_allclose(h / h[0], steer / steer[0], atol=1e-9)
    assert np.array_equal(device_positions(core, 0)[0], x)  # deterministic


def test_groups_have_distinct_colours_at_the_device_positions() -> None:
    env = _busy_env()
    frame, pix = render_rgb_with_positions(env.core, 0, env._last)
    grp = env._last.group[0]
    assert len(set(GROUP_COLOURS)) == len(GROUP_COLOURS)
    # devices whose marker is clear of every other device's marker and label
    dist = np.hypot(*(pix[:, None, :] - pix[None, :, :]).transpose(2, 0, 1))
    np.fill_diagonal(dist, np.inf)
    isolated = np.flatnonzero(dist.min(axis=1) > 25)
    seen: dict[int, np.ndarray] = {}
    for k in isolated:
        r, c = pix[k]
        colour = frame[r, c].astype(float)
        np.testing.assert_allclose(colour, _rgb(group_colour(int(grp[k]))), atol=12, err_msg=f"device {k}")
        seen[int(grp[k])] = colour
    assert len(seen) >= 2, f"too few isolated groups to compare: {seen}"
    cols = list(seen.values())
    assert all(np.abs(cols[i] - cols[j]).max() > 40 for i in range(len(cols)) for j in range(i))


def test_band_share_bar_shows_each_group() -> None:
    env = _busy_env()
    frame = env.render()
    shares = env._last.shares[0]
    H, W = FRAME_SIZE
    left, bottom, width, height = BAR_AXES
    row = int(H * (1 - (bottom + 0.2 * height)))  # low in the bar, below the text
    edge = 0.0
    for g, w in enumerate(shares, start=1):
        if w > 0.02:
            col = int(W * (left + width * (edge + 0.5 * w)))
            np.testing.assert_allclose(frame[row, col], _rgb(group_colour(g)), atol=12, err_msg=f"group {g}")
        edge += w
    if edge < 0.95:  # unused band stays white
        col = int(W * (left + width * (edge + 1.0) / 2))
        assert (frame[row, col] > 240).all()


@pytest.mark.parametrize("g", [0, 1, 8, 9, 17])
def test_group_colour_is_grey_only_for_idle(g: int) -> None:
    assert (group_colour(g) == GROUP_COLOURS[0]) == (g == 0)
