"""Coverage of classified scenes under the episode rules, for one heuristic on the default scenario.

Usage (from the repository root): ``PYTHONPATH=$PWD python scripts/measure_episode_rules.py [--policy
fractional_power] [--episodes 16]``. For v0 and each v1 rule it prints, over the episodes of a vector env: the
share of classified scenes missing at least one sensed modality, accuracy (correct / closed), the scenes left
unscored at truncation, latents sent, energy and reward per episode.
"""

from __future__ import annotations

import argparse

import numpy as np

from agents.policies import make_policy
from vmimo_env.vector import VMIMOVectorEnv

RULES = {
    "v0": {},
    "close_rule=modalities": {"close_rule": "modalities"},
    "score_at_truncation": {"score_at_truncation": True},
    "both": {"close_rule": "modalities", "score_at_truncation": True},
}


def measure(policy_name: str, episodes: int, overrides: dict, seed: int = 0) -> dict[str, float]:
    """Totals over ``episodes`` episodes (one per environment of a vector env) under ``overrides``."""
    venv = VMIMOVectorEnv(num_envs=episodes, **overrides)
    core = venv.core
    counts = {"classified": 0, "missing": 0}
    policy = make_policy(policy_name, venv)
    obs, info = venv.reset(seed=seed)
    policy.reset(seed)
    tot = {k: 0.0 for k in ("closed", "correct", "arrived", "dropped", "sent", "energy_j", "reward")}
    left = 0
    for t in range(venv.cfg.horizon):
        obs, reward, _, trunc, info = venv.step(policy.act(obs, info))
        for k in ("closed", "correct", "arrived", "dropped", "energy_j"):
            tot[k] += float(np.sum(info[k]))
        # what the head classified (dropped arrivals are counted closed but never reach it), and of that what
        # lacked a modality some device senses
        classified = np.asarray(info["closed"]) - np.asarray(info["dropped"])
        counts["classified"] += int(classified.sum())
        counts["missing"] += int((classified - np.asarray(info["closed_full"])).sum())
        tot["sent"] += float(np.sum(info["sent"]))
        tot["reward"] += float(np.sum(reward))
        if t == venv.cfg.horizon - 2:
            pending = core.tail - core.head
        if trunc.all():
            fin = info.get("final_info", info)  # next-step autoreset: the truncating step's own info
            left = int((pending + fin["arrived"] - fin["closed"] + fin["dropped"]).sum())
    return {"missing_share": counts["missing"] / max(counts["classified"], 1),
            "accuracy": tot["correct"] / max(tot["closed"], 1), "unscored_per_ep": left / episodes,
            "sent_per_ep": tot["sent"] / episodes, "energy_j_per_ep": tot["energy_j"] / episodes,
            "reward_per_ep": tot["reward"] / episodes}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--policy", default="fractional_power")
    ap.add_argument("--episodes", type=int, default=16)
    args = ap.parse_args()
    print(f"policy {args.policy}, {args.episodes} episodes of the default scenario")
    print(f"{'rules':24s} {'missing':>8s} {'accuracy':>9s} {'unscored':>9s} {'sent':>8s} {'energy J':>9s} "
          f"{'reward':>8s}")
    for name, ov in RULES.items():
        r = measure(args.policy, args.episodes, ov)
        print(f"{name:24s} {r['missing_share']:8.3f} {r['accuracy']:9.3f} {r['unscored_per_ep']:9.2f} "
              f"{r['sent_per_ep']:8.0f} {r['energy_j_per_ep']:9.3f} {r['reward_per_ep']:8.1f}")


if __name__ == "__main__":
    main()
