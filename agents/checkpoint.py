"""Atomic, self-describing training checkpoints that never run code when loaded.

A checkpoint is **one file**: the ordinary Stable-Baselines3 model zip (so ``PPO.load(path)`` still works) with
extra members that SB3's loader ignores:

- ``vmimo_meta.json``: algorithm, environment id and kwargs, action view, ``num_timesteps``, seeds, the best
  evaluation reward so far, package versions, and (``sb3_objects``) a plain-JSON description of every entry that
  SB3 pickled into the zip's ``data`` (policy class, spaces, schedules, buffers, ...);
- ``vecnormalize.json`` + ``vecnormalize.npz``: the ``VecNormalize`` settings (JSON) and running statistics (plain
  arrays, read with ``allow_pickle=False``) when training normalised observations/rewards.

**Trust.** A pickle is a program: unpickling a file runs whatever its author chose. SB3 stores the policy class,
the spaces, the schedules, ... as cloudpickle blobs in the ``data`` member and unpickles them in ``load`` unless
``custom_objects`` replaces them. Loading here therefore (1) reads the ``data`` JSON itself, (2) rebuilds every
pickled entry from the JSON metadata and the environment (the spaces come from ``gym.make`` of the recorded env id
and kwargs; classes only from a fixed allow-list of the project's and SB3's classes) and hands them to SB3's
``load`` as ``custom_objects``, so SB3 never calls cloudpickle, and (3) refuses, naming the file and the entry, a
zip holding any pickled entry it cannot rebuild. SB3 (>= 2.x) reads the ``*.pth`` tensors with
``torch.load(weights_only=True)``, which cannot run code either. Zips made elsewhere (plain SB3, older versions of
this project with ``vecnormalize.pkl``) need ``trust=True`` (``--trust-checkpoint``), which loads them the old way
with a warning; ``python -m agents.checkpoint convert OLD.zip NEW.zip --trust-checkpoint`` rewrites one once.

**Atomicity.** The archive is built in memory, written to a temporary file in the destination folder, flushed and
fsync'ed, then renamed over the target. A run killed at any moment leaves either the previous checkpoint or the
new one, never a torn file; a ``kill -9`` can leave the temporary behind, which :func:`clean_stale_temporaries`
removes when the next run starts writing into that folder. Loading verifies every member's CRC and the metadata,
and raises :class:`CheckpointError` naming the file when something is wrong.
"""

from __future__ import annotations

import argparse
import contextlib
import contextvars
import functools
import io
import json
import os
import pickle
import socket
import sys
import tempfile
import time
import warnings
import zipfile
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

META_NAME = "vmimo_meta.json"
VECNORM_JSON = "vecnormalize.json"
VECNORM_NPZ = "vecnormalize.npz"
LEGACY_VECNORM = "vecnormalize.pkl"  # written by format 1: a pickle, only read with trust
FORMAT = "vmimo-checkpoint/2"
LEGACY_FORMATS = ("vmimo-checkpoint/1",)
SERIALIZED = ":serialized:"  # SB3's marker of a cloudpickled entry in the ``data`` JSON
TRUST_FLAG = "--trust-checkpoint"

