"""Weights & Biases for VMIMO training: a fail-safe run wrapper, the SB3 logger bridge and an offline-run reader.

- :class:`WandbRun` wraps ``wandb.init``/``log``/``finish`` so that no W&B problem (no network, a bad key, a full
  disk) can stop training: ``online`` falls back to ``offline``, then to ``disabled``, each time with a warning;
  a failing ``log`` call is reported once and skipped.
- :class:`WandbOutputFormat` is an SB3 ``KVWriter``: added to the model's logger, it forwards every scalar SB3
  records (``rollout/*``, ``train/*``, ``time/*``, and everything our callbacks record) to ``wandb.log`` at the
  step SB3 dumps, so the W&B dashboard shows exactly what the console and ``progress.csv`` show.
- :func:`read_offline_run` parses an offline run's ``run-*.wandb`` file (the LevelDB-log framing W&B uses for its
  transaction log) into config, history rows and summary, so tests and scripts can check what a run logged
  without a server.
"""

from __future__ import annotations

import glob
import json
import netrc
import os
import struct
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.logger import KVWriter

MODES = ("online", "offline", "disabled")
STEP_METRIC = "global_step"


def api_key_configured() -> bool:
    """True when ``WANDB_API_KEY`` is set or a netrc file holds credentials for the W&B host."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai").split("://")[-1].split("/")[0].split(":")[0]
    path = os.environ.get("NETRC") or os.path.expanduser("~/.netrc")
    try:
        return netrc.netrc(path).authenticators(host) is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def default_mode() -> str:
    """``WANDB_MODE`` if set, else ``online`` with an API key configured, else ``offline``."""
    env = os.environ.get("WANDB_MODE")
    if env in MODES:
        return env
    if env == "dryrun":
        return "offline"
    return "online" if api_key_configured() else "offline"


def _to_scalar(value: Any) -> float | int | None:
    """A loggable Python number, or None for anything that is not a finite-or-nan scalar."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, np.generic) and np.issubdtype(value.dtype, np.number):
        return value.item()
    if isinstance(value, np.ndarray) and value.size == 1 and np.issubdtype(value.dtype, np.number):
        return value.item()
    item = getattr(value, "item", None)  # torch scalars
    if callable(item) and getattr(value, "numel", lambda: 2)() == 1:
        try:
            out = item()
        except Exception:
            return None
        return out if isinstance(out, (int, float)) else None
    return None


