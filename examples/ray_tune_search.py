"""A small Ray Tune search over PPO hyperparameters on VMIMO (tiny budget by default).

Run in the Ray venv: ``python examples/ray_tune_search.py --num-samples 4 --iterations 3``. Searches the learning
rate, entropy coefficient and clip parameter; prints the best trial's mean episode return and its config.
"""

from __future__ import annotations

import argparse
import tempfile
from typing import Any


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env-id", default="VMIMO-MultiDiscrete-v0")
    p.add_argument("--num-samples", type=int, default=4, help="trials")
    p.add_argument("--iterations", type=int, default=3, help="PPO iterations per trial")
    p.add_argument("--num-env-runners", type=int, default=1, help="per trial")
    p.add_argument("--train-batch", type=int, default=400)
    p.add_argument("--horizon", type=int, default=None)
    p.add_argument("--address", default=None, help="Ray cluster address; default a local instance")
    p.add_argument("--num-cpus", type=int, default=None)
    p.add_argument("--storage", default=None, help="results folder (default: a temporary one)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    import ray
    from ray import tune

    from vmimo_env.rllib import ppo_config

    env_config = {} if args.horizon is None else {"horizon": args.horizon}
    config = ppo_config(args.env_id, args.num_env_runners, train_batch=args.train_batch, env_config=env_config,
                          seed=args.seed)
    config.training(lr=tune.loguniform(1e-4, 3e-3), entropy_coeff=tune.uniform(0.0, 0.02),
                    clip_param=tune.choice([0.1, 0.2, 0.3]))
    metric = "env_runners/episode_return_mean"
    started = not ray.is_initialized()
    if started:
        ray.init(address=args.address, num_cpus=None if args.address else args.num_cpus, include_dashboard=False)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            tuner = tune.Tuner(
                "PPO",
                param_space=config,
                tune_config=tune.TuneConfig(num_samples=args.num_samples, metric=metric, mode="max",
                                            max_concurrent_trials=1 if args.address is None else None),
                run_config=tune.RunConfig(storage_path=args.storage or tmp, name="vmimo_ppo_search",
                                          stop={"training_iteration": args.iterations}, verbose=0),
            )
            results = tuner.fit()
            best = results.get_best_result()
            out = {"num_trials": len(results), "errors": len(results.errors),
                   "best_return": float(best.metrics["env_runners"]["episode_return_mean"]),
                   "best_config": {k: best.config[k] for k in ("lr", "entropy_coeff", "clip_param")}}
        print(f"{out['num_trials']} trials ({out['errors']} errors); best mean episode return "
              f"{out['best_return']:.3f} with {out['best_config']}")
        return out
    finally:
        if started:
            ray.shutdown()


if __name__ == "__main__":
    main()
