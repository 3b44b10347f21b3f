"""Rendering of one environment of a ``VMIMOCore``: a text table (``ansi``, also printed each step in ``human``
mode, as the environment has no screen of its own) and a picture (``rgb_array``).

The picture is a 480 x 480 RGB map of the cell drawn off-screen with matplotlib (no pyplot, no global backend):

* the BS (black triangle) at the centre, the cell edge dashed;
* each device at its true distance from the BS and a bearing (see :func:`device_positions`): the marker's shape
  is the device's modality, its fill the virtual-MIMO group it transmitted in (grey: idle), its size the
  transmit power; the label gives the device index, the power in dBm and the latent prefix length, and a line to
  the BS in the group's colour marks a transmitting device;
* a bar under the map with each group's share of the band (the unused part left white);
* a legend of the modalities and groups, and the slot, reward and correct count in the title.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from vmimo_env.core import StepResult, VMIMOCore

RENDER_MODES: tuple[str, ...] = ("rgb_array", "ansi", "human")
FRAME_SIZE: tuple[int, int] = (480, 480)  # (height, width) of the rgb_array frame, pixels
MAP_AXES: tuple[float, float, float, float] = (0.01, 0.15, 0.76, 0.76)  # (left, bottom, width, height), figure units
BAR_AXES: tuple[float, float, float, float] = (0.06, 0.05, 0.88, 0.055)  # the band-share bar, figure units

# group 0 (idle) grey, then one colour per group (cycled beyond eight groups)
GROUP_COLOURS: tuple[str, ...] = ("#9e9e9e", "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
                                  "#e377c2", "#17becf")
# one marker per modality, in vmimo_env.config.MODALITIES order
MODALITY_MARKERS: tuple[str, ...] = ("o", "s", "D", "^", "P")


def group_colour(g: int) -> str:
    """Colour of group ``g`` (0 = idle); groups beyond the palette reuse it cyclically, skipping idle grey."""
    if g <= 0:
        return GROUP_COLOURS[0]
    return GROUP_COLOURS[1 + (g - 1) % (len(GROUP_COLOURS) - 1)]


def device_positions(core: VMIMOCore, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(x_m, y_m, bearing_known)`` of environment ``i``'s K devices, BS at the origin.

    The physics needs a device's distance and, for a line-of-sight device, its angle from the broadside of the
    BS array (a ULA along the y axis); the state keeps the distance and the LOS channel, not a position. So:

    * LOS devices (and more than one antenna): the angle is read back from the phase step of the LOS steering
      vector (``exp(j pi m sin theta)``), and the device drawn at ``(d cos theta, d sin theta)``, in front of the
      array (a ULA cannot tell front from back, so this is the true position up to that mirror);
    * other devices have no direction in the state: they are drawn behind the array (x < 0) at bearings spread
      evenly by device index, deterministic and marked ``bearing_known = False``.
    """
    d = core.dist_m[i]
    K = d.shape[0]
    known = np.zeros(K, dtype=bool)
    bearing = np.zeros(K)
    if core.Nr > 1:
        h0, h1 = core.h_los[i, :, 0], core.h_los[i, :, 1]
        known = np.abs(h0) > 1e-12
        s = np.angle(h1 * np.conj(h0)) / np.pi  # sin(theta) of the LOS arrival
        bearing[known] = np.arcsin(np.clip(s[known], -1.0, 1.0))
    unknown = np.flatnonzero(~known)
    if unknown.size:
        # evenly over the back half-plane, away from its edges (the array's end-fire directions)
        spread = (np.arange(K)[unknown] + 0.5) / K
        bearing[unknown] = np.pi / 2 + np.pi * spread
    return d * np.cos(bearing), d * np.sin(bearing), known


def render_ansi(core: VMIMOCore, i: int, last: StepResult | None) -> str:
    """One line per device: modality, distance, group, power, prefix, SINR, queue, p_joint."""
    from vmimo_env.config import MODALITIES

    queue = core.queue_lengths()[i]
    lines = [f"slot {int(core.t[i])}/{core.cfg.horizon}"]
    if last is not None:
        lines[0] += (f"  reward {last.reward[i]:+.3f}  correct {int(last.correct[i])}/{int(last.closed[i])}"
                     f"  energy {last.energy_j[i].sum() * 1e3:.2f} mJ")
    lines.append(" dev modality       dist_m grp  p_dBm prefix  sinr_dB queue p_joint")
    for k in range(core.K):
        grp = int(last.group[i, k]) if last is not None else 0
        p_dbm = 10 * np.log10(max(last.power_w[i, k], 1e-30)) + 30 if last is not None and grp else float("nan")
        prefix = int(last.prefix[i, k]) if last is not None and grp else 0
        sinr = 10 * np.log10(max(last.sinr[i, k], 1e-30)) if last is not None and grp else float("nan")
        lines.append(f"{k:4d} {MODALITIES[core.device_modality[k]]:<14s} {core.dist_m[i, k]:6.1f} {grp:3d}"
                     f" {p_dbm:6.1f} {prefix:6d} {sinr:8.1f} {int(queue[k]):5d} {core.p_joint[i, k]:7.2f}")
    return "\n".join(lines)


def render_human(core: VMIMOCore, i: int, last: StepResult | None, stream: Any = None) -> None:
    """``human`` mode: the ``ansi`` table printed to ``stream`` (stdout), as there is no screen to draw on."""
    out = sys.stdout if stream is None else stream
    print(render_ansi(core, i, last), file=out, flush=True)


