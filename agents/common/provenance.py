"""What a result was measured with: package versions and the git commit (run configs, benchmark reports)."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path

# the repository root (this file is agents/common/provenance.py)
_ROOT = Path(__file__).resolve().parents[2]


def package_versions() -> dict[str, str]:
    """Python and the versions of the packages a VMIMO result depends on (those installed)."""
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("vmimo", "numpy", "torch", "gymnasium", "stable_baselines3", "sb3_contrib", "wandb", "numba"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


def git_sha() -> str:
    """The commit of the code (``-dirty`` with uncommitted changes), ``unknown`` outside a git checkout."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=_ROOT, capture_output=True, text=True, timeout=10,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=_ROOT, capture_output=True, text=True,
                               timeout=10).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
