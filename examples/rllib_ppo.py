"""PPO from RLlib (new API stack) on VMIMO with remote env runners, then checkpoint and restore.

Run in the Ray venv (``make test-ray`` creates it): ``python examples/rllib_ppo.py --iterations 5``. For a
multi-node cluster pass ``--address auto`` on a node of a running cluster (see ``docs/scaling.md``).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env-id", default="VMIMO-MultiDiscrete-v0")
    p.add_argument("--iterations", type=int, default=5)
    p.add_argument("--num-env-runners", type=int, default=2)
    p.add_argument("--train-batch", type=int, default=400, help="env steps per iteration")
    p.add_argument("--num-devices", type=int, default=None)
    p.add_argument("--horizon", type=int, default=None, help="slots per episode")
    p.add_argument("--address", default=None, help="Ray cluster address ('auto' on a cluster node); default local")
    p.add_argument("--num-cpus", type=int, default=None, help="CPUs for a local Ray instance")
    p.add_argument("--checkpoint-dir", default=None, help="default: a temporary folder")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    import ray
    from ray.rllib.algorithms.algorithm import Algorithm

    from vmimo_env.rllib import ppo_config

    env_config = {k: v for k, v in (("num_devices", args.num_devices), ("horizon", args.horizon)) if v is not None}
    started = not ray.is_initialized()
    if started:
        ray.init(address=args.address, num_cpus=None if args.address else args.num_cpus, include_dashboard=False)
    try:
        algo = ppo_config(args.env_id, args.num_env_runners, train_batch=args.train_batch, env_config=env_config,
                            seed=args.seed).build_algo()
        t0 = time.perf_counter()
        for it in range(args.iterations):
            res = algo.train()
            ret = res.get("env_runners", {}).get("episode_return_mean", float("nan"))
            steps = res.get("num_env_steps_sampled_lifetime", res.get("env_runners", {}).get(
                "num_env_steps_sampled_lifetime"))
            print(f"iter {it + 1}: episode_return_mean {ret:.3f}, env steps {steps}")
        train_s = time.perf_counter() - t0
        with tempfile.TemporaryDirectory() as tmp:
            ckpt = Path(args.checkpoint_dir or tmp) / "ppo_vmimo"
            algo.save_to_path(str(ckpt))
            before = algo.get_module().get_state()
            algo.stop()
            restored = Algorithm.from_checkpoint(str(ckpt))
            after = restored.get_module().get_state()
            same = all((before[k] == after[k]).all() for k in before)
            restored.train()  # the restored algorithm trains on
            restored.stop()
        print(f"checkpoint {ckpt} restored with identical weights: {same}")
        return {"iterations": args.iterations, "train_s": train_s, "restored_same_weights": same,
                "episode_return_mean": ret}
    finally:
        if started:
            ray.shutdown()


if __name__ == "__main__":
    main()
