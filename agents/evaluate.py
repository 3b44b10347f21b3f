"""Compare policies on the same held-out seeds: ``python -m agents.evaluate`` (also the ``vmimo-eval`` command).

Every policy (heuristic names, the oracle, trained models, your own policy classes) runs one episode per seed, and
episode ``j`` of every policy starts from the same environment seed: common random numbers, so paired differences
isolate the policies' effect (:mod:`agents.evaluation.runner`).

Policies on the command line:

- a heuristic name or ``oracle`` (``round_robin``, ``max_weight``...; default: every heuristic);
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
from collections.abc import Sequence

from agents.common.envs import TEST_SEED_BASE
from agents.common.hyperparams import parse_assignments

# the public names of the evaluation package stay importable from here
from agents.evaluation.report import TABLE_METRICS, best_heuristic, comparison_rows, format_table, write_csvs
from agents.evaluation.runner import METRICS, SUM_KEYS, PolicyResult, evaluate_policies, reset_with_seeds, run_policy

__all__ = ["METRICS", "SUM_KEYS", "TABLE_METRICS", "TEST_SEED_BASE", "PolicyResult", "best_heuristic",
           "comparison_rows", "evaluate_policies", "format_table", "main", "parse_args", "reset_with_seeds",
           "run_policy", "write_csvs"]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m agents.evaluate", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("policies", nargs="*",
                        help="heuristic names, 'oracle', trained models ([algo:]path.zip or a run folder) and/or "
                             "module:ClassName policy classes; default: every heuristic")
    parser.add_argument("--policies", dest="policies_opt", nargs="*", default=[], metavar="POLICY",
                        help="the same, as an option")
    parser.add_argument("--env", default="VMIMO-v0", help="environment id (default VMIMO-v0)")
    parser.add_argument("--env-kwargs", nargs="*", default=[], metavar="KEY:VALUE", help="scenario overrides")
    parser.add_argument("-n", "--n-episodes", "--episodes", type=int, default=50,
                        help="held-out episodes (default 50)")
    parser.add_argument("--seed-base", type=int, default=TEST_SEED_BASE,
                        help=f"episode j uses seed seed_base + j (default {TEST_SEED_BASE}, disjoint from training "
                             "and from the seeds used for model selection)")
    parser.add_argument("--reference", default=None, help="policy for paired differences (default: best heuristic)")
    parser.add_argument("--batch-size", type=int, default=64, help="episodes stepped together")
    parser.add_argument("--out", default="runs/eval", help="folder for CSV files and plots (default runs/eval)")
    parser.add_argument("--no-plots", action="store_true", help="skip the matplotlib figures")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, PolicyResult]:
    from agents.registry import heuristic_names

    args = parse_args(argv)
    specs = [*args.policies, *args.policies_opt] or heuristic_names()
    env_kwargs = parse_assignments(args.env_kwargs, ":")
    print(f"Evaluating {len(specs)} policies on {args.env} {env_kwargs or ''}: {args.n_episodes} episodes, seeds "
          f"{args.seed_base}..{args.seed_base + args.n_episodes - 1} (common random numbers)", flush=True)
    results = evaluate_policies(specs, args.env, env_kwargs, n_episodes=args.n_episodes, seed_base=args.seed_base,
                                batch_size=args.batch_size, verbose=True)
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
    print("\nWrote " + ", ".join(str(f) for f in files))
    return results


if __name__ == "__main__":
    main()
