"""Tune the heuristic baselines of one tier on validation seeds: ``python -m agents.tune_baselines``.

    python -m agents.tune_baselines --tier default [--seeds 8] [--horizon H] [--quick] [--out FILE]

For each registered baseline (:data:`BASELINES`) the command searches a small grid of its parameters (:func:`grids`:
the power rule and its parameters (fixed level; fractional power control ``P0``/``α``; SINR target), the number
of groups, the coverage option, the prefix, and the scheduler's own thresholds) by coordinate ascent: starting from
the registered defaults, each coordinate in turn is set to its best value with the others held, for ``--passes``
sweeps. Every candidate runs one episode per validation seed ``VALIDATION_SEED_BASE + j`` on the native batched core
(one environment per seed, all candidates on the same seeds: common random numbers), so the comparison between
candidates is paired. Test seeds are never touched.

The result goes to ``agents/hyperparams/baselines/<scenario>.yml`` (``--out`` to write elsewhere):
``baselines: {name: {params, validation_return, ci, default_return, gain, gain_ci, evaluated}}`` plus the command,
seeds, machine and package versions. ``validation_return`` is the chosen parameters' mean return on the tuning
seeds (it carries the optimism of picking the best of many on them: judge the tuned baselines on test seeds,
``python -m agents.evaluate``); ``ci`` its 95% half-width; ``gain`` ± ``gain_ci`` the paired difference to the
registered defaults. ``make_policy(name, env, tuned=True)`` and :func:`agents.registry.tuned_params` read the file.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agents.common.envs import VALIDATION_SEED_BASE
from agents.common.stats import mean_ci, paired_difference
from agents.registry import canonical_name, make_policy, policy_factory, tuned_file
from vmimo_env.config import ScenarioConfig
from vmimo_env.scenario import SCENARIOS

# the baselines the command tunes ("random" has nothing to tune; "oracle" is clairvoyant, not a baseline)
BASELINES: tuple[str, ...] = ("round_robin", "greedy", "proportional_fair", "fractional_power", "sus", "max_weight",
                              "nas_vmimo", "coverage")
# the keys of the power coordinate: a candidate replaces all of them (a rule's parameters go with the rule)
POWER_KEYS: tuple[str, ...] = ("power_rule", "power_level", "p0_dbm", "fpc_alpha", "target_snr_db")

# fractional power control (P0 dBm, α): around the 3GPP defaults (-90 dBm, 0.8), for the v1 path losses (median
# ~130 dB) from about 10 dB below to 10 dB above the median device's default power
FPC_GRID: tuple[tuple[float, float], ...] = tuple((p0, a) for p0 in (-110.0, -100.0, -90.0, -80.0)
                                                  for a in (0.6, 0.7, 0.8, 0.9, 1.0))

Coordinate = tuple[tuple[str, ...], list[dict[str, Any]]]


def tier_scenario(tier: str) -> str:
    """The scenario of a tier: ``default`` is ``v1``, any other tier ``<tier>_v1`` (as in ``benchmarks.headroom``)."""
    scenario = "v1" if tier == "default" else f"{tier}_v1"
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown tier {tier!r}: no scenario {scenario!r}")
    return scenario


def power_candidates(cfg: ScenarioConfig, rules: Sequence[str], quick: bool = False) -> list[dict[str, Any]]:
    """The power coordinate: every fixed level, a P0 × α grid of fractional power control, a few SINR targets
    (each only if its rule is in ``rules``; ``"value"`` is a heuristic's own rule, a single candidate)."""
    out: list[dict[str, Any]] = []
    if "value" in rules:
        out.append({"power_rule": "value"})
    if "level" in rules:
        out += [{"power_rule": "level", "power_level": j} for j in range(len(cfg.power_levels_db))][::-1]
    if "fpc" in rules:
        out += [{"power_rule": "fpc", "p0_dbm": p0, "fpc_alpha": a} for p0, a in FPC_GRID]
    if "target" in rules:
        out += [{"power_rule": "target", "target_snr_db": t} for t in (-3.0, 0.0, 3.0, 6.0, 9.0, 12.0)]
    return out[:3] if quick else out


def grids(name: str, cfg: ScenarioConfig, quick: bool = False) -> list[Coordinate]:
    """The coordinates searched for baseline ``name``: (keys a candidate replaces, candidates). ``quick``: the
    first two candidates of each (for tests)."""
    cls = policy_factory(name)
    G = cfg.num_groups
    groups: Coordinate = (("num_groups",), [{"num_groups": n} for n in range(1, G + 1)])
    coverage: Coordinate = (("coverage",), [{"coverage": False}, {"coverage": True}])
    prefix: Coordinate = (("prefix",), [{"prefix": int(c)} for c in cfg.compression_levels])
    rules = getattr(cls, "power_rules", ())
    power: Coordinate = (POWER_KEYS, power_candidates(cfg, rules, quick))
    if name == "fractional_power":  # its own names for the fractional power control parameters
        power = (("p0_dbm", "alpha"), [{"p0_dbm": p0, "alpha": a} for p0, a in FPC_GRID])
    coords: list[Coordinate]
    if name in ("round_robin", "greedy", "fractional_power"):
        coords = [power, groups, coverage, prefix]
    elif name == "proportional_fair":
        coords = [power, groups, coverage, prefix, (("t_c",), [{"t_c": t} for t in (10.0, 50.0, 200.0)])]
    elif name == "sus":
        coords = [power, coverage, prefix, (("alpha",), [{"alpha": a} for a in (0.3, 0.5, 0.7, 0.9)]),
                  (("min_sinr_db",), [{"min_sinr_db": s} for s in (-5.0, 0.0, 5.0, 10.0)])]
    elif name == "max_weight":
        coords = [power, groups, coverage]
    elif name == "nas_vmimo":
        coords = [power, coverage, (("eta1",), [{"eta1": e} for e in (0.3, 0.6, 0.9)]),
                  (("soft_prefix",), [{"soft_prefix": int(c)} for c in cfg.compression_levels]),
                  (("compress_prefix",), [{"compress_prefix": int(c)} for c in cfg.compression_levels])]
    elif name == "coverage":
        coords = [(("target_snr_db",), [{"target_snr_db": t} for t in (-2.0, 0.0, 2.0, 4.0, 6.0, 8.0, 10.0)]),
                  (("value_scale",), [{"value_scale": v} for v in (0.5, 0.7, 1.0, 1.4, 2.0)]),
                  (("group",), [{"group": "cover1"}, {"group": "cover"}]),
                  (("compression",), [{"compression": c} for c in ("fused", "snr", 0)]),
                  (("bandwidth",), [{"bandwidth": b} for b in ("search", "demand")])]
    else:
        raise ValueError(f"no grid for {name!r}; tunable: {list(BASELINES)}")
    if quick:
        coords = [(keys, cands[:2]) for keys, cands in coords]
    return coords


# ====================================================================== evaluation
def make_core(scenario: str, n: int, horizon: int | None = None) -> Any:
    """The native batched core of ``n`` environments of ``scenario``."""
    from vmimo_env.vector import VMIMOVectorEnv

    over = {} if horizon is None else {"horizon": int(horizon)}
    return VMIMOVectorEnv(num_envs=n, scenario=scenario, **over).core


def episode_returns(core: Any, seeds: Sequence[int], factory: Callable[[Any], Any]) -> np.ndarray:
    """One episode per seed of ``factory(core)`` on the batched core (environment i on seed i), returns (n,)."""
    n = core.N
    core.reset(np.arange(n), [int(s) for s in seeds])
    policy = factory(core)
    policy.reset(int(seeds[0]))
    ret = np.zeros(n)
    for _ in range(core.cfg.horizon):
        a = policy.act_view(core.bs_view())
        res = core.step(a["group"].astype(np.int64), a["power"].astype(np.int64), a["compression"].astype(np.int64),
                        np.clip(a["bandwidth"], 0.0, 1.0).astype(np.float32))
        ret += res.reward
    return ret


def _key(params: dict[str, Any]) -> str:
    return repr(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in params.items()))


