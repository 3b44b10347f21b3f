"""Figures for the docs (one job: draw the joint-versus-separate comparison from a build's metadata)."""

from __future__ import annotations

from pathlib import Path


def plot_joint_vs_separate(comparison: dict, path: str | Path, chance: float) -> Path:
    """Accuracy vs SNR, all modalities: analog joint coding vs digital separate coding, one panel per prefix."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    prefixes = comparison["prefix_lengths"]
    snr = comparison["snr_db"]
    fig, axes = plt.subplots(1, len(prefixes), figsize=(4.2 * len(prefixes), 3.2), sharey=True, squeeze=False)
    for ax, p in zip(axes[0], prefixes, strict=True):
        ax.plot(snr, comparison["analog"][str(p)], "o-", color="k", lw=2, label="joint (analog JSCC)")
        for sch, rows in comparison["digital"].items():
            label = "separate, adaptive bits" if sch == "adaptive" else f"separate, {sch} bit/value"
            ax.plot(snr, rows[str(p)], ".--", label=label)
        ax.axhline(chance, color="grey", lw=0.8, ls=":")
        ax.set_title(f"prefix {p} reals ({p // 2} channel uses)")
        ax.set_xlabel("channel SNR (dB)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("test accuracy, all modalities")
    axes[0][0].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
