"""The W&B dashboard extras of ``train_agent.py``: model artifacts, code, allocation histograms, episode media.

Everything here goes through :class:`agents.wandb_logging.WandbRun` and is a no-op when W&B is off; no call can
stop training (errors are reported once by ``WandbRun`` and skipped).

- :func:`log_model_artifacts`: the best and final models as W&B artifacts of type ``"model"`` (metadata: env id,
  algorithm, seed, env steps, plus what the caller adds), aliases ``best`` / ``final``.
- :func:`log_code`: the repository's Python sources as a code artifact (``wandb.init(save_code=True)`` saves only
  the entry script, and only when it is run as a script).
- :class:`WandbMediaCallback`: every ``freq`` env steps (the evaluation interval) and at the end of training,
  histograms of the allocation, and at every ``media_every``-th of these and at the end one short rendered episode:

  - ``dist/power_dbm``, ``dist/prefix``, ``dist/group_size`` from the actions the training environments took since
    the previous log (decoded with the environment's own ``ActionLayout``); ``dist/sinr_db`` and ``dist/queue``
    too when the training infos carry them (``--vec-env dummy``/``subproc``: per-step ``VMIMOEnv`` infos);
  - ``eval_episode/dist/*`` (the same five) and ``eval_episode/video`` (``wandb.Video`` when moviepy is installed,
    else ``eval_episode/frames``, a few ``wandb.Image``) from one episode of the current policy on a
    ``render_mode="rgb_array"`` environment (deterministic actions, a fixed seed).

SINR is in dB (scheduled devices only), queue in scenes, power in dBm, prefix in latent reals, group size in devices
per non-empty virtual-MIMO group.
"""

from __future__ import annotations

import importlib.util
import math
import shutil
import tempfile
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from agents.wandb_logging import WandbRun

DIST_KEYS: tuple[str, ...] = ("sinr_db", "queue", "power_dbm", "prefix", "group_size")
CODE_GLOBS: tuple[str, ...] = ("train_agent.py", "agents/**/*.py", "vmimo_env/**/*.py", "semantic_models/**/*.py")
MEDIA_SEED = 987_654  # the rendered episode's seed: outside the training and held-out seed ranges


# ====================================================================== artifacts and code
def model_artifact_name(algo: str, env_id: str) -> str:
    """``model-<algo>-<env id>``: one artifact per algorithm and environment, one version per saved model."""
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in f"model-{algo}-{env_id}")


def log_model_artifacts(run: WandbRun, models: Mapping[str, str | Path | None], *, env_id: str, algo: str, seed: int,
                        steps: int, metadata: Mapping[str, Any] | None = None) -> list[str]:
    """Log each existing model file as a ``"model"`` artifact version aliased by its key (``best``, ``final``).

    Returns the aliases logged (none when W&B is off or no file exists).
    """
    if not run.active:
        return []
    import wandb

    logged = []
    for alias, path in models.items():
        if path is None or not Path(path).is_file():
            continue
        meta = {"env_id": env_id, "algo": algo, "seed": int(seed), "steps": int(steps), "kind": alias,
                **dict(metadata or {})}

        def log(path: Path = Path(path), alias: str = alias, meta: dict[str, Any] = meta) -> None:
            art = wandb.Artifact(model_artifact_name(algo, env_id), type="model", metadata=meta,
                                 description=f"{algo} on {env_id}, seed {seed}: {alias} model at {steps} env steps")
            art.add_file(str(path), name=path.name)
            run.run.log_artifact(art, aliases=[alias])

        run._safe(log)
        logged.append(alias)
    return logged


def log_code(run: WandbRun, root: str | Path) -> bool:
    """Save the repository's Python sources under ``root`` (``CODE_GLOBS``) as the run's code artifact."""
    if not run.active:
        return False
    root = Path(root).resolve()
    wanted = sorted({p.resolve() for pattern in CODE_GLOBS for p in root.glob(pattern)})

    def log() -> bool:
        # wandb's log_code walks every file under its root before filtering (with a .venv beside the sources: tens
        # of thousands of files, seconds of start-up), so it gets a staging folder holding only the wanted files;
        # the artifact copies them while logging, before the folder goes
        with tempfile.TemporaryDirectory(prefix="vmimo-code-") as stage:
            for path in wanted:
                dest = Path(stage) / path.relative_to(root)
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, dest)
            run.run.log_code(stage, include_fn=lambda *_: True)
        return True

    return bool(run._safe(log))


