"""Train a Stable-Baselines3 agent on VMIMO: ``python train_agent.py --algo ppo``.

Read top to bottom, in the CleanRL spirit: ``main`` calls, in order, :func:`resolve_settings` (every setting,
with one documented precedence, see :class:`RunSettings`), :func:`build_env`, :func:`build_model`,
:func:`write_config` (once every check passed), :func:`start_wandb`, :func:`warm_start`, :func:`evaluate_baselines`,
:func:`judge_clone`, :func:`build_callbacks`, :func:`train` and :func:`summarize`. Ctrl-C and SIGTERM stop
training cleanly with a final checkpoint. The flags also take the RL Zoo's names (``-f``, ``-i``, ``-conf``,
``-params k:v``, ``--track``...). The moving parts live in ``agents/`` (``agents.common.envs``,
``agents.callbacks``, ``agents.checkpoint``, ``agents.wandb_logging``).

Examples::

    python train_agent.py --algo ppo                                   # default budget (see docs/training.md)
    python train_agent.py --algo sac -n 200000 --seed 3
    python train_agent.py --algo ppo --env VMIMO-Small-v0 --hyperparams learning_rate=1e-3 n_steps=64
    python train_agent.py --algo ppo --env-kwargs num_devices:16 num_antennas:8
    python train_agent.py --algo ppo --resume runs/ppo/VMIMO-v0__s0__20260101-120000  -n 4000000
    python train_agent.py --algo ppo --wandb-mode disabled --no-progress
    python train_agent.py --algo ppo -f logs -params learning_rate:1e-3 --track --wandb-project-name vmimo
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import importlib
import math
import os
import signal
import sys
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.logger import CSVOutputFormat, configure
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from agents.callbacks import AtomicCheckpointCallback, EpisodeInfoCallback, HeldOutEvalCallback, read_history
from agents.checkpoint import (
    Checkpoint,
    CheckpointError,
    check_compatible,
    clean_stale_temporaries,
    load_model,
    load_replay_buffer,
    read_checkpoint,
    resolve_resume_path,
    save_checkpoint,
)
from agents.common.device_policy import DevicePolicy, device_policy_kwargs
from agents.common.distributions import FastMultiDiscretePolicy
from agents.common.envs import (
    ALGOS,
    VALIDATION_SEED_BASE,
    VEC_ENVS,
    action_view_for,
    check_train_seed,
    is_vmimo,
    make_train_env,
    vmimo_kwargs,
)
from agents.common.hyperparams import (
    check_hyperparam_names,
    hyperparams_path,
    jsonable,
    load_hyperparams,
    normalize_kwargs,
    parse_assignments,
    parse_hyperparams,
    prepare_algo_kwargs,
)
from agents.common.pretrain import PretrainConfig, behaviour_clone
from agents.common.provenance import git_sha, package_versions
from agents.common.stats import paired_difference
from agents.evaluation import (
    PolicyResult,
    best_heuristic,
    comparison_rows,
    evaluate_policies,
    format_table,
    run_policy,
)
from agents.policies import algo_class
from agents.registry import heuristic_names
from agents.wandb_extras import WandbMediaCallback, log_model_artifacts
from agents.wandb_logging import DEFAULT_INIT_TIMEOUT, WandbOutputFormat, WandbRun, api_key_configured, default_mode

# built-in defaults, below the hyperparameter file and the command line (RunSettings)
DEFAULTS = {"eval_freq": 100_000, "eval_episodes": 50, "save_freq": 200_000}
# the behaviour-cloning warm start takes at most this share of the budget (its steps count in it)
MAX_WARM_START_FRACTION = 0.25
# fewer RL updates than this (on-policy rollouts / off-policy gradient steps) get a warning: barely trained
MIN_ROLLOUTS, MIN_GRADIENT_STEPS = 10, 1_000
# a clone whose validation return is below its teacher's by more than this share of |teacher| (and significantly,
# paired 95% CI) is dropped: training continues from a fresh policy
CLONE_MAX_SHORTFALL = 0.5
# torch intra-op threads: two, so PPO's update uses both cores of the reference machine (the env itself is one
# compiled thread). The count, not the machine's core count, fixes the reduction order, so the default is a number
TORCH_THREADS = 2


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--algo", default="ppo", choices=ALGOS, help="RL algorithm")
    p.add_argument("--env", default="VMIMO-v0", help="environment id")
    p.add_argument("--env-kwargs", nargs="*", default=[], metavar="KEY:VALUE",
                   help="scenario parameters, e.g. num_devices:16 energy_weight:1.0")
    p.add_argument("--eval-env-kwargs", nargs="*", default=[], metavar="KEY:VALUE",
                   help="overrides for the evaluation env only (held-out evaluation, baselines); the spaces must stay "
                        "those of the training env")
    p.add_argument("--gym-packages", nargs="*", default=[], metavar="MODULE",
                   help="modules to import before the env is made (they register other env ids)")
    p.add_argument("-n", "--n-timesteps", type=int, default=None, help="training budget in env steps "
                   "(default: n_timesteps of the hyperparameter file); with --resume, the total to reach")
    p.add_argument("--seed", type=int, default=0, help="training env i starts from seed + i; also seeds torch")
    p.add_argument("--n-envs", type=int, default=None, help="parallel environments (default: hyperparameter file)")
    p.add_argument("--vec-env", default="batched", choices=VEC_ENVS,
                   help="batched = one numpy batch (VMIMOSB3VecEnv); dummy/subproc = SB3's VecEnvs of gym.make envs")
    p.add_argument("--env-threads", type=int, default=None, metavar="N",
                   help="threads the batched training env steps on (default: one per core, at least 64 envs "
                        "each; 1: the main thread only); the trajectories are the same for any N. Not the Zoo's "
                        "--num-threads, which is torch's (--torch-threads); --vec-env batched only")
    p.add_argument("--eval-freq", type=int, default=None,
                   help=f"evaluate every N env steps on held-out seeds, <= 0 disables "
                        f"(default {DEFAULTS['eval_freq']})")
    p.add_argument("--eval-episodes", type=int, default=None,
                   help=f"held-out episodes per evaluation (default {DEFAULTS['eval_episodes']})")
    p.add_argument("--eval-figures", type=int, default=1, metavar="N",
                   help="draw the evaluation figures (files, W&B images) on every N-th evaluation during training "
                        "(default 1: every one); 0: only for the warm-start clone and the final model")
    p.add_argument("--save-freq", type=int, default=None,
                   help=f"checkpoint every N env steps, <= 0: only the final one (default {DEFAULTS['save_freq']})")
    p.add_argument("-f", "--log-folder", default="runs", help="runs are written to LOG_FOLDER/ALGO/ENV__sSEED__TIME")
    p.add_argument("-conf", "--conf-file", default=None,
                   help="hyperparameter YAML (default agents/hyperparams/ALGO.yml)")
    p.add_argument("-params", "--hyperparams", nargs="*", default=[], metavar="KEY=VALUE",
                   help="override hyperparameters, key=value or key:value, e.g. learning_rate=1e-3 "
                        "'policy_kwargs={net_arch: [64, 64]}' (names are checked against the algorithm's)")
    p.add_argument("--device", default="cpu", help="torch device")
    p.add_argument("--resume", "-i", "--trained-agent", dest="resume", default=None, metavar="PATH",
                   help="continue from a checkpoint (.zip) or the newest checkpoint of a run folder")
    p.add_argument("--trust-checkpoint", action="store_true",
                   help="allow the --resume checkpoint to unpickle objects (old-format checkpoints): this runs code "
                        "stored in the file, so only for files you made yourself")
    p.add_argument("--track", action="store_true",
                   help="track the run on the W&B server (online; offline if it cannot be reached)")
    p.add_argument("--wandb-project", "--wandb-project-name", dest="wandb_project", default="vmimo",
                   help="W&B project")
    p.add_argument("--wandb-entity", default=None, help="W&B entity (team/user)")
    p.add_argument("--wandb-tags", nargs="*", default=[], metavar="TAG", help="extra W&B tags")
    p.add_argument("--wandb-init-timeout", type=float, default=DEFAULT_INIT_TIMEOUT, metavar="SECONDS",
                   help="how long wandb.init may wait for the server before the run falls back to offline")
    p.add_argument("--wandb-mode", default=None, choices=("online", "offline", "disabled"),
                   help="default: online if an API key is configured (WANDB_API_KEY or netrc), else offline")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="progress bar")
    p.add_argument("--baselines", nargs="*", default=None, metavar="HEURISTIC",
                   help="heuristics evaluated on the same held-out seeds as reference (default: all; none: '')")
    p.add_argument("--untuned-baselines", action="store_true",
                   help="the reference heuristics with their registered defaults instead of the parameters tuned "
                        "for the scenario on validation seeds (agents/hyperparams/baselines/; python -m "
                        "agents.tune_baselines)")
    p.add_argument("--log-interval", type=int, default=-1,
                   help="SB3 log_interval (rollouts for on-policy, episodes for off-policy algorithms); -1: a dump "
                        "about every 20k env steps (at least 20 over the run) for on-policy, SB3's default otherwise")
    p.add_argument("--torch-threads", "--num-threads", dest="torch_threads", type=int, default=TORCH_THREADS,
                   help=f"torch intra-op threads (default {TORCH_THREADS}: the update's matrix products use both cores "
                        "of a 2-core machine while the env waits; a run repeats bit for bit for a given count, not "
                        "across counts; <= 0: torch's default)")
    p.add_argument("--run-name", default=None, help="name of the run folder and W&B run")
    p.add_argument("-v", "--verbose", type=int, default=1, help="0: quiet, 1: SB3 tables and evaluation lines")
    return p.parse_args(argv)


# ====================================================================== settings
@dataclass(frozen=True)
class RunSettings:
    """Everything a run uses, resolved once by :func:`resolve_settings` before any work.

    Precedence, later wins: built-in :data:`DEFAULTS` < the hyperparameter file's entry < the command line <
    the checkpoint when resuming. The checkpoint decides what makes the model what it is: algorithm, env id and
    action view (a disagreeing flag is an error), the training-only env kwargs (a disagreeing file gives a
    warning), the SB3 hyperparameters saved in the model, the normalisation statistics, and no warm start.
    Two checkpoint values are only defaults a flag may still override: ``env_kwargs`` (``--env-kwargs`` keys are
    merged over them; a change of the spaces then fails to load) and ``n_envs``.
    """

    algo: str
    env_id: str
    vmimo: bool
    action_view: str | None  # None on non-VMIMO envs (their native spaces)
    env_kwargs: dict[str, Any]  # the scenario as evaluated, saved in checkpoints
    train_only_env_kwargs: dict[str, Any]  # applied to the training envs only (e.g. reward_mode: soft)
    hyperparams: dict[str, Any]  # the file's entry with the --hyperparams overrides
    hyperparams_key: str
    hyperparams_file: Path
    n_timesteps: int  # env steps to reach (a total, also when resuming)
    n_envs: int
    eval_freq: int  # env steps between evaluations, <= 0: none
    eval_episodes: int
    save_freq: int  # env steps between checkpoints, <= 0: only the final one
    seed: int
    vec_env: str
    device: str
    pretrain: PretrainConfig | None
    run_dir: Path
    resumed_from: Path | None
    baselines: tuple[str, ...]  # heuristics evaluated as references
    tuned_baselines: bool  # the references with their tuned parameters (where the scenario has them)
    log_interval: int
    progress: bool
    verbose: int
    wandb_project: str
    wandb_entity: str | None
    wandb_mode: str | None
    wandb_init_timeout: float
    wandb_tags: tuple[str, ...] = ()
    eval_env_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)  # over env_kwargs, evaluation only
    eval_figures: int = 1  # figures on every N-th in-training evaluation (0: the clone's and the final one only)
    env_threads: int | None = None  # threads of the batched training env (None: vmimo_env.core.auto_threads)

    @property
    def train_env_kwargs(self) -> dict[str, Any]:
        return {**self.train_only_env_kwargs, **self.env_kwargs}

    @property
    def resolved_env_kwargs(self) -> dict[str, Any]:
        return vmimo_kwargs(self.env_id, self.env_kwargs, self.action_view) if self.vmimo else self.env_kwargs

    @property
    def eval_kwargs(self) -> dict[str, Any]:
        """The env kwargs of every evaluation during training (held-out evaluation, baselines, the clone's)."""
        return {**self.env_kwargs, **self.eval_env_kwargs}

    @property
    def val_seeds(self) -> list[int]:
        return list(range(VALIDATION_SEED_BASE, VALIDATION_SEED_BASE + self.eval_episodes))


def open_checkpoint(args: argparse.Namespace) -> Checkpoint | None:
    """The checkpoint ``--resume`` names (verified and checked against the flags), or None."""
    if not args.resume:
        return None
    # CheckpointError names the file; nothing is unpickled without --trust-checkpoint
    ckpt = read_checkpoint(resolve_resume_path(args.resume), trust=args.trust_checkpoint)
    view = action_view_for(args.algo) if is_vmimo(args.env) else None
    check_compatible(ckpt, algo=args.algo, env_id=args.env, action_view=view)
    return ckpt


def resolve_settings(args: argparse.Namespace, checkpoint: Checkpoint | None) -> RunSettings:
    """Apply the precedence of :class:`RunSettings` and check the combination; ``SystemExit``/``ValueError`` name
    the offending setting."""
    ckpt = checkpoint
    if not args.wandb_init_timeout > 0:
        raise ValueError(f"--wandb-init-timeout must be > 0 seconds, got {args.wandb_init_timeout}")
    for module in args.gym_packages:  # named on the command line: importing them is the user's choice
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ValueError(f"--gym-packages: cannot import {module!r} ({exc})") from exc
    check_env_id(args.env)
    vmimo = is_vmimo(args.env)
    action_view = action_view_for(args.algo)
    hp, hp_key = load_hyperparams(args.algo, args.env, args.conf_file)
    cls = algo_class(args.algo)
    check_hyperparam_names(hp, cls, f"{hyperparams_path(args.algo, args.conf_file)} ({hp_key})")
    overrides = parse_hyperparams(args.hyperparams)
    check_hyperparam_names(overrides, cls, "--hyperparams")
    hp.update(overrides)

    def pick(flag: Any, key: str) -> int:  # command line, else hyperparameter file, else built-in default
        return int(flag if flag is not None else hp.get(key, DEFAULTS[key]))

    env_kwargs = dict(ckpt.meta.get("env_kwargs") or {}) if ckpt else {}
    env_kwargs.update(parse_assignments(args.env_kwargs, ":"))
    eval_env_kwargs = dict(ckpt.meta.get("eval_env_kwargs") or {}) if ckpt else {}
    eval_env_kwargs.update(parse_assignments(args.eval_env_kwargs, ":"))
    n_envs = int(args.n_envs or (ckpt.meta.get("n_envs") if ckpt else None) or hp.get("n_envs", 8))
    check_train_seed(args.seed, n_envs)
    if args.env_threads is not None and args.env_threads < 1:
        raise SystemExit(f"--env-threads must be a positive integer, got {args.env_threads}")
    if args.env_threads is not None and args.vec_env != "batched":
        raise SystemExit(f"--env-threads sets the threads of --vec-env batched; --vec-env {args.vec_env} steps "
                         "gym.make environments one by one")
    train_only = hp.get("train_env_kwargs") or {}
    if not isinstance(train_only, dict):
        raise SystemExit(f"hyperparameter train_env_kwargs must be a mapping, got {train_only!r}")
    if ckpt is not None and "train_env_kwargs" in ckpt.meta:
        saved = dict(ckpt.meta.get("train_env_kwargs") or {})
        if saved != train_only:
            warnings.warn(f"resuming with the checkpoint's train_env_kwargs {saved} (hyperparameters say "
                          f"{train_only})", stacklevel=1)
        train_only = saved
    try:  # the warm start only starts a run, it never restarts one
        pretrain = PretrainConfig.from_hyperparams(hp.get("pretrain")) if ckpt is None else None
    except ValueError as err:
        raise SystemExit(f"hyperparameter pretrain: {err}") from None
    if pretrain is not None and not (vmimo and args.algo in ("ppo", "a2c", "maskable_ppo")
                                     and args.vec_env == "batched"):
        raise SystemExit(f"pretrain (behaviour cloning) needs a VMIMO env, --vec-env batched and --algo ppo, a2c or "
                         f"maskable_ppo; got --env {args.env} --algo {args.algo} --vec-env {args.vec_env}")
    n_timesteps = int(args.n_timesteps if args.n_timesteps is not None else hp.get("n_timesteps", 100_000))
    if pretrain is not None:
        pretrain = fit_warm_start(pretrain, n_timesteps, n_envs)
    if args.eval_figures < 0:
        raise SystemExit(f"--eval-figures must be >= 0 (0: figures for the clone and the final model only), got "
                         f"{args.eval_figures}")
    if hp.get("policy") == "DevicePolicy" and not (vmimo and args.algo in ("ppo", "a2c")):
        raise SystemExit(f"policy DevicePolicy needs a VMIMO env and --algo ppo or a2c, got --env {args.env} "
                         f"--algo {args.algo}")
    if ckpt and ckpt.meta.get("run_dir") and Path(ckpt.meta["run_dir"]).is_dir():
        run_dir = Path(ckpt.meta["run_dir"])  # a resumed run keeps writing where it started
    else:
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        run_dir = Path(args.log_folder) / args.algo / (args.run_name or f"{args.env}__s{args.seed}__{stamp}")
        while run_dir.exists() and not ckpt:
            run_dir = run_dir.with_name(run_dir.name + "_")
    return RunSettings(
        algo=args.algo, env_id=args.env, vmimo=vmimo, action_view=action_view if vmimo else None,
        env_kwargs=env_kwargs, train_only_env_kwargs=dict(train_only), hyperparams=hp, hyperparams_key=hp_key,
        hyperparams_file=hyperparams_path(args.algo, args.conf_file),
        n_timesteps=n_timesteps, n_envs=n_envs, eval_freq=pick(args.eval_freq, "eval_freq"),
        eval_episodes=int(args.eval_episodes or hp.get("eval_episodes", DEFAULTS["eval_episodes"])),
        save_freq=pick(args.save_freq, "save_freq"), seed=args.seed, vec_env=args.vec_env, device=args.device,
        pretrain=pretrain, run_dir=run_dir, resumed_from=ckpt.path if ckpt else None,
        baselines=tuple(heuristic_names() if args.baselines is None else [b for b in args.baselines if b]),
        tuned_baselines=not args.untuned_baselines, log_interval=args.log_interval, progress=args.progress,
        verbose=args.verbose,
        wandb_project=args.wandb_project, wandb_entity=args.wandb_entity,
        wandb_mode=args.wandb_mode or ("online" if args.track else None), wandb_init_timeout=args.wandb_init_timeout,
        wandb_tags=tuple(args.wandb_tags), eval_env_kwargs=eval_env_kwargs, eval_figures=args.eval_figures,
        env_threads=args.env_threads)


def check_env_id(env_id: str) -> None:
    """``ValueError`` for an unregistered env id, with the closest registered one."""
    import difflib

    import gymnasium as gym

    import vmimo_env  # noqa: F401  (registers the VMIMO ids)

    if env_id in gym.envs.registry:
        return
    close = difflib.get_close_matches(env_id, list(gym.envs.registry), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ValueError(f"unknown env id {env_id!r}{hint}; other packages' ids need --gym-packages MODULE")


def fit_warm_start(cfg: PretrainConfig, n_timesteps: int, n_envs: int) -> PretrainConfig | None:
    """The warm start shrunk to at most :data:`MAX_WARM_START_FRACTION` of the budget (a warning says so), or None
    (with a warning) when not even one slot of demonstrations fits."""
    cap = int(MAX_WARM_START_FRACTION * n_timesteps) // n_envs
    if cfg.steps <= cap:
        return cfg
    if cap < 1:
        warnings.warn(f"budget -n {n_timesteps:,} is too small for the warm start ({cfg.steps} slots x {n_envs} "
                      f"envs): skipping behaviour cloning", UserWarning, stacklevel=2)
        return None
    warnings.warn(f"warm start shortened from {cfg.steps} to {cap} slots x {n_envs} envs ({cap * n_envs:,} of the "
                  f"{n_timesteps:,}-step budget, at most {MAX_WARM_START_FRACTION:.0%}) so that RL gets the rest",
                  UserWarning, stacklevel=2)
    return dataclasses.replace(cfg, steps=cap)


def rl_updates(model: Any, remaining: int, n_envs: int) -> tuple[int, str]:
    """About how many RL updates ``remaining`` env steps give: on-policy rollouts, or off-policy gradient steps
    (after ``learning_starts``); with the unit's name."""
    if remaining <= 0:
        return 0, "updates"
    if isinstance(model, OnPolicyAlgorithm):
        return math.ceil(remaining / (model.n_steps * n_envs)), "rollouts"
    after = remaining - max(0, int(getattr(model, "learning_starts", 0)) - int(model.num_timesteps))
    freq = getattr(model, "train_freq", None)
    every = max(1, int(getattr(freq, "frequency", 1))) * n_envs
    per_call = int(getattr(model, "gradient_steps", 1))
    return max(0, after // every) * (per_call if per_call > 0 else every), "gradient steps"


def warn_if_undertrained(s: RunSettings, model: Any) -> None:
    """A warning when the budget left after the warm start (or the resume point) gives few or no RL updates."""
    remaining = s.n_timesteps - int(model.num_timesteps)
    n, unit = rl_updates(model, remaining, s.n_envs)
    least = MIN_ROLLOUTS if unit == "rollouts" else MIN_GRADIENT_STEPS
    if n >= least:
        return
    why = f"{remaining:,} RL steps are left of the {s.n_timesteps:,}-step budget"
    if s.pretrain is not None:
        why += f" after the {int(model.num_timesteps):,}-step warm start"
    if hasattr(model, "learning_starts") and int(model.learning_starts) >= s.n_timesteps:
        why += f"; learning_starts {int(model.learning_starts):,} is not below the budget"
    warnings.warn(f"only about {n:,} RL {unit} will run ({why}): raise -n for a trained agent", UserWarning,
                  stacklevel=2)


def write_config(s: RunSettings, args: argparse.Namespace, argv: list[str] | None) -> dict[str, Any]:
    """``config.yml`` of the run, or ``config_resume_<i>.yml`` for its i-th resume (written once the resume's
    checks passed, so a refused resume leaves no record); returns the config for W&B."""
    s.run_dir.mkdir(parents=True, exist_ok=True)
    clean_stale_temporaries(s.run_dir, s.run_dir / "checkpoints")  # left by a run killed mid-write (kill -9)
    config = {"args": vars(args), "algo": s.algo, "env_id": s.env_id, "env_kwargs": s.env_kwargs,
              "resolved_env_kwargs": s.resolved_env_kwargs, "action_view": s.action_view,
              "hyperparams": jsonable(s.hyperparams), "hyperparams_file": str(s.hyperparams_file),
              "hyperparams_key": s.hyperparams_key, "n_timesteps": s.n_timesteps, "n_envs": s.n_envs,
              "eval_freq": s.eval_freq, "eval_episodes": s.eval_episodes, "save_freq": s.save_freq,
              "run_dir": str(s.run_dir), "resumed_from": str(s.resumed_from) if s.resumed_from else None,
              "versions": package_versions(), "git_sha": git_sha(),
              "command": " ".join([sys.executable, *sys.argv]) if argv is None else "train_agent.main(...)"}
    name = "config.yml"
    if s.resumed_from:
        i = 1
        while (s.run_dir / f"config_resume_{i}.yml").exists():
            i += 1
        name = f"config_resume_{i}.yml"
    with open(s.run_dir / name, "w", encoding="utf-8") as fh:
        yaml.safe_dump(jsonable(config), fh, sort_keys=False)
    return jsonable(config)


def start_wandb(s: RunSettings, config: dict[str, Any]) -> WandbRun:
    """The run's W&B run; never fatal (falls back to offline, then off)."""
    mode = s.wandb_mode or default_mode()
    if mode == "online" and not api_key_configured():
        # wandb.init would otherwise ask for a key interactively, or fail only after its timeout
        warnings.warn("W&B online needs an API key (WANDB_API_KEY or `wandb login`): logging offline instead; "
                      "upload later with `wandb sync`", RuntimeWarning, stacklevel=2)
        mode = "offline"
    return WandbRun(s.wandb_project, mode, config,
                    name=s.run_dir.name + ("-resume" if s.resumed_from else ""), group=f"{s.algo}-{s.env_id}",
                    tags=[s.algo, s.env_id, *s.wandb_tags], directory=os.environ.get("WANDB_DIR") or s.run_dir,
                    entity=s.wandb_entity, init_timeout=s.wandb_init_timeout)


# ====================================================================== environments and model
def build_env(s: RunSettings, checkpoint: Checkpoint | None) -> tuple[VecEnv, str]:
    """The training VecEnv (and its kind), with VecNormalize restored from the checkpoint or new."""
    venv, vec_kind = make_train_env(s.env_id, s.n_envs, s.vec_env, s.seed, s.train_env_kwargs, s.action_view,
                                    monitor_dir=None, num_threads=s.env_threads)
    if (s.train_only_env_kwargs or s.eval_env_kwargs) and s.vmimo:
        # training-only and evaluation-only kwargs may change the reward, never what the model sees or does
        import gymnasium as gym

        ref = gym.make(s.env_id, **vmimo_kwargs(s.env_id, s.eval_kwargs, s.action_view))
        if ref.observation_space != venv.observation_space or ref.action_space != venv.action_space:
            which = " and ".join(f"{name} {kw}" for name, kw in (("train_env_kwargs", s.train_only_env_kwargs),
                                                                  ("--eval-env-kwargs", s.eval_env_kwargs)) if kw)
            raise SystemExit(f"{which} change the observation or action space; only keys that leave them "
                             "unchanged (reward_mode, energy_weight, ...) may differ between training and evaluation")
        ref.close()
    norm_kwargs = normalize_kwargs(s.hyperparams.get("normalize"))
    if checkpoint is not None and checkpoint.vecnormalize is not None:
        venv_norm = checkpoint.vecnormalize  # restore the running statistics, keep updating them
        try:
            venv_norm.set_venv(venv)
        except (ValueError, AssertionError) as exc:  # another scenario (--env-kwargs) than the checkpoint's
            raise CheckpointError(f"checkpoint {checkpoint.path} cannot be loaded into this run: its normalisation "
                                  f"statistics do not fit the environment ({exc}); env_kwargs "
                                  f"{checkpoint.meta.get('env_kwargs')} -> {s.env_kwargs}") from exc
        venv_norm.training = True
        return venv_norm, vec_kind
    if norm_kwargs is not None:
        return VecNormalize(venv, gamma=s.hyperparams.get("gamma", 0.99), **norm_kwargs), vec_kind
    return venv, vec_kind


def build_model(s: RunSettings, venv: VecEnv, checkpoint: Checkpoint | None) -> Any:
    """A new SB3 model from the hyperparameters, or the checkpoint's (with its replay buffer, if saved)."""
    cls = algo_class(s.algo)
    if checkpoint is not None:
        # only the schedule-free knobs of a resumed model can change; the rest comes from the checkpoint
        model = load_model(checkpoint, cls, env=venv, device=s.device)
        rb = checkpoint.path.parent / f"replay_buffer_{checkpoint.num_timesteps:012d}"
        if hasattr(model, "replay_buffer") and rb.with_suffix(".npz").exists():
            load_replay_buffer(model, rb.with_suffix(".npz"))  # plain arrays, no pickle
        elif hasattr(model, "replay_buffer") and rb.with_suffix(".pkl").exists() and checkpoint.trusted:
            model.load_replay_buffer(rb.with_suffix(".pkl"))  # an old run's pickled buffer: only with trust
        return model
    n_actions = int(np.prod(venv.action_space.shape)) if s.algo in ("sac", "td3", "ddpg") else None
    zoo, algo_kwargs = prepare_algo_kwargs(s.hyperparams, n_actions)
    policy = zoo.get("policy", "MlpPolicy")
    if policy == "MlpPolicy" and s.algo in ("ppo", "a2c") and s.action_view == "multidiscrete":
        policy = FastMultiDiscretePolicy  # same network and law, one tensor op instead of 3K+G Categoricals
    elif policy == "DevicePolicy":  # the per-device shared actor; its layout comes from the environment
        policy = DevicePolicy
        algo_kwargs["policy_kwargs"] = {**device_policy_kwargs(venv), **algo_kwargs.get("policy_kwargs", {})}
    return cls(policy, venv, seed=s.seed, device=s.device, verbose=0, **algo_kwargs)


def warm_start(s: RunSettings, model: Any, venv: VecEnv) -> dict[str, float]:
    """Behaviour cloning of the ``pretrain`` heuristic (if any); its env steps count in the budget."""
    if s.pretrain is None:
        return {}
    cfg = s.pretrain
    t0 = time.perf_counter()
    print(f"Behaviour cloning of {cfg.heuristic}: {cfg.steps} slots x {s.n_envs} envs, {cfg.epochs} epochs",
          flush=True)
    stats = behaviour_clone(model, venv, cfg, s.action_view, seed=s.seed, verbose=s.verbose)
    stats["pretrain/seconds"] = time.perf_counter() - t0
    model.num_timesteps = cfg.steps * s.n_envs
    print("  " + ", ".join(f"{k.split('/')[1]} {v:.4g}" for k, v in stats.items()), flush=True)
    return stats


def judge_clone(s: RunSettings, model: Any, venv: VecEnv, baselines: dict[str, PolicyResult]
                ) -> tuple[Any, dict[str, float], PolicyResult | None]:
    """Compare the warm-start clone with its teacher on the validation seeds; drop a clearly worse clone.

    Mode agreement on the demonstrations can be high while the clone's deterministic policy does something else
    entirely (e.g. keeps every device idle), so the clone is judged by what it scores: its validation return
    against the teacher's on the same seeds, and the share of device-slots on air (an all-idle policy shows 0).
    A clone below the teacher by more than :data:`CLONE_MAX_SHORTFALL` of the teacher's return, significantly
    (paired 95% CI), is replaced by a fresh policy; its demonstration steps stay counted in the budget (they were
    spent) and the normalisation statistics they warmed up are kept. Returns the model to train, the figures
    (``pretrain/*``) and the clone's evaluation (None when it was dropped).
    """
    from agents.policies import SB3Policy

    teacher_name = s.pretrain.heuristic
    # the references were run with the same parameters as the teacher only when both are tuned or both are not
    teacher = baselines.get(teacher_name) if s.pretrain.tuned == s.tuned_baselines else None
    if teacher is None:
        teacher = evaluate_policies([teacher_name], s.env_id, s.eval_kwargs, seeds=s.val_seeds,
                                    policy_kwargs={"tuned": s.pretrain.tuned})[teacher_name]
    vecnorm = model.get_vec_normalize_env()
    clone = run_policy(lambda env: SB3Policy(model, env, vecnorm, name=s.algo), s.env_id, s.eval_kwargs, s.val_seeds,
                       name=s.algo)
    clone.kind = "model"
    cm, tm = float(clone.episodes["return"].mean()), float(teacher.episodes["return"].mean())
    d, dh, _ = paired_difference(clone.episodes["return"], teacher.episodes["return"])
    keep = not (d + dh < 0 and cm < tm - CLONE_MAX_SHORTFALL * abs(tm))
    stats = {"pretrain/clone_return": cm, "pretrain/teacher_return": tm,
             "pretrain/return_ratio": cm / tm if tm != 0 else math.nan,
             "pretrain/clone_on_air": float(np.nanmean(clone.per_device["tx_frac"])),
             "pretrain/teacher_on_air": float(np.nanmean(teacher.per_device["tx_frac"])), "pretrain/kept": float(keep)}
    verdict = (f"clone return {cm:.3f} vs {teacher_name} {tm:.3f} on {len(s.val_seeds)} validation seeds "
               f"(Δ {d:+.3f} ± {dh:.3f}); device-slots on air {stats['pretrain/clone_on_air']:.1%} vs "
               f"{stats['pretrain/teacher_on_air']:.1%}")
    if keep:
        print(f"  warm start kept: {verdict}", flush=True)
        return model, stats, clone
    print(f"Warm start DROPPED: {verdict}; the clone is much worse than its teacher, continuing from a fresh policy "
          f"(its {int(model.num_timesteps):,} demonstration steps stay counted in the budget)", flush=True)
    fresh = build_model(s, venv, None)
    fresh.num_timesteps = int(model.num_timesteps)
    return fresh, stats, None


def attach_logger(s: RunSettings, model: Any, wandb_run: WandbRun, records: dict[str, float]) -> None:
    """Console + CSV + W&B outputs for SB3's logger; ``records`` (the warm start's) are written first."""
    logger = configure(str(s.run_dir), ["stdout"] if s.verbose >= 1 else [])
    # a resumed run appends a second CSV instead of overwriting the first segment's progress.csv
    csv_name = f"progress_from_{int(model.num_timesteps)}.csv" if s.resumed_from else "progress.csv"
    logger.output_formats += [CSVOutputFormat(str(s.run_dir / csv_name)), WandbOutputFormat(wandb_run)]
    model.set_logger(logger)
    if records:
        for key, value in records.items():
            logger.record(key, value)
        logger.dump(model.num_timesteps)


def evaluate_baselines(s: RunSettings, wandb_run: WandbRun) -> dict[str, PolicyResult]:
    """The reference heuristics on the validation seeds (once; every evaluation compares against them)."""
    if not (s.vmimo and s.eval_freq > 0 and s.baselines):
        return {}
    t0 = time.perf_counter()
    baselines = evaluate_policies(list(s.baselines), s.env_id, s.eval_kwargs, seeds=s.val_seeds,
                                  policy_kwargs={"tuned": s.tuned_baselines})
    rows = comparison_rows(baselines)
    if s.verbose:
        print(f"Heuristics on the {s.eval_episodes} held-out seeds ({time.perf_counter() - t0:.1f} s):")
        print(format_table(rows), flush=True)
    wandb_run.summary_update({f"baseline/{r['policy']}/return": r["return_mean"] for r in rows})
    return baselines


# ====================================================================== saving, callbacks, training
@dataclass
class Saver:
    """Writes checkpoints of ``model`` with the run's metadata (best evaluation so far from ``evaluator``)."""

    settings: RunSettings
    model: Any
    evaluator: HeldOutEvalCallback | None = None

    def meta(self) -> dict[str, Any]:
        s, ev = self.settings, self.evaluator
        return {"algo": s.algo, "env_id": s.env_id, "env_kwargs": s.env_kwargs,
                "train_env_kwargs": s.train_only_env_kwargs,
                "eval_env_kwargs": s.eval_env_kwargs, "action_view": s.action_view, "n_envs": s.n_envs,
                "seed": s.seed, "run_dir": str(s.run_dir), "n_timesteps_target": s.n_timesteps,
                "versions": package_versions(), "best_mean_reward": ev.best_mean_reward if ev else None,
                "best_step": ev.best_step if ev else None, "saved_at": dt.datetime.now().isoformat()}

    def __call__(self, path: Path) -> Path:
        return save_checkpoint(path, self.model, self.meta(), self.model.get_vec_normalize_env())


def build_callbacks(s: RunSettings, saver: Saver, baselines: dict[str, PolicyResult], wandb_run: WandbRun,
                    checkpoint: Checkpoint | None) -> tuple[list[BaseCallback], HeldOutEvalCallback | None,
                                                            AtomicCheckpointCallback]:
    """Episode statistics, held-out evaluation (keeps ``best_model.zip``) and periodic checkpoints."""
    callbacks: list[BaseCallback] = [EpisodeInfoCallback()]
    eval_cb = None
    if s.eval_freq > 0:
        best_prev = checkpoint.meta.get("best_mean_reward") if checkpoint else None
        # a resume continues the evaluation history and the best model's record of the run it continues
        history = read_history(s.run_dir / "eval" / "evaluations.csv", checkpoint.num_timesteps) if checkpoint \
            else []
        eval_cb = HeldOutEvalCallback(s.env_id, s.eval_kwargs, s.val_seeds, s.eval_freq, s.run_dir / "eval",
                                      name=s.algo, baselines=baselines,
                                      save_best=lambda _m: saver(s.run_dir / "best_model.zip"), wandb_run=wandb_run,
                                      best_mean_reward=-math.inf if best_prev is None else float(best_prev),
                                      best_step=checkpoint.meta.get("best_step") if checkpoint else None,
                                      history=history, figures_every=s.eval_figures, verbose=s.verbose)
        callbacks.append(eval_cb)
    saver.evaluator = eval_cb
    ckpt_cb = AtomicCheckpointCallback(s.save_freq, s.run_dir / "checkpoints", saver, verbose=0)
    callbacks.append(ckpt_cb)
    # W&B histograms of the allocation and a rendered episode at each evaluation (nothing when W&B is off)
    callbacks.append(WandbMediaCallback(wandb_run, s.env_id, s.eval_kwargs, s.eval_freq))
    return callbacks, eval_cb, ckpt_cb


def train(s: RunSettings, model: Any, callbacks: list[BaseCallback], fresh_counter: bool) -> dict[str, Any]:
    """``model.learn`` up to the budget; Ctrl-C stops it cleanly (the caller saves). Returns what happened."""
    start = int(model.num_timesteps)
    remaining = s.n_timesteps - start
    learn_kwargs: dict[str, Any] = {}
    if s.log_interval > 0:
        learn_kwargs["log_interval"] = s.log_interval
    elif hasattr(model, "n_steps"):  # on-policy: one dump per rollout is too chatty for A2C's short rollouts
        rollout = model.n_steps * s.n_envs
        every = max(rollout, min(20_000, max(remaining, 1) // 20))
        learn_kwargs["log_interval"] = max(1, round(every / rollout))
    interrupted = False
    received: list[int] = []

    def on_sigterm(signum: int, _frame: Any) -> None:
        # schedulers and `docker stop` send SIGTERM: stop like Ctrl-C, so that the final checkpoint is written
        received.append(signum)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_sigterm) if threading.current_thread() is threading.main_thread() \
        else None
    t0 = time.perf_counter()
    try:
        if remaining > 0:
            model.learn(total_timesteps=remaining, callback=CallbackList(callbacks), progress_bar=s.progress,
                        reset_num_timesteps=fresh_counter, **learn_kwargs)
    except KeyboardInterrupt:
        interrupted = True
        print(f"\n{'Terminated (SIGTERM)' if received else 'Interrupted'}: saving a checkpoint before exiting",
              flush=True)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    seconds = time.perf_counter() - t0
    trained = int(model.num_timesteps) - start
    return {"interrupted": interrupted, "exit_code": (128 + signal.SIGTERM if received else 130) if interrupted else 0,
            "train_seconds": seconds, "trained_steps": trained,
            "sps": trained / seconds if seconds > 0 else math.nan}


def summarize(s: RunSettings, model: Any, saver: Saver, eval_cb: HeldOutEvalCallback | None,
              ckpt_cb: AtomicCheckpointCallback, baselines: dict[str, PolicyResult], pretrain_stats: dict[str, float],
              outcome: dict[str, Any], wandb_run: WandbRun, t_start: float) -> dict[str, Any]:
    """A last evaluation, the final checkpoint and model, the printed summary, ``summary.yml`` and W&B's summary."""
    # the last evaluation inside learn() ran during rollout collection, before that rollout's update: the final
    # model differs from it whenever anything was trained, even at the same step count
    stale = outcome["trained_steps"] > 0 or not eval_cb.has_evaluated(model.num_timesteps) if eval_cb else False
    if eval_cb is not None and not outcome["interrupted"] and stale:
        eval_cb.evaluate_model(model)  # the final evaluation's eval/* records reach csv and W&B
    # saved after that evaluation, so that their metadata (best return and step, read by --resume) include it
    final_ckpt = ckpt_cb.save(model)
    final_path = saver(s.run_dir / "final_model.zip")
    summary: dict[str, Any] = {
        "run_dir": str(s.run_dir), "final_model": str(final_path), "checkpoint": str(final_ckpt),
        "num_timesteps": int(model.num_timesteps), **outcome, "wall_seconds": time.perf_counter() - t_start,
        "wandb_mode": wandb_run.mode, "wandb_dir": wandb_run.run_dir,
        "pretrain": {k.split("/", 1)[1]: v for k, v in pretrain_stats.items()}}
    lines = [f"Final model      {final_path} ({model.num_timesteps:,} steps; resume with --resume {s.run_dir})",
             f"Training time    {outcome['train_seconds']:.0f} s for {outcome['trained_steps']:,} steps "
             f"({summary['sps']:,.0f} steps/s)"]
    if s.pretrain is not None:
        ps = pretrain_stats
        health = (f"clone/teacher return {ps['pretrain/clone_return']:.3f}/{ps['pretrain/teacher_return']:.3f}, "
                  f"device-slots on air {ps['pretrain/clone_on_air']:.1%} (teacher "
                  f"{ps['pretrain/teacher_on_air']:.1%}), " if "pretrain/clone_return" in ps else "")
        lines.insert(1, f"Warm start       behaviour cloning of {s.pretrain.heuristic}: "
                        f"{int(ps['pretrain/samples']):,} demonstration steps (counted in the budget), {health}"
                        f"mode agreement {ps['pretrain/mode_agreement']:.1%}, {ps['pretrain/seconds']:.0f} s"
                        + ("" if ps.get("pretrain/kept", 1.0) else "; DROPPED (much worse than its teacher): "
                           "trained from a fresh policy"))
    if eval_cb is not None and eval_cb.best_step is not None:
        best = eval_cb.best_result
        summary.update(best_model=str(s.run_dir / "best_model.zip"), best_mean_reward=eval_cb.best_mean_reward,
                       best_step=eval_cb.best_step)
        row = next((r for r in eval_cb.history if r.get("timesteps") == eval_cb.best_step), {})
        m, h = best.mean_ci() if best is not None else (eval_cb.best_mean_reward, row.get("ci95", math.nan))
        lines.append(f"Best model       {s.run_dir / 'best_model.zip'}: return {m:.3f} ± {h:.3f} at step "
                     f"{eval_cb.best_step:,} on {s.eval_episodes} held-out seeds")
        ref = best_heuristic(baselines) if baselines else None
        if ref is not None and best is not None:
            rm, rh = baselines[ref].mean_ci()
            d, dh, _ = paired_difference(best.episodes["return"], baselines[ref].episodes["return"])
            summary.update(best_heuristic=ref, best_heuristic_return=rm, diff_vs_best_heuristic=d, diff_ci95=dh)
            verdict = "better" if d - dh > 0 else ("worse" if d + dh < 0 else "not significantly different")
            lines.append(f"Best heuristic   {ref}: return {rm:.3f} ± {rh:.3f} on the same seeds; agent − heuristic "
                         f"= {d:+.3f} ± {dh:.3f} (paired 95% CI: {verdict})")
    if wandb_run.run_dir:
        lines.append(f"W&B ({wandb_run.mode})  {wandb_run.run_dir}"
                     + ("  (upload: wandb sync " + wandb_run.run_dir + ")" if wandb_run.mode == "offline" else ""))
    print("\n" + "\n".join(lines), flush=True)
    wandb_run.summary_update({k: v for k, v in summary.items() if isinstance(v, (int, float, str))})
    log_model_artifacts(wandb_run, {"best": summary.get("best_model"), "final": final_path}, env_id=s.env_id,
                        algo=s.algo, seed=s.seed, steps=int(model.num_timesteps))
    wandb_run.finish(exit_code=outcome["exit_code"])
    with open(s.run_dir / "summary.yml", "w", encoding="utf-8") as fh:
        yaml.safe_dump(jsonable(summary), fh, sort_keys=False)
    return summary


# ====================================================================== main
def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Train, evaluate, save and summarise one run (the module docstring); returns the summary."""
    args = parse_args(argv)
    previous_threads = torch.get_num_threads()
    if args.torch_threads > 0:
        torch.set_num_threads(args.torch_threads)
    try:
        return _run(args, argv)
    finally:
        torch.set_num_threads(previous_threads)  # called as a library, main leaves torch as it found it


def _run(args: argparse.Namespace, argv: list[str] | None) -> dict[str, Any]:
    t_start = time.perf_counter()
    # SB3 feeds the distributions logits it produced itself; argument validation only costs time per step
    torch.distributions.Distribution.set_default_validate_args(False)

    checkpoint = open_checkpoint(args)
    s = resolve_settings(args, checkpoint)
    venv, vec_kind = build_env(s, checkpoint)
    model = build_model(s, venv, checkpoint)
    config = write_config(s, args, argv)  # only now: every check of the settings and the checkpoint passed
    wandb_run = start_wandb(s, config)

    pretrain_stats = warm_start(s, model, venv)
    baselines = evaluate_baselines(s, wandb_run)
    clone_result = None
    if pretrain_stats:
        model, health, clone_result = judge_clone(s, model, venv, baselines)
        pretrain_stats.update(health)
    wandb_run.summary_update(pretrain_stats)
    attach_logger(s, model, wandb_run, pretrain_stats)
    warn_if_undertrained(s, model)
    start_steps = int(model.num_timesteps)
    print(f"Training {s.algo.upper()} on {s.env_id} ({s.action_view or 'native'} actions, {s.n_envs} envs, "
          f"{vec_kind} vec env{', VecNormalize' if isinstance(venv, VecNormalize) else ''}) for "
          f"{max(s.n_timesteps - start_steps, 0):,} steps{f' from step {start_steps:,}' if checkpoint else ''}; "
          f"run folder {s.run_dir}; W&B {wandb_run.mode}", flush=True)

    saver = Saver(s, model)
    callbacks, eval_cb, ckpt_cb = build_callbacks(s, saver, baselines, wandb_run, checkpoint)
    if eval_cb is not None and clone_result is not None:
        eval_cb.evaluate_model(model, clone_result)  # a kept clone is a candidate best model too

    outcome = train(s, model, callbacks, fresh_counter=checkpoint is None and s.pretrain is None)
    summary = summarize(s, model, saver, eval_cb, ckpt_cb, baselines, pretrain_stats, outcome, wandb_run, t_start)
    venv.close()
    if outcome["interrupted"]:
        raise SystemExit(outcome["exit_code"])
    return summary


if __name__ == "__main__":
    try:
        main()
    except (CheckpointError, ValueError, KeyError, FileNotFoundError) as exc:
        # a clear one-line reason for the errors a user can fix (bad checkpoint, bad flag)
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc
