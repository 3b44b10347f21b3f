"""Compare policies on the same held-out seeds: ``python -m agents.evaluate`` (also the ``vmimo-eval`` command).

Every policy (heuristic names, the oracle, trained models, your own policy classes) runs one episode per seed, and
episode ``j`` of every policy starts from the same environment seed: common random numbers, so paired differences
isolate the policies' effect (:mod:`agents.evaluation.runner`).

Policies on the command line:

- a heuristic name, ``planner`` (causal MPC) or ``oracle`` (the clairvoyant oracle) (``round_robin``,
  ``max_weight``...; default: every heuristic);
- a trained model: ``[algo:]path.zip`` written by ``train_agent.py``, or its run folder (``best_model.zip`` is
  used, else ``final_model.zip``, else the newest checkpoint);
- ``module:ClassName``: your own policy class, built like the heuristics as ``ClassName(env)`` on the batched
  evaluation env and driven through ``reset(seed)`` / ``act(obs, info)`` (:class:`agents.policies.Policy`).
  The module is imported (its code runs) because you named it; it must be importable from the current folder or
  ``PYTHONPATH``.

Output: a table (mean ± 95% CI of return, accuracy, energy per scene, expired scenes; paired difference of the
return against the best heuristic with its 95% CI), ``summary.csv``, ``episodes.csv`` (one row per policy and
seed), and plots (``returns.png``, ``accuracy_energy.png``, ``allocation.png``) in ``--out``
(:mod:`agents.evaluation.report`).

Examples::

    python -m agents.evaluate                                   # every heuristic on 50 test seeds
    python -m agents.evaluate oracle max_weight runs/ppo/VMIMO-v0__s0__<time> --n-episodes 100
    python -m agents.evaluate --env VMIMO-Small-v0 --env-kwargs horizon:100 --out eval_small
    python -m agents.evaluate my_policies:AlwaysIdle round_robin
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents.common.envs import TEST_SEED_BASE
from agents.common.hyperparams import parse_assignments

# the public names of the evaluation package stay importable from here
from agents.evaluation.report import (
    TABLE_METRICS,
    best_heuristic,
    comparison_rows,
    format_table,
    markdown_table,
    write_csvs,
)
from agents.evaluation.runner import METRICS, SUM_KEYS, PolicyResult, evaluate_policies, reset_with_seeds, run_policy

__all__ = ["METRICS", "SUM_KEYS", "TABLE_METRICS", "TEST_SEED_BASE", "PolicyResult", "best_heuristic", "check_specs",
           "comparison_rows", "evaluate_policies", "format_table", "main", "markdown_table", "parse_args",
           "reset_with_seeds", "resolve_scenario", "run", "run_policy", "write_csvs"]


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m agents.evaluate", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("policies", nargs="*",
                        help="heuristic names, 'planner', 'oracle' (clairvoyant), trained models ([algo:]path.zip "
                             "or a run folder) and/or module:ClassName policy classes; default: every heuristic")
    parser.add_argument("--policies", dest="policies_opt", nargs="*", default=[], metavar="POLICY",
                        help="the same, as an option")
    parser.add_argument("--env", default=None,
                        help="environment id (default: the one the models were trained on, else VMIMO-v0)")
    parser.add_argument("--env-kwargs", nargs="*", default=None, metavar="KEY:VALUE",
                        help="scenario overrides (default: the models' scenario); merged over the models' kwargs")
    parser.add_argument("-n", "--n-episodes", "--episodes", type=_positive_int, default=50,
                        help="held-out episodes (default 50)")
    parser.add_argument("--seed-base", type=int, default=TEST_SEED_BASE,
                        help=f"episode j uses seed seed_base + j (default {TEST_SEED_BASE}, disjoint from training "
                             "and from the seeds used for model selection)")
    parser.add_argument("--reference", default=None, help="policy for paired differences (default: best heuristic)")
    parser.add_argument("--batch-size", type=_positive_int, default=64, help="episodes stepped together")
    parser.add_argument("--tuned", action="store_true",
                        help="heuristics with the parameters tuned for the scenario on validation seeds "
                             "(agents/hyperparams/baselines/<scenario>.yml, python -m agents.tune_baselines)")
    parser.add_argument("--out", default="runs/eval", help="folder for CSV files and plots (default runs/eval)")
    parser.add_argument("--no-plots", action="store_true", help="skip the matplotlib figures")
    parser.add_argument("--readme", default=None, metavar="FILE",
                        help="replace the block between <!-- BLOCK:start --> and <!-- BLOCK:end --> of this Markdown "
                             "file by the table, the command, the machine and the package versions")
    parser.add_argument("--block", default="evaluate", help="the marker name of --readme (default: evaluate)")
    parser.add_argument("--trust-checkpoint", action="store_true",
                        help="allow model zips to unpickle objects (plain SB3 zips, old checkpoints): this runs code "
                             "stored in the file, so only for files you made yourself")
    return parser.parse_args(argv)


@dataclass
class ModelSpec:
    """A trained-model policy on the command line, with what its checkpoint says about its training."""

    spec: str
    path: Path
    algo: str | None
    meta: dict[str, Any]  # {} for a plain SB3 zip (no VMIMO metadata)


def check_specs(specs: Sequence[str]) -> list[ModelSpec]:
    """Check every policy spec before anything runs; returns the trained models among them. ``ValueError`` lists
    every unknown name (with the closest known one) and names a model whose checkpoint disagrees with its
    ``algo:`` prefix."""
    from agents.checkpoint import CheckpointError, read_checkpoint
    from agents.policies import ALGO_CLASSES, resolve_model_path
    from agents.registry import canonical_name, is_user_class_spec, load_policy_class, policy_names, suggest

    problems: list[str] = []
    models: list[ModelSpec] = []
    for spec in specs:
        if canonical_name(spec) is not None:
            continue
        head, sep, tail = spec.partition(":")
        algo, path = (head, tail) if sep and head in ALGO_CLASSES else (None, spec)
        resolved = resolve_model_path(path)
        if resolved is not None:
            try:
                meta = read_checkpoint(resolved).meta
            except CheckpointError as exc:
                if "vmimo_meta" not in str(exc):  # corrupt or unreadable; a plain SB3 zip has no metadata
                    raise
                meta = {}
            saved = meta.get("algo")
            if algo is not None and saved is not None and algo != saved:
                problems.append(f"{spec}: {resolved} holds a {saved} model, not {algo} (use '{saved}:' or no prefix)")
            models.append(ModelSpec(spec, resolved, algo or saved, meta))
        elif is_user_class_spec(spec):
            load_policy_class(spec)  # ValueError names the module or class
        else:
            problems.append(f"unknown policy {spec!r}{suggest(spec, policy_names())}: not a heuristic, an existing "
                            "model path or run folder, nor module:ClassName")
    if problems:
        raise ValueError("; ".join(problems))
    return models


def _space_changes(env_id: str, trained: dict[str, Any], asked: dict[str, Any], view: str | None) -> list[str]:
    """The keys of ``asked`` that give the env other observation/action spaces than ``trained`` (VMIMO ids)."""
    import gymnasium as gym

    from agents.common.envs import vmimo_kwargs

    def spaces(kwargs: dict[str, Any]) -> tuple[Any, Any]:
        env = gym.make(env_id, **vmimo_kwargs(env_id, kwargs, view))
        out = (env.observation_space, env.action_space)
        env.close()
        return out

    if spaces(trained) == spaces(asked):
        return []
    base = vmimo_kwargs(env_id, trained, None)
    return [f"{k}={v!r} (trained with {base.get(k)!r})" for k, v in asked.items() if base.get(k) != v] or \
        ["the scenario"]


def resolve_scenario(env: str | None, env_kwargs: list[str] | None,
                     models: Sequence[ModelSpec]) -> tuple[str, dict[str, Any]]:
    """The env id and kwargs to evaluate on: the models' scenario (from their checkpoints) unless the flags say
    otherwise; ``ValueError`` when models disagree with each other or the flags change a model's spaces."""
    from agents.common.envs import is_vmimo

    user_kwargs = parse_assignments(env_kwargs or [], ":")
    known = [m for m in models if m.meta.get("env_id")]
    env_ids = {m.meta["env_id"] for m in known}
    if env is None and len(env_ids) > 1:
        raise ValueError("the models were trained on different environments: "
                         + ", ".join(f"{m.spec} on {m.meta['env_id']}" for m in known) + "; evaluate them separately")
    env_id = env or (env_ids.pop() if env_ids else "VMIMO-v0")
    for m in known:
        if m.meta["env_id"] != env_id:
            raise ValueError(f"model {m.spec} was trained on {m.meta['env_id']}, not --env {env_id}: drop --env to "
                             "evaluate it on its own scenario")
    trained = [dict(m.meta.get("env_kwargs") or {}) for m in known]
    if any(t != trained[0] for t in trained):
        raise ValueError("the models were trained on different scenarios: "
                         + ", ".join(f"{m.spec} with {t}" for m, t in zip(known, trained, strict=True))
                         + "; evaluate them separately")
    base = trained[0] if trained else {}
    kwargs = {**base, **user_kwargs}
    if known and is_vmimo(env_id):
        changes = _space_changes(env_id, base, kwargs, known[0].meta.get("action_view"))
        if changes:
            raise ValueError(f"model {known[0].spec} was trained on {env_id} {base or '(defaults)'}; "
                             f"--env-kwargs {', '.join(changes)} give it other observation/action spaces")
    return env_id, kwargs