# ====================================================================== histograms
def allocation_samples(native: Mapping[str, np.ndarray], power_levels_db: np.ndarray, compression_levels: np.ndarray,
                       max_power_w: float) -> dict[str, np.ndarray]:
    """Power (dBm) and prefix of scheduled devices and the size of every non-empty group, from native actions.

    ``native`` holds ``group``/``power``/``compression`` index arrays ``(..., K)`` as decoded by ``ActionLayout``.
    """
    group = np.asarray(native["group"]).reshape(-1, np.shape(native["group"])[-1])
    on = group > 0
    power = np.asarray(native["power"]).reshape(group.shape)[on]
    comp = np.asarray(native["compression"]).reshape(group.shape)[on]
    top_dbm = 10.0 * math.log10(max_power_w * 1e3)
    sizes = [np.bincount(row[row > 0]) for row in group]
    sizes = np.concatenate([s[s > 0] for s in sizes]) if sizes else np.zeros(0)
    return {"power_dbm": top_dbm + np.asarray(power_levels_db, dtype=np.float64)[power],
            "prefix": np.asarray(compression_levels, dtype=np.float64)[comp], "group_size": sizes.astype(np.float64)}


def info_samples(info: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """SINR (dB, devices on air) and queue (scenes) of one ``VMIMOEnv`` step info; empty if it has neither."""
    out: dict[str, np.ndarray] = {}
    if "sinr_db" in info:
        sinr = np.asarray(info["sinr_db"], dtype=np.float64)
        sent = np.asarray(info.get("sent", np.ones_like(sinr)))
        out["sinr_db"] = sinr[sent > 0]
    if "queue" in info:
        out["queue"] = np.asarray(info["queue"], dtype=np.float64).ravel()
    return out


class _Samples:
    """Bounded per-key sample buffers (the newest values win), so histogram logging stays cheap."""

    def __init__(self, maxlen: int) -> None:
        self.buf: dict[str, deque[np.ndarray]] = {k: deque(maxlen=maxlen) for k in DIST_KEYS}

    def add(self, samples: Mapping[str, np.ndarray]) -> None:
        for key, values in samples.items():
            if len(values):
                self.buf[key].append(np.asarray(values, dtype=np.float64))

    def histograms(self, prefix: str) -> dict[str, Any]:
        import wandb

        out = {}
        for key, chunks in self.buf.items():
            if chunks:
                values = np.concatenate(list(chunks))
                out[f"{prefix}{key}"] = wandb.Histogram(values, num_bins=min(64, max(1, len(np.unique(values)))))
        return out

    def clear(self) -> None:
        for chunks in self.buf.values():
            chunks.clear()


# ====================================================================== callback
class WandbMediaCallback(BaseCallback):
    """Allocation histograms and one rendered episode to W&B every ``freq`` env steps and at the end of training.

    Parameters
    ----------
    wandb_run
        The run (nothing happens when it is not active).
    env_id, env_kwargs
        The evaluation environment (as the held-out evaluation sees it).
    freq
        Env steps between logs (``<= 0``: only at the end of training).
    frames
        Slots rendered at the start of the media episode (each render costs a matplotlib figure).
    media_every
        Render the media episode at every ``media_every``-th log (histograms go out at every log) and at the end.
    max_samples
        Recent steps kept per histogram.
    save_code
        Log the repository's sources (:func:`log_code`) when training starts.
    """

    def __init__(self, wandb_run: WandbRun, env_id: str, env_kwargs: Mapping[str, Any] | None, freq: int, *,
                 frames: int = 8, media_every: int = 5, max_samples: int = 256, fps: int = 4, save_code: bool = True,
                 verbose: int = 0) -> None:
        super().__init__(verbose)
        self.save_code = save_code
        self.wandb_run = wandb_run
        self.env_id = env_id
        self.env_kwargs = dict(env_kwargs or {})
        self.freq = int(freq)
        self.frames = int(frames)
        self.media_every = max(1, int(media_every))
        self.fps = int(fps)
        self._train = _Samples(max_samples)
        self._env: Any = None
        self._decode: Any = None
        self._next = 0
        self.logged_steps: list[int] = []
        self.media_steps: list[int] = []

    # ------------------------------------------------------------------ SB3 hooks
    def _on_training_start(self) -> None:
        if not self.wandb_run.active:
            return
        if self.save_code:
            log_code(self.wandb_run, Path(__file__).resolve().parents[1])
        self._env = self.wandb_run._safe(self._make_env)  # an env without rgb rendering must not stop training
        base = getattr(self._env, "unwrapped", None)
        if not hasattr(base, "layout"):  # not a VMIMO environment: nothing of ours to decode or render
            if self._env is not None:
                self._env.close()
            self._env = None
            return
        self._layout, self._cfg = base.layout, base.cfg
        space = self.training_env.action_space
        self._decode = (self._layout.from_box if space.__class__.__name__ == "Box"
                        else self._layout.from_multidiscrete)
        self._next = (self.num_timesteps // self.freq + 1) * self.freq if self.freq > 0 else math.inf

    def _on_step(self) -> bool:
        if self._decode is None:
            return True
        actions = self.locals.get("actions")
        if actions is not None:
            try:
                self._train.add(allocation_samples(self._decode(np.asarray(actions)), self._cfg.power_levels_db,
                                                   self._cfg.compression_levels, self._cfg.max_power_w))
            except ValueError:  # an action the layout refuses is the environment's to report, not ours
                pass
        infos = self.locals.get("infos") or ()
        if infos and "sinr_db" in infos[0]:
            for info in infos:
                self._train.add(info_samples(info))
        if self.num_timesteps >= self._next:
            self.log_now(media=(len(self.logged_steps) + 1) % self.media_every == 0)
            self._next = (self.num_timesteps // self.freq + 1) * self.freq
        return True

    def _on_training_end(self) -> None:
        if self._decode is not None:
            if not self.logged_steps or self.logged_steps[-1] != self.num_timesteps:
                self.log_now(media=True)
            elif not self.media_steps or self.media_steps[-1] != self.num_timesteps:  # histograms already out
                self.wandb_run.log(self.wandb_run._safe(self._episode_media) or {}, int(self.num_timesteps))
                self.media_steps.append(int(self.num_timesteps))
        if self._env is not None:
            self._env.close()
            self._env = None

    # ------------------------------------------------------------------ logging
    def log_now(self, media: bool = True) -> dict[str, Any]:
        """Log the training histograms (then reset them) and, with ``media``, one rendered episode, now."""
        payload = self.wandb_run._safe(lambda: self._train.histograms("dist/")) or {}
        self._train.clear()
        if media:
            payload.update(self.wandb_run._safe(self._episode_media) or {})
            self.media_steps.append(int(self.num_timesteps))
        self.wandb_run.log(payload, int(self.num_timesteps))
        self.logged_steps.append(int(self.num_timesteps))
        return payload

    def _make_env(self) -> Any:
        import gymnasium as gym

        return gym.make(self.env_id, render_mode="rgb_array", **self.env_kwargs)

    def _episode_media(self) -> dict[str, Any]:
        import wandb

        from agents.policies import SB3Policy

        env = self._env
        policy = SB3Policy(self.model, env, self.model.get_vec_normalize_env(), name="media")
        samples = _Samples(maxlen=10**6)
        obs, info = env.reset(seed=MEDIA_SEED)
        policy.reset(MEDIA_SEED)
        frames, done = [], False
        while not done:
            if len(frames) < self.frames:
                frames.append(np.asarray(env.render()))
            obs, _, terminated, truncated, info = env.step(policy.act(obs, info))
            done = terminated or truncated
            samples.add(info_samples(info))
            samples.add(allocation_samples(info["action"], self._cfg.power_levels_db, self._cfg.compression_levels,
                                           self._cfg.max_power_w))
        out = samples.histograms("eval_episode/dist/")
        if frames:
            if importlib.util.find_spec("moviepy") is not None:
                video = np.stack(frames).transpose(0, 3, 1, 2)  # (T, C, H, W), what wandb.Video expects
                out["eval_episode/video"] = wandb.Video(video, fps=self.fps, format="gif")
            else:
                step = max(1, len(frames) // 4)
                out["eval_episode/frames"] = [wandb.Image(f, caption=f"slot {i}") for i, f in
                                              enumerate(frames) if i % step == 0][:4]
        return out


__all__ = ["DIST_KEYS", "WandbMediaCallback", "allocation_samples", "info_samples", "log_code",
           "log_model_artifacts", "model_artifact_name"]
