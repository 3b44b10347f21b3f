"""Steps per second of VMIMO-v0 (frozen model in the loop), against CartPole-v1 measured in the same run.

    python benchmarks/bench_env.py [--quick] [--markdown]

Rows: the single env through ``gym.make`` (checkers and wrappers included, as a user gets it), the native vector
env at N in {16, 256, 1024}, and the SB3 ``VecEnv`` adapter. Actions are sampled before timing; each row is timed
with ``time.perf_counter`` after a warm-up. The machine is shared and noisy, hence the CartPole ratio.
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np

import vmimo_env  # noqa: F401


def time_single(env_id: str, steps: int, **kwargs) -> float:
    env = gym.make(env_id, **kwargs)
    env.reset(seed=0)
    env.action_space.seed(0)
    actions = [env.action_space.sample() for _ in range(min(steps, 2000))]
    for a in actions[:200]:
        _, _, term, trunc, _ = env.step(a)
        if term or trunc:
            env.reset()
    t0 = time.perf_counter()
    for i in range(steps):
        _, _, term, trunc, _ = env.step(actions[i % len(actions)])
        if term or trunc:
            env.reset()
    return steps / (time.perf_counter() - t0)


def time_batched(step, nvec: np.ndarray, num_envs: int, steps: int) -> float:
    """env-steps/s of ``step(actions)`` over pre-sampled MultiDiscrete batches, after a warm-up."""
    rng = np.random.default_rng(0)
    actions = [rng.integers(0, nvec, size=(num_envs, nvec.size)) for _ in range(32)]
    for a in actions[:10]:
        step(a)
    t0 = time.perf_counter()
    for i in range(steps):
        step(actions[i % len(actions)])
    return steps * num_envs / (time.perf_counter() - t0)


def time_vector(num_envs: int, steps: int) -> float:
    venv = gym.make_vec("VMIMO-MultiDiscrete-v0", num_envs=num_envs, vectorization_mode="vector_entry_point")
    venv.reset(seed=0)
    return time_batched(venv.step, venv.unwrapped.single_action_space.nvec, num_envs, steps)


def time_sb3(num_envs: int, steps: int) -> float:
    from vmimo_env.sb3 import VMIMOSB3VecEnv

    venv = VMIMOSB3VecEnv(num_envs=num_envs, seed=0)
    venv.reset()
    return time_batched(venv.step, venv.action_space.nvec, num_envs, steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer steps (a smoke run, noisier figures)")
    args = parser.parse_args()
    scale = 0.1 if args.quick else 1.0
    n1 = int(20000 * scale)
    cart = time_single("CartPole-v1", int(100000 * scale))
    rows = [("CartPole-v1, gym.make (reference)", 1, cart)]
    rows.append(("VMIMO-v0, gym.make, dict actions", 1, time_single("VMIMO-v0", n1)))
    rows.append(("VMIMO-MultiDiscrete-v0, gym.make", 1, time_single("VMIMO-MultiDiscrete-v0", n1)))
    for n in (16, 256, 1024):
        rows.append((f"VMIMOVectorEnv (native batch), N={n}", n, time_vector(n, max(20, int(40000 * scale / n)))))
    for n in (256,):
        rows.append((f"VMIMOSB3VecEnv (SB3 adapter), N={n}", n, time_sb3(n, max(20, int(40000 * scale / n)))))
    print("| what | N envs | env-steps/s | vs CartPole-v1 |")
    print("|---|---:|---:|---:|")
    for name, n, sps in rows:
        print(f"| {name} | {n} | {sps:,.0f} | {sps / cart:.3f} |")


if __name__ == "__main__":
    main()