class WandbRun:
    """A W&B run that never raises: ``init`` falls back online → offline → disabled, ``log`` swallows errors."""

    def __init__(self, project: str, mode: str, config: Mapping[str, Any], *, name: str | None = None,
                 group: str | None = None, tags: list[str] | None = None, directory: str | Path | None = None,
                 job_type: str = "train", entity: str | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"wandb mode must be one of {list(MODES)}, got {mode!r}")
        self.requested_mode = mode
        self.mode = "disabled"
        self.run: Any = None
        self._warned_log = False
        self.dir = str(directory) if directory is not None else None
        self.entity = entity
        order = {"online": ["online", "offline", "disabled"], "offline": ["offline", "disabled"],
                 "disabled": ["disabled"]}[mode]
        for attempt in order:
            try:
                self.run = self._init(attempt, project, dict(config), name, group, tags, job_type)
                self.mode = attempt
                break
            except Exception as exc:  # network errors, auth errors, CommError, timeouts: never fatal
                nxt = order[order.index(attempt) + 1] if attempt != order[-1] else None
                warnings.warn(f"wandb.init in {attempt} mode failed ({type(exc).__name__}: {exc}); "
                              f"{'falling back to ' + nxt if nxt else 'logging to W&B is off'}",
                              RuntimeWarning, stacklevel=2)
                self.run = None
        if self.run is not None and self.mode != "disabled":
            self._safe(lambda: self.run.define_metric(STEP_METRIC))
            self._safe(lambda: self.run.define_metric("*", step_metric=STEP_METRIC))

    def _init(self, mode: str, project: str, config: dict[str, Any], name: str | None, group: str | None,
              tags: list[str] | None, job_type: str) -> Any:
        # our package is called `agents`, which W&B mistakes for an LLM-agents SDK and advertises Weave for
        os.environ.setdefault("WANDB_DISABLE_WEAVE", "true")
        import wandb

        settings = wandb.Settings(init_timeout=60, console="off", silent=True, x_disable_stats=True)
        kwargs: dict[str, Any] = {"project": project, "mode": mode, "config": config, "name": name,
                                  "group": group, "tags": tags, "job_type": job_type, "settings": settings,
                                  "entity": self.entity, "reinit": "finish_previous",
                                  "save_code": True}  # the entry script; agents.wandb_extras.log_code the rest
        if self.dir is not None:
            Path(self.dir).mkdir(parents=True, exist_ok=True)
            kwargs["dir"] = self.dir
        return wandb.init(**kwargs)

    # ------------------------------------------------------------------ logging
    @property
    def active(self) -> bool:
        return self.run is not None and self.mode != "disabled"

    @property
    def run_dir(self) -> str | None:
        if not self.active:
            return None
        return self._safe(lambda: os.path.dirname(self.run.dir))

    def _safe(self, fn: Any) -> Any:
        try:
            return fn()
        except Exception as exc:
            if not self._warned_log:
                warnings.warn(f"wandb call failed ({type(exc).__name__}: {exc}); training continues, further "
                              "W&B errors are silenced", RuntimeWarning, stacklevel=3)
                self._warned_log = True
            return None

    def log(self, data: Mapping[str, Any], step: int) -> None:
        """Log ``data`` at environment step ``step`` (our x-axis, ``global_step``; W&B's own step is internal)."""
        if not self.active or not data:
            return
        payload = dict(data)
        payload[STEP_METRIC] = int(step)
        self._safe(lambda: self.run.log(payload))

    def log_scalars(self, data: Mapping[str, Any], step: int) -> None:
        """Like :meth:`log` but keeps only numeric scalars (what the SB3 bridge forwards)."""
        out = {}
        for key, value in data.items():
            scalar = _to_scalar(value)
            if scalar is not None:
                out[key] = scalar
        self.log(out, step)

    def summary_update(self, data: Mapping[str, Any]) -> None:
        if self.active:
            self._safe(lambda: self.run.summary.update(dict(data)))

    def config_update(self, data: Mapping[str, Any]) -> None:
        if self.active:
            self._safe(lambda: self.run.config.update(dict(data), allow_val_change=True))

    def table(self, columns: list[str], rows: list[list[Any]]) -> Any:
        """A ``wandb.Table`` (or None when W&B is off)."""
        if not self.active:
            return None

        def make() -> Any:
            import wandb

            return wandb.Table(columns=columns, data=rows)

        return self._safe(make)

    def image(self, fig: Any) -> Any:
        """A ``wandb.Image`` of a matplotlib figure (or None)."""
        if not self.active:
            return None

        def make() -> Any:
            import wandb

            return wandb.Image(fig)

        return self._safe(make)

    def finish(self, exit_code: int = 0) -> None:
        if self.run is not None:
            self._safe(lambda: self.run.finish(exit_code=exit_code))
            self.run = None


class WandbOutputFormat(KVWriter):
    """SB3 ``KVWriter`` forwarding every recorded scalar to W&B at the step SB3 dumps (``num_timesteps``)."""

    def __init__(self, run: WandbRun) -> None:
        self.run = run

    def write(self, key_values: dict[str, Any], key_excluded: dict[str, tuple[str, ...]], step: int = 0) -> None:
        out = {}
        for key, value in key_values.items():
            excluded = key_excluded.get(key)
            if excluded is not None and "wandb" in excluded:
                continue
            scalar = _to_scalar(value)
            if scalar is not None:
                out[key] = scalar
        self.run.log(out, step)

    def close(self) -> None:
        return None


