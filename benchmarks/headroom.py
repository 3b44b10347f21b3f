"""Calibration study: how much each action component is worth in a VMIMO tier (``docs/headroom.md``).

    python -m benchmarks.headroom [--tier default] [--seeds 8] [--horizon H] [--env-kwargs KEY:VALUE ...]
                                  [--markdown docs/headroom.md]

Per tier (``TIERS``; ``--tier all`` runs every one) it reports, on the same seeds for every policy (common random
numbers, so differences are paired):

- the return of random actions, of fixed schedules (round-robin at one power level and prefix) and of every
  registered heuristic (``agents.heuristics``); the best of them and of the reference policy is "the best
  heuristic" the goals are measured against;
- for each action component alone (group, power, bandwidth, compression): the gain of a state-dependent causal
  rule (:class:`ComponentPolicy`, deciding from the BS view only) over the best fixed choice of that component,
  the other components held at the reference policy, with its paired 95% CI;
- the one-component search gain (default tier: power and compression; each slot the best fixed choice of the
  component is picked on replicas, ``VMIMOCore.replicate``), clairvoyant (the true future known) and causal (scored
  on sampled futures): how much of the clairvoyant headroom a causal scheduler could reach;
- the energy share of the return (energy term / accuracy term, and the transmit / circuit / encoding parts) under
  the best heuristic, the SINR at maximum power (percentiles, ``vmimo_env.bs_view.predict_sinr``) and the fraction
  of scenes closed with every modality (``StepResult.closed_full``).

Every prediction uses the environment's own rules (``vmimo_env.bs_view``, ``vmimo_env.rules``); nothing here
re-derives the physics. The goals of the v1 calibration (``GOALS``) are checked and printed.

``--env-kwargs`` studies a tier with scenario overrides (``energy_ref_j:1.6e-3 arrival_rate:4``, the convention of
``agents.benchmark``): the way to test a candidate recalibration before it becomes a tier. The report names them.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agents.common.hyperparams import parse_assignments
from agents.common.stats import mean_ci, paired_difference
from agents.heuristics.base import Heuristic
from agents.heuristics.coverage import ADAPTIVE, TARGET_SNR_DB, ComponentPolicy  # noqa: F401  (re-exported)
from vmimo_env.bs_view import predict_sinr
from vmimo_env.scenario import (
    TIERS,  # tier name -> scenario name (one owner, shared with agents.benchmark)
    make_config,
)

HEURISTICS: tuple[str, ...] = ("random", "round_robin", "greedy", "proportional_fair", "fractional_power", "sus",
                               "max_weight", "nas_vmimo")
SEED_BASE = 3_000_000  # disjoint from the training, validation and test seed ranges of agents.common.envs
SEARCH_FUTURES = 4  # sampled futures per choice of the causal one-component search
EQUAL_ENERGY_DB = (0.0, 10.0, 20.0)  # received-energy budgets of the equal-energy table (SINR at the shortest prefix)
GOALS = {"component_gain_frac": 0.02, "energy_share": (0.15, 0.40), "power_gain_frac": 0.02}


# the common reference policy the components are varied around (ADAPTIVE, the policy of every state-dependent rule,
# is the registered "coverage" scheduler's default: agents.heuristics.coverage)
REFERENCE: dict[str, Any] = {"group": "cover1", "power": "adaptive", "compression": 0, "bandwidth": "demand"}


def fixed_choices(cfg: Any) -> dict[str, list[Any]]:
    """The state-independent choices of each component (the best of them is what a rule must beat)."""
    return {"group": [f"rr{n}" for n in range(1, cfg.num_groups + 1)],
            "power": list(range(len(cfg.power_levels_db))),
            "compression": list(range(len(cfg.compression_levels))),
            "bandwidth": ["equal", "size"]}


# ====================================================================== running
@dataclass
class Episodes:
    """Per-episode sums of one policy (arrays over seeds)."""

    name: str
    ret: np.ndarray
    acc: np.ndarray
    energy: np.ndarray
    parts_j: np.ndarray  # (n, 3) transmit, circuit, encoding
    full_cover: np.ndarray  # scenes closed with every modality present (closed_full) / scenes arrived
    sinr_db_max: list[np.ndarray] = field(default_factory=list)


class _Totals:
    """Running per-environment sums of one policy's episodes (what :class:`Episodes` reports)."""

    def __init__(self, core: Any) -> None:
        n = core.N
        self.ret, self.acc, self.en = np.zeros(n), np.zeros(n), np.zeros(n)
        self.parts, self.full, self.arrived = np.zeros((n, 3)), np.zeros(n), np.zeros(n)

    def add(self, res: Any) -> None:
        self.ret += res.reward
        self.acc += res.accuracy_term
        self.en += res.energy_term
        self.parts += res.energy_j[:, :3]
        self.arrived += res.arrived + res.dropped
        self.full += res.closed_full

    def episodes(self, name: str, sinr_db_max: list[np.ndarray] | None = None) -> Episodes:
        return Episodes(name, self.ret, self.acc, self.en, self.parts, self.full / np.maximum(self.arrived, 1),
                        sinr_db_max or [])


