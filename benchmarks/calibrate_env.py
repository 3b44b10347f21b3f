"""Accuracy and energy of fixed schedules on VMIMO-v0: the calibration figures in the README.

    python benchmarks/calibrate_env.py [--seeds 5]

Policies: always idle; always full (max power, 64-value prefix, every device in a group, equal shares); a fixed
moderate schedule (-20 dB power, prefix 16); uniformly random actions. Accuracy = correct / arrived scenes.
"""

from __future__ import annotations

import argparse

import numpy as np

from vmimo_env.env import VMIMOEnv


def fixed(K: int, G: int, group: np.ndarray, power: int, comp: int) -> dict[str, np.ndarray]:
    return {"group": group, "power": np.full(K, power), "compression": np.full(K, comp),
            "bandwidth": np.full(G, 1.0 / G, dtype=np.float32)}


def run(policy: str, seeds: range) -> tuple[float, float, float]:
    rewards, energy, correct, arrived = [], [], 0, 0
    for seed in seeds:
        env = VMIMOEnv()
        env.reset(seed=seed)
        env.action_space.seed(seed)
        K, G = env.cfg.num_devices, env.cfg.num_groups
        groups = np.arange(K) % G + 1
        for _ in range(env.cfg.horizon):
            if policy == "idle":
                a = fixed(K, G, np.zeros(K, dtype=np.int64), 0, 0)
            elif policy == "full":
                a = fixed(K, G, groups, 4, 4)
            elif policy == "moderate":
                a = fixed(K, G, groups, 2, 2)
            else:
                a = env.action_space.sample()
            _, r, _, _, info = env.step(a)
            rewards.append(r)
            energy.append(info["energy_j"])
            correct += info["correct"]
            arrived += info["arrived"] + info["dropped"]
    return float(np.mean(rewards)), correct / max(arrived, 1), float(np.mean(energy))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    print("| policy | mean reward/slot | accuracy (correct/arrived) | energy mJ/slot |")
    print("|---|---:|---:|---:|")
    for policy in ("idle", "full", "moderate", "random"):
        r, acc, e = run(policy, range(args.seeds))
        print(f"| {policy} | {r:.3f} | {acc:.3f} | {e * 1e3:.2f} |")


if __name__ == "__main__":
    main()