# ====================================================================== offline-run reader
_BLOCK = 32768
_HEADER = 7  # ":W&B" + magic 0xBEE1 (little endian) + version byte


def _records(path: str | Path):
    """Yield the raw protobuf payloads of a W&B transaction log (LevelDB log framing)."""
    data = Path(path).read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{path} is not a W&B run file (bad header {data[:4]!r})")
    pos, pending = _HEADER, b""
    while pos + 7 <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < 7:  # a block tail too short for a record header is zero padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if kind == 0 and length == 0:
            pos += left
            continue
        chunk = data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind == 1:  # FULL
            yield chunk
        elif kind == 2:  # FIRST
            pending = chunk
        elif kind == 3:  # MIDDLE
            pending += chunk
        elif kind == 4:  # LAST
            yield pending + chunk
            pending = b""


def _decode(value_json: str) -> Any:
    try:
        return json.loads(value_json)
    except (json.JSONDecodeError, TypeError):
        return value_json


def read_offline_run(path: str | Path, wait_s: float = 0.0) -> dict[str, Any]:
    """Config, history rows and summary of an offline run.

    ``path`` is a run folder (``.../wandb/offline-run-*``), its ``run-*.wandb`` file, or a folder holding
    ``wandb/`` (the newest offline run there is read). Returns ``{"config": {...}, "history": [{...}, ...],
    "summary": {...}, "complete": bool, "path": str}``; keys are W&B's (``/``-joined for nested keys).
    ``complete`` tells whether the run's exit record is there: ``wandb.finish`` can return before W&B's service
    process has flushed the log, so ``wait_s`` re-reads until it is (or the time is up).
    """
    deadline = time.monotonic() + wait_s
    while True:
        out = _read_offline_run(path)
        if out["complete"] or time.monotonic() >= deadline:
            return out
        time.sleep(0.2)


def _read_offline_run(path: str | Path) -> dict[str, Any]:
    from wandb.proto import wandb_internal_pb2 as pb

    path = Path(path)
    if path.is_dir():
        files = sorted(glob.glob(str(path / "run-*.wandb")))
        if not files:
            files = sorted(glob.glob(str(path / "**" / "offline-run-*" / "run-*.wandb"), recursive=True),
                           key=os.path.getmtime)
        if not files:
            raise FileNotFoundError(f"no offline W&B run under {path}")
        path = Path(files[-1])
    config: dict[str, Any] = {}
    history: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    complete = False
    for payload in _records(path):
        rec = pb.Record()
        try:
            rec.ParseFromString(payload)
        except Exception:  # a record still being written at the end of a live run's log
            continue
        kind = rec.WhichOneof("record_type")
        complete |= kind == "exit"
        if kind == "history":
            history.append({(it.key or "/".join(it.nested_key)): _decode(it.value_json) for it in rec.history.item})
        elif kind == "summary":
            for it in rec.summary.update:
                summary[it.key or "/".join(it.nested_key)] = _decode(it.value_json)
        elif kind in ("config", "run"):
            items = rec.config.update if kind == "config" else rec.run.config.update
            for it in items:
                value = _decode(it.value_json)
                if isinstance(value, dict) and set(value) == {"value"}:
                    value = value["value"]
                elif isinstance(value, dict) and "value" in value and "desc" in value:
                    value = value["value"]
                config[it.key or "/".join(it.nested_key)] = value
    return {"config": config, "history": history, "summary": summary, "complete": complete, "path": str(path)}


def logged_keys(run: Mapping[str, Any]) -> set[str]:
    """Every metric name that appears in a run's history (as returned by :func:`read_offline_run`)."""
    keys: set[str] = set()
    for row in run["history"]:
        keys.update(row)
    return keys