def make_core(scenario: str, n: int, **overrides: Any) -> Any:
    from vmimo_env.vector import VMIMOVectorEnv

    return VMIMOVectorEnv(num_envs=n, scenario=scenario, **overrides).core


def run(core: Any, seeds: Sequence[int], factory: Callable[[Any], Heuristic], name: str,
        record_sinr: bool = False) -> Episodes:
    """One episode per seed of the policy ``factory(core)`` on ``core`` (one env per seed)."""
    n = core.N
    core.reset(np.arange(n), [int(s) for s in seeds])
    policy = factory(core)
    policy.reset(int(seeds[0]))
    totals = _Totals(core)
    sinr_rec: list[np.ndarray] = []
    for _ in range(core.cfg.horizon):
        view = core.bs_view()
        a = policy.act_view(view)
        g = a["group"].astype(np.int64)
        if record_sinr:
            top = np.full(g.shape, len(view.power_levels_w) - 1)
            s = predict_sinr(view, g, top, a["bandwidth"].astype(np.float32), compression=a["compression"])
            sinr_rec.append(10.0 * np.log10(np.maximum(s[g > 0], 1e-30)))
        res = core.step(g, a["power"].astype(np.int64), a["compression"].astype(np.int64),
                        np.clip(a["bandwidth"], 0.0, 1.0).astype(np.float32))
        totals.add(res)
    return totals.episodes(name, sinr_rec)


def clairvoyant(core: Any, seeds: Sequence[int], component: str, choices: list[Any], name: str) -> Episodes:
    """Each slot, the best fixed choice of ``component`` for that slot (others at the reference policy), scored on
    the known future: the slot's reward plus ``deadline_slots`` slots of the reference policy, on a replica."""
    return one_component_search(core, seeds, component, choices, name)


