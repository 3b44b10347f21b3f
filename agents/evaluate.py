"""Compare policies on the same held-out seeds: ``python -m agents.evaluate`` (also the ``vmimo-eval`` command).

Every policy (heuristic names, the oracle, trained models) runs one episode per seed, and episode ``j`` of every
policy starts from the same environment seed: common random numbers. The environment draws a fixed amount of
randomness per slot whatever the action, so arrivals, scenes, fading and latent noise are *identical* across
policies, and paired differences isolate the policies' effect with far narrower intervals than independent runs.

Episodes run batched: one ``VMIMOVectorEnv`` holds up to ``--batch-size`` episodes, each reset with its own seed
(environment ``i`` with seed ``s_i`` reproduces a single ``VMIMOEnv`` reset with ``s_i``, step for step).

Output: a table (mean ± 95% CI of return, accuracy, energy per scene, expired scenes; paired difference of the
return against the best heuristic with its 95% CI), ``summary.csv``, ``episodes.csv`` (one row per policy and
seed), and plots (``returns.png``, ``accuracy_energy.png``, ``allocation.png``) in ``--out``.

Examples::

    python -m agents.evaluate                                   # every heuristic on 50 test seeds
    python -m agents.evaluate oracle max_weight runs/ppo/VMIMO-v0__0__*/best_model.zip --n-episodes 100
    python -m agents.evaluate --env VMIMO-Small-v0 --env-kwargs horizon:100 --out eval_small
"""

from __future__ import annotations

import argparse
import csv
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agents.common.envs import TEST_SEED_BASE, is_vmimo, make_eval_vector_env
from agents.common.hyperparams import parse_assignments
from agents.common.stats import mean_ci, paired_difference

# per-episode metrics every VMIMO evaluation reports (names used in CSV columns and W&B keys)
METRICS = ("return", "accuracy", "energy_per_scene_mj", "expired_frac", "accuracy_term", "energy_term",
           "energy_j", "arrived", "correct", "expired_empty", "dropped", "length")
TABLE_METRICS = (("return", "return", 1.0), ("accuracy", "accuracy %", 100.0),
                 ("energy_per_scene_mj", "energy/scene mJ", 1.0), ("expired_frac", "expired %", 100.0))
SUM_KEYS = ("accuracy_term", "energy_term", "energy_j", "energy_tx_j", "energy_circuit_j", "energy_encode_j",
            "arrived", "correct", "expired_empty", "dropped")


@dataclass
class PolicyResult:
    """Per-episode results of one policy: ``episodes[metric]`` (n,), ``per_device[stat]`` (n, K)."""

    name: str
    seeds: np.ndarray
    episodes: dict[str, np.ndarray]
    per_device: dict[str, np.ndarray] = field(default_factory=dict)
    wall_s: float = 0.0
    kind: str = "heuristic"  # heuristic | oracle | model

    def mean_ci(self, metric: str = "return") -> tuple[float, float]:
        return mean_ci(self.episodes[metric])

    def summary(self) -> dict[str, float]:
        out: dict[str, float] = {"episodes": float(len(self.seeds)), "wall_s": self.wall_s}
        for metric, values in self.episodes.items():
            m, h = mean_ci(values)
            out[f"{metric}_mean"], out[f"{metric}_ci95"] = m, h
        return out


def _kind_of(spec: Any) -> str:
    if isinstance(spec, str):
        from agents.policies import canonical_name

        name = canonical_name(spec)
        if name == "oracle":
            return "oracle"
        return "heuristic" if name is not None else "model"
    return "model"


def _label(spec: Any) -> str:
    if isinstance(spec, str):
        from agents.policies import canonical_name

        if canonical_name(spec) is not None:
            return canonical_name(spec)
        p = Path(spec.split(":", 1)[-1])
        if p.suffix == ".zip":  # runs/ppo/<run>/best_model.zip -> ppo/<run>/best_model
            return "/".join(p.with_suffix("").parts[-3:])
        return spec
    return getattr(spec, "name", type(spec).__name__)