_TRUST: contextvars.ContextVar[bool] = contextvars.ContextVar("vmimo_trust_checkpoints", default=False)


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used: corrupt, not a VMIMO checkpoint, untrusted, or incompatible with the run."""


@dataclass
class Checkpoint:
    """What :func:`read_checkpoint` returns: the path, its metadata and the VecNormalize statistics, if any.

    ``vecnormalize`` is a ``VecNormalize`` without a wrapped environment (call ``set_venv`` before stepping it);
    ``trusted`` tells :func:`load_model` to load the zip the old way (pickles allowed).
    """

    path: Path
    meta: dict[str, Any]
    vecnormalize: Any = None
    extra: dict[str, Any] = field(default_factory=dict)
    trusted: bool = False

    @property
    def num_timesteps(self) -> int:
        return int(self.meta.get("num_timesteps", 0))


@dataclass
class TrainedModel:
    """What :func:`load_trained` returns: the SB3 model, its VecNormalize (or None), action view and metadata."""

    model: Any
    vecnormalize: Any
    action_view: str | None
    meta: dict[str, Any]
    algo: str


# --------------------------------------------------------------------------------------------- trust switch
@contextlib.contextmanager
def trusting_checkpoints(trust: bool = True) -> Iterator[None]:
    """Within the block, loaders called with ``trust=None`` (e.g. through ``make_policy``) use ``trust``."""
    token = _TRUST.set(bool(trust))
    try:
        yield
    finally:
        _TRUST.reset(token)


def _trust(trust: bool | None) -> bool:
    return _TRUST.get() if trust is None else bool(trust)


def _warn_trusted(path: Path, why: str) -> None:
    warnings.warn(f"loading {path} with {TRUST_FLAG}: {why}; its pickled objects run with your permissions, so "
                  "only do this for files you made yourself", UserWarning, stacklevel=3)


def _untrusted_message(path: Path, why: str, hint: str = "") -> str:
    return (f"checkpoint {path} {why}: loading it would unpickle (run) code stored in the file. Pass "
            f"{TRUST_FLAG} (trust=True in Python) only if you made it yourself{hint}")


# --------------------------------------------------------------------------------------------- atomic writes
def _tmp_prefix(name: str) -> str:
    # host and pid in the name let the next run tell a dead writer's leftover from a live writer's file
    return f".{name}.{socket.gethostname()}.{os.getpid()}."


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same folder + fsync + ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=_tmp_prefix(path.name), suffix=".tmp", dir=path.parent)
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


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def clean_stale_temporaries(*folders: str | Path, max_age_s: float = 3600.0) -> list[Path]:
    """Delete the ``.NAME.*.tmp`` files :func:`atomic_write_bytes` leaves when its process is killed (``kill -9``).

    A temporary is stale when its writer (host and pid in the name) is this host's and no longer runs, or when it
    is older than ``max_age_s`` seconds (other hosts, or names without a pid): a live write takes seconds. Call it
    when a run starts writing into ``folders``. Returns the deleted paths.
    """
    marker = f".{socket.gethostname()}."
    removed = []
    now = time.time()
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            continue
        for p in folder.glob(".*.tmp"):
            try:
                if not p.is_file():
                    continue
                stale = now - p.stat().st_mtime > max_age_s
            except FileNotFoundError:  # its writer just renamed it
                continue
            stem = p.name[:-len(".tmp")]
            at = stem.rfind(marker)
            if not stale and at > 0:  # ".NAME.HOST.PID.RANDOM": written on this host by PID
                pid = stem[at + len(marker):].split(".", 1)[0]
                stale = pid.isdigit() and not _pid_alive(int(pid))
            if stale:
                p.unlink(missing_ok=True)
                removed.append(p)
    return removed


# --------------------------------------------------------------------------------------------- allow-lists
def _qualname(obj: Any) -> str:
    return f"{obj.__module__}.{obj.__qualname__}"


@functools.lru_cache(maxsize=1)
def allowed_classes() -> dict[str, type]:
    """Every class a checkpoint may name, by ``module.qualname``: the policies of every algorithm the project
    trains, its own policies, SB3's buffers and feature extractors, torch activations and optimizers. Nothing is
    imported by a name read from a file."""
    import importlib

    import torch

    from agents.policies import ALGO_CLASSES

    classes: list[type] = []
    for module, name in ALGO_CLASSES.values():
        try:
            algo_cls = getattr(importlib.import_module(module), name)
        except ImportError:
            continue
        classes += list(getattr(algo_cls, "policy_aliases", {}).values())
    from agents.common.device_policy import DevicePolicy
    from agents.common.distributions import FastMultiDiscretePolicy

    classes += [DevicePolicy, FastMultiDiscretePolicy]
    for module in ("stable_baselines3.common.buffers", "sb3_contrib.common.maskable.buffers",
                   "sb3_contrib.common.recurrent.buffers", "stable_baselines3.common.torch_layers"):
        try:
            mod = importlib.import_module(module)
        except ImportError:
            continue
        classes += [v for v in vars(mod).values() if isinstance(v, type) and v.__module__ == mod.__name__]
    classes += [v for v in vars(torch.nn.modules.activation).values()
                if isinstance(v, type) and issubclass(v, torch.nn.Module)]
    classes += [v for v in vars(torch.optim).values() if isinstance(v, type) and issubclass(v, torch.optim.Optimizer)]
    return {_qualname(c): c for c in classes}


def _lookup_class(name: Any, key: str) -> type:
    table = allowed_classes()
    if not isinstance(name, str) or name not in table:
        raise CheckpointError(f"entry {key!r} names class {name!r}, which is not one the project loads")
    return table[name]


# --------------------------------------------------------------------------------------------- SB3 entries as JSON
def _describe_schedule(obj: Any) -> dict[str, Any] | None:
    from stable_baselines3.common.utils import ConstantSchedule, FloatSchedule, LinearSchedule

    if isinstance(obj, (int, float)) and not isinstance(obj, bool):
        return {"kind": "constant", "value": float(obj)}
    if isinstance(obj, FloatSchedule):
        return _describe_schedule(obj.value_schedule)
    if isinstance(obj, ConstantSchedule):
        return {"kind": "constant", "value": float(obj.val)}
    if isinstance(obj, LinearSchedule):
        return {"kind": "sb3_linear", "start": float(obj.start), "end": float(obj.end),
                "end_fraction": float(obj.end_fraction)}
    # agents.common.hyperparams.linear_schedule: a closure over ``initial``
    if (callable(obj) and getattr(obj, "__module__", None) == "agents.common.hyperparams"
            and getattr(obj, "__qualname__", "") == "linear_schedule.<locals>.schedule" and obj.__closure__):
        return {"kind": "linear_to_zero", "initial": float(obj.__closure__[0].cell_contents)}
    return None


def _build_schedule(spec: dict[str, Any], key: str) -> Any:
    from stable_baselines3.common.utils import ConstantSchedule, LinearSchedule

    kind = spec.get("kind")
    if kind == "constant":
        return ConstantSchedule(float(spec["value"]))
    if kind == "sb3_linear":
        return LinearSchedule(float(spec["start"]), float(spec["end"]), float(spec["end_fraction"]))
    if kind == "linear_to_zero":
        from agents.common.hyperparams import linear_schedule

        return linear_schedule(float(spec["initial"]))
    raise CheckpointError(f"entry {key!r} has an unknown schedule {spec!r}")


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=True)
    except (TypeError, ValueError):
        return False
    return True


def _describe_noise(noise: Any) -> dict[str, Any] | None:
    from stable_baselines3.common.noise import NormalActionNoise, OrnsteinUhlenbeckActionNoise, VectorizedActionNoise

    if isinstance(noise, VectorizedActionNoise):  # what SB3 makes of a noise for n_envs > 1
        base = _describe_noise(noise.base_noise)
        return None if base is None else {"kind": "vectorized_noise", "base": base, "n_envs": int(noise.n_envs)}
    if isinstance(noise, NormalActionNoise):
        return {"kind": "normal_noise", "mean": np.asarray(noise._mu).tolist(),
                "sigma": np.asarray(noise._sigma).tolist(), "dtype": np.dtype(noise._dtype).name}
    if isinstance(noise, OrnsteinUhlenbeckActionNoise):
        return {"kind": "ou_noise", "mean": np.asarray(noise._mu).tolist(), "sigma": np.asarray(noise._sigma).tolist(),
                "theta": float(noise._theta), "dt": float(noise._dt), "dtype": np.dtype(noise._dtype).name,
                "initial_noise": None if noise.initial_noise is None else np.asarray(noise.initial_noise).tolist()}
    return None


def _build_noise(spec: dict[str, Any]) -> Any:
    from stable_baselines3.common.noise import NormalActionNoise, OrnsteinUhlenbeckActionNoise, VectorizedActionNoise

    kind = spec["kind"]
    if kind == "vectorized_noise":
        return VectorizedActionNoise(_build_noise(spec["base"]), int(spec["n_envs"]))
    if kind == "normal_noise":
        return NormalActionNoise(np.asarray(spec["mean"], float), np.asarray(spec["sigma"], float),
                                 dtype=np.dtype(spec["dtype"]))
    if kind == "ou_noise":
        init = spec.get("initial_noise")
        return OrnsteinUhlenbeckActionNoise(
            np.asarray(spec["mean"], float), np.asarray(spec["sigma"], float), theta=float(spec["theta"]),
            dt=float(spec["dt"]), initial_noise=None if init is None else np.asarray(init, float),
            dtype=np.dtype(spec["dtype"]))
    raise ValueError(f"unknown action noise kind {kind!r}")


def _describe(key: str, value: Any) -> dict[str, Any] | None:
    """A JSON description of one pickled ``data`` entry, or None if the project cannot rebuild it."""
    from stable_baselines3.common.type_aliases import TrainFreq

    if key in ("observation_space", "action_space"):
        return {"kind": "env_space"}
    if key in ("_last_obs", "_last_episode_starts", "_last_original_obs"):
        return {"kind": "none"}  # rollout state: SB3's learn() resets the env when it is None
    if key in ("ep_info_buffer", "ep_success_buffer"):
        items = list(value) if value is not None else []
        return {"kind": "deque", "maxlen": getattr(value, "maxlen", None), "items": items if _jsonable(items) else []}
    if key in ("lr_schedule", "learning_rate", "clip_range", "clip_range_vf", "exploration_schedule"):
        sched = _describe_schedule(value)
        return None if sched is None else {"kind": "schedule", "schedule": sched, "float": key != "learning_rate"}
    if isinstance(value, type):
        return {"kind": "class", "name": _qualname(value)} if _qualname(value) in allowed_classes() else None
    if isinstance(value, TrainFreq):
        return {"kind": "train_freq", "frequency": int(value.frequency), "unit": value.unit.value}
    if key == "action_noise":
        noise = _describe_noise(value)
        return None if noise is None else {"kind": "action_noise", "noise": noise}
    if key == "policy_kwargs" and isinstance(value, dict):
        plain, classes = {}, {}
        allowed = allowed_classes()
        for k, v in value.items():
            if isinstance(v, type) and _qualname(v) in allowed:
                classes[k] = _qualname(v)
            elif _jsonable(v):
                plain[k] = v
            else:
                return None
        return {"kind": "policy_kwargs", "plain": plain, "classes": classes}
    return None


def describe_sb3_objects(model: Any, data_json: str | bytes) -> dict[str, dict[str, Any]]:
    """JSON descriptions of the pickled entries of a saved model's ``data`` (entries it cannot describe are left
    out; loading such a checkpoint then needs trust)."""
    data = json.loads(data_json)
    out = {}
    for key, item in data.items():
        if isinstance(item, dict) and SERIALIZED in item:
            spec = _describe(key, getattr(model, key, None))
            if spec is not None:
                out[key] = spec
    return out


def _check_space(key: str, space: Any, saved: dict[str, Any]) -> None:
    """Compare a rebuilt space with the readable fields SB3 stores beside the pickle (shape, dtype, nvec, n)."""
    import re

    problems = []
    shape = getattr(space, "shape", None)
    if shape is not None and isinstance(saved.get("_shape"), list) and list(saved["_shape"]) != list(shape):
        problems.append(f"shape {list(shape)} (checkpoint: {saved['_shape']})")
    dtype = getattr(space, "dtype", None)
    if dtype is not None and isinstance(saved.get("dtype"), str) and saved["dtype"] != str(dtype):
        problems.append(f"dtype {dtype} (checkpoint: {saved['dtype']})")
    if hasattr(space, "nvec") and isinstance(saved.get("nvec"), str):
        if [int(v) for v in re.findall(r"-?\d+", saved["nvec"])] != np.asarray(space.nvec).ravel().tolist():
            problems.append(f"nvec {np.asarray(space.nvec).tolist()} (checkpoint: {saved['nvec']})")
    if problems:
        raise CheckpointError(f"entry {key!r}: the environment recorded in the metadata now gives "
                              + "; ".join(problems))


def env_spaces(meta: dict[str, Any]) -> tuple[Any, Any]:
    """(observation_space, action_space) of the environment recorded in ``meta`` (env id, kwargs, action view)."""
    import gymnasium as gym

    from agents.common.envs import is_vmimo, vmimo_kwargs

    env_id = meta.get("env_id")
    if not isinstance(env_id, str):
        raise CheckpointError(f"metadata has no env_id (got {env_id!r})")
    env_kwargs = dict(meta.get("env_kwargs") or {})
    kwargs = vmimo_kwargs(env_id, env_kwargs, meta.get("action_view")) if is_vmimo(env_id) else env_kwargs
    env = gym.make(env_id, **kwargs)
    try:
        return env.observation_space, env.action_space
    finally:
        env.close()


def sb3_custom_objects(path: Path, meta: dict[str, Any], data_json: str | bytes,
                       spaces: tuple[Any, Any] | None = None, allow_missing: bool = False) -> dict[str, Any]:
    """``custom_objects`` for SB3's ``load`` that replace *every* pickled entry of ``data_json``.

    Raises :class:`CheckpointError` naming ``path`` and the entry when one cannot be rebuilt, unless
    ``allow_missing`` (trusted files), which leaves those entries to SB3's cloudpickle.
    """
    from stable_baselines3.common.type_aliases import TrainFreq, TrainFrequencyUnit
    from stable_baselines3.common.utils import FloatSchedule

    data = json.loads(data_json)
    specs = meta.get("sb3_objects") or {}
    if not isinstance(specs, dict):
        raise CheckpointError(f"checkpoint {path}: metadata field sb3_objects must be a mapping")
    out: dict[str, Any] = {}
    for key, item in data.items():
        if not (isinstance(item, dict) and SERIALIZED in item):
            continue
        spec = specs.get(key)
        if not isinstance(spec, dict) and allow_missing:
            continue
        if not isinstance(spec, dict):
            raise CheckpointError(_untrusted_message(path, f"holds a pickled entry {key!r} the project cannot "
                                                           "rebuild"))
        kind = spec.get("kind")
        try:
            if kind == "env_space":
                if spaces is None:
                    spaces = env_spaces(meta)
                space = spaces[0] if key == "observation_space" else spaces[1]
                _check_space(key, space, item)
                out[key] = space
            elif kind == "none":
                out[key] = None
            elif kind == "deque":
                maxlen = spec.get("maxlen")
                out[key] = deque(spec.get("items") or [], maxlen=None if maxlen is None else int(maxlen))
            elif kind == "schedule":
                sched = _build_schedule(spec["schedule"], key)
                out[key] = FloatSchedule(sched) if spec.get("float", True) else sched
            elif kind == "class":
                out[key] = _lookup_class(spec.get("name"), key)
            elif kind == "train_freq":
                out[key] = TrainFreq(int(spec["frequency"]), TrainFrequencyUnit(spec["unit"]))
            elif kind == "action_noise":
                out[key] = _build_noise(spec["noise"])
            elif kind == "policy_kwargs":
                kwargs = dict(spec.get("plain") or {})
                for k, name in (spec.get("classes") or {}).items():
                    kwargs[k] = _lookup_class(name, f"{key}.{k}")
                out[key] = kwargs
            else:
                raise CheckpointError(f"entry {key!r} has an unknown description kind {kind!r}")
        except CheckpointError as exc:
            raise CheckpointError(f"checkpoint {path}: {exc}") from None
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"checkpoint {path}: entry {key!r} has a malformed description {spec!r}: "
                                  f"{type(exc).__name__}: {exc}") from exc
    return out


# --------------------------------------------------------------------------------------------- VecNormalize
def vecnormalize_to_members(vecnormalize: Any) -> tuple[str, bytes]:
    """(JSON settings, ``.npz`` bytes of the running statistics) of a ``VecNormalize``."""
    arrays: dict[str, np.ndarray] = {}
    counts: dict[str, float] = {}
    obs_rms = getattr(vecnormalize, "obs_rms", None)
    obs_keys: list[str] | None = None
    if isinstance(obs_rms, dict):
        obs_keys = sorted(obs_rms)
        rms_items = [(f"obs_rms.{k}", obs_rms[k]) for k in obs_keys]
    else:
        rms_items = [("obs_rms", obs_rms)] if obs_rms is not None else []
    rms_items.append(("ret_rms", vecnormalize.ret_rms))
    for name, rms in rms_items:
        arrays[f"{name}.mean"] = np.asarray(rms.mean, dtype=np.float64)
        arrays[f"{name}.var"] = np.asarray(rms.var, dtype=np.float64)
        counts[name] = float(rms.count)
    settings = {"norm_obs": bool(vecnormalize.norm_obs), "norm_reward": bool(vecnormalize.norm_reward),
                "clip_obs": float(vecnormalize.clip_obs), "clip_reward": float(vecnormalize.clip_reward),
                "gamma": float(vecnormalize.gamma), "epsilon": float(vecnormalize.epsilon),
                "training": bool(vecnormalize.training),
                "norm_obs_keys": None if vecnormalize.norm_obs_keys is None else list(vecnormalize.norm_obs_keys),
                "obs_rms": None if obs_rms is None else ("dict" if obs_keys is not None else "array"),
                "obs_rms_keys": obs_keys, "counts": counts}
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return json.dumps(settings, indent=2, sort_keys=True), buf.getvalue()


class _SpacesOnlyVecEnv:
    """Just enough of a VecEnv for ``VecNormalize.__init__`` to build its statistics; detached right after."""

    def __init__(self, observation_space: Any, action_space: Any) -> None:
        self.observation_space = observation_space
        self.action_space = action_space
        self.num_envs = 1
        self.render_mode = None
        self.metadata: dict[str, Any] = {}

    def get_attr(self, name: str, indices: Any = None) -> list[Any]:
        return [getattr(self, name)]


def vecnormalize_from_members(settings_json: str | bytes, npz: bytes, observation_space: Any,
                              action_space: Any) -> Any:
    """A fresh, detached ``VecNormalize`` (``set_venv`` before stepping) holding the saved statistics."""
    from stable_baselines3.common.running_mean_std import RunningMeanStd
    from stable_baselines3.common.vec_env import VecNormalize

    s = json.loads(settings_json)
    with np.load(io.BytesIO(npz), allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    stub = _SpacesOnlyVecEnv(observation_space, action_space)
    vn = VecNormalize.__new__(VecNormalize)
    # VecEnvWrapper.__init__ only reads the spaces, num_envs, render_mode and metadata of the wrapped env
    VecNormalize.__init__(vn, stub, training=bool(s["training"]), norm_obs=bool(s["norm_obs"]),  # type: ignore[arg-type]
                          norm_reward=bool(s["norm_reward"]), clip_obs=float(s["clip_obs"]),
                          clip_reward=float(s["clip_reward"]), gamma=float(s["gamma"]),
                          epsilon=float(s["epsilon"]), norm_obs_keys=s.get("norm_obs_keys"))

    def rms(name: str) -> RunningMeanStd:
        mean, var = arrays[f"{name}.mean"], arrays[f"{name}.var"]
        if mean.dtype != np.float64 or var.shape != mean.shape:
            raise ValueError(f"{name}: mean/var must be float64 arrays of one shape, got {mean.dtype} "
                             f"{mean.shape} and {var.dtype} {var.shape}")
        out = RunningMeanStd(shape=mean.shape)
        out.mean, out.var, out.count = mean.copy(), var.copy(), float(s["counts"][name])
        return out

    if s.get("obs_rms") == "dict":
        vn.obs_rms = {k: rms(f"obs_rms.{k}") for k in s["obs_rms_keys"]}  # type: ignore[assignment]
    elif s.get("obs_rms") == "array":
        saved = rms("obs_rms")
        if saved.mean.shape != tuple(observation_space.shape):
            raise ValueError(f"obs_rms has shape {saved.mean.shape}, the observation space {observation_space.shape}")
        vn.obs_rms = saved
    vn.ret_rms = rms("ret_rms")
    vn.venv = None  # type: ignore[assignment]  # detached, like an unpickled VecNormalize
    return vn


# --------------------------------------------------------------------------------------------- save / read
def save_checkpoint(path: str | Path, model: Any, meta: dict[str, Any], vecnormalize: Any = None) -> Path:
    """Save ``model`` (+ VecNormalize statistics + ``meta``) as one atomic checkpoint file at ``path``."""
    path = Path(path)
    buf = io.BytesIO()
    model.save(buf)  # SB3 accepts a file-like object: the archive never touches the disk half-written
    with zipfile.ZipFile(buf, "r") as zf:
        data_json = zf.read("data")
    objects = describe_sb3_objects(model, data_json)
    missing = sorted(k for k, v in json.loads(data_json).items()
                     if isinstance(v, dict) and SERIALIZED in v and k not in objects)
    if missing:
        warnings.warn(f"checkpoint {path}: entries {missing} cannot be stored as plain data; loading it will need "
                      f"{TRUST_FLAG}", RuntimeWarning, stacklevel=2)
    full_meta = {"format": FORMAT, "num_timesteps": int(model.num_timesteps), **meta,
                 "has_vecnormalize": vecnormalize is not None, "sb3_objects": objects}
    with zipfile.ZipFile(buf, "a", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(META_NAME, json.dumps(full_meta, indent=2, sort_keys=True, default=str))
        if vecnormalize is not None:
            settings, npz = vecnormalize_to_members(vecnormalize)
            zf.writestr(VECNORM_JSON, settings)
            zf.writestr(VECNORM_NPZ, npz)
    atomic_write_bytes(path, buf.getvalue())
    return path


def _open_verified(path: Path, raw: bytes | None = None) -> tuple[set[str], dict[str, bytes]]:
    """Member names and the bytes of the small members, after checking every member's CRC.

    ``raw``: the file's bytes, already read (so the members checked are those handed to SB3).
    """
    if raw is None and not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        with zipfile.ZipFile(io.BytesIO(raw) if raw is not None else path) as zf:
            bad = zf.testzip()
            if bad is not None:
                raise CheckpointError(f"checkpoint {path} is corrupt: member {bad!r} fails its CRC check")
            names = set(zf.namelist())
            wanted = ("data", META_NAME, VECNORM_JSON, VECNORM_NPZ, LEGACY_VECNORM)
            return names, {n: zf.read(n) for n in wanted if n in names}
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {path} is corrupt or unreadable: {type(exc).__name__}: {exc}") from exc


def read_checkpoint(path: str | Path, trust: bool | None = None) -> Checkpoint:
    """Open and verify a checkpoint (CRC of every member, metadata present and of a known format).

    Nothing is unpickled unless ``trust`` (default: :func:`trusting_checkpoints`, else False): the VecNormalize
    statistics are read from plain arrays. A checkpoint of the old format (``vecnormalize.pkl``) is refused
    without trust and read the old way, with a warning, with it.
    """
    path = Path(path)
    trust = _trust(trust)
    names, members = _open_verified(path)
    if "data" not in names:
        raise CheckpointError(f"checkpoint {path} is not a Stable-Baselines3 model archive (no 'data')")
    if META_NAME not in names:
        raise CheckpointError(f"checkpoint {path} has no {META_NAME}: not written by train_agent.py "
                              f"(a plain SB3 model can be evaluated with {TRUST_FLAG} but not resumed)")
    try:
        meta = json.loads(members[META_NAME])
    except (ValueError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"checkpoint {path} is corrupt or unreadable: {META_NAME}: {exc}") from exc
    if not isinstance(meta, dict):
        raise CheckpointError(f"checkpoint {path}: {META_NAME} must hold a JSON object, got {type(meta).__name__}")
    fmt = meta.get("format")
    legacy = fmt in LEGACY_FORMATS or LEGACY_VECNORM in names
    if fmt != FORMAT and fmt not in LEGACY_FORMATS:
        raise CheckpointError(f"checkpoint {path} has format {fmt!r}, expected {FORMAT!r}")
    if legacy and not trust:
        raise CheckpointError(_untrusted_message(
            path, f"was written by an older version (format {fmt!r}, pickled {LEGACY_VECNORM})",
            f", or convert it once: python -m agents.checkpoint convert OLD.zip NEW.zip {TRUST_FLAG}"))
    vecnorm = None
    extra: dict[str, Any] = {}
    try:
        if legacy:
            _warn_trusted(path, f"old checkpoint format {fmt!r}")
            if LEGACY_VECNORM in members:
                vecnorm = pickle.loads(members[LEGACY_VECNORM])
        elif VECNORM_JSON in members or VECNORM_NPZ in members:
            if VECNORM_JSON not in members or VECNORM_NPZ not in members:
                raise CheckpointError(f"checkpoint {path} has only one of {VECNORM_JSON} and {VECNORM_NPZ}")
            extra["spaces"] = spaces = env_spaces(meta)
            vecnorm = vecnormalize_from_members(members[VECNORM_JSON], members[VECNORM_NPZ], *spaces)
    except CheckpointError:
        raise
    except Exception as exc:  # malformed statistics, unknown env id, a broken legacy pickle: all name the file
        raise CheckpointError(f"checkpoint {path}: VecNormalize statistics unreadable: "
                              f"{type(exc).__name__}: {exc}") from exc
    return Checkpoint(path, meta, vecnorm, extra, trusted=trust)


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
    """Load the SB3 model of ``ckpt`` without unpickling anything.

    Every pickled entry of the zip's ``data`` is rebuilt (:func:`sb3_custom_objects`) and passed to SB3's
    ``load`` as ``custom_objects``, which then never calls cloudpickle; only a ``ckpt.trusted`` checkpoint may
    leave entries the project cannot rebuild to cloudpickle (with a warning). Space mismatches, unreadable tensors and
    entries that cannot be rebuilt become :class:`CheckpointError` naming the file.
    """
    try:
        raw = ckpt.path.read_bytes()  # one read: the data checked below is the data SB3 loads
    except OSError as exc:
        raise CheckpointError(f"checkpoint {ckpt.path} is unreadable: {type(exc).__name__}: {exc}") from exc
    _, members = _open_verified(ckpt.path, raw)
    spaces = ckpt.extra.get("spaces")
    if env is not None:  # the run's own env: the recorded env's spaces, checked again by SB3
        spaces = (env.observation_space, env.action_space)
    objects = sb3_custom_objects(ckpt.path, ckpt.meta, members["data"], spaces, allow_missing=ckpt.trusted)
    pickled = [k for k, v in json.loads(members["data"]).items()
               if isinstance(v, dict) and SERIALIZED in v and k not in objects]
    if pickled:  # only reachable with trust
        _warn_trusted(ckpt.path, f"unpickling its entries {pickled}")
    kwargs["custom_objects"] = {**objects, **(kwargs.get("custom_objects") or {})}
    try:
        return algo_cls.load(io.BytesIO(raw), env=env, device=device, **kwargs)
    except CheckpointError:
        raise
    except Exception as exc:  # SB3 raises ValueError/KeyError/RuntimeError for mismatching spaces or weights
        raise CheckpointError(f"checkpoint {ckpt.path} cannot be loaded into this run: "
                              f"{type(exc).__name__}: {exc}") from exc


def load_trained(path: str | Path, algo: str | None = None, *, device: str = "cpu",
                 trust: bool | None = None) -> TrainedModel:
    """A trained model for evaluation: a checkpoint of ``train_agent.py`` (safe), or with ``trust`` any SB3 zip.

    ``algo`` defaults to the checkpoint's; a plain SB3 zip (no metadata) needs ``trust=True`` and ``algo``.
    ``trust=None`` follows :func:`trusting_checkpoints` (off by default).
    """
    from agents.policies import algo_class

    path = Path(path)
    trust = _trust(trust)
    names, _ = _open_verified(path)
    if META_NAME in names:
        ckpt = read_checkpoint(path, trust=trust)
        saved = ckpt.meta.get("algo")
        if algo is not None and isinstance(saved, str) and algo != saved:
            raise ValueError(f"{path} holds a {saved} model, not {algo}: drop the '{algo}:' prefix or use '{saved}:'")
        algo = algo or saved
        if not isinstance(algo, str):
            raise CheckpointError(f"checkpoint {path} does not record its algorithm; pass it as algo:path")
        model = load_model(ckpt, algo_class(algo), device=device)
        return TrainedModel(model, ckpt.vecnormalize, ckpt.meta.get("action_view"), ckpt.meta, algo)
    if "data" not in names:
        raise CheckpointError(f"checkpoint {path} is not a Stable-Baselines3 model archive (no 'data')")
    if not trust:
        raise CheckpointError(_untrusted_message(path, f"is not a VMIMO checkpoint (no {META_NAME}): a plain SB3 "
                                                       "zip stores pickled objects"))
    if algo is None:
        raise ValueError(f"cannot tell the algorithm of {path}; pass it as algo:path (e.g. ppo:{path})")
    _warn_trusted(path, "plain Stable-Baselines3 zip")
    return TrainedModel(algo_class(algo).load(path, device=device), None, None, {}, algo)


def find_pickled_entries(path: str | Path) -> list[str]:
    """Names of the cloudpickled entries of the zip's ``data`` (read as JSON; nothing is unpickled)."""
    _, members = _open_verified(Path(path))
    data = json.loads(members.get("data", b"{}"))
    return [k for k, v in data.items() if isinstance(v, dict) and SERIALIZED in v]


