"""SB3 callbacks of ``train_agent.py``: episode statistics, held-out evaluation, atomic checkpoints.

All three trigger on ``num_timesteps`` (environment steps summed over the parallel environments), not on callback
calls, so frequencies mean the same whatever ``n_envs`` is and survive ``--resume`` unchanged.
"""

from __future__ import annotations

import csv
import io
import math
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from agents.checkpoint import atomic_write_bytes
from agents.common.envs import derived_episode_metrics
from agents.common.stats import paired_difference
from agents.evaluation.runner import PolicyResult, run_policy
from agents.wandb_logging import WandbRun


class EpisodeInfoCallback(BaseCallback):
    """Logs the reward's parts and the allocation as episode statistics (``episode/*``) and the SPS.

    Reads ``info["episode"]`` of finished episodes (written by ``VMIMOSB3VecEnv`` or by Monitor +
    ``EpisodeStatsWrapper``): accuracy (correct / arrived scenes), energy per scene by item (transmit, circuit,
    encoding), delivered (correct) and expired-empty scenes, mean virtual-MIMO group size, mean prefix length,
    mean transmit power, devices on air per slot. Means over the last ``window`` episodes, like SB3's
    ``rollout/ep_rew_mean``, recorded as episodes finish so that whichever dump comes next carries them.
    ``perf/sps`` is the environment steps per second since the previous rollout end (training included).
    """

    def __init__(self, window: int = 100, verbose: int = 0) -> None:
        super().__init__(verbose)
        self._buffer: deque[dict[str, float]] = deque(maxlen=window)
        self._t_last = time.perf_counter()
        self._steps_last = 0

    def _on_training_start(self) -> None:
        self._t_last = time.perf_counter()
        self._steps_last = self.num_timesteps

    def _on_step(self) -> bool:
        new = False
        for info in self.locals.get("infos", ()):
            ep = info.get("episode")
            if ep is not None and len(ep) > 3:  # more than Monitor's r/l/t: VMIMO statistics
                self._buffer.append(derived_episode_metrics(ep))
                new = True
        if new:
            keys = set().union(*self._buffer)
            for key in sorted(keys):
                self.logger.record(f"episode/{key}", float(np.mean([ep[key] for ep in self._buffer if key in ep])))
        return True

    def _on_rollout_end(self) -> None:
        now = time.perf_counter()
        if now > self._t_last and self.num_timesteps > self._steps_last:
            self.logger.record("perf/sps", (self.num_timesteps - self._steps_last) / (now - self._t_last))
        self._t_last, self._steps_last = now, self.num_timesteps


