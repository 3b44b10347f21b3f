"""What a result was measured with: package versions and the git commit (run configs, benchmark reports), and how a
generated block of a Markdown file (a README table between two markers) names its command and machine and is
replaced."""

from __future__ import annotations

import os
import platform
import shlex
import subprocess
from collections.abc import Sequence
from pathlib import Path

# the repository root (this file is agents/common/provenance.py)
_ROOT = Path(__file__).resolve().parents[2]


def package_versions(extra: Sequence[str] = ()) -> dict[str, str]:
    """Python and the versions of the packages a VMIMO result depends on (those installed), plus ``extra``
    distributions a particular result also depends on (a comparison environment, say)."""
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("vmimo", "numpy", "torch", "gymnasium", "stable_baselines3", "sb3_contrib", "wandb", "numba",
                *extra):
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


def machine_line(extra_packages: Sequence[str] = ()) -> str:
    """Machine, Python and package versions the figures were measured with, and the commit (one sentence)."""
    versions = package_versions(extra_packages)
    python = versions.pop("python")
    return (f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}; "
            f"Python {python}; " + ", ".join(f"{k} {v}" for k, v in versions.items())
            + f"; commit {git_sha()[:12]}.")


def command_line(program: str, argv: Sequence[str]) -> str:
    """``program`` and its arguments as a user reruns them: absolute paths inside the working directory written
    relative to it (so a generated block does not carry the measuring machine's directories)."""
    cwd = Path.cwd().resolve()

    def rel(arg: str) -> str:
        p = Path(arg)
        if p.is_absolute():
            try:
                return str(p.resolve().relative_to(cwd))
            except ValueError:
                return arg
        return arg

    return f"{program} " + shlex.join([rel(a) for a in argv]) if argv else program


def replace_block(text: str, block: str, start: str, end: str) -> str:
    """``text`` with everything between the markers ``start`` and ``end`` replaced by ``block`` (the markers and
    everything outside them kept); ``ValueError`` when the markers are missing or out of order."""
    i, j = text.find(start), text.find(end)
    if i < 0 or j < 0 or j < i:
        raise ValueError(f"the file needs the markers {start} and {end} (in that order)")
    return text[:i + len(start)] + "\n" + block + text[j:]
