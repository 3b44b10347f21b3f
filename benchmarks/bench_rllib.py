"""Env steps per second sampled by RLlib env runners on VMIMO: 1 vs 2 (or more) remote env runners.

Run in the Ray venv: ``python benchmarks/bench_rllib.py --runners 1 2 --steps 2000`` (prints a Markdown table).
Each remote env runner samples ``--steps`` env steps with the current (random-init) PPO module, all runners at
once; the figure is total steps over wall time, best of ``--repeats``. On a machine shared with other jobs, read
the speed-up column (ratio to the first row) rather than the absolute rates.
"""

from __future__ import annotations

import argparse
import os
import time


def sample_rate(num_env_runners: int, steps: int, repeats: int, env_id: str, env_config: dict,
                envs_per_runner: int = 1) -> float:
    """Best-of-``repeats`` env steps/s sampled by ``num_env_runners`` remote runners in parallel."""
    from vmimo_env.rllib import ppo_config

    algo = ppo_config(env_id, num_env_runners, num_envs_per_env_runner=envs_per_runner, train_batch=steps,
                        env_config=env_config).build_algo()
    try:
        group = algo.env_runner_group

        def run() -> tuple[int, float]:
            t0 = time.perf_counter()
            eps = group.foreach_env_runner(lambda r: r.sample(num_timesteps=steps, random_actions=False),
                                           local_env_runner=False)
            dt = time.perf_counter() - t0
            return sum(len(e) for runner_eps in eps for e in runner_eps), dt

        run()  # warm-up: first call compiles and fills caches
        best = 0.0
        for _ in range(repeats):
            n, dt = run()
            best = max(best, n / dt)
        return best
    finally:
        algo.stop()


def main(argv: list[str] | None = None) -> list[tuple[int, float]]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runners", type=int, nargs="+", default=[1, 2])
    p.add_argument("--steps", type=int, default=2000, help="env steps per runner per sample call")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--envs-per-runner", type=int, default=1, help="sub-environments per runner (sync vectorised)")
    p.add_argument("--env-id", default="VMIMO-MultiDiscrete-v0")
    p.add_argument("--num-cpus", type=int, default=None, help="CPUs for the local Ray instance (default: all)")
    p.add_argument("--address", default=None, help="an existing Ray cluster ('auto')")
    args = p.parse_args(argv)

    import ray

    ray.init(address=args.address, num_cpus=None if args.address else args.num_cpus, include_dashboard=False,
             log_to_driver=False)
    try:
        rows = [(n, sample_rate(n, args.steps, args.repeats, args.env_id, {}, args.envs_per_runner))
                for n in args.runners]
    finally:
        ray.shutdown()
    base = rows[0][1]
    print(f"\n{args.env_id}, {args.envs_per_runner} sub-env(s) per runner, {args.steps} steps per runner per call, "
          f"best of {args.repeats}, "
          f"{os.cpu_count()} CPUs on this machine\n")
    print("| env runners | env steps/s sampled | speed-up |")
    print("|---:|---:|---:|")
    for n, rate in rows:
        print(f"| {n} | {rate:,.0f} | {rate / base:.2f}x |")
    return rows


if __name__ == "__main__":
    main()