def run_policy(spec: Any, env_id: str, env_kwargs: dict[str, Any] | None, seeds: Sequence[int], *,
               batch_size: int = 64, name: str | None = None, policy_kwargs: dict[str, Any] | None = None,
               env_cache: dict[int, Any] | None = None, max_steps: int = 100_000) -> PolicyResult:
    """Run one episode per seed of ``spec`` (name, model path, SB3 model or a ``env -> Policy`` callable)."""
    from agents.policies import make_policy

    seeds = np.asarray(list(seeds), dtype=np.int64)
    vmimo = is_vmimo(env_id)
    chunks: list[dict[str, np.ndarray]] = []
    dev_chunks: list[dict[str, np.ndarray]] = []
    t0 = time.perf_counter()
    for start in range(0, len(seeds), batch_size):
        chunk = seeds[start:start + batch_size]
        n = len(chunk)
        env = env_cache.get(n) if env_cache is not None else None
        if env is None:
            env = make_eval_vector_env(env_id, env_kwargs, n)
            if env_cache is not None:
                env_cache[n] = env
        if isinstance(spec, type) or (callable(spec) and not hasattr(spec, "predict") and not hasattr(spec, "act")):
            policy = spec(env, **(policy_kwargs or {}))  # a factory env -> Policy
        else:
            policy = make_policy(spec, env, **(policy_kwargs or {}))
        obs, info = reset_with_seeds(env, chunk)
        policy.reset(int(chunk[0]))
        done = np.zeros(n, dtype=bool)
        sums = {k: np.zeros(n) for k in ("return", "length", *SUM_KEYS)}
        dev: dict[str, np.ndarray] = {}
        steps = 0
        while not done.all() and steps < max_steps:
            action = policy.act(obs, info)
            obs, reward, terminated, truncated, info = env.step(action)
            live = ~done
            sums["return"] += np.where(live, reward, 0.0)
            sums["length"] += live
            if vmimo:
                for key in SUM_KEYS:
                    sums[key] += np.where(live, np.asarray(info[key], dtype=float), 0.0)
                _accumulate_devices(dev, info, live)
            done |= np.asarray(terminated) | np.asarray(truncated)
            steps += 1
        chunks.append(sums)
        dev_chunks.append(dev)
    episodes = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
    if vmimo:
        arrived = np.maximum(episodes["arrived"], 1.0)
        episodes["accuracy"] = episodes["correct"] / arrived
        episodes["expired_frac"] = episodes["expired_empty"] / arrived
        episodes["energy_per_scene_mj"] = 1e3 * episodes["energy_j"] / arrived
    else:
        for key in SUM_KEYS:
            episodes.pop(key, None)
    per_device = {}
    if dev_chunks and dev_chunks[0]:
        raw = {k: np.concatenate([c[k] for c in dev_chunks]) for k in dev_chunks[0]}
        length = np.maximum(episodes["length"], 1.0)[:, None]
        tx = np.maximum(raw["tx_slots"], 1.0)
        per_device = {"tx_frac": raw["tx_slots"] / length, "latents_per_slot": raw["sent"] / length,
                      "prefix": np.where(raw["tx_slots"] > 0, raw["prefix_sum"] / tx, np.nan),
                      "power_dbm": np.where(raw["tx_slots"] > 0, raw["power_dbm_sum"] / tx, np.nan)}
    return PolicyResult(name or _label(spec), seeds, episodes, per_device, time.perf_counter() - t0, _kind_of(spec))


def reset_with_seeds(env: Any, seeds: Sequence[int]) -> tuple[Any, Any]:
    """Reset vector environment ``i`` with ``seeds[i]``.

    Consecutive seeds use the Gymnasium convention ``reset(seed=s0)`` (env i gets ``s0 + i``). Other lists go
    through ``reset(seed=[...])``; ``VMIMOVectorEnv.reset`` documents list seeds but hands the list to
    ``VectorEnv.reset``, which rejects it, so for VMIMO the per-env seeds are applied to the core directly.
    """
    seeds = [int(s) for s in seeds]
    if seeds == list(range(seeds[0], seeds[0] + len(seeds))):
        return env.reset(seed=seeds[0])
    try:
        return env.reset(seed=seeds)
    except Exception:
        core = getattr(env.unwrapped, "core", None)
        if core is None:
            raise
        _, info = env.reset(seed=seeds[0])
        core.reset(np.arange(len(seeds)), seeds)
        return env.unwrapped._obs(), info


def _accumulate_devices(dev: dict[str, np.ndarray], info: dict[str, Any], live: np.ndarray) -> None:
    sent = np.asarray(info["sent"], dtype=float)
    tx = (np.asarray(info["group"]) > 0) & (sent > 0) & live[:, None]
    if not dev:
        for key in ("tx_slots", "sent", "prefix_sum", "power_dbm_sum"):
            dev[key] = np.zeros(sent.shape)
    dev["tx_slots"] += tx
    dev["sent"] += np.where(tx, sent, 0.0)
    dev["prefix_sum"] += np.where(tx, info["prefix"], 0.0)
    dev["power_dbm_sum"] += np.where(tx, 10.0 * np.log10(np.maximum(info["power_w"], 1e-30)) + 30.0, 0.0)


def evaluate_policies(specs: Iterable[Any], env_id: str = "VMIMO-v0", env_kwargs: dict[str, Any] | None = None,
                      seeds: Sequence[int] | None = None, n_episodes: int = 50, seed_base: int = TEST_SEED_BASE,
                      batch_size: int = 64, verbose: bool = False) -> dict[str, PolicyResult]:
    """Run every policy on the same seeds (``seed_base + j`` unless ``seeds`` is given)."""
    if seeds is None:
        seeds = range(seed_base, seed_base + n_episodes)
    seeds = list(seeds)
    out: dict[str, PolicyResult] = {}
    cache: dict[int, Any] = {}
    for spec in specs:
        res = run_policy(spec, env_id, env_kwargs, seeds, batch_size=batch_size, env_cache=cache)
        if res.name in out:
            res.name = f"{res.name}#{len(out)}"
        out[res.name] = res
        if verbose:
            m, h = res.mean_ci()
            print(f"  {res.name:<28s} return {m:9.3f} ± {h:.3f}   ({res.wall_s:.1f} s)", flush=True)
    return out