def one_component_search(core: Any, seeds: Sequence[int], component: str, choices: list[Any], name: str,
                         futures: int | None = None, future_seed: int = 0) -> Episodes:
    """Each slot, the fixed choice of ``component`` (others at the reference policy) of highest score: the slot's
    reward plus ``deadline_slots`` slots of the reference policy, on replicas (``VMIMOCore.replicate``).

    ``futures=None`` scores every choice on the true future (clairvoyant: the slot's fading, arrivals, noise and the
    pending scenes' identities are known). ``futures=F`` makes it causal: every choice is scored by its mean soft
    reward (the head's probability of the true class) over ``F`` futures sampled from the model's laws (fresh
    streams, pending scenes redrawn: what the BS cannot know stays unknown), the same ``F`` futures for every
    choice (common random numbers), drawn from ``future_seed``. The gap between the two says how much of the
    clairvoyant gain is knowledge of the draws rather than of the state."""
    n = core.N
    core.reset(np.arange(n), [int(s) for s in seeds])
    pols = [ComponentPolicy(core, **{**REFERENCE, component: c}) for c in choices]
    for p in pols:
        p.reset(int(seeds[0]))
    C, F = len(choices), 1 if futures is None else int(futures)
    totals = _Totals(core)
    D = core.cfg.deadline_slots
    rng = np.random.default_rng(future_seed)
    for t in range(core.cfg.horizon):
        view = core.bs_view()
        acts = [p.act_view(view) for p in pols]
        rows = np.repeat(np.arange(n), C * F)  # env i, choice j, future f at row (i * C + j) * F + f
        if futures is None:
            rep = core.replicate(rows)
        else:
            draws = rng.integers(0, 2**62, size=(n, 1, F))
            rep = core.replicate(rows, future_seeds=np.broadcast_to(draws, (n, C, F)).reshape(-1),
                                 reward_mode="soft")
        stack = {k: np.repeat(np.concatenate([np.stack([acts[j][k][i] for j in range(C)]) for i in range(n)]), F,
                              axis=0) for k in acts[0]}
        total = _step(rep, stack).reward.astype(float)
        rollout = ComponentPolicy(rep, **REFERENCE)
        for _ in range(min(D, core.cfg.horizon - t - 1)):
            total += _step(rep, rollout.act_view(rep.bs_view())).reward
        pick = total.reshape(n, C, F).mean(axis=2).argmax(axis=1)
        a = {k: np.stack([acts[pick[i]][k][i] for i in range(n)]) for k in acts[0]}
        res = _step(core, a)
        totals.add(res)
    return totals.episodes(name)


def _step(core: Any, a: dict[str, np.ndarray]) -> Any:
    return core.step(a["group"].astype(np.int64), a["power"].astype(np.int64), a["compression"].astype(np.int64),
                     np.clip(a["bandwidth"], 0.0, 1.0).astype(np.float32))


def heuristic_factory(name: str, **kwargs: Any) -> Callable[[Any], Heuristic]:
    def make(core: Any) -> Heuristic:
        import agents.heuristics  # noqa: F401  (registers the heuristics)
        from agents.policies import make_policy

        return make_policy(name, core, **kwargs)
    return make


def component_factory(**rules: Any) -> Callable[[Any], Heuristic]:
    return lambda core: ComponentPolicy(core, **{**REFERENCE, **rules})


