"""Weights & Biases for VMIMO training: a fail-safe run wrapper and the SB3 logger bridge.

- :class:`WandbRun` wraps ``wandb.init``/``log``/``finish`` so that no W&B problem (no network, a bad key, a full
  disk) can stop training: ``online`` falls back to ``offline``, then to ``disabled``, each time with a warning;
  ``init_timeout`` (default :data:`DEFAULT_INIT_TIMEOUT`) bounds how long an unreachable server can delay the
  start; a failing ``log`` call is reported once and skipped.
- :class:`WandbOutputFormat` is an SB3 ``KVWriter``: added to the model's logger, it forwards every scalar SB3
  records (``rollout/*``, ``train/*``, ``time/*``, and everything our callbacks record) to ``wandb.log`` at the
  step SB3 dumps, so the W&B dashboard shows exactly what the console and ``progress.csv`` show.
"""

from __future__ import annotations

import netrc
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.logger import KVWriter

MODES = ("online", "offline", "disabled")
# seconds wandb.init may wait for the server before the run falls back to offline: an unreachable server or a
# rejected key must not hold training up for W&B's own default of a minute or more
DEFAULT_INIT_TIMEOUT = 10.0
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
                 job_type: str = "train", entity: str | None = None,
                 init_timeout: float = DEFAULT_INIT_TIMEOUT) -> None:
        if mode not in MODES:
            raise ValueError(f"wandb mode must be one of {list(MODES)}, got {mode!r}")
        if not init_timeout > 0:
            raise ValueError(f"wandb init_timeout must be > 0 seconds, got {init_timeout!r}")
        self.init_timeout = float(init_timeout)
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

        settings = wandb.Settings(init_timeout=self.init_timeout, console="off", silent=True, x_disable_stats=True)
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