def tune(name: str, core: Any, seeds: Sequence[int], passes: int = 3, quick: bool = False,
         log: Callable[[str], None] = print) -> dict[str, Any]:
    """Coordinate ascent over :func:`grids` for ``name`` on ``seeds``; the chosen parameters and their scores."""
    cache: dict[str, np.ndarray] = {}

    def score(params: dict[str, Any]) -> np.ndarray:
        k = _key(params)
        if k not in cache:
            cache[k] = episode_returns(core, seeds, lambda c: make_policy(name, c, **params))
        return cache[k]

    best: dict[str, Any] = {}
    default = best_ret = score(best)
    for _ in range(passes):
        changed = False
        for keys, cands in grids(name, core.cfg, quick):
            for cand in cands:
                params = {**{k: v for k, v in best.items() if k not in keys}, **cand}
                ret = score(params)
                if ret.mean() > best_ret.mean() + 1e-9:
                    best, best_ret, changed = params, ret, True
        if not changed:
            break
    m, h = mean_ci(best_ret)
    d, dh, _ = paired_difference(best_ret, default)
    log(f"  {name:18s} {m:8.2f} ± {h:5.2f}  (defaults {default.mean():8.2f}, gain {d:+.2f} ± {dh:.2f}, "
        f"{len(cache)} evaluated)  {best}")
    return {"params": best, "validation_return": round(float(m), 4), "ci": round(float(h), 4),
            "default_return": round(float(default.mean()), 4), "gain": round(float(d), 4),
            "gain_ci": round(float(dh), 4), "evaluated": len(cache)}


