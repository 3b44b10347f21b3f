"""Time ``VMIMOCore.step`` + ``observe`` (µs per call) with the episode-rule flags off and on.

Usage (from the repository root): ``PYTHONPATH=$PWD python scripts/time_episode_rules.py [--steps 1000]``.
Each configuration runs a random-action loop on N = 1 and N = 64 environments after a warm-up; the
configurations are interleaved and the figure is the best of the repeats of (wall time / steps): on a shared
machine the minimum is the least disturbed.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from vmimo_env.config import ScenarioConfig
from vmimo_env.core import VMIMOCore
from vmimo_env.scenes import build_pool, load_model

FLAGS = {
    "v0 (flags off)": {},
    "close_rule=modalities": {"close_rule": "modalities"},
    "score_at_truncation": {"score_at_truncation": True},
    "obs_coverage": {"obs_coverage": True},
    "all on": {"close_rule": "modalities", "score_at_truncation": True, "obs_coverage": True},
}


def make_runner(overrides: dict, num_envs: int):
    """A function running ``n`` (step + observe) calls of a fresh core with ``overrides`` and ``num_envs``
    environments, returning µs per call (None if this tree lacks a field)."""
    if not set(overrides) <= set(ScenarioConfig.field_names()):
        return None
    cfg = ScenarioConfig(**overrides)
    core = VMIMOCore(cfg, num_envs, build_pool(), load_model(None))
    rng = np.random.default_rng(0)
    K, G = cfg.num_devices, cfg.num_groups
    acts = [(rng.integers(0, G + 1, (num_envs, K)), rng.integers(0, len(cfg.power_levels_db), (num_envs, K)),
             rng.integers(0, len(cfg.compression_levels), (num_envs, K)), rng.random((num_envs, G)))
            for _ in range(64)]
    core.reset(np.arange(num_envs), list(range(num_envs)))

    def run(n: int) -> float:
        t0 = time.perf_counter()
        for s in range(n):
            core.step(*acts[s % 64])
            core.observe()
            done = np.flatnonzero(core.t >= cfg.horizon)
            if done.size:
                core.reset(done, None)
        return (time.perf_counter() - t0) / n * 1e6

    run(200)  # warm-up (compilation, caches)
    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    sizes = (1, 64)
    runners = {(name, n): make_runner(ov, n) for name, ov in FLAGS.items() for n in sizes}
    best = {key: float("nan") if r is None else float("inf") for key, r in runners.items()}
    for _ in range(args.repeats):  # configurations interleaved, so load changes hit them alike
        for key, r in runners.items():
            if r is not None:
                best[key] = min(best[key], r(args.steps if key[1] == 1 else max(args.steps // 8, 50)))
    print(f"{'configuration':26s} {'N=1 µs':>10s} {'N=64 µs':>10s}")
    for name in FLAGS:
        print(f"{name:26s} {best[(name, 1)]:10.1f} {best[(name, 64)]:10.1f}")


if __name__ == "__main__":
    main()