# --------------------------------------------------------------------------------------------- replay buffers
def save_replay_buffer(model: Any, path: str | Path) -> Path:
    """Write ``model.replay_buffer``'s arrays and position as one ``.npz`` (no pickle), atomically."""
    rb = model.replay_buffer
    arrays: dict[str, np.ndarray] = {"pos": np.asarray(rb.pos, dtype=np.int64), "full": np.asarray(rb.full)}
    for name, value in vars(rb).items():
        if isinstance(value, np.ndarray):
            arrays[name] = value
        elif isinstance(value, dict) and value and all(isinstance(v, np.ndarray) for v in value.values()):
            arrays.update({f"{name}.{k}": v for k, v in value.items()})
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)


def load_replay_buffer(model: Any, path: str | Path) -> None:
    """Fill ``model.replay_buffer`` (already built by SB3 with the checkpoint's size) from :func:`save_replay_buffer`.

    Every array must match the buffer's shape and dtype; :class:`CheckpointError` names the file otherwise.
    """
    path = Path(path)
    rb = model.replay_buffer
    try:
        with np.load(path, allow_pickle=False) as z:
            saved = {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise CheckpointError(f"replay buffer {path} is corrupt or unreadable: {type(exc).__name__}: {exc}") from exc
    targets: dict[str, tuple[Any, str | None]] = {}
    for name, value in vars(rb).items():
        if isinstance(value, np.ndarray):
            targets[name] = (rb, None)
        elif isinstance(value, dict) and value and all(isinstance(v, np.ndarray) for v in value.values()):
            targets.update({f"{name}.{k}": (value, k) for k in value})
    for key, (owner, sub) in targets.items():
        current = getattr(owner, key) if sub is None else owner[sub]
        got = saved.get(key)
        if got is None or got.shape != current.shape or got.dtype != current.dtype:
            raise CheckpointError(f"replay buffer {path}: array {key!r} should be {current.dtype} {current.shape}, "
                                  f"got {None if got is None else (got.dtype, got.shape)}")
    for key, (owner, sub) in targets.items():
        if sub is None:
            setattr(owner, key, saved[key].copy())
        else:
            owner[sub] = saved[key].copy()
    rb.pos, rb.full = int(saved["pos"]), bool(saved["full"])


# --------------------------------------------------------------------------------------------- paths
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


# --------------------------------------------------------------------------------------------- conversion CLI
def convert(old: str | Path, new: str | Path, *, trust: bool = False) -> Path:
    """Rewrite a checkpoint of the old format (``vecnormalize.pkl``) as the current one. Needs ``trust``: the old
    file is unpickled once, so only convert files you made yourself."""
    if not trust:
        raise CheckpointError(_untrusted_message(Path(old), "is converted by unpickling it"))
    from agents.policies import algo_class

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ckpt = read_checkpoint(old, trust=True)
        model = load_model(ckpt, algo_class(ckpt.meta["algo"]))
    meta = {k: v for k, v in ckpt.meta.items() if k not in ("format", "has_vecnormalize", "sb3_objects")}
    return save_checkpoint(new, model, meta, ckpt.vecnormalize)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agents.checkpoint", description="VMIMO checkpoint tools")
    sub = parser.add_subparsers(dest="cmd", required=True)
    conv = sub.add_parser("convert", help="rewrite an old checkpoint (pickled VecNormalize) in the current format")
    conv.add_argument("old", help="checkpoint to read (unpickled once: only one you made yourself)")
    conv.add_argument("new", help="where to write the converted checkpoint")
    conv.add_argument(TRUST_FLAG, dest="trust", action="store_true",
                      help="confirm the old file is yours (required: converting it runs its pickles)")
    args = parser.parse_args(argv)
    try:
        out = convert(args.old, args.new, trust=args.trust)
    except CheckpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"Wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