class HeldOutEvalCallback(BaseCallback):
    """Evaluates the current policy every ``eval_freq`` env steps on fixed held-out seeds; keeps the best model.

    The model acts deterministically through :class:`agents.policies.SB3Policy` (training VecNormalize statistics
    applied, not updated) on one batched env per seed set, so each evaluation of 50 VMIMO episodes costs about as
    much as 50 × 200 training steps. ``baselines`` are heuristics already evaluated on the same seeds: every
    evaluation reports the paired return difference against the best of them. Logged: ``eval/mean_reward``,
    ``eval/ci95``, ``eval/accuracy``, ``eval/energy_per_scene_mj``, ``eval/expired_frac``, ``eval/full_cover_frac``
    (scenes closed holding every modality, per arrived scene), ``eval/best_mean_reward``,
    ``eval/diff_vs_best_heuristic`` (+ ``_ci95``), ``eval/ref/<heuristic>``; to W&B
    also a ``wandb.Table`` of the policies and figures (learning curve vs heuristics, accuracy–energy scatter,
    per-device allocation). History in ``<run>/eval/evaluations.csv`` (written at every evaluation); figures in
    ``<run>/eval/``, drawn by :meth:`evaluate_model` (the warm-start clone, the final model, also after an
    interrupt) and during training on every ``figures_every``-th evaluation (default 1: every one; 0: never).
    """

    def __init__(self, env_id: str, env_kwargs: dict[str, Any] | None, seeds: list[int], eval_freq: int,
                 out_dir: str | Path, *, name: str = "agent", baselines: dict[str, PolicyResult] | None = None,
                 save_best: Callable[[Any], Path] | None = None, wandb_run: WandbRun | None = None,
                 best_mean_reward: float = -math.inf, best_step: int | None = None,
                 history: list[dict[str, float]] | None = None, figures: bool = True, figures_every: int = 1,
                 verbose: int = 1) -> None:
        super().__init__(verbose)
        self.env_id, self.env_kwargs, self.seeds = env_id, env_kwargs, list(seeds)
        self.eval_freq = int(eval_freq)
        self.out_dir = Path(out_dir)
        self.name = name
        self.baselines = baselines or {}
        self.save_best = save_best
        self.wandb_run = wandb_run
        self.best_mean_reward = best_mean_reward
        self.best_step: int | None = best_step
        self.best_result: PolicyResult | None = None
        self.figures = figures
        if int(figures_every) < 0:
            raise ValueError(f"figures_every must be >= 0 (0: figures only outside learn), got {figures_every}")
        self.figures_every = int(figures_every)
        self._in_learn_evals = 0
        # a resumed run starts from the rows written before it, so evaluations.csv keeps the whole run
        self.history: list[dict[str, float]] = list(history or [])
        self.last_result: PolicyResult | None = None
        self._cache: dict[int, Any] = {}
        self._next = 0

    @property
    def best_baseline(self) -> str | None:
        cands = [r for r in self.baselines.values() if r.kind == "heuristic"] or list(self.baselines.values())
        return max(cands, key=lambda r: r.episodes["return"].mean()).name if cands else None

    def _on_training_start(self) -> None:
        self._next = (self.num_timesteps // self.eval_freq + 1) * self.eval_freq if self.eval_freq > 0 else 0

    def _on_step(self) -> bool:
        if self.eval_freq > 0 and self.num_timesteps >= self._next:
            self._in_learn_evals += 1
            every = self.figures_every
            self.evaluate(draw_figures=every > 0 and self._in_learn_evals % every == 0)
            self._next = (self.num_timesteps // self.eval_freq + 1) * self.eval_freq
        return True

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, result: PolicyResult | None = None, draw_figures: bool = True) -> PolicyResult:
        """Evaluate the current model on the held-out seeds (or record ``result``, an evaluation of it on the same
        seeds already made elsewhere), log it and keep the best model; ``draw_figures=False`` logs the numbers
        and the W&B table but draws no figure."""
        from agents.policies import SB3Policy

        vecnorm = self.model.get_vec_normalize_env()
        t0 = time.perf_counter()
        if result is not None:
            if not np.array_equal(result.seeds, np.asarray(self.seeds)):
                raise ValueError("evaluate(result=...) needs a result on this callback's held-out seeds")
            res = result
        else:
            res = run_policy(lambda env: SB3Policy(self.model, env, vecnorm, name=self.name), self.env_id,
                             self.env_kwargs, self.seeds, env_cache=self._cache, name=self.name)
        res.kind = "model"
        self.last_result = res
        step = int(self.num_timesteps)
        mean, ci = res.mean_ci()
        row: dict[str, float] = {"timesteps": step, "mean_reward": mean, "ci95": ci,
                                 "eval_seconds": time.perf_counter() - t0}
        for key in ("accuracy", "energy_per_scene_mj", "expired_frac", "full_cover_frac"):
            if key in res.episodes:
                row[key] = float(res.episodes[key].mean())
        ref = self.best_baseline
        if ref is not None:
            d, h, _ = paired_difference(res.episodes["return"], self.baselines[ref].episodes["return"])
            row["diff_vs_best_heuristic"], row["diff_ci95"] = d, h
        improved = mean > self.best_mean_reward
        if improved:
            self.best_mean_reward, self.best_step, self.best_result = mean, step, res
            if self.save_best is not None:
                self.save_best(self.model)
        row["best_mean_reward"] = self.best_mean_reward
        self.history.append(row)
        for key, value in row.items():
            if key != "timesteps":
                self.logger.record(f"eval/{key}", value)
        for name, base in self.baselines.items():
            self.logger.record(f"eval/ref/{name}", float(base.episodes["return"].mean()))
        self._write_history()
        self._log_wandb(res, step, draw_figures)
        if self.verbose:
            extra = f", Δ vs {ref} {row['diff_vs_best_heuristic']:+.3f} ± {row['diff_ci95']:.3f}" if ref else ""
            print(f"Eval at {step} steps: return {mean:.3f} ± {ci:.3f} on {len(self.seeds)} held-out seeds"
                  f"{extra}{' (new best)' if improved else ''}", flush=True)
        return res

    def evaluate_model(self, model: Any, result: PolicyResult | None = None) -> PolicyResult:
        """Evaluate ``model`` outside ``learn`` at its current step (the warm-start clone before training, or the
        final model), and flush the ``eval/*`` records to the logger's outputs (``result``: see :meth:`evaluate`)."""
        if getattr(self, "model", None) is not model:
            self.init_callback(model)
        self.num_timesteps = int(model.num_timesteps)
        res = self.evaluate(result)
        model.logger.dump(model.num_timesteps)
        return res

    def has_evaluated(self, step: int) -> bool:
        """True when the newest evaluation (of this run or, after a resume, of the run it continues) is at
        ``step``."""
        return bool(self.history) and int(self.history[-1]["timesteps"]) == int(step)

    def _write_history(self) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        keys: list[str] = []
        for row in self.history:
            keys += [k for k in row if k not in keys]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=keys)
        writer.writeheader()
        writer.writerows(self.history)
        atomic_write_bytes(self.out_dir / "evaluations.csv", buf.getvalue().encode())

    def figures_for(self, res: PolicyResult) -> dict[str, Any]:
        from agents.plots import accuracy_energy_figure, allocation_figure, learning_curve_figure

        figs = {"learning_curve": learning_curve_figure(
            [r["timesteps"] for r in self.history], [r["mean_reward"] for r in self.history],
            [r["ci95"] for r in self.history],
            {n: float(b.episodes["return"].mean()) for n, b in self.baselines.items()})}
        everyone = {**self.baselines, res.name: res}
        if "accuracy" in res.episodes:
            figs["accuracy_energy"] = accuracy_energy_figure(everyone, highlight=res.name)
            figs["allocation"] = allocation_figure(everyone)
        return figs

    def _log_wandb(self, res: PolicyResult, step: int, draw_figures: bool = True) -> None:
        import matplotlib.pyplot as plt

        run = self.wandb_run
        if not self.figures and (run is None or not run.active):
            return
        figs = self.figures_for(res) if draw_figures else {}
        payload: dict[str, Any] = {}
        if run is not None and run.active:
            cols = ["policy", "kind", "mean_return", "ci95", "accuracy", "energy_per_scene_mj", "expired_frac"]
            rows = []
            for r in [res, *self.baselines.values()]:
                m, h = r.mean_ci()
                rows.append([r.name, r.kind, m, h] + [float(r.episodes[k].mean()) if k in r.episodes else None
                                                      for k in cols[4:]])
            payload["eval/table"] = run.table(cols, rows)
            for key, fig in figs.items():
                payload[f"eval/figures/{key}"] = run.image(fig)
            run.log({k: v for k, v in payload.items() if v is not None}, step)
        if self.figures and figs:
            for key, fig in figs.items():
                fig.savefig(self.out_dir / f"{key}.png", dpi=100)
        for fig in figs.values():
            plt.close(fig)