def versions() -> dict[str, str]:
    import gymnasium
    import numba

    return {"python": platform.python_version(), "numpy": np.__version__, "numba": numba.__version__,
            "gymnasium": gymnasium.__version__}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tier", default="default", help="default (scenario v1), dense, mobility, iot, ...")
    parser.add_argument("--seeds", type=int, default=8, help="validation seeds (VALIDATION_SEED_BASE + j)")
    parser.add_argument("--horizon", type=int, default=None, help="episode length (default: the tier's)")
    parser.add_argument("--passes", type=int, default=3, help="coordinate-ascent sweeps (stops early when stable)")
    parser.add_argument("--only", default=None, help="comma-separated baselines (default: all of BASELINES)")
    parser.add_argument("--quick", action="store_true", help="two candidates per coordinate, one pass (tests)")
    parser.add_argument("--out", default=None, help="output YAML (default agents/hyperparams/baselines/<scenario>.yml)")
    args = parser.parse_args(argv)
    raw = sys.argv[1:] if argv is None else list(argv)
    scenario = tier_scenario(args.tier)
    names = BASELINES if args.only is None else tuple(canonical_name(n) or n for n in args.only.split(","))
    unknown = [n for n in names if n not in BASELINES]
    if unknown:
        raise SystemExit(f"cannot tune {unknown}; tunable: {list(BASELINES)}")
    seeds = [VALIDATION_SEED_BASE + j for j in range(args.seeds)]
    core = make_core(scenario, len(seeds), args.horizon)
    t0 = time.perf_counter()
    print(f"Tuning {len(names)} baselines on tier {args.tier} (scenario {scenario}): {len(seeds)} validation seeds "
          f"{seeds[0]}..{seeds[-1]}, horizon {core.cfg.horizon}", flush=True)
    tuned = {n: tune(n, core, seeds, passes=1 if args.quick else args.passes, quick=args.quick) for n in names}
    out = {"tier": args.tier, "scenario": scenario,
           "command": "python -m agents.tune_baselines " + " ".join(raw),
           "seeds": {"base": VALIDATION_SEED_BASE, "count": len(seeds)}, "horizon": int(core.cfg.horizon),
           "machine": f"{platform.machine()}, {platform.system()} {platform.release()}", "packages": versions(),
           "wall_s": round(time.perf_counter() - t0, 1), "baselines": tuned}
    path = Path(args.out) if args.out else tuned_file(scenario)
    path.parent.mkdir(parents=True, exist_ok=True)
    import yaml

    with open(path, "w", encoding="utf-8") as fh:
        fh.write(f"# Tuned heuristic baselines of scenario {scenario}, written by `{out['command']}` "
                 "(do not edit by hand).\n")
        yaml.safe_dump(out, fh, sort_keys=False, allow_unicode=True)
    print(f"wrote {path} ({out['wall_s']:.0f} s)")
    return out


if __name__ == "__main__":
    main()
