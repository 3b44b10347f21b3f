"""Atomic, self-describing training checkpoints.

A checkpoint is **one file**: the ordinary Stable-Baselines3 model zip (so ``PPO.load(path)`` still works) with
two extra members that SB3's loader ignores:

- ``vmimo_meta.json``: algorithm, environment id and kwargs, action view, ``num_timesteps``, seeds, the best
  evaluation reward so far, package versions;
- ``vecnormalize.pkl``: the pickled ``VecNormalize`` statistics when training normalised observations/rewards.

One file makes the write atomic with a single ``os.replace``: the archive is built in memory, written to a
temporary file in the destination folder, flushed and fsync'ed, then renamed over the target. A run killed at any
moment leaves either the previous checkpoint or the new one, never a torn file. Loading verifies every member's
CRC and the metadata, and raises :class:`CheckpointError` naming the file when something is wrong.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

META_NAME = "vmimo_meta.json"
VECNORM_NAME = "vecnormalize.pkl"
FORMAT = "vmimo-checkpoint/1"


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used: corrupt, not a VMIMO checkpoint, or incompatible with the run."""


@dataclass
class Checkpoint:
    """What :func:`read_checkpoint` returns: the path, its metadata and (unpickled) VecNormalize, if any."""

    path: Path
    meta: dict[str, Any]
    vecnormalize: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def num_timesteps(self) -> int:
        return int(self.meta.get("num_timesteps", 0))


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same folder + fsync + ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        # never leave the temporary behind, whatever interrupted us (KeyboardInterrupt included)
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def save_checkpoint(path: str | Path, model: Any, meta: dict[str, Any], vecnormalize: Any = None) -> Path:
    """Save ``model`` (+ VecNormalize statistics + ``meta``) as one atomic checkpoint file at ``path``."""
    path = Path(path)
    buf = io.BytesIO()
    model.save(buf)  # SB3 accepts a file-like object: the archive never touches the disk half-written
    full_meta = {"format": FORMAT, "num_timesteps": int(model.num_timesteps), **meta,
                 "has_vecnormalize": vecnormalize is not None}
    with zipfile.ZipFile(buf, "a", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(META_NAME, json.dumps(full_meta, indent=2, sort_keys=True, default=str))
        if vecnormalize is not None:
            # VecNormalize.__getstate__ drops the wrapped env, so this pickles only the running statistics
            zf.writestr(VECNORM_NAME, pickle.dumps(vecnormalize))
    atomic_write_bytes(path, buf.getvalue())
    return path


def read_checkpoint(path: str | Path) -> Checkpoint:
    """Open and verify a checkpoint (CRC of every member, metadata present and of a known format)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()
            if bad is not None:
                raise CheckpointError(f"checkpoint {path} is corrupt: member {bad!r} fails its CRC check")
            names = set(zf.namelist())
            if "data" not in names:
                raise CheckpointError(f"checkpoint {path} is not a Stable-Baselines3 model archive (no 'data')")
            if META_NAME not in names:
                raise CheckpointError(f"checkpoint {path} has no {META_NAME}: not written by train_agent.py "
                                      "(a plain SB3 model can be evaluated but not resumed)")
            meta = json.loads(zf.read(META_NAME))
            vecnorm = pickle.loads(zf.read(VECNORM_NAME)) if VECNORM_NAME in names else None
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError, pickle.UnpicklingError,
            json.JSONDecodeError, AttributeError, ImportError) as exc:
        raise CheckpointError(f"checkpoint {path} is corrupt or unreadable: {type(exc).__name__}: {exc}") from exc
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {path} has format {meta.get('format')!r}, expected {FORMAT!r}")
    return Checkpoint(path, meta, vecnorm)


def check_compatible(ckpt: Checkpoint, *, algo: str, env_id: str, action_view: str | None) -> None:
    """Raise :class:`CheckpointError` when ``ckpt`` was trained with another algorithm, env or action view."""
    problems = []
    if ckpt.meta.get("algo") != algo:
        problems.append(f"algo {ckpt.meta.get('algo')!r} != {algo!r}")
    if ckpt.meta.get("env_id") != env_id:
        problems.append(f"env {ckpt.meta.get('env_id')!r} != {env_id!r}")
    if ckpt.meta.get("action_view") != action_view:
        problems.append(f"action view {ckpt.meta.get('action_view')!r} != {action_view!r}")
    if problems:
        raise CheckpointError(f"checkpoint {ckpt.path} is incompatible with this run: " + "; ".join(problems))


def load_model(ckpt: Checkpoint, algo_cls: type, env: Any = None, device: str = "cpu", **kwargs: Any) -> Any:
    """Load the SB3 model of ``ckpt``; space mismatches and unreadable tensors become :class:`CheckpointError`."""
    try:
        return algo_cls.load(ckpt.path, env=env, device=device, **kwargs)
    except CheckpointError:
        raise
    except Exception as exc:  # SB3 raises ValueError/KeyError/RuntimeError for mismatching spaces or weights
        raise CheckpointError(f"checkpoint {ckpt.path} cannot be loaded into this run: "
                              f"{type(exc).__name__}: {exc}") from exc


def latest_checkpoint(folder: str | Path) -> Path | None:
    """Newest ``*.zip`` checkpoint (by the step count in its name, then mtime) in ``folder`` or its checkpoints/."""
    folder = Path(folder)
    for cand in (folder / "checkpoints", folder):
        files = [p for p in cand.glob("*.zip") if p.is_file()] if cand.is_dir() else []
        if files:
            def key(p: Path) -> tuple[int, float]:
                digits = "".join(ch for ch in p.stem if ch.isdigit())
                return (int(digits) if digits else -1, p.stat().st_mtime)

            return max(files, key=key)
    return None


def resolve_resume_path(path: str | Path) -> Path:
    """A checkpoint file, or the newest checkpoint of a run folder."""
    path = Path(path)
    if path.is_dir():
        found = latest_checkpoint(path)
        if found is None:
            raise CheckpointError(f"no checkpoint (*.zip) found in {path} or {path / 'checkpoints'}")
        return found
    if not path.exists() and path.with_suffix(".zip").exists():
        return path.with_suffix(".zip")
    return path