def read_history(path: str | Path, up_to_step: int | None = None) -> list[dict[str, float]]:
    """Rows of an ``evaluations.csv`` (numbers as floats, ``timesteps`` as int), those after ``up_to_step`` left
    out (a resume from an older checkpoint branches off there); ``[]`` when the file does not exist."""
    path = Path(path)
    if not path.is_file():
        return []
    rows: list[dict[str, float]] = []
    with open(path, newline="", encoding="utf-8") as fh:
        for raw in csv.DictReader(fh):
            row: dict[str, float] = {}
            for key, value in raw.items():
                if value not in (None, ""):
                    row[key] = int(float(value)) if key == "timesteps" else float(value)
            if "timesteps" in row and (up_to_step is None or row["timesteps"] <= up_to_step):
                rows.append(row)
    return rows


class AtomicCheckpointCallback(BaseCallback):
    """Every ``save_freq`` env steps, ``save_fn(path)`` writes ``ckpt_<steps>.zip`` atomically; keeps the newest
    ``keep``. Off-policy algorithms also get their replay buffer saved (atomically) beside the checkpoints, so
    ``--resume`` continues with the experience collected so far."""

    def __init__(self, save_freq: int, folder: str | Path, save_fn: Callable[[Path], Path], keep: int = 3,
                 save_replay_buffer: bool = True, verbose: int = 0) -> None:
        super().__init__(verbose)
        self.save_freq = int(save_freq)
        self.folder = Path(folder)
        self.save_fn = save_fn
        self.keep = keep
        self.save_replay_buffer = save_replay_buffer
        self._next = 0
        self.saved: list[Path] = []

    def _on_training_start(self) -> None:
        self._next = (self.num_timesteps // self.save_freq + 1) * self.save_freq if self.save_freq > 0 else 0

    def _on_step(self) -> bool:
        if self.save_freq > 0 and self.num_timesteps >= self._next:
            self.save()
            self._next = (self.num_timesteps // self.save_freq + 1) * self.save_freq
        return True

    def save(self, model: Any = None) -> Path:
        """Write a checkpoint now (of ``model`` if given, e.g. after training, whether or not ``learn`` ran)."""
        if model is not None:
            self.model = model
        steps = int(self.model.num_timesteps)
        path = self.folder / f"ckpt_{steps:012d}.zip"
        self.save_fn(path)
        if self.save_replay_buffer and getattr(self.model, "replay_buffer", None) is not None:
            # one buffer (the newest) is enough and they are large: older ones are removed below
            save_replay_buffer(self.model, self.folder / f"replay_buffer_{steps:012d}.npz")
            for p in sorted(self.folder.glob("replay_buffer_*.npz"))[:-1]:
                p.unlink(missing_ok=True)
        self.saved.append(path)
        old = sorted(self.folder.glob("ckpt_*.zip"))
        for p in old[:-self.keep] if self.keep > 0 else []:
            p.unlink(missing_ok=True)
        if self.verbose:
            print(f"Checkpoint {path}", flush=True)
        return path


def save_replay_buffer(model: Any, path: Path) -> None:
    from agents.checkpoint import save_replay_buffer as save_npz

    save_npz(model, path)  # plain arrays (.npz): a resumed run never unpickles a file