def run(argv: Sequence[str] | None = None) -> dict[str, PolicyResult]:
    """The command line's work; user errors raise ``ValueError``/``CheckpointError`` (:func:`main` prints them)."""
    from agents.checkpoint import trusting_checkpoints

    args = parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    with trusting_checkpoints(args.trust_checkpoint):  # reading a model's metadata opens its zip too
        return _run(args)


def _run(args: argparse.Namespace) -> dict[str, PolicyResult]:
    from agents.evaluation.runner import _label
    from agents.registry import canonical_name, heuristic_names, suggest

    specs = [*args.policies, *args.policies_opt] or heuristic_names()
    models = check_specs(specs)
    env_id, env_kwargs = resolve_scenario(args.env, args.env_kwargs, models)
    if args.reference is not None:
        labels = [_label(spec) for spec in specs]
        ref = canonical_name(args.reference) or args.reference
        if ref not in labels:
            raise ValueError(f"--reference {args.reference!r} is not among the evaluated policies "
                             f"{labels}{suggest(args.reference, labels)}")
        args.reference = ref
    print(f"Evaluating {len(specs)} policies on {env_id} {env_kwargs or ''}: {args.n_episodes} episodes, seeds "
          f"{args.seed_base}..{args.seed_base + args.n_episodes - 1} (common random numbers)", flush=True)
    results = evaluate_policies(specs, env_id, env_kwargs, n_episodes=args.n_episodes, seed_base=args.seed_base,
                                batch_size=args.batch_size, verbose=True,
                                policy_kwargs={"tuned": True} if args.tuned else None)
    rows = comparison_rows(results, args.reference)
    print()
    print(format_table(rows))
    ref = rows[0].get("reference") if rows else None
    if ref:
        print(f"\nΔ: paired difference of mean return vs {ref} over the same seeds (+ significantly better, "
              "- worse, ~ CI covers 0)")
    files = write_csvs(results, rows, args.out)
    if not args.no_plots:
        from agents.plots import save_evaluation_figures

        files += save_evaluation_figures(results, args.out)
    if args.readme is not None:
        files.append(write_readme_block(Path(args.readme), args.block, rows, env_id, env_kwargs, args))
    print("\nWrote " + ", ".join(str(f) for f in files))
    return results