# ====================================================================== the study
def study(tier: str, seeds: Sequence[int], horizon: int | None = None, oracle: bool | None = None,
          verbose: bool = True, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every figure of one tier (see the module docstring); returns them as a dict (used by the tests too).
    ``overrides`` are scenario keywords applied on top of the tier's scenario (``horizon`` wins over them)."""
    scenario = TIERS[tier]
    over = dict(overrides or {})
    if horizon is not None:
        over["horizon"] = int(horizon)
    core = make_core(scenario, len(seeds), **over)
    cfg = core.cfg
    t0 = time.perf_counter()
    out: dict[str, Any] = {"tier": tier, "scenario": scenario, "seeds": list(seeds), "horizon": cfg.horizon,
                           "overrides": {k: v for k, v in (overrides or {}).items() if k != "horizon"}}

    def log(msg: str) -> None:
        if verbose:
            print(f"  [{tier} {time.perf_counter() - t0:6.1f} s] {msg}", flush=True)

    results: dict[str, Episodes] = {}
    for h in HEURISTICS:
        results[h] = run(core, seeds, heuristic_factory(h), h)
    for j in range(len(cfg.power_levels_db)):  # fixed schedules: round-robin, one group, one level, reference prefix
        results[f"fixed p{j}"] = run(core, seeds, lambda c, j=j: ComponentPolicy(
            c, group="rr1", power=j, compression=REFERENCE["compression"], bandwidth="size"), f"fixed p{j}")
    results["reference"] = run(core, seeds, component_factory(), "reference", record_sinr=True)
    results["adaptive"] = run(core, seeds, component_factory(**ADAPTIVE), "adaptive")
    log("heuristics and fixed schedules done")
    best_name = max((k for k in results if not k.startswith("fixed") and k != "random"),
                    key=lambda k: results[k].ret.mean())
    best = results[best_name]
    out["policies"] = {k: summary(v) for k, v in results.items()}
    out["best"] = best_name
    out["best_return"] = float(best.ret.mean())

    comps: dict[str, Any] = {}
    choices = fixed_choices(cfg)
    for comp, fixed in choices.items():
        rule = ADAPTIVE[comp]
        fixed_runs = {c: run(core, seeds, component_factory(**{comp: c}), f"{comp}={c}") for c in fixed}
        best_fixed = max(fixed_runs, key=lambda c: fixed_runs[c].ret.mean())
        adaptive = (results["reference"] if REFERENCE[comp] == rule
                    else run(core, seeds, component_factory(**{comp: rule}), f"{comp}={rule}"))
        d, h, _ = paired_difference(adaptive.ret, fixed_runs[best_fixed].ret)
        comps[comp] = {"rule": str(rule), "best_fixed": str(best_fixed), "best_fixed_value": best_fixed,
                       "fixed": {str(c): float(r.ret.mean()) for c, r in fixed_runs.items()},
                       "rule_return": float(adaptive.ret.mean()), "gain": d, "ci": h,
                       "gain_frac": d / abs(out["best_return"]), "ci_frac": h / abs(out["best_return"])}
        log(f"{comp}: rule {rule} vs best fixed {best_fixed}: {d:+.3f} ± {h:.3f}")
    out["components"] = comps
    # power-adaptive scheduling against the best single fixed level, the whole reference policy otherwise
    if oracle is None:
        oracle = tier == "default"
    if oracle:
        clair, causal = {}, {}
        for comp in ("power", "compression"):
            ref = run(core, seeds, component_factory(**{comp: comps[comp]["best_fixed_value"]}), "best fixed")
            for label, F, into in (("clairvoyant", None, clair), ("sampled-future", SEARCH_FUTURES, causal)):
                ep = one_component_search(core, seeds, comp, choices[comp], f"{label} {comp}", futures=F)
                d, h, _ = paired_difference(ep.ret, ref.ret)
                into[comp] = {"return": float(ep.ret.mean()), "gain": d, "ci": h}
                log(f"{label} {comp}: {d:+.3f} ± {h:.3f} over the best fixed")
        out["clairvoyant"] = clair
        out["sampled_search"] = causal
    sinr = np.concatenate([s for s in results["reference"].sinr_db_max if s.size]) if any(
        s.size for s in results["reference"].sinr_db_max) else np.array([np.nan])
    out["sinr_max_power_db"] = {f"p{q}": float(np.percentile(sinr, q)) for q in (5, 25, 50, 75, 95)}
    e_parts = best.parts_j.sum(axis=0)
    out["energy"] = {"share": float(best.energy.mean() / max(best.acc.mean(), 1e-12)),
                     "tx": float(e_parts[0] / max(e_parts.sum(), 1e-30)),
                     "circuit": float(e_parts[1] / max(e_parts.sum(), 1e-30)),
                     "encode": float(e_parts[2] / max(e_parts.sum(), 1e-30))}
    out["full_cover"] = {k: float(v.full_cover.mean()) for k, v in results.items()}
    out["equal_energy"] = equal_energy_accuracy(core)
    out["goals"] = goals(out)
    out["wall_s"] = time.perf_counter() - t0
    return out


def equal_energy_accuracy(core: Any, budgets_db: Sequence[float] = EQUAL_ENERGY_DB) -> dict[str, Any]:
    """Accuracy of the frozen model with every modality present when a latent's received energy is held fixed and
    spread over each prefix: at prefix ``c`` the SINR per channel use is the budget minus ``10 log10(c / c_min)``
    (the budget is the SINR at the shortest prefix). Read from the model's accuracy table
    (``agents.heuristics.accuracy``). A flat row means prefix and transmit power buy the same accuracy per unit of
    energy: a longer prefix then pays only where power cannot rise (a device at maximum power), and it costs circuit
    energy and air time that power does not."""
    from agents.heuristics.accuracy import accuracy_table_for

    table = accuracy_table_for(core.bs_view())
    prefixes = [int(c) for c in core.cfg.compression_levels]
    every = tuple(range(table.M))
    rows = {}
    for b in budgets_db:
        rows[f"{b:g}"] = [float(table.lookup(every, np.array(b - 10.0 * np.log10(c / prefixes[0])), np.array(c)))
                          for c in prefixes]
    return {"prefixes": prefixes, "rows": rows}


def summary(ep: Episodes) -> dict[str, float]:
    m, h = mean_ci(ep.ret)
    return {"return": m, "ci": h, "accuracy_term": float(ep.acc.mean()), "energy_term": float(ep.energy.mean()),
            "full_cover": float(ep.full_cover.mean())}


def goals(out: dict[str, Any]) -> dict[str, bool]:
    """Which calibration goals the tier meets (lower end of each paired CI for the gains)."""
    g = {}
    for comp, c in out["components"].items():
        g[f"{comp} rule ≥ 2% over best fixed"] = c["gain_frac"] - c["ci_frac"] >= GOALS["component_gain_frac"]
    lo, hi = GOALS["energy_share"]
    g["energy term 15–40% of accuracy term"] = lo <= out["energy"]["share"] <= hi
    p = out["components"]["power"]
    g["power-adaptive ≥ 2% over best fixed level"] = p["gain_frac"] - p["ci_frac"] >= GOALS["power_gain_frac"]
    return g


# ====================================================================== report
def markdown(studies: list[dict[str, Any]], argv: list[str]) -> str:
    import gymnasium
    import numba
    import torch

    lines = ["# Headroom of each action component (VMIMO-v1 calibration)", "",
             "Generated by `python -m benchmarks.headroom " + " ".join(argv) + "` (do not edit by hand).", "",
             f"Machine: {platform.machine()}, {platform.system()} {platform.release()}, Python "
             f"{platform.python_version()}; numpy {np.__version__}, numba {numba.__version__}, torch "
             f"{torch.__version__}, gymnasium {gymnasium.__version__}.", "",
             "All policies run on the same seeds (common random numbers); ± is the 95% CI half-width (paired for "
             "gains). A component's *rule* is state-dependent and causal (BS view only); the *best fixed* choice is "
             "the best state-independent one; the other components are held at the reference policy "
             f"({REFERENCE}). Goals: each rule ≥ 2% of the best heuristic's return over the best fixed choice "
             "(lower CI end), energy term 15–40% of the accuracy term under the best heuristic.", ""]
    for s in studies:
        changed = "".join(f", {k} = {v!r}" for k, v in s.get("overrides", {}).items())
        lines += [f"## Tier `{s['tier']}` (scenario `{s['scenario']}`{changed}, {len(s['seeds'])} seeds, horizon "
                  f"{s['horizon']}, {s['wall_s']:.0f} s)", "",
                  "| policy | return | accuracy term | energy term | closed with every modality |",
                  "|---|---:|---:|---:|---:|"]
        for k, v in sorted(s["policies"].items(), key=lambda kv: -kv[1]["return"]):
            mark = " **(best)**" if k == s["best"] else ""
            lines.append(f"| {k}{mark} | {v['return']:.2f} ± {v['ci']:.2f} | {v['accuracy_term']:.2f} | "
                         f"{v['energy_term']:.2f} | {v['full_cover']:.3f} |")
        lines += ["", "| component | rule | best fixed (of) | gain | gain / best return |", "|---|---|---|---:|---:|"]
        for comp, c in s["components"].items():
            lines.append(f"| {comp} | `{c['rule']}` | `{c['best_fixed']}` ({', '.join(c['fixed'])}) | "
                         f"{c['gain']:+.2f} ± {c['ci']:.2f} | {100 * c['gain_frac']:+.1f} % ± "
                         f"{100 * c['ci_frac']:.1f} |")
        if "clairvoyant" in s:
            lines += ["", "| one-component search (each slot the best fixed choice) | return | gain over best fixed |",
                      "|---|---:|---:|"]
            for comp, c in s["clairvoyant"].items():
                lines.append(f"| {comp}, clairvoyant (the true future) | {c['return']:.2f} | {c['gain']:+.2f} ± "
                             f"{c['ci']:.2f} |")
            for comp, c in s.get("sampled_search", {}).items():
                lines.append(f"| {comp}, causal ({SEARCH_FUTURES} sampled futures, soft reward) | {c['return']:.2f} | "
                             f"{c['gain']:+.2f} ± {c['ci']:.2f} |")
        if "equal_energy" in s:
            ee = s["equal_energy"]
            lines += ["", "Accuracy with every modality present at a fixed received energy per latent spread over each "
                      "prefix (SINR per use = budget − 10 log10(prefix / shortest); the frozen model's accuracy "
                      "table): a flat row means prefix and power are substitutes.", "",
                      "| energy budget (SINR at the shortest prefix, dB) | "
                      + " | ".join(f"prefix {c}" for c in ee["prefixes"]) + " |",
                      "|---|" + "---:|" * len(ee["prefixes"])]
            for b, accs in ee["rows"].items():
                lines.append(f"| {b} | " + " | ".join(f"{a:.3f}" for a in accs) + " |")
        q = s["sinr_max_power_db"]
        e = s["energy"]
        lines += ["", f"SINR at maximum power of the devices the reference policy schedules (dB): 5th {q['p5']:.1f}, "
                  f"25th {q['p25']:.1f}, median {q['p50']:.1f}, 75th {q['p75']:.1f}, 95th {q['p95']:.1f}.", "",
                  f"Energy under the best heuristic (`{s['best']}`): energy term = {100 * e['share']:.1f} % of the "
                  f"accuracy term; transmit {100 * e['tx']:.0f} %, circuit {100 * e['circuit']:.0f} %, encoding "
                  f"{100 * e['encode']:.0f} % of the energy.", "", "| goal | met |", "|---|---|"]
        lines += [f"| {k} | {'yes' if v else 'no'} |" for k, v in s["goals"].items()]
        lines.append("")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tier", default="default", choices=[*TIERS, "all"])
    parser.add_argument("--seeds", type=int, default=16)
    parser.add_argument("--horizon", type=int, default=None, help="episode length (default: the tier's)")
    parser.add_argument("--no-oracle", action="store_true", help="skip the clairvoyant search")
    parser.add_argument("--env-kwargs", nargs="*", default=[], metavar="KEY:VALUE",
                        help="scenario overrides on top of every studied tier's scenario (a candidate calibration)")
    parser.add_argument("--markdown", default=None, help="write the report to this file")
    args = parser.parse_args(argv)
    raw = sys.argv[1:] if argv is None else list(argv)
    tiers = list(TIERS) if args.tier == "all" else [args.tier]
    try:  # a bad key or value fails here, in one line, before minutes of study
        overrides = parse_assignments(args.env_kwargs, ":")
        for t in tiers:
            make_config(TIERS[t], **overrides)
    except ValueError as err:
        parser.error(str(err))
    seeds = list(range(SEED_BASE, SEED_BASE + args.seeds))
    studies = [study(t, seeds, args.horizon, oracle=False if args.no_oracle else None, overrides=overrides)
               for t in tiers]
    text = markdown(studies, raw)
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as fh:
            fh.write(text)
    print(text)


if __name__ == "__main__":
    main()
