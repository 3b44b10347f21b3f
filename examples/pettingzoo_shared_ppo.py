"""Multi-agent VMIMO: every device is a PettingZoo agent, one SB3 PPO policy shared by all of them.

Run: ``python examples/pettingzoo_shared_ppo.py --timesteps 20000`` (needs the ``multiagent`` extra). Each
device sees only its own slice of the cell (its gain, SNR, queue, modality, correlations) and picks its own group,
power and compression; the base station splits the band in proportion to the group sizes. The policy is shared
(parameter sharing): ``make_shared_policy_vec_env`` gives SB3 one environment slot per (copy, device). The script
trains, then compares the shared policy's team return with uniformly random per-device actions on the same seeds.
SuperSuit (3.11) works too, if you prefer it: ``ss.concat_vec_envs_v1(ss.pettingzoo_env_to_vec_env_v1(env), n,
base_class="stable_baselines3")`` gives the same one-slot-per-device layout.
"""

from __future__ import annotations

import argparse

import numpy as np

from vmimo_env.multiagent import VMIMOParallelEnv, make_shared_policy_vec_env


def team_return(env: VMIMOParallelEnv, act, seed: int) -> float:
    """One episode's team return (the reward every agent gets, summed over slots)."""
    obs, _ = env.reset(seed=seed)
    total = 0.0
    while env.agents:
        obs, rew, _, _, _ = env.step({a: act(a, obs[a]) for a in env.agents})
        total += next(iter(rew.values()))
    return total


def main(argv: list[str] | None = None) -> dict[str, float]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--timesteps", type=int, default=20_000, help="PPO agent-steps (slots x devices x copies)")
    p.add_argument("--num-copies", type=int, default=2, help="parallel games per rollout")
    p.add_argument("--num-devices", type=int, default=6)
    p.add_argument("--horizon", type=int, default=100, help="slots per episode")
    p.add_argument("--eval-episodes", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    from stable_baselines3 import PPO

    kwargs = {"num_devices": args.num_devices, "horizon": args.horizon, "include_agent_id": False}
    venv = make_shared_policy_vec_env(num_copies=args.num_copies, seed=args.seed, **kwargs)
    n_steps = max(8, min(128, args.timesteps // venv.num_envs))
    model = PPO("MlpPolicy", venv, n_steps=n_steps, batch_size=min(256, n_steps * venv.num_envs), seed=args.seed,
                verbose=0, device="cpu")
    model.learn(total_timesteps=args.timesteps)

    env = VMIMOParallelEnv(**kwargs)
    rng = np.random.default_rng(args.seed)
    seeds = [10_000 + i for i in range(args.eval_episodes)]
    shared = [team_return(env, lambda a, o: model.predict(o, deterministic=True)[0], s) for s in seeds]
    rand = [team_return(env, lambda a, o: rng.integers(env.action_space(a).nvec), s) for s in seeds]
    out = {"shared_ppo": float(np.mean(shared)), "random": float(np.mean(rand))}
    print(f"team return over {args.eval_episodes} episodes: shared PPO {out['shared_ppo']:.2f}, "
          f"random {out['random']:.2f}")
    return out


if __name__ == "__main__":
    main()
