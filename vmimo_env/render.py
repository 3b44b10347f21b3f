"""Rendering of one environment of a ``VMIMOCore``: a text table (``ansi``) and a picture (``rgb_array``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from vmimo_env.core import StepResult, VMIMOCore

_GROUP_COLOURS = ("#9e9e9e", "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")


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


def render_rgb(core: VMIMOCore, i: int, last: StepResult | None) -> np.ndarray:
    """A 480x480 RGB frame: BS at the centre, devices coloured by group, size by queue, SINR as text."""
    import matplotlib.patches
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.8, 4.8), dpi=100)
    canvas = FigureCanvasAgg(fig)  # off-screen: no pyplot, no global backend switch
    ax = fig.add_subplot(111)
    r = core.cfg.cell_radius_m
    ax.add_patch(matplotlib.patches.Circle((0, 0), r, fill=False, ls="--", color="#bbbbbb"))
    ax.plot([0], [0], marker="^", ms=14, color="black")
    # devices sit on a fixed bearing per index: positions only need the distance for the physics
    ang = 2 * np.pi * np.arange(core.K) / core.K
    x, y = core.dist_m[i] * np.cos(ang), core.dist_m[i] * np.sin(ang)
    grp = last.group[i] if last is not None else np.zeros(core.K, dtype=int)
    queue = core.queue_lengths()[i]
    for k in range(core.K):
        colour = _GROUP_COLOURS[int(grp[k]) % len(_GROUP_COLOURS)]
        if grp[k]:
            ax.plot([0, x[k]], [0, y[k]], color=colour, lw=1.0, alpha=0.6)
        ax.scatter([x[k]], [y[k]], s=40 + 30 * queue[k], color=colour, edgecolors="black", zorder=3)
        if last is not None and grp[k]:
            ax.annotate(f"{10 * np.log10(max(last.sinr[i, k], 1e-30)):.0f} dB", (x[k], y[k]), fontsize=7,
                        xytext=(4, 4), textcoords="offset points")
    title = f"slot {int(core.t[i])}"
    if last is not None:
        title += f"  r={last.reward[i]:+.2f}  correct {int(last.correct[i])}/{int(last.closed[i])}"
    ax.set_title(title, fontsize=9)
    ax.set_xlim(-1.1 * r, 1.1 * r)
    ax.set_ylim(-1.1 * r, 1.1 * r)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    canvas.draw()
    frame = np.asarray(canvas.buffer_rgba())[..., :3].copy()
    return frame