def render(core: VMIMOCore, i: int, last: StepResult | None, mode: str | None) -> np.ndarray | str | None:
    """Render environment ``i`` in ``mode`` (one of ``RENDER_MODES``, or None for nothing)."""
    if mode == "ansi":
        return render_ansi(core, i, last)
    if mode == "rgb_array":
        return render_rgb(core, i, last)
    if mode == "human":
        render_human(core, i, last)
        return None
    if mode is not None:
        raise ValueError(f"render_mode must be one of {list(RENDER_MODES)} or None, got {mode!r}")
    return None


def render_rgb(core: VMIMOCore, i: int, last: StepResult | None) -> np.ndarray:
    """The ``rgb_array`` frame: uint8 ``(480, 480, 3)`` (see the module docstring)."""
    return render_rgb_with_positions(core, i, last)[0]


def render_rgb_with_positions(core: VMIMOCore, i: int, last: StepResult | None) -> tuple[np.ndarray, np.ndarray]:
    """The ``rgb_array`` frame and each device marker's centre in it, int ``(K, 2)`` as (row, column) pixels."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Circle, Patch, Rectangle

    from vmimo_env.config import MODALITIES

    cfg, K, G = core.cfg, core.K, core.G
    height, width = FRAME_SIZE
    fig = Figure(figsize=(width / 100, height / 100), dpi=100)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_axes(MAP_AXES)  # the map; the legend takes the right-hand column
    bar = fig.add_axes(BAR_AXES)

    r = cfg.cell_radius_m
    ax.add_patch(Circle((0, 0), r, fill=False, ls="--", color="#bbbbbb"))
    ax.plot([0], [0], marker="^", ms=12, color="black", zorder=4)
    x, y, _ = device_positions(core, i)
    if last is not None:
        grp = last.group[i].astype(np.int64)
        power_dbm = 10 * np.log10(np.maximum(last.power_w[i], 1e-30)) + 30
        prefix = last.prefix[i]
        shares = np.asarray(last.shares[i], dtype=np.float64)
    else:
        grp = np.zeros(K, dtype=np.int64)
        power_dbm = np.full(K, np.nan)
        prefix = np.zeros(K, dtype=np.int64)
        shares = np.zeros(G)
    p_lo = cfg.max_power_dbm + min(cfg.power_levels_db)
    p_span = max(cfg.max_power_dbm - p_lo, 1e-9)
    for k in range(K):
        g = int(grp[k])
        colour = group_colour(g)
        on_air = g > 0
        if on_air:
            ax.plot([0, x[k]], [0, y[k]], color=colour, lw=1.0, alpha=0.6, zorder=1)
        # marker area grows with transmit power (idle devices at the smallest size)
        size = 50 + 150 * ((power_dbm[k] - p_lo) / p_span if on_air else 0.0)
        ax.scatter([x[k]], [y[k]], s=size, marker=MODALITY_MARKERS[core.device_modality[k] % len(MODALITY_MARKERS)],
                   color=colour, edgecolors="black", linewidths=0.8, zorder=3)
        label = f"{k}" + (f" {power_dbm[k]:.0f}dBm L{int(prefix[k])}" if on_air else "")
        ax.annotate(label, (x[k], y[k]), fontsize=6, xytext=(6, 5), textcoords="offset points", zorder=5)
    title = f"slot {int(core.t[i])}/{cfg.horizon}"
    if last is not None:
        title += f"   r={last.reward[i]:+.2f}   correct {int(last.correct[i])}/{int(last.closed[i])}"
    ax.set_title(title, fontsize=9)
    ax.set_xlim(-1.1 * r, 1.1 * r)
    ax.set_ylim(-1.1 * r, 1.1 * r)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    present = sorted(set(int(m) for m in core.device_modality))
    handles = [Line2D([], [], ls="", marker=MODALITY_MARKERS[m % len(MODALITY_MARKERS)], mfc="white", mec="black",
                      label=MODALITIES[m]) for m in present]
    handles += [Patch(color=group_colour(g), label="idle" if g == 0 else f"group {g}") for g in range(G + 1)]
    fig.legend(handles=handles, loc="upper right", bbox_to_anchor=(1.0, 0.91), fontsize=6, frameon=False,
               title="modality / group", title_fontsize=6)
    ax.text(0.01, 0.01, "right: LOS bearing from the channel\nleft: NLOS, no bearing in the state (by index)",
            transform=ax.transAxes, fontsize=5, color="#666666", va="bottom")

    # band shares of the groups, left to right, the unused part white
    left = 0.0
    for g in range(G):
        w = float(shares[g])
        if w > 0:
            bar.add_patch(Rectangle((left, 0), w, 1, color=group_colour(g + 1)))
            if w > 0.08:
                bar.text(left + w / 2, 0.5, f"G{g + 1} {100 * w:.0f}%", ha="center", va="center", fontsize=6)
            left += w
    bar.set_xlim(0, 1)
    bar.set_ylim(0, 1)
    bar.set_yticks([])
    bar.set_xticks([0, 0.5, 1])
    bar.set_xticklabels(["0", "band share", "1"], fontsize=6)

    canvas.draw()
    frame = np.asarray(canvas.buffer_rgba())[..., :3].copy()
    pix = ax.transData.transform(np.column_stack([x, y]))  # display coordinates, origin bottom left
    rows = np.clip(np.rint(height - pix[:, 1]).astype(np.int64), 0, height - 1)
    cols = np.clip(np.rint(pix[:, 0]).astype(np.int64), 0, width - 1)
    return frame, np.column_stack([rows, cols])
