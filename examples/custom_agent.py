"""Your own agent loop on VMIMO: REINFORCE with a linear softmax policy, numpy only, no RL library.

Run: ``python examples/custom_agent.py --episodes 30``. The loop is the plain Gymnasium one
(``gym.make`` → ``reset`` → ``step`` until ``truncated``) on the flat ``VMIMO-MultiDiscrete-v0`` view: one
categorical choice per action component ``[group (K) | power (K) | compression (K) | bandwidth (G)]``, each with
logits ``W_j · obs + b_j``. Returns are normalised per batch of episodes (a running baseline).
"""

from __future__ import annotations

import argparse

import gymnasium as gym
import numpy as np

import vmimo_env  # noqa: F401  (registers the VMIMO ids)


class LinearSoftmaxAgent:
    """One linear softmax head per MultiDiscrete component (padded to the largest choice count)."""

    def __init__(self, obs_dim: int, nvec: np.ndarray, lr: float, rng: np.random.Generator) -> None:
        self.nvec = np.asarray(nvec)
        self.n_max = int(self.nvec.max())
        self.W = np.zeros((len(self.nvec), self.n_max, obs_dim + 1))  # + bias
        self.invalid = np.arange(self.n_max)[None, :] >= self.nvec[:, None]  # padding choices, never taken
        self.lr, self.rng = lr, rng

    def _probs(self, x: np.ndarray) -> np.ndarray:
        logits = self.W @ x
        logits[self.invalid] = -np.inf
        z = np.exp(logits - logits.max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True)

    def act(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = np.append(obs, 1.0)
        p = self._probs(x)
        a = np.array([self.rng.choice(self.n_max, p=row) for row in p])
        return a, x

    def update(self, trajectories: list[tuple[list[np.ndarray], list[np.ndarray], float]]) -> None:
        """One policy-gradient step from whole episodes: ∇ log π(a|s) × (normalised episode return)."""
        returns = np.array([ret for _, _, ret in trajectories])
        adv = (returns - returns.mean()) / (returns.std() + 1e-8)
        grad = np.zeros_like(self.W)
        for (xs, acts, _), A in zip(trajectories, adv, strict=True):
            for x, a in zip(xs, acts, strict=True):
                g = -self._probs(x)
                g[np.arange(len(a)), a] += 1.0
                grad += A * g[:, :, None] * x[None, None, :]
        self.W += self.lr * grad / sum(len(xs) for xs, _, _ in trajectories)


def run_episode(env: gym.Env, agent: LinearSoftmaxAgent, seed: int) -> tuple[list, list, float, dict]:
    obs, info = env.reset(seed=seed)
    xs, acts, total, parts = [], [], 0.0, {"accuracy_term": 0.0, "energy_j": 0.0}
    truncated = terminated = False
    while not (terminated or truncated):
        a, x = agent.act(obs)
        obs, reward, terminated, truncated, info = env.step(a)
        xs.append(x)
        acts.append(a)
        total += reward
        parts["accuracy_term"] += info["accuracy_term"]
        parts["energy_j"] += info["energy_j"]
    return xs, acts, total, parts


def main(argv: list[str] | None = None) -> dict[str, float]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--episodes", type=int, default=30)
    p.add_argument("--batch", type=int, default=5, help="episodes per update")
    p.add_argument("--horizon", type=int, default=50, help="slots per episode")
    p.add_argument("--num-devices", type=int, default=4)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    env = gym.make("VMIMO-MultiDiscrete-v0", num_devices=args.num_devices, horizon=args.horizon)
    agent = LinearSoftmaxAgent(env.observation_space.shape[0], env.action_space.nvec, args.lr,
                               np.random.default_rng(args.seed))
    history: list[float] = []
    batch = []
    for ep in range(args.episodes):
        xs, acts, ret, parts = run_episode(env, agent, seed=args.seed * 100_000 + ep)
        history.append(ret)
        batch.append((xs, acts, ret))
        if len(batch) == args.batch:
            agent.update(batch)
            batch = []
            print(f"episodes {ep + 1 - args.batch}-{ep}: mean return {np.mean(history[-args.batch:]):.2f} "
                  f"(last: accuracy term {parts['accuracy_term']:.1f}, energy {parts['energy_j'] * 1e3:.1f} mJ)")
    env.close()
    k = max(1, min(args.batch, len(history) // 2))
    return {"first_mean": float(np.mean(history[:k])), "last_mean": float(np.mean(history[-k:])),
            "episodes": len(history)}


if __name__ == "__main__":
    main()