def best_heuristic(results: dict[str, PolicyResult]) -> str | None:
    """Name of the heuristic (not the oracle, not a model) with the highest mean return."""
    cands = [r for r in results.values() if r.kind == "heuristic"]
    if not cands:
        return None
    return max(cands, key=lambda r: r.episodes["return"].mean()).name


def comparison_rows(results: dict[str, PolicyResult], reference: str | None = None) -> list[dict[str, Any]]:
    """One summary row per policy, with the paired return difference against ``reference`` (default: best
    heuristic) and the fraction of the oracle's mean return when the oracle was run."""
    reference = reference or best_heuristic(results)
    ref = results.get(reference) if reference else None
    oracle = next((r for r in results.values() if r.kind == "oracle"), None)
    rows = []
    for res in results.values():
        row: dict[str, Any] = {"policy": res.name, "kind": res.kind, **res.summary()}
        if ref is not None and np.array_equal(ref.seeds, res.seeds):
            d, h, t = paired_difference(res.episodes["return"], ref.episodes["return"])
            row.update({"reference": ref.name, "diff_vs_reference": d, "diff_ci95": h, "diff_t": t})
        if oracle is not None and np.array_equal(oracle.seeds, res.seeds):
            om = oracle.episodes["return"].mean()
            row["fraction_of_oracle"] = res.episodes["return"].mean() / om if om != 0 else math.nan
        rows.append(row)
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    """Plain-text table of :func:`comparison_rows` (mean ± 95% CI)."""
    cols = ["policy"] + [label for _, label, _ in TABLE_METRICS] + ["Δ return vs ref (95% CI)", "of oracle"]
    lines = []
    for row in rows:
        cells = [row["policy"]]
        for metric, _, scale in TABLE_METRICS:
            m, h = row.get(f"{metric}_mean", math.nan), row.get(f"{metric}_ci95", math.nan)
            cells.append(f"{m * scale:.2f} ± {h * scale:.2f}" if not math.isnan(m) else "-")
        if "diff_vs_reference" in row:
            d, h = row["diff_vs_reference"], row["diff_ci95"]
            mark = "ref" if row["policy"] == row["reference"] else (
                "+" if d - h > 0 else ("-" if d + h < 0 else "~"))
            cells.append(f"{d:+.2f} ± {h:.2f} {mark}" if row["policy"] != row["reference"] else "(reference)")
        else:
            cells.append("-")
        frac = row.get("fraction_of_oracle")
        cells.append(f"{100 * frac:.1f}%" if frac is not None and not math.isnan(frac) else "-")
        lines.append(cells)
    widths = [max(len(str(c)) for c in col) for col in zip(cols, *lines, strict=True)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [fmt.format(*cols), fmt.format(*("-" * w for w in widths))]
    out += [fmt.format(*cells) for cells in lines]
    return "\n".join(out)


def write_csvs(results: dict[str, PolicyResult], rows: list[dict[str, Any]], out_dir: str | Path) -> list[Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = out_dir / "summary.csv"
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    with open(summary, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
    episodes = out_dir / "episodes.csv"
    with open(episodes, "w", newline="", encoding="utf-8") as fh:
        metrics = sorted({m for r in results.values() for m in r.episodes})
        writer = csv.writer(fh)
        writer.writerow(["policy", "seed", *metrics])
        for res in results.values():
            for j, seed in enumerate(res.seeds):
                writer.writerow([res.name, int(seed)] + [float(res.episodes[m][j]) if m in res.episodes else ""
                                                        for m in metrics])
    return [summary, episodes]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m agents.evaluate", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("policies", nargs="*",
                        help="heuristic names, 'oracle', and/or trained model paths ([algo:]path.zip); "
                             "default: every heuristic")
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
    parser.add_argument("--trust-checkpoint", action="store_true",
                        help="allow model zips to unpickle objects (plain SB3 zips, old checkpoints): this runs code "
                             "stored in the file, so only for files you made yourself")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, PolicyResult]:
    from agents.policies import heuristic_names

    args = parse_args(argv)
    specs = [*args.policies, *args.policies_opt] or heuristic_names()
    env_kwargs = parse_assignments(args.env_kwargs, ":")
    print(f"Evaluating {len(specs)} policies on {args.env} {env_kwargs or ''}: {args.n_episodes} episodes, seeds "
          f"{args.seed_base}..{args.seed_base + args.n_episodes - 1} (common random numbers)", flush=True)
    from agents.checkpoint import trusting_checkpoints

    with trusting_checkpoints(args.trust_checkpoint):
        results = evaluate_policies(specs, args.env, env_kwargs, n_episodes=args.n_episodes,
                                    seed_base=args.seed_base, batch_size=args.batch_size, verbose=True)
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
    from agents.checkpoint import CheckpointError

    try:
        main()
    except CheckpointError as exc:  # one line naming the file (untrusted, corrupt or incompatible checkpoint)
        raise SystemExit(f"error: {exc}") from None
