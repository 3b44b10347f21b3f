"""Your own scheduling heuristic: ``act(obs, info)`` from the observation alone, compared with random.

Run: ``python examples/custom_heuristic.py --episodes 5``. ``QueueSnrHeuristic`` reads the observation blocks by
name (``env.unwrapped.obs_layout()``): among devices with a waiting scene it schedules the ones with the best SNR,
at most ``Nr`` per group (what a linear receiver with ``Nr`` antennas separates), at a fixed power level and a
short prefix (transmit energy is charged in the reward; full power rarely pays), and shares the band in proportion
to the group sizes. It follows the ``name`` / ``reset(seed)`` /
``act(obs, info)`` shape of the project's heuristics, and uses nothing but ``obs``.
"""

from __future__ import annotations

import argparse
from typing import Any

import gymnasium as gym
import numpy as np

import vmimo_env  # noqa: F401  (registers the VMIMO ids)


class QueueSnrHeuristic:
    """Best-SNR devices with a non-empty queue, ``Nr`` per group, fixed power and prefix, proportional band shares.

    ``power_index`` / ``prefix_index`` index ``power_levels_db`` / ``compression_levels`` (defaults: the third
    power level, 20 dB below maximum in the default scenario, and the second-shortest prefix).
    """

    name = "queue_snr"

    def __init__(self, env: gym.Env, power_index: int = 2, prefix_index: int = 1) -> None:
        base = env.unwrapped
        self.layout = base.obs_layout()  # block name -> slice of the flat observation
        self.K, self.G, self.Nr = base.cfg.num_devices, base.cfg.num_groups, base.cfg.num_antennas
        self.power = min(power_index, len(base.cfg.power_levels_db) - 1)
        self.prefix = min(prefix_index, len(base.cfg.compression_levels) - 1)

    def reset(self, seed: int | None = None) -> None:
        return None

    def act(self, obs: np.ndarray, info: dict[str, Any] | None = None) -> dict[str, np.ndarray]:
        snr = obs[self.layout["snr_db"]]
        queue = obs[self.layout["queue"]]
        ready = np.flatnonzero(queue > 0)
        # scenes arrive at the start of the slot, so with no device waiting the best ones are still worth a slot
        order = ready[np.argsort(-snr[ready])] if ready.size else np.argsort(-snr)
        chosen = order[: self.G * self.Nr]
        group = np.zeros(self.K, dtype=np.int64)
        group[chosen] = 1 + np.arange(chosen.size) % self.G  # deal the best devices round the groups
        counts = np.bincount(group, minlength=self.G + 1)[1:]
        shares = (counts / max(counts.sum(), 1)).astype(np.float32)
        return {"group": group, "power": np.where(group > 0, self.power, 0).astype(np.int64),
                "compression": np.full(self.K, self.prefix, dtype=np.int64), "bandwidth": shares}


def episode_return(env: gym.Env, act, seed: int) -> float:
    obs, info = env.reset(seed=seed)
    total, done = 0.0, False
    while not done:
        obs, r, terminated, truncated, info = env.step(act(obs, info))
        total += r
        done = terminated or truncated
    return total


def main(argv: list[str] | None = None) -> dict[str, float]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", default="VMIMO-v0")
    p.add_argument("--episodes", type=int, default=5)
    p.add_argument("--horizon", type=int, default=None, help="slots per episode (default: the scenario's)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    kwargs = {} if args.horizon is None else {"horizon": args.horizon}
    env = gym.make(args.env, **kwargs)
    heuristic = QueueSnrHeuristic(env)
    seeds = [args.seed + i for i in range(args.episodes)]
    ours = [episode_return(env, heuristic.act, s) for s in seeds]
    env.action_space.seed(args.seed)
    rand = [episode_return(env, lambda o, i: env.action_space.sample(), s) for s in seeds]
    env.close()
    out = {"queue_snr": float(np.mean(ours)), "random": float(np.mean(rand))}
    print(f"mean return over {args.episodes} episodes on {args.env}: queue_snr {out['queue_snr']:.2f}, "
          f"random {out['random']:.2f}")
    return out


if __name__ == "__main__":
    main()
