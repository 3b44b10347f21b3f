"""The VMIMO benchmark: ``python -m agents.benchmark --tier default``.

Per tier (``vmimo_env.scenario.TIERS``: the tier's scenario and its registered env id) it

1. evaluates every baseline on the fixed test seeds ``TEST_SEED_BASE + j`` with common random numbers (the same
   seeds for every policy, :mod:`agents.evaluation.runner`): every registered heuristic by default (the registry
   decides, ``--baselines`` narrows it), the causal ``planner`` and the clairvoyant ``oracle`` when registered
   (``--no-planner``, ``--no-oracle``), and always ``random`` (the 0 of the normalised score). Each baseline's
   episodes are stored in ``OUT/TIER/baselines``, keyed by everything they depend on (:func:`baseline_key`: the
   env id and kwargs, the seeds, the batch size, the baseline parameters, the bytes of the sources and assets
   listed in :data:`BASELINE_SOURCES`, the package versions); a later run whose key matches reads them back
   instead of re-running them (evaluation is deterministic, so they are the same numbers; the planner takes
   minutes), ``--fresh-baselines`` re-runs them;
2. trains every learned agent (``--algos``) with ``--seeds`` training seeds, one after the other, each a
   ``python -m train_agent`` subprocess writing its own run folder ``OUT/TIER/runs/ALGO/ALGO_sSEED`` (training
   seed ``i * SEED_STRIDE``), then evaluates each trained model on the same test seeds. A seed whose run folder
   already holds a finished run is not trained again (``--force`` retrains it); an interrupted one resumes from its
   newest checkpoint;
3. reports, per policy, the mean return ± 95% CI and the paired difference against the best baseline (the best
   causal heuristic on these seeds: not random, the planner or the oracle); per learned agent, each seed's mean,
   the mean over seeds, the spread across seeds (std, min–max), the IQM over (seed × episode) with a stratified
   bootstrap 95% CI (the rliable convention, :func:`agents.common.stats.stratified_bootstrap_ci`) and each seed's
   paired difference against the best baseline; and a normalised score, 0 = random, 100 = the planner (the best
   baseline when no planner ran; the table says which);
4. draws a paired-difference forest plot and a learning-curve panel of the difference against the best baseline
   over env steps (from every run's ``eval/evaluations.csv``, on the validation seeds it was evaluated on), and
   writes a Markdown report (tables, figures, machine, Python and package versions, the exact command) to
   ``--markdown``; ``--readme`` replaces the block between ``<!-- benchmark:start -->`` and
   ``<!-- benchmark:end -->`` of that file with the tables. CSV files of every episode are written to ``--out``.

Examples::

    python -m agents.benchmark --tier default                        # 5 PPO seeds, shipped training budget
    python -m agents.benchmark --tier default dense mobility --seeds 5 --markdown docs/benchmark.md --readme README.md
    python -m agents.benchmark --tier default --seeds 2 --timesteps 20000 --episodes 4 --no-oracle --out runs/quick
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import math
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from agents.common import provenance
from agents.common.envs import ALGOS, TEST_SEED_BASE, VALIDATION_SEED_BASE
from agents.common.hyperparams import changed_hyperparams, parse_assignments
from agents.common.provenance import machine_line
from agents.common.stats import iqm, mean_ci, paired_difference, stratified_bootstrap_ci, two_way_bootstrap_ci
from agents.evaluation.runner import PolicyResult, run_policy

PLANNER, ORACLE, RANDOM = "planner", "oracle", "random"
# never "the best baseline": the zero of the score, the score's 100, and the clairvoyant bound
NOT_REFERENCE = (RANDOM, PLANNER, ORACLE)
SEED_STRIDE = 10_000  # training seed i is i * SEED_STRIDE: env j of seed i starts from i * SEED_STRIDE + j, disjoint
MARK_START, MARK_END = "<!-- benchmark:start -->", "<!-- benchmark:end -->"
BOOTSTRAP_REPS = 2000
# starts one training run: train_agent.py's flags -> its exit code
Launcher = Callable[[list[str]], int]


def _tiers() -> dict[str, str]:
    from vmimo_env.scenario import TIERS

    return TIERS


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m agents.benchmark", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tier", nargs="+", default=["default"], choices=[*_tiers(), "all"], metavar="TIER",
                   help=f"tiers to benchmark, of {[*_tiers(), 'all']} (vmimo_env.scenario.TIERS; default default)")
    p.add_argument("--seeds", type=_positive_int, default=5, help="training seeds per learned agent (default 5)")
    p.add_argument("--timesteps", type=_positive_int, default=None,
                   help="training budget per seed in env steps (default: the hyperparameter file's)")
    p.add_argument("--algos", nargs="*", default=["ppo"], metavar="ALGO",
                   help=f"learned agents to train, of {list(ALGOS)} (default ppo; none: no training)")
    p.add_argument("--episodes", type=_positive_int, default=16, help="test episodes (seeds) per policy (default 16)")
    p.add_argument("--horizon", type=_positive_int, default=None, help="episode length (default: the tier's)")
    p.add_argument("--env-kwargs", nargs="*", default=[], metavar="KEY:VALUE",
                   help="scenario overrides for every policy, training and evaluation alike")
    p.add_argument("--baselines", nargs="*", default=None, metavar="HEURISTIC",
                   help="baseline heuristics (names or a comma-separated list; default: every registered one)")
    p.add_argument("--no-planner", action="store_true", help="do not run the causal planner")
    p.add_argument("--no-oracle", action="store_true", help="do not run the clairvoyant oracle")
    p.add_argument("--untuned", action="store_true",
                   help="heuristics with their registered defaults instead of the parameters tuned on validation "
                        "seeds for the tier's scenario (agents/hyperparams/baselines/<scenario>.yml)")
    p.add_argument("--reference", default=None,
                   help="baseline the differences are taken against (default: the best causal heuristic)")
    p.add_argument("--model", choices=("best", "final"), default="best",
                   help="which model of a run is tested: best (selected on the validation seeds) or final")
    p.add_argument("--train-args", default="", metavar="ARGS",
                   help="extra train_agent.py flags for every run, one quoted string (e.g. \"--n-envs 64 "
                        "-params n_steps=16\"; a single flag as --train-args=--flag); placed last, so they win")
    p.add_argument("--force", action="store_true", help="retrain seeds whose run folder already holds a model")
    p.add_argument("--fresh-baselines", action="store_true",
                   help="re-run every baseline even where OUT/TIER/baselines holds its episodes for the same key")
    p.add_argument("--out", default="runs/benchmark", help="run folders and CSV files (default runs/benchmark)")
    p.add_argument("--figures", default=None,
                   help="folder for the PNG figures (default: figures/ beside --markdown, else --out)")
    p.add_argument("--markdown", default=None, help="write the Markdown report to this file")
    p.add_argument("--readme", default=None,
                   help=f"replace the block between {MARK_START} and {MARK_END} of this file with the tables "
                        "(another set of tiers than the default alone: <!-- benchmark_TIER[_TIER...]:start --> ... "
                        ":end -->)")
    p.add_argument("--batch-size", type=_positive_int, default=64, help="test episodes stepped together")
    args = p.parse_args(argv)
    if "all" in args.tier:
        args.tier = list(_tiers())
    bad = [a for a in args.algos if a not in ALGOS]
    if bad:
        p.error(f"--algos: unknown {bad}; choose from {list(ALGOS)}")
    return args


def _positive_int(text: str) -> int:
    try:
        value = int(float(text)) if any(c in text for c in ".eE") else int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


# ====================================================================== the policies
def baseline_names(args: argparse.Namespace) -> list[str]:
    """The baselines of the run: the registry's heuristics (or ``--baselines``), ``random``, then the planner and
    the oracle when registered and not switched off; ``ValueError`` names an unknown one."""
    from agents.registry import canonical_name, heuristic_names, policy_names, suggest

    registered = policy_names()
    if args.baselines is None:
        names = [n for n in heuristic_names() if n not in (PLANNER, ORACLE)]
    else:
        names = []
        for item in (x for raw in args.baselines for x in raw.split(",") if x):
            name = canonical_name(item)
            if name is None:
                raise ValueError(f"--baselines: unknown policy {item!r}{suggest(item, registered)}")
            if name not in (PLANNER, ORACLE) and name not in names:
                names.append(name)
    if RANDOM in registered:  # first: the 0 of the normalised score
        names = [RANDOM, *(n for n in names if n != RANDOM)]
    for extra, off in ((PLANNER, args.no_planner), (ORACLE, args.no_oracle)):
        if extra in registered and not off:
            names.append(extra)
    return names


def pick_reference(results: dict[str, PolicyResult], asked: str | None) -> str:
    """The policy differences are taken against: ``asked``, else the causal heuristic of highest mean return."""
    if asked is not None:
        from agents.registry import canonical_name

        name = canonical_name(asked) or asked
        if name not in results:
            raise ValueError(f"--reference {asked!r} is not among the baselines run ({list(results)})")
        return name
    cands = [n for n in results if n not in NOT_REFERENCE]
    if not cands:
        raise ValueError("no baseline to compare against: name at least one heuristic other than random, the planner "
                         "and the oracle")
    return max(cands, key=lambda n: float(results[n].episodes["return"].mean()))


# ====================================================================== training (resumable)
@dataclass
class TrainedRun:
    """One training seed of a learned agent: its run folder, the model tested and its test result."""

    algo: str
    seed: int
    run_dir: Path
    model_path: Path
    status: str  # trained | resumed | reused (finished in an earlier run of the command)
    result: PolicyResult | None = None
    train_seconds: float = math.nan
    num_timesteps: int = 0
    val_delta: float = math.nan  # the tested model's difference against the reference on the validation seeds


def run_status(run_dir: Path) -> str:
    """``finished`` (final model and a summary of an uninterrupted run), ``partial`` (a checkpoint to resume
    from), ``empty`` (a folder without a checkpoint: started, never saved) or ``absent``."""
    from agents.checkpoint import latest_checkpoint

    if not run_dir.is_dir():
        return "absent"
    summary = run_dir / "summary.yml"
    if (run_dir / "final_model.zip").is_file() and summary.is_file():
        with open(summary, encoding="utf-8") as fh:
            data = yaml.safe_load(fh) or {}
        if not data.get("interrupted", True):
            return "finished"
    if (run_dir / "checkpoints").is_dir() and latest_checkpoint(run_dir / "checkpoints") is not None:
        return "partial"
    return "empty"


def _read_yaml(path: Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh) or {}


def subprocess_launcher(argv: list[str]) -> int:
    """Run ``python -m train_agent ARGV`` in its own process (output streamed); its exit code."""
    proc = subprocess.Popen([sys.executable, "-m", "train_agent", *argv])
    try:
        return proc.wait()
    except KeyboardInterrupt:
        # the run got the same Ctrl-C and is writing its final checkpoint: wait for it (subprocess.run would kill
        # it after a quarter of a second), then stop
        proc.wait()
        raise


def train_seed(algo: str, seed: int, env_id: str, env_kwargs: dict[str, Any], runs_root: Path, reference: str,
               args: argparse.Namespace, launcher: Launcher = subprocess_launcher) -> TrainedRun:
    """Train (or resume, or skip) one seed; the run folder is ``runs_root/ALGO/ALGO_sSEED``. ``launcher(argv)``
    runs ``train_agent.py`` with those flags and returns its exit code: by default a subprocess (its own process:
    a crash or a leak of one run cannot touch the others, and the run is exactly the one the command gives by
    hand). ``ValueError`` when a finished run has another budget than ``--timesteps``, or was trained with
    hyperparameters the files no longer give (a changed recipe is retrained with ``--force``, never mixed in)."""
    name = f"{algo}_s{seed}"
    run_dir = runs_root / algo / name
    status = run_status(run_dir)
    if args.force and status != "absent":
        shutil.rmtree(run_dir)
        status = "absent"
    if status == "finished":
        config = _read_yaml(run_dir / "config.yml")
        if args.timesteps is not None and int(config.get("n_timesteps", -1)) != args.timesteps:
            raise ValueError(f"{run_dir} was trained for {config.get('n_timesteps')} steps, not --timesteps "
                             f"{args.timesteps}: pass --force to retrain it, or another --out")
        changed = changed_hyperparams(config)
        if changed:
            raise ValueError(f"{run_dir} was trained with other hyperparameters than the files give now "
                             f"({', '.join(changed)}): pass --force to retrain it, or another --out")
        print(f"  {name}: finished run in {run_dir}, not retrained (--force retrains)", flush=True)
    else:
        if status == "empty":  # started but never saved anything: nothing to resume from
            shutil.rmtree(run_dir)
        argv = ["--algo", algo, "--env", env_id, "--seed", str(seed), "-f", str(runs_root), "--run-name", name,
                "--wandb-mode", "disabled", "--no-progress", "--baselines", reference]
        if env_kwargs:
            argv += ["--env-kwargs", *(f"{k}:{v}" for k, v in env_kwargs.items())]
        if args.timesteps is not None:
            argv += ["-n", str(args.timesteps)]
        if getattr(args, "untuned", False):  # the run's own reference as the benchmark's
            argv += ["--untuned-baselines"]
        if status == "partial":
            argv += ["--resume", str(run_dir)]
        argv += shlex.split(args.train_args)
        print(f"  {name}: {'resuming' if status == 'partial' else 'training'}: python -m train_agent "
              f"{shlex.join(argv)}", flush=True)
        code = launcher(argv)
        if code in (130, 143):  # Ctrl-C / SIGTERM: the run saved a checkpoint; the same command resumes it
            raise KeyboardInterrupt(f"training {name} was interrupted; rerun the same command to resume it")
        if code != 0 or run_status(run_dir) != "finished":
            raise RuntimeError(f"training {name} failed (exit code {code}); its run folder is {run_dir}")
    summary = _read_yaml(run_dir / "summary.yml")
    model = run_dir / "best_model.zip" if args.model == "best" and (run_dir / "best_model.zip").is_file() \
        else run_dir / "final_model.zip"
    return TrainedRun(algo, seed, run_dir, model,
                      {"finished": "reused", "partial": "resumed"}.get(status, "trained"),
                      train_seconds=float(summary.get("train_seconds", math.nan)),
                      num_timesteps=int(summary.get("num_timesteps", 0)))


def learning_curve(run: TrainedRun, reference: str, env_id: str, ref_cache: dict[str, float],
                   reference_kwargs: dict[str, Any] | None = None) -> tuple[np.ndarray, np.ndarray] | None:
    """Env steps and the mean-return difference against ``reference`` on the validation seeds each evaluation
    used (the run's ``eval/evaluations.csv``; the reference is run on the same seeds and scenario here, so the
    difference of means is the mean paired difference). None without evaluations."""
    from agents.callbacks import read_history
    from agents.checkpoint import read_checkpoint

    history = read_history(run.run_dir / "eval" / "evaluations.csv")
    if not history:
        return None
    meta = read_checkpoint(run.run_dir / "final_model.zip").meta
    config = _read_yaml(run.run_dir / "config.yml")
    n_val = int(config.get("eval_episodes", 0))
    kwargs = {**(meta.get("env_kwargs") or {}), **(meta.get("eval_env_kwargs") or {})}
    key = json.dumps([n_val, kwargs], sort_keys=True, default=str)
    if key not in ref_cache:
        seeds = range(VALIDATION_SEED_BASE, VALIDATION_SEED_BASE + n_val)
        ref_cache[key] = float(run_policy(reference, env_id, kwargs, seeds,
                                          policy_kwargs=reference_kwargs).episodes["return"].mean())
    # the final model is evaluated again at the last step (after the last update): keep the newest row per step
    by_step = {int(r["timesteps"]): float(r["mean_reward"]) for r in history}
    steps = np.array(sorted(by_step))
    return steps, np.array([by_step[s] for s in steps]) - ref_cache[key]


def policy_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """What every baseline is built with: the parameters tuned on validation seeds unless ``--untuned``."""
    return {} if getattr(args, "untuned", False) else {"tuned": True}


# ====================================================================== statistics
@dataclass
class TierReport:
    """Every figure of one tier (:func:`benchmark_tier`); ``rows``/``agents`` feed the tables."""

    tier: str
    scenario: str
    env_id: str
    env_kwargs: dict[str, Any]
    seeds: list[int]
    reference: str
    top: str  # the policy of score 100
    top_is_planner: bool
    rows: list[dict[str, Any]] = field(default_factory=list)
    agents: list[dict[str, Any]] = field(default_factory=list)
    figures: dict[str, Path] = field(default_factory=dict)
    wall_s: float = 0.0


def normalised(value: float | np.ndarray, zero: float, hundred: float) -> Any:
    """``100 (value − zero) / (hundred − zero)``; NaN when the two anchors coincide."""
    span = hundred - zero
    return 100.0 * (np.asarray(value) - zero) / span if span != 0 else np.full(np.shape(value), math.nan)


def baseline_rows(results: dict[str, PolicyResult], reference: str, zero: float, hundred: float
                  ) -> list[dict[str, Any]]:
    """One row per baseline: mean return ± 95% CI, paired difference against ``reference``, normalised score."""
    ref = results[reference].episodes["return"]
    rows = []
    for name, res in results.items():
        r = res.episodes["return"]
        m, h = mean_ci(r)
        d, dh, _ = paired_difference(r, ref)
        kind = {ORACLE: "clairvoyant", PLANNER: "planner"}.get(name, "baseline")
        rows.append({"policy": name, "kind": kind, "return": m, "ci": h, "delta": d, "delta_ci": dh,
                     "delta_pct": 100 * d / abs(float(ref.mean())) if ref.mean() != 0 else math.nan,
                     "score": float(normalised(m, zero, hundred)), "is_reference": name == reference})
    return rows


def agent_summary(algo: str, runs: list[TrainedRun], ref: np.ndarray, zero: float, hundred: float,
                  seed: int = 0) -> dict[str, Any]:
    """A learned agent over its training seeds: per-seed means and paired differences, mean, spread, IQM with a
    stratified bootstrap CI, normalised scores."""
    scores = np.stack([r.result.episodes["return"] for r in runs])  # (seeds, episodes)
    per_seed = scores.mean(axis=1)
    diffs = [paired_difference(row, ref)[:2] for row in scores]
    d = np.array([x for x, _ in diffs])
    m, h = mean_ci(per_seed)
    dm, dh = mean_ci(d)
    # the intervals a reader compares: training seeds and test episodes both resampled (the seeds share the episodes)
    _, m_lo, m_hi = two_way_bootstrap_ci(scores, reps=BOOTSTRAP_REPS, seed=seed)
    _, d_lo, d_hi = two_way_bootstrap_ci(scores - ref[None, :], reps=BOOTSTRAP_REPS, seed=seed)
    point, lo, hi = stratified_bootstrap_ci(scores, iqm, reps=BOOTSTRAP_REPS, seed=seed)
    seed_scores = normalised(per_seed, zero, hundred)
    ref_mean = float(ref.mean())
    return {"algo": algo, "seeds": [r.seed for r in runs], "per_seed": per_seed.tolist(),
            "per_seed_delta": d.tolist(), "per_seed_delta_ci": [x for _, x in diffs],
            "mean": m, "ci": h, "mean_lo": m_lo, "mean_hi": m_hi,
            "std": float(per_seed.std(ddof=1)) if len(runs) > 1 else math.nan,
            "min": float(per_seed.min()), "max": float(per_seed.max()), "iqm": point, "iqm_lo": lo, "iqm_hi": hi,
            "delta": dm, "delta_ci": dh, "delta_lo": d_lo, "delta_hi": d_hi,
            "delta_pct": 100 * dm / abs(ref_mean) if ref_mean != 0 else math.nan,
            "seeds_above": int(sum(x - c > 0 for x, c in diffs)), "score": float(np.mean(seed_scores)),
            "val_delta_per_seed": [r.val_delta for r in runs],
            "score_min": float(np.min(seed_scores)), "score_max": float(np.max(seed_scores)),
            "runs": [{"seed": r.seed, "run_dir": str(r.run_dir), "model": r.model_path.name, "status": r.status,
                      "train_seconds": r.train_seconds, "num_timesteps": r.num_timesteps} for r in runs]}


# ====================================================================== baselines, stored by key
# what a baseline's episodes depend on besides the arguments (paths from the project root; folders recursively):
# the world, the frozen model, the heuristics and their tuned parameters, the planner and oracle, the runner
BASELINE_SOURCES: tuple[str, ...] = (
    "vmimo_env", "semantic_models", "agents/heuristics", "agents/hyperparams/baselines", "agents/evaluation",
    "agents/planner.py", "agents/oracle.py", "agents/registry.py", "agents/policies.py", "agents/common/envs.py",
    "agents/common/stats.py")
_PROJECT_ROOT = Path(__file__).resolve().parents[1]


def source_digest(root: Path = _PROJECT_ROOT, sources: Sequence[str] = BASELINE_SOURCES) -> str:
    """SHA-256 over the relative path and bytes of every file of ``sources`` (``__pycache__`` and compiled files
    skipped), in sorted order."""
    digest = hashlib.sha256()
    for entry in sources:
        path = root / entry
        files = sorted(f for f in path.rglob("*") if f.is_file()) if path.is_dir() else [path]
        for f in files:
            if "__pycache__" in f.parts or f.suffix in (".pyc", ".nbi", ".nbc"):
                continue
            digest.update(str(f.relative_to(root)).encode())
            digest.update(f.read_bytes() if f.is_file() else b"<missing>")
    return digest.hexdigest()


def baseline_key(name: str, env_id: str, env_kwargs: dict[str, Any], seeds: Sequence[int], batch_size: int,
                 kwargs: dict[str, Any], digest: str) -> str:
    """The key a stored baseline result must match to be reused (the module docstring, step 1)."""
    from importlib import metadata

    versions = {}
    for pkg in ("numpy", "numba", "torch", "gymnasium", "stable_baselines3"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    blob = json.dumps({"policy": name, "env_id": env_id, "env_kwargs": env_kwargs, "seeds": list(seeds),
                       "batch_size": batch_size, "policy_kwargs": kwargs, "sources": digest,
                       "python": sys.version.split()[0], "versions": versions}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def _save_result(res: PolicyResult, name: str, key: str, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {"seeds": np.asarray(res.seeds)}
    arrays.update({f"episodes/{k}": np.asarray(v) for k, v in res.episodes.items()})
    arrays.update({f"per_device/{k}": np.asarray(v) for k, v in res.per_device.items()})
    stem = folder / _file_stem(name)
    np.savez(stem.with_suffix(".npz"), **arrays)
    meta = {"key": key, "name": name, "label": res.name, "kind": res.kind, "wall_s": res.wall_s,
            "measured": dt.datetime.now().strftime("%Y-%m-%d %H:%M")}
    stem.with_suffix(".json").write_text(json.dumps(meta, indent=1), encoding="utf-8")


def _file_stem(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


def _load_result(name: str, key: str, folder: Path) -> tuple[PolicyResult, str] | None:
    """The stored result of ``name`` if its key is ``key`` (plain arrays, no pickle), and when it was measured."""
    stem = folder / _file_stem(name)
    try:
        meta = json.loads(stem.with_suffix(".json").read_text(encoding="utf-8"))
        if meta.get("key") != key or meta.get("name") != name:
            return None
        with np.load(stem.with_suffix(".npz"), allow_pickle=False) as data:
            episodes = {k.split("/", 1)[1]: data[k] for k in data.files if k.startswith("episodes/")}
            per_device = {k.split("/", 1)[1]: data[k] for k in data.files if k.startswith("per_device/")}
            seeds = data["seeds"]
    except (OSError, ValueError, KeyError):
        return None
    res = PolicyResult(str(meta.get("label", name)), seeds, episodes, per_device, wall_s=float(meta.get("wall_s", 0.0)),
                       kind=str(meta.get("kind", "heuristic")))
    return res, str(meta.get("measured", "?"))


def baseline_results(names: Sequence[str], env_id: str, env_kwargs: dict[str, Any], seeds: Sequence[int],
                     args: argparse.Namespace, folder: Path) -> dict[str, PolicyResult]:
    """Every baseline's episodes on ``seeds``: read back from ``folder`` where stored under the same key (unless
    ``--fresh-baselines``), run otherwise (and stored)."""
    kwargs = policy_kwargs(args)
    digest = source_digest()
    cache: dict[int, Any] = {}
    out: dict[str, PolicyResult] = {}
    for name in names:
        key = baseline_key(name, env_id, env_kwargs, seeds, args.batch_size, kwargs, digest)
        stored = None if args.fresh_baselines else _load_result(name, key, folder)
        if stored is not None:
            res, when = stored
            note = f"stored {when}, same key: not re-run"
        else:
            res = run_policy(name, env_id, env_kwargs, list(seeds), batch_size=args.batch_size, env_cache=cache,
                             policy_kwargs=kwargs)
            _save_result(res, name, key, folder)
            note = f"{res.wall_s:.1f} s"
        out[res.name] = res
        m, h = res.mean_ci()
        print(f"  {res.name:<28s} return {m:9.3f} ± {h:.3f}   ({note})", flush=True)
    return out


# ====================================================================== one tier
def benchmark_tier(tier: str, args: argparse.Namespace, figures_dir: Path,
                   launcher: Launcher = subprocess_launcher) -> TierReport:
    """Baselines, training, test evaluation, statistics and figures of one tier (the module docstring)."""
    import vmimo_env
    from agents.evaluation.report import comparison_rows, write_csvs
    t0 = time.perf_counter()
    scenario = _tiers()[tier]
    env_id = vmimo_env.scenario_env_id(scenario)
    env_kwargs = parse_assignments(args.env_kwargs, ":")
    if args.horizon is not None:
        env_kwargs["horizon"] = args.horizon
    seeds = list(range(TEST_SEED_BASE, TEST_SEED_BASE + args.episodes))
    out = Path(args.out).resolve() / tier
    print(f"[{tier}] {env_id} {env_kwargs or ''}: baselines on {len(seeds)} test seeds", flush=True)
    results = baseline_results(baseline_names(args), env_id, env_kwargs, seeds, args, out / "baselines")
    reference = pick_reference(results, args.reference)
    top_is_planner = PLANNER in results
    top = PLANNER if top_is_planner else reference
    zero = float(results[RANDOM].episodes["return"].mean()) if RANDOM in results else math.nan
    hundred = float(results[top].episodes["return"].mean())
    report = TierReport(tier, scenario, env_id, env_kwargs, seeds, reference, top, top_is_planner)
    report.rows = baseline_rows(results, reference, zero, hundred)
    ref = results[reference].episodes["return"]

    everyone = dict(results)
    curves: dict[str, list[tuple[str, np.ndarray, np.ndarray]]] = {}
    ref_cache: dict[str, float] = {}
    for algo in args.algos:
        runs = []
        for i in range(args.seeds):
            run = train_seed(algo, i * SEED_STRIDE, env_id, env_kwargs, out / "runs", reference, args, launcher)
            run.result = run_policy(str(run.model_path), env_id, env_kwargs, seeds, batch_size=args.batch_size,
                                    name=f"{algo}_s{run.seed}")
            run.result.kind = "model"
            everyone[run.result.name] = run.result
            m, h = run.result.mean_ci()
            print(f"  {run.result.name:<28s} return {m:9.3f} ± {h:.3f}   ({run.model_path.name})", flush=True)
            runs.append(run)
            curve = learning_curve(run, reference, env_id, ref_cache, policy_kwargs(args))
            if curve is not None:
                curves.setdefault(algo, []).append((f"seed {run.seed}", *curve))
                # the best model is the evaluation of highest validation return, the final one the last
                run.val_delta = float(np.max(curve[1]) if run.model_path.name == "best_model.zip" else curve[1][-1])
        report.agents.append(agent_summary(algo, runs, ref, zero, hundred))

    rows = comparison_rows(everyone, reference=reference)
    write_csvs(everyone, rows, out)
    report.figures = save_figures(report, curves, figures_dir)
    report.wall_s = time.perf_counter() - t0
    with open(out / "benchmark.json", "w", encoding="utf-8") as fh:
        json.dump(_jsonable(report), fh, indent=1)
    return report


def save_figures(report: TierReport, curves: dict[str, list[tuple[str, np.ndarray, np.ndarray]]],
                 figures_dir: Path) -> dict[str, Path]:
    """The forest plot and the learning-curve panel of one tier, as PNG files in ``figures_dir``."""
    import matplotlib.pyplot as plt

    from agents.plots import delta_curves_figure, forest_figure

    figures_dir.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    kinds = {"clairvoyant": "oracle", "planner": "planner", "baseline": "heuristic"}
    for r in sorted(report.rows, key=lambda r: -r["delta"]):  # best first, top down
        if r["policy"] == RANDOM:  # tens of points below: it would squeeze every other row into a line
            continue
        label = r["policy"] + (" (reference)" if r["is_reference"] else "")
        rows.append({"label": label, "delta": r["delta"], "ci": r["delta_ci"], "kind": kinds[r["kind"]]})
    for a in report.agents:
        rows.append({"label": f"{a['algo'].upper()}, mean of {len(a['seeds'])} seeds", "delta": a["delta"],
                     "lo": a["delta_lo"], "hi": a["delta_hi"], "kind": "model", "aggregate": True})
        for s, d, h in zip(a["seeds"], a["per_seed_delta"], a["per_seed_delta_ci"], strict=True):
            rows.append({"label": f"seed {s}", "delta": d, "ci": h, "kind": "model", "indent": True})
    files = {}
    title = f"Tier {report.tier} ({report.env_id})"
    figs = {"forest": forest_figure(rows, report.reference, f"{title}, {len(report.seeds)} test seeds")}
    if report.agents:
        figs["learning"] = delta_curves_figure(curves, report.reference, f"{title}, during training")
    for key, fig in figs.items():
        path = figures_dir / f"benchmark_{report.tier}_{key}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        files[key] = path
    return files


def _jsonable(report: TierReport) -> dict[str, Any]:
    out = {k: v for k, v in report.__dict__.items() if k != "figures"}
    out["figures"] = {k: str(v) for k, v in report.figures.items()}
    return json.loads(json.dumps(out, default=lambda o: o.item() if hasattr(o, "item") else str(o)))


# ====================================================================== the report
def _pm(m: float, h: float, digits: int = 2, sign: bool = False) -> str:
    if m is None or math.isnan(m):
        return "–"
    fmt = f"{{:{'+' if sign else ''}.{digits}f}}"
    return fmt.format(m) + ("" if h is None or math.isnan(h) else f" ± {h:.{digits}f}")


def tables(report: TierReport) -> str:
    """The Markdown tables of one tier (the README block holds these verbatim)."""
    top = "planner" if report.top_is_planner else f"{report.top}, the best baseline (no planner was run)"
    ref = report.reference
    lines = [f"**Tier `{report.tier}`** (`{report.env_id}`"
             + (f", {', '.join(f'{k}={v}' for k, v in report.env_kwargs.items())}" if report.env_kwargs else "")
             + f"; {len(report.seeds)} test seeds {report.seeds[0]:,}–{report.seeds[-1]:,}, the same for every "
             f"policy). ± is a 95% CI over test episodes; for a learned agent the row gives the mean over training "
             f"seeds and, in brackets, a 95% interval that resamples both the training seeds and the test episodes "
             f"(two-way bootstrap: every seed meets the same episodes, so their luck is shared). Δ: paired "
             f"difference of the episode return against **{ref}**, the best causal baseline; score: 0 = random, "
             f"100 = {top}.", "",
             f"| policy | kind | return (95% CI) | Δ vs {ref} (paired 95% CI) | Δ % | score |",
             "|---|---|---:|---:|---:|---:|"]
    for r in sorted(report.rows, key=lambda r: r["return"]):
        name = f"**{r['policy']}** (reference)" if r["is_reference"] else r["policy"]
        delta = "reference" if r["is_reference"] else _pm(r["delta"], r["delta_ci"], sign=True)
        lines.append(f"| {name} | {r['kind']} | {_pm(r['return'], r['ci'])} | {delta} | "
                     f"{'' if r['is_reference'] else _pm(r['delta_pct'], math.nan, 1, sign=True)} | "
                     f"{_pm(r['score'], math.nan, 1)} |")
    for a in report.agents:
        lines.append(f"| {a['algo'].upper()}, mean of {len(a['seeds'])} training seeds | learned | "
                     f"{_interval(a['mean'], a['mean_lo'], a['mean_hi'])} | "
                     f"{_interval(a['delta'], a['delta_lo'], a['delta_hi'], sign=True)} | "
                     f"{_pm(a['delta_pct'], math.nan, 1, sign=True)} | {_pm(a['score'], math.nan, 1)} |")
    if report.agents:
        lines += ["", "Learned agents across training seeds (± over seeds: 95% t interval of the seed means, on these "
                  "test episodes only; IQM over seed × episode with a stratified bootstrap 95% CI):", "",
                  "| agent | seed: mean return, Δ vs " + ref + " (paired 95% CI) | mean | std | min–max | "
                  "IQM [95% CI] | seeds with Δ CI above 0 | score (min–max) |",
                  "|---|---|---:|---:|---:|---:|---:|---:|"]
        for a in report.agents:
            per = "<br>".join(f"{s}: {m:.2f}, {_pm(d, h, sign=True)}" for s, m, d, h in zip(
                a["seeds"], a["per_seed"], a["per_seed_delta"], a["per_seed_delta_ci"], strict=True))
            lines.append(f"| {a['algo'].upper()} | {per} | {_pm(a['mean'], a['ci'])} | {_pm(a['std'], math.nan)} | "
                         f"{a['min']:.2f}–{a['max']:.2f} | {a['iqm']:.2f} [{a['iqm_lo']:.2f}, {a['iqm_hi']:.2f}] | "
                         f"{a['seeds_above']} of {len(a['seeds'])} | {a['score']:.1f} "
                         f"({a['score_min']:.1f}–{a['score_max']:.1f}) |")
        lines += ["", *(f"- {verdict(a, ref)}" for a in report.agents)]
    return "\n".join(lines) + "\n"


def verdict(agent: dict[str, Any], reference: str) -> str:
    """One generated sentence on a learned agent against the reference: **beats** when the 95% interval of its
    mean difference (training seeds and test episodes resampled) lies above zero, **falls short of** when below,
    **ties** otherwise; with the mean difference, its share of the reference's return and how many seeds win on
    their own paired CI."""
    d, lo, hi = agent["delta"], agent["delta_lo"], agent["delta_hi"]
    word = "beats" if lo > 0 else "falls short of" if hi < 0 else "ties"
    n = len(agent["seeds"])
    text = (f"{agent['algo'].upper()} **{word}** {reference}: Δ {_interval(d, lo, hi, sign=True)} over {n} training "
            f"seeds ({_pm(agent['delta_pct'], math.nan, 1, sign=True)} %); {agent['seeds_above']} of {n} seeds above "
            "it on their own paired 95% CI.")
    val = [v for v in agent.get("val_delta_per_seed", []) if not math.isnan(v)]
    if val:  # a second, larger look: the validation seeds (the models and the reference's parameters were both
        # selected on them, so neither side is unbiased there)
        text += (f" On the validation seeds the tested models were Δ {np.mean(val):+.2f} from {reference} (seeds "
                 f"{min(val):+.2f} to {max(val):+.2f}; the models and the reference's parameters were both selected "
                 "there).")
    return text


def _interval(m: float, lo: float, hi: float, digits: int = 2, sign: bool = False) -> str:
    fmt = f"{{:{'+' if sign else ''}.{digits}f}}"
    return f"{fmt.format(m)} [{fmt.format(lo)}, {fmt.format(hi)}]"


def command_line(argv: Sequence[str]) -> str:
    """The command as a user reruns it (:func:`agents.common.provenance.command_line`)."""
    return provenance.command_line("python -m agents.benchmark", argv)


def markdown_report(reports: list[TierReport], argv: Sequence[str], args: argparse.Namespace,
                    markdown_path: Path) -> str:
    """The whole report: protocol, per-tier tables and figures, machine and versions, the command."""
    stamp = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    lines = ["# VMIMO benchmark", "",
             f"Generated by `{command_line(argv)}` on {stamp} (do not edit by hand; rerun the command).", "",
             machine_line(), "",
             "Protocol (`agents/benchmark.py`): every policy runs one episode per test seed, the same seeds for "
             "every policy (common random numbers), so differences are paired. The learned agents are trained with "
             f"`train_agent.py` ({args.seeds} training seeds each, seed i = {SEED_STRIDE:,} i"
             + (f", {args.timesteps:,} env steps" if args.timesteps else ", the hyperparameter file's budget")
             + f"; the {args.model} model of each run is tested"
             + (", selected on the validation seeds" if args.model == "best" else "") + ").", ""]
    for rep in reports:
        lines += [f"## Tier `{rep.tier}` (scenario `{rep.scenario}`, {rep.wall_s:.0f} s)", "", tables(rep)]
        for key, caption in (("forest", "Paired difference against the best baseline (95% CIs)"),
                             ("learning", "Difference against the best baseline during training (validation "
                                          "seeds; every training seed and their mean)")):
            if key in rep.figures:
                rel = os.path.relpath(rep.figures[key], markdown_path.parent)
                lines += [f"![{caption}]({Path(rel).as_posix()})", ""]
        if rep.agents:
            lines.append("Training: " + "; ".join(
                f"{a['algo']} seed {r['seed']}: {r['num_timesteps']:,} steps, {r['train_seconds']:.0f} s "
                + ("in an earlier run (reused)" if r["status"] == "reused" else f"({r['status']})")
                for a in rep.agents for r in a["runs"]) + ".")
            lines.append("")
    return "\n".join(lines)


def readme_block(reports: list[TierReport], argv: Sequence[str], markdown_rel: str | None) -> str:
    """What goes between the README markers: the tables, the command and the machine."""
    parts = [tables(rep) for rep in reports]
    note = f"Measured by `{command_line(argv)}`. {machine_line()}"
    if markdown_rel:
        note += f" Figures and training details: [{markdown_rel}]({markdown_rel})."
    return "\n".join(parts) + "\n" + note + "\n"


def readme_markers(tiers: Sequence[str]) -> tuple[str, str]:
    """The README markers a run of ``tiers`` writes between: ``benchmark`` for the default tier alone (the main
    table), ``benchmark_<tier>[_<tier>...]`` otherwise, so each documented command owns its own block."""
    name = "benchmark" if list(tiers) == ["default"] else "benchmark_" + "_".join(tiers)
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def replace_block(text: str, block: str, markers: tuple[str, str] = (MARK_START, MARK_END)) -> str:
    """``text`` with everything between the ``markers`` (default: the default tier's) replaced by ``block``;
    ``ValueError`` when the markers are missing or out of order."""
    return provenance.replace_block(text, block, *markers)


# ====================================================================== main
def run(argv: Sequence[str] | None = None, launcher: Launcher = subprocess_launcher) -> list[TierReport]:
    """The command line's work (the module docstring); returns every tier's report. ``launcher``: how a training
    run is started (:func:`train_seed`)."""
    raw = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(raw)
    markdown = Path(args.markdown) if args.markdown else None
    figures_dir = Path(args.figures) if args.figures else (markdown.parent / "figures" if markdown
                                                           else Path(args.out))
    readme = Path(args.readme) if args.readme else None
    markers = readme_markers(args.tier)
    if readme is not None:  # fail before hours of training, not after
        replace_block(readme.read_text(encoding="utf-8"), "", markers)
    reports = [benchmark_tier(tier, args, figures_dir, launcher) for tier in args.tier]
    for rep in reports:
        print("\n" + tables(rep))
    if markdown is not None:
        markdown.parent.mkdir(parents=True, exist_ok=True)
        markdown.write_text(markdown_report(reports, raw, args, markdown), encoding="utf-8")
        print(f"Wrote {markdown}")
    if readme is not None:
        rel = Path(os.path.relpath(markdown, readme.parent)).as_posix() if markdown else None
        readme.write_text(replace_block(readme.read_text(encoding="utf-8"), readme_block(reports, raw, rel), markers),
                          encoding="utf-8")
        print(f"Updated the {markers[0]} block of {readme}")
    return reports


def main(argv: Sequence[str] | None = None) -> list[TierReport]:
    """``python -m agents.benchmark``: :func:`run`, with a one-line ``error: ...`` and exit code 2 for user errors."""
    from agents.checkpoint import CheckpointError

    try:
        return run(argv)
    except (ValueError, CheckpointError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt as exc:
        print(f"\ninterrupted{': ' + str(exc) if str(exc) else ''}; finished runs are kept, rerun the same command "
              "to continue", file=sys.stderr)
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
