"""Train a Stable-Baselines3 agent on VMIMO: ``python train_agent.py --algo ppo``.

Read top to bottom, in the CleanRL spirit: arguments, hyperparameters, run folder, Weights & Biases,
environments, model, reference heuristics, callbacks, training, summary. The moving parts live in ``agents/``
(``agents.common.envs``, ``agents.callbacks``, ``agents.checkpoint``, ``agents.wandb_logging``).

Examples::

    python train_agent.py --algo ppo                                   # default budget (see docs/training.md)
    python train_agent.py --algo sac -n 200000 --seed 3
    python train_agent.py --algo ppo --env VMIMO-Small-v0 --hyperparams learning_rate=1e-3 n_steps=64
    python train_agent.py --algo ppo --env-kwargs num_devices:16 num_antennas:8
    python train_agent.py --algo ppo --resume runs/ppo/VMIMO-v0__s0__20260101-120000  -n 4000000
    python train_agent.py --algo ppo --wandb-mode disabled --no-progress
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import platform
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import yaml

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
    hyperparams_path,
    jsonable,
    load_hyperparams,
    normalize_kwargs,
    parse_assignments,
    prepare_algo_kwargs,
)

DEFAULTS = {"eval_freq": 100_000, "eval_episodes": 50, "save_freq": 200_000}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--algo", default="ppo", choices=ALGOS, help="RL algorithm")
    p.add_argument("--env", default="VMIMO-v0", help="environment id")
    p.add_argument("--env-kwargs", nargs="*", default=[], metavar="KEY:VALUE",
                   help="scenario parameters, e.g. num_devices:16 energy_weight:1.0")
    p.add_argument("-n", "--n-timesteps", type=int, default=None, help="training budget in env steps "
                   "(default: n_timesteps of the hyperparameter file); with --resume, the total to reach")
    p.add_argument("--seed", type=int, default=0, help="training env i starts from seed + i; also seeds torch")
    p.add_argument("--n-envs", type=int, default=None, help="parallel environments (default: hyperparameter file)")
    p.add_argument("--vec-env", default="batched", choices=VEC_ENVS,
                   help="batched = one numpy batch (VMIMOSB3VecEnv); dummy/subproc = SB3's VecEnvs of gym.make envs")
    p.add_argument("--eval-freq", type=int, default=None,
                   help=f"evaluate every N env steps on held-out seeds, <= 0 disables "
                        f"(default {DEFAULTS['eval_freq']})")
    p.add_argument("--eval-episodes", type=int, default=None,
                   help=f"held-out episodes per evaluation (default {DEFAULTS['eval_episodes']})")
    p.add_argument("--save-freq", type=int, default=None,
                   help=f"checkpoint every N env steps, <= 0: only the final one (default {DEFAULTS['save_freq']})")
    p.add_argument("--log-folder", default="runs", help="runs are written to LOG_FOLDER/ALGO/ENV__sSEED__TIME")
    p.add_argument("--conf-file", default=None, help="hyperparameter YAML (default agents/hyperparams/ALGO.yml)")
    p.add_argument("--hyperparams", nargs="*", default=[], metavar="KEY=VALUE",
                   help="override hyperparameters, e.g. learning_rate=1e-3 'policy_kwargs={net_arch: [64, 64]}'")
    p.add_argument("--device", default="cpu", help="torch device")
    p.add_argument("--resume", default=None, metavar="PATH",
                   help="continue from a checkpoint (.zip) or the newest checkpoint of a run folder")
    p.add_argument("--wandb-project", default="vmimo", help="W&B project")
    p.add_argument("--wandb-entity", default=None, help="W&B entity (team/user)")
    p.add_argument("--wandb-mode", default=None, choices=("online", "offline", "disabled"),
                   help="default: online if an API key is configured (WANDB_API_KEY or netrc), else offline")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="progress bar")
    p.add_argument("--baselines", nargs="*", default=None, metavar="HEURISTIC",
                   help="heuristics evaluated on the same held-out seeds as reference (default: all; none: '')")
    p.add_argument("--log-interval", type=int, default=-1,
                   help="SB3 log_interval (rollouts for on-policy, episodes for off-policy algorithms); -1: a dump "
                        "about every 20k env steps (at least 20 over the run) for on-policy, SB3's default otherwise")
    p.add_argument("--torch-threads", type=int, default=1,
                   help="torch intra-op threads (1 is fastest for these small networks on a 2-core machine)")
    p.add_argument("--run-name", default=None, help="name of the run folder and W&B run")
    p.add_argument("-v", "--verbose", type=int, default=1, help="0: quiet, 1: SB3 tables and evaluation lines")
    return p.parse_args(argv)


def package_versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("vmimo", "numpy", "torch", "gymnasium", "stable_baselines3", "sb3_contrib", "wandb", "numba"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


def git_sha() -> str:
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=here, capture_output=True, text=True,
                               timeout=10).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    t_start = time.perf_counter()

    import numpy as np
    import torch
    from stable_baselines3.common.logger import CSVOutputFormat, configure
    from stable_baselines3.common.vec_env import VecNormalize

    from agents.callbacks import AtomicCheckpointCallback, EpisodeInfoCallback, HeldOutEvalCallback
    from agents.checkpoint import check_compatible, load_model, read_checkpoint, resolve_resume_path, save_checkpoint
    from agents.common.device_policy import DevicePolicy, device_policy_kwargs
    from agents.common.distributions import FastMultiDiscretePolicy
    from agents.common.pretrain import PretrainConfig, behaviour_clone
    from agents.evaluate import best_heuristic, comparison_rows, evaluate_policies, format_table
    from agents.policies import algo_class, heuristic_names
    from agents.wandb_logging import WandbOutputFormat, WandbRun, default_mode

    torch.set_num_threads(max(1, args.torch_threads))
    # SB3 feeds the distributions logits it produced itself; argument validation only costs time per step
    torch.distributions.Distribution.set_default_validate_args(False)
    action_view = action_view_for(args.algo)
    vmimo = is_vmimo(args.env)

    # ------------------------------------------------------------------ 1. resume point (if any)
    ckpt = None
    if args.resume:
        ckpt = read_checkpoint(resolve_resume_path(args.resume))  # CheckpointError names the file
        check_compatible(ckpt, algo=args.algo, env_id=args.env, action_view=action_view if vmimo else None)

    # ------------------------------------------------------------------ 2. hyperparameters (YAML < CLI)
    hp, hp_key = load_hyperparams(args.algo, args.env, args.conf_file)
    hp.update(parse_assignments(args.hyperparams, "="))
    env_kwargs = dict(ckpt.meta.get("env_kwargs") or {}) if ckpt else {}
    env_kwargs.update(parse_assignments(args.env_kwargs, ":"))
    n_timesteps = int(args.n_timesteps if args.n_timesteps is not None else hp.get("n_timesteps", 100_000))
    n_envs = int(args.n_envs or (ckpt.meta.get("n_envs") if ckpt else None) or hp.get("n_envs", 8))
    eval_freq = int(args.eval_freq if args.eval_freq is not None else hp.get("eval_freq", DEFAULTS["eval_freq"]))
    eval_episodes = int(args.eval_episodes or hp.get("eval_episodes", DEFAULTS["eval_episodes"]))
    save_freq = int(args.save_freq if args.save_freq is not None else hp.get("save_freq", DEFAULTS["save_freq"]))
    check_train_seed(args.seed, n_envs)
    # training-only env kwargs (e.g. the lower-variance soft reward); evaluation sees the env as the user set it.
    # A resumed run keeps the ones it was started with.
    train_only = hp.get("train_env_kwargs") or {}
    if not isinstance(train_only, dict):
        raise SystemExit(f"hyperparameter train_env_kwargs must be a mapping, got {train_only!r}")
    if ckpt is not None and "train_env_kwargs" in ckpt.meta:
        saved = dict(ckpt.meta.get("train_env_kwargs") or {})
        if saved != train_only:
            warnings.warn(f"resuming with the checkpoint's train_env_kwargs {saved} (hyperparameters say "
                          f"{train_only})", stacklevel=1)
        train_only = saved
    train_env_kwargs = {**train_only, **env_kwargs}
    # warm start by behaviour cloning of a heuristic (agents/common/pretrain.py); never on resume
    try:
        pretrain_cfg = PretrainConfig.from_hyperparams(hp.get("pretrain")) if ckpt is None else None
    except ValueError as err:
        raise SystemExit(f"hyperparameter pretrain: {err}") from None
    if pretrain_cfg is not None and not (vmimo and args.algo in ("ppo", "a2c", "maskable_ppo")
                                         and args.vec_env == "batched"):
        raise SystemExit(f"pretrain (behaviour cloning) needs a VMIMO env, --vec-env batched and --algo ppo, a2c or "
                         f"maskable_ppo; got --env {args.env} --algo {args.algo} --vec-env {args.vec_env}")
    if hp.get("policy") == "DevicePolicy" and not (vmimo and args.algo in ("ppo", "a2c")):
        raise SystemExit(f"policy DevicePolicy needs a VMIMO env and --algo ppo or a2c, got --env {args.env} "
                         f"--algo {args.algo}")

    # ------------------------------------------------------------------ 3. run folder and config
    if ckpt and ckpt.meta.get("run_dir") and Path(ckpt.meta["run_dir"]).is_dir():
        run_dir = Path(ckpt.meta["run_dir"])  # a resumed run keeps writing where it started
    else:
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        run_dir = Path(args.log_folder) / args.algo / (args.run_name or f"{args.env}__s{args.seed}__{stamp}")
        while run_dir.exists() and not ckpt:
            run_dir = run_dir.with_name(run_dir.name + "_")
    run_dir.mkdir(parents=True, exist_ok=True)
    full_env_kwargs = vmimo_kwargs(args.env, env_kwargs, action_view) if vmimo else env_kwargs
    config = {"args": vars(args), "algo": args.algo, "env_id": args.env, "env_kwargs": env_kwargs,
              "resolved_env_kwargs": full_env_kwargs, "action_view": action_view if vmimo else None,
              "hyperparams": jsonable(hp), "hyperparams_file": str(hyperparams_path(args.algo, args.conf_file)),
              "hyperparams_key": hp_key, "n_timesteps": n_timesteps, "n_envs": n_envs, "eval_freq": eval_freq,
              "eval_episodes": eval_episodes, "save_freq": save_freq, "run_dir": str(run_dir),
              "resumed_from": str(ckpt.path) if ckpt else None, "versions": package_versions(), "git_sha": git_sha(),
              "command": " ".join([sys.executable, *sys.argv]) if argv is None else "train_agent.main(...)"}
    with open(run_dir / ("config_resume.yml" if ckpt else "config.yml"), "w", encoding="utf-8") as fh:
        yaml.safe_dump(jsonable(config), fh, sort_keys=False)

    # ------------------------------------------------------------------ 4. Weights & Biases (never fatal)
    wandb_mode = args.wandb_mode or default_mode()
    wandb_run = WandbRun(args.wandb_project, wandb_mode, jsonable(config),
                         name=run_dir.name + ("-resume" if ckpt else ""), group=f"{args.algo}-{args.env}",
                         tags=[args.algo, args.env], directory=os.environ.get("WANDB_DIR") or run_dir,
                         entity=args.wandb_entity)

    # ------------------------------------------------------------------ 5. training environments
    venv, vec_kind = make_train_env(args.env, n_envs, args.vec_env, args.seed, train_env_kwargs, action_view,
                                    monitor_dir=None)
    if train_only and vmimo:  # training-only kwargs may change the reward, never what the model sees or does
        import gymnasium as gym

        ref = gym.make(args.env, **vmimo_kwargs(args.env, env_kwargs, action_view))
        if ref.observation_space != venv.observation_space or ref.action_space != venv.action_space:
            raise SystemExit(f"train_env_kwargs {train_only} change the observation or action space; only keys "
                             f"that leave them unchanged (reward_mode, energy_weight, ...) may differ from evaluation")
        ref.close()
    norm_kwargs = normalize_kwargs(hp.get("normalize"))
    if ckpt is not None and ckpt.vecnormalize is not None:
        venv_norm = ckpt.vecnormalize  # restore the running statistics, keep updating them
        venv_norm.set_venv(venv)
        venv_norm.training = True
        venv = venv_norm
    elif norm_kwargs is not None:
        venv = VecNormalize(venv, gamma=hp.get("gamma", 0.99), **norm_kwargs)

    # ------------------------------------------------------------------ 6. model (new or resumed)
    cls = algo_class(args.algo)
    n_actions = int(np.prod(venv.action_space.shape)) if args.algo in ("sac", "td3", "ddpg") else None
    zoo, algo_kwargs = prepare_algo_kwargs(hp, n_actions)
    policy = zoo.get("policy", "MlpPolicy")
    if policy == "MlpPolicy" and args.algo in ("ppo", "a2c") and action_view == "multidiscrete" and vmimo:
        policy = FastMultiDiscretePolicy  # same network and law, one tensor op instead of 3K+G Categoricals
    elif policy == "DevicePolicy":  # the per-device shared actor; its layout comes from the environment
        policy = DevicePolicy
        algo_kwargs["policy_kwargs"] = {**device_policy_kwargs(venv), **algo_kwargs.get("policy_kwargs", {})}
    if ckpt is None:
        model = cls(policy, venv, seed=args.seed, device=args.device, verbose=0, **algo_kwargs)
    else:
        # only the schedule-free knobs of a resumed model can change; the rest comes from the checkpoint
        model = load_model(ckpt, cls, env=venv, device=args.device)
        rb = ckpt.path.parent / f"replay_buffer_{ckpt.num_timesteps:012d}.pkl"
        if hasattr(model, "replay_buffer") and rb.exists():
            model.load_replay_buffer(rb)
    # the warm start's env steps count in the budget
    pretrain_stats: dict[str, float] = {}
    if pretrain_cfg is not None:
        t0 = time.perf_counter()
        print(f"Behaviour cloning of {pretrain_cfg.heuristic}: {pretrain_cfg.steps} slots x {n_envs} envs, "
              f"{pretrain_cfg.epochs} epochs", flush=True)
        pretrain_stats = behaviour_clone(model, venv, pretrain_cfg, action_view, seed=args.seed,
                                         verbose=args.verbose)
        pretrain_stats["pretrain/seconds"] = time.perf_counter() - t0
        model.num_timesteps = pretrain_cfg.steps * n_envs
        print("  " + ", ".join(f"{k.split('/')[1]} {v:.4g}" for k, v in pretrain_stats.items()), flush=True)
        wandb_run.summary_update(pretrain_stats)
    logger = configure(str(run_dir), ["stdout"] if args.verbose >= 1 else [])
    # a resumed run appends a second CSV instead of overwriting the first segment's progress.csv
    csv_name = f"progress_from_{int(model.num_timesteps)}.csv" if ckpt else "progress.csv"
    logger.output_formats += [CSVOutputFormat(str(run_dir / csv_name)), WandbOutputFormat(wandb_run)]
    model.set_logger(logger)
    if pretrain_stats:
        for key, value in pretrain_stats.items():
            logger.record(key, value)
        logger.dump(model.num_timesteps)
    start_steps = int(model.num_timesteps)
    remaining = n_timesteps - start_steps
    print(f"Training {args.algo.upper()} on {args.env} ({action_view if vmimo else 'native'} actions, {n_envs} envs, "
          f"{vec_kind} vec env{', VecNormalize' if isinstance(venv, VecNormalize) else ''}) for "
          f"{max(remaining, 0):,} steps{f' from step {start_steps:,}' if ckpt else ''}; run folder {run_dir}; "
          f"W&B {wandb_run.mode}", flush=True)

    # ------------------------------------------------------------------ 7. reference heuristics on held-out seeds
    val_seeds = list(range(VALIDATION_SEED_BASE, VALIDATION_SEED_BASE + eval_episodes))
    baselines = {}
    names = heuristic_names() if args.baselines is None else [b for b in args.baselines if b]
    if vmimo and eval_freq > 0 and names:
        t0 = time.perf_counter()
        baselines = evaluate_policies(names, args.env, env_kwargs, seeds=val_seeds)
        rows = comparison_rows(baselines)
        if args.verbose:
            print(f"Heuristics on the {eval_episodes} held-out seeds ({time.perf_counter() - t0:.1f} s):")
            print(format_table(rows), flush=True)
        wandb_run.summary_update({f"baseline/{r['policy']}/return": r["return_mean"] for r in rows})

    # ------------------------------------------------------------------ 8. callbacks
    ckpt_dir = run_dir / "checkpoints"
    eval_cb: HeldOutEvalCallback | None = None

    def meta() -> dict[str, Any]:
        return {"algo": args.algo, "env_id": args.env, "env_kwargs": env_kwargs, "train_env_kwargs": train_only,
                "action_view": action_view if vmimo else None, "n_envs": n_envs, "seed": args.seed,
                "run_dir": str(run_dir), "n_timesteps_target": n_timesteps, "versions": package_versions(),
                "best_mean_reward": eval_cb.best_mean_reward if eval_cb else None,
                "best_step": eval_cb.best_step if eval_cb else None, "saved_at": dt.datetime.now().isoformat()}

    def save(path: Path) -> Path:
        return save_checkpoint(path, model, meta(), model.get_vec_normalize_env())

    callbacks = [EpisodeInfoCallback()]
    if eval_freq > 0:
        best_prev = ckpt.meta.get("best_mean_reward") if ckpt else None
        eval_cb = HeldOutEvalCallback(args.env, env_kwargs, val_seeds, eval_freq, run_dir / "eval",
                                      name=args.algo, baselines=baselines,
                                      save_best=lambda _m: save(run_dir / "best_model.zip"), wandb_run=wandb_run,
                                      best_mean_reward=-math.inf if best_prev is None else float(best_prev),
                                      verbose=args.verbose)
        callbacks.append(eval_cb)
    ckpt_cb = AtomicCheckpointCallback(save_freq, ckpt_dir, save, verbose=0)
    callbacks.append(ckpt_cb)
    from agents.wandb_extras import WandbMediaCallback, log_model_artifacts  # W&B histograms, media, artifacts
    callbacks.append(WandbMediaCallback(wandb_run, args.env, env_kwargs, eval_freq))
    if eval_cb is not None and pretrain_cfg is not None:  # the clone is a candidate best model too
        eval_cb.init_callback(model)
        eval_cb.num_timesteps = int(model.num_timesteps)
        eval_cb.evaluate()
        model.logger.dump(model.num_timesteps)

    # ------------------------------------------------------------------ 9. train
    from stable_baselines3.common.callbacks import CallbackList

    learn_kwargs: dict[str, Any] = {}
    if args.log_interval > 0:
        learn_kwargs["log_interval"] = args.log_interval
    elif hasattr(model, "n_steps"):  # on-policy: one dump per rollout is too chatty for A2C's short rollouts
        rollout = model.n_steps * n_envs
        every = max(rollout, min(20_000, max(remaining, 1) // 20))
        learn_kwargs["log_interval"] = max(1, round(every / rollout))

    interrupted = False
    t_learn = time.perf_counter()
    try:
        if remaining > 0:
            model.learn(total_timesteps=remaining, callback=CallbackList(callbacks), progress_bar=args.progress,
                        reset_num_timesteps=ckpt is None and pretrain_cfg is None, **learn_kwargs)
    except KeyboardInterrupt:
        interrupted = True
        print("\nInterrupted: saving a checkpoint before exiting", flush=True)
    learn_s = time.perf_counter() - t_learn
    trained = int(model.num_timesteps) - start_steps

    # ------------------------------------------------------------------ 10. final model, last evaluation, summary
    ckpt_cb.model = model
    final_ckpt = ckpt_cb.save()
    final_path = save(run_dir / "final_model.zip")
    if eval_cb is not None and getattr(eval_cb, "model", None) is None:
        eval_cb.init_callback(model)  # no learn() call happened (budget already reached): evaluate the model as is
        eval_cb.num_timesteps = int(model.num_timesteps)
    if eval_cb is not None and not interrupted and (not eval_cb.history
                                                    or eval_cb.history[-1]["timesteps"] != model.num_timesteps):
        eval_cb.evaluate()
        model.logger.dump(model.num_timesteps)  # the final evaluation's eval/* records reach csv and W&B
    summary: dict[str, Any] = {
        "run_dir": str(run_dir), "final_model": str(final_path), "checkpoint": str(final_ckpt),
        "num_timesteps": int(model.num_timesteps), "trained_steps": trained, "train_seconds": learn_s,
        "sps": trained / learn_s if learn_s > 0 else math.nan, "wall_seconds": time.perf_counter() - t_start,
        "wandb_mode": wandb_run.mode, "wandb_dir": wandb_run.run_dir, "interrupted": interrupted,
        "pretrain": {k.split("/", 1)[1]: v for k, v in pretrain_stats.items()}}
    lines = [f"Final model      {final_path} ({model.num_timesteps:,} steps; resume with --resume {run_dir})",
             f"Training time    {learn_s:.0f} s for {trained:,} steps ({summary['sps']:,.0f} steps/s)"]
    if pretrain_cfg is not None:
        lines.insert(1, f"Warm start       behaviour cloning of {pretrain_cfg.heuristic}: "
                        f"{int(pretrain_stats['pretrain/samples']):,} demonstration steps (counted in the budget), "
                        f"mode agreement {pretrain_stats['pretrain/mode_agreement']:.1%}, "
                        f"{pretrain_stats['pretrain/seconds']:.0f} s")
    if eval_cb is not None and eval_cb.best_step is not None:
        best = eval_cb.best_result
        summary.update(best_model=str(run_dir / "best_model.zip"), best_mean_reward=eval_cb.best_mean_reward,
                       best_step=eval_cb.best_step)
        m, h = best.mean_ci() if best is not None else (eval_cb.best_mean_reward, math.nan)
        lines.append(f"Best model       {run_dir / 'best_model.zip'}: return {m:.3f} ± {h:.3f} at step "
                     f"{eval_cb.best_step:,} on {eval_episodes} held-out seeds")
        ref = best_heuristic(baselines) if baselines else None
        if ref is not None and best is not None:
            from agents.common.stats import paired_difference

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
    log_model_artifacts(wandb_run, {"best": summary.get("best_model"), "final": final_path}, env_id=args.env,
                        algo=args.algo, seed=args.seed, steps=int(model.num_timesteps))
    wandb_run.finish(exit_code=130 if interrupted else 0)
    venv.close()
    with open(run_dir / "summary.yml", "w", encoding="utf-8") as fh:
        yaml.safe_dump(jsonable(summary), fh, sort_keys=False)
    if interrupted:
        raise SystemExit(130)
    return summary


if __name__ == "__main__":
    try:
        main()
    except Exception as exc:  # a clear one-line reason for the errors a user can fix (bad checkpoint, bad flag)
        from agents.checkpoint import CheckpointError

        if isinstance(exc, (CheckpointError, ValueError, KeyError, FileNotFoundError)):
            print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(2) from exc
        raise