def write_readme_block(path: Path, block: str, rows: list[dict[str, Any]], env_id: str,
                       env_kwargs: dict[str, Any], args: argparse.Namespace) -> Path:
    """Replace ``path``'s block ``block`` by the Markdown table of ``rows``, the seeds, the command, the machine and
    the package versions (``ValueError`` when the file lacks the markers)."""
    from agents.common.provenance import command_line, machine_line, replace_block

    text = path.read_text(encoding="utf-8")
    start, end = f"<!-- {block}:start -->", f"<!-- {block}:end -->"
    kwargs = f" {env_kwargs}" if env_kwargs else ""
    body = (markdown_table(rows) + "\n\n"
            + f"{env_id}{kwargs}: {args.n_episodes} test episodes, seeds {args.seed_base}.."
              f"{args.seed_base + args.n_episodes - 1}, the same for every policy (common random numbers); ± is the "
              "95% CI half-width, paired for Δ. Generated by `"
            + command_line("python -m agents.evaluate", list(args.argv)) + "` (do not edit by hand). "
            + machine_line() + "\n")
    path.write_text(replace_block(text, body, start, end), encoding="utf-8")
    return path


def main(argv: Sequence[str] | None = None) -> dict[str, PolicyResult]:
    """``python -m agents.evaluate``: :func:`run`, with a one-line ``error: ...`` and exit code 2 for user errors."""
    from agents.checkpoint import CheckpointError

    try:
        return run(argv)
    except (ValueError, CheckpointError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
