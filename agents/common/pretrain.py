"""Warm start: behaviour cloning of a heuristic scheduler before PPO/A2C training.

Why: in VMIMO the good schedules are *coordinated* (at most ``Nr`` devices per virtual-MIMO group, every
device of a slot in one group holding the whole band, alternating devices between slots). A policy that samples
27 action components independently finds such a joint pattern by exploration only slowly: from scratch, PPO
settles on two half-band groups, whose doubled air time costs circuit energy the heuristics do not pay
(docs/training.md). Cloning a heuristic first puts the policy in that basin; reinforcement learning on the true
reward then improves on it (power, prefix and which devices to skip per state), which is the part a heuristic
cannot do. The same recipe is used where search or expert policies exist (e.g. AlphaStar's supervised start;
"kickstarting", Schmitt et al. 2018).

What it does, on the training VecEnv itself so the observation normalisation (VecNormalize) is the one the
policy will see, and its running statistics are warmed up:

1. run ``heuristic`` for ``steps`` slots on all training environments, recording the observations as
   VecNormalize hands them out (normalised with the running statistics of their moment, exactly as PPO's own
   rollouts are), the heuristic's action in the algorithm's flat view and the (normalised) rewards.
   Measured alternative: re-normalising every recorded slot with the final statistics gave a worse clone
   (validation return 169.7 vs 170.7) and a worse default run (best 171.4 vs 172.1); the early, less-settled
   normalisation seems to act as input noise that makes the clone robust;
2. fit the policy by maximum likelihood on those actions (``-log π(a|s)``) and the value head on the discounted
   reward-to-go (cut at episode ends: a slight underestimate in the last ~10 slots of an episode, where PPO
   bootstraps instead), with Adam for ``epochs`` passes.

PPO's ``learn`` then resets the environments (SB3 does on its first call), so RL starts from fresh episodes.

The clone is stochastic and imperfect (a round-robin pointer is not in the observation, so the policy learns the
pattern from queue and head-of-line age); what it reaches is logged (``pretrain/*``) and reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch as th
from stable_baselines3.common.vec_env import VecEnv, VecNormalize


@dataclass(frozen=True)
class PretrainConfig:
    """``pretrain`` entry of a hyperparameter file (all optional but ``heuristic``)."""

    heuristic: str
    steps: int = 400  # slots per environment (x n_envs samples)
    epochs: int = 8
    batch_size: int = 2048
    learning_rate: float = 1e-3
    value_coef: float = 0.5
    # clone the heuristic with the parameters tuned for the env's scenario on validation seeds
    # (agents/hyperparams/baselines/SCENARIO.yml, written by python -m agents.tune_baselines); registered defaults
    # where the scenario has no tuned file
    tuned: bool = False

    @classmethod
    def from_hyperparams(cls, value: Any) -> PretrainConfig | None:
        """Parse the ``pretrain`` hyperparameter (``None``/``false``: no warm start); ``ValueError`` names what
        is wrong (unknown key or heuristic, non-numeric or out-of-range value)."""
        if value is None or value is False:
            return None
        if isinstance(value, str):
            value = {"heuristic": value}
        if not isinstance(value, dict) or "heuristic" not in value:
            raise ValueError(f"pretrain must be a heuristic name or a mapping with 'heuristic', got {value!r}")
        unknown = set(value) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown pretrain keys {sorted(unknown)}; allowed: {sorted(cls.__dataclass_fields__)}")
        from agents.policies import canonical_name, heuristic_names

        name = canonical_name(str(value["heuristic"]))
        if name is None or name not in heuristic_names():
            raise ValueError(f"pretrain heuristic must be one of {heuristic_names()}, got {value['heuristic']!r}")
        kwargs: dict[str, Any] = {"heuristic": name}
        for key, field in cls.__dataclass_fields__.items():
            if key == "heuristic" or key not in value:
                continue
            if field.type in (bool, "bool"):
                if not isinstance(value[key], bool):
                    raise ValueError(f"pretrain {key} must be true or false, got {value[key]!r}")
                kwargs[key] = value[key]
                continue
            kind = int if field.type in (int, "int") else float
            try:  # YAML reads 1e-3 as a string and 4e2 as a float
                num = float(value[key])
            except (TypeError, ValueError):
                raise ValueError(f"pretrain {key} must be a number, got {value[key]!r}") from None
            if kind is int and num != int(num):
                raise ValueError(f"pretrain {key} must be an integer, got {value[key]!r}")
            kwargs[key] = kind(num)
        cfg = cls(**kwargs)
        for name in ("steps", "epochs", "batch_size"):
            if int(getattr(cfg, name)) < 1:
                raise ValueError(f"pretrain {name} must be >= 1, got {getattr(cfg, name)!r}")
        if not cfg.learning_rate > 0:
            raise ValueError(f"pretrain learning_rate must be > 0, got {cfg.learning_rate!r}")
        return cfg


def _action_layout(venv: VecEnv) -> Any:
    """The ``ActionLayout`` of a VecEnv of VMIMO environments, through SB3's public ``get_attr`` (wrappers such as
    VecNormalize forward it); the heuristic itself reads the BS view through ``env_method("bs_view")``."""
    try:
        layout = venv.get_attr("layout", indices=[0])[0]
    except AttributeError:
        layout = None
    if layout is None or not hasattr(layout, "to_multidiscrete"):
        raise ValueError("behaviour cloning needs a VecEnv of VMIMO environments (--vec-env batched)")
    return layout


def collect_demonstrations(venv: VecEnv, heuristic: str, steps: int, action_view: str,
                           gamma: float, tuned: bool = False) -> dict[str, np.ndarray]:
    """Run ``heuristic`` (``tuned``: with its tuned parameters) on every environment of ``venv`` for ``steps``
    slots; returns flat arrays ``obs``
    (T·N, D), ``actions`` (T·N, A), ``returns`` (T·N,) (discounted normalised reward-to-go) and the raw
    episode ``rewards`` (T, N)."""
    from agents.policies import make_policy

    layout = _action_layout(venv)
    to_flat = layout.to_multidiscrete if action_view == "multidiscrete" else layout.to_box
    policy = make_policy(heuristic, venv, tuned=tuned)
    policy.reset(None)
    obs = venv.reset()
    N = venv.num_envs
    obs_buf = np.empty((steps, N, obs.shape[1]), dtype=np.float32)
    act_buf: list[np.ndarray] = []
    rew = np.empty((steps, N))
    raw = np.empty((steps, N))
    done = np.empty((steps, N), dtype=bool)
    for t in range(steps):
        flat = to_flat(policy.act(None, {}))  # batched native (N, ...) -> (N, A)
        obs_buf[t] = obs
        act_buf.append(flat)
        obs, r, d, _ = venv.step(flat)  # VecNormalize updates its statistics here, as in PPO's rollouts
        rew[t], done[t] = r, d
        raw[t] = venv.get_original_reward() if isinstance(venv, VecNormalize) else r
    ret = np.zeros((steps, N))
    acc = np.zeros(N)
    for t in range(steps - 1, -1, -1):
        acc = rew[t] + gamma * acc * (~done[t])
        ret[t] = acc
    return {"obs": obs_buf.reshape(steps * N, -1), "actions": np.stack(act_buf).reshape(steps * N, -1),
            "returns": ret.reshape(-1).astype(np.float32), "rewards": raw}


def behaviour_clone(model: Any, venv: VecEnv, cfg: PretrainConfig, action_view: str, seed: int = 0,
                    verbose: int = 0) -> dict[str, float]:
    """Fit ``model.policy`` to ``cfg.heuristic`` on ``venv`` (module docstring); returns what it measured."""
    if not hasattr(model.policy, "evaluate_actions"):
        raise ValueError(f"behaviour cloning needs an actor-critic policy (PPO, A2C), "
                         f"got {type(model.policy).__name__}")
    gamma = float(getattr(model, "gamma", 0.99))
    demo = collect_demonstrations(venv, cfg.heuristic, cfg.steps, action_view, gamma, tuned=cfg.tuned)
    policy = model.policy
    device = policy.device
    obs = th.as_tensor(demo["obs"], device=device)
    actions = th.as_tensor(demo["actions"], device=device)
    returns = th.as_tensor(demo["returns"], device=device)
    # fused on a CPU: one kernel call per step (agents.common.distributions.make_optimizer)
    opt = th.optim.Adam(policy.parameters(), lr=cfg.learning_rate, fused=device.type == "cpu")
    gen = th.Generator().manual_seed(seed)
    n = obs.shape[0]
    policy.set_training_mode(True)
    last_nll = last_vloss = float("nan")
    for epoch in range(cfg.epochs):
        perm = th.randperm(n, generator=gen)
        nll_sum = v_sum = 0.0
        batches = 0
        for start in range(0, n, cfg.batch_size):
            idx = perm[start:start + cfg.batch_size].to(device)
            values, log_prob, _ = policy.evaluate_actions(obs[idx], actions[idx])
            nll = -log_prob.mean()
            vloss = th.nn.functional.mse_loss(values.flatten(), returns[idx])
            loss = nll + cfg.value_coef * vloss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            th.nn.utils.clip_grad_norm_(policy.parameters(), 0.5)
            opt.step()
            nll_sum += nll.item()
            v_sum += vloss.item()
            batches += 1
        last_nll, last_vloss = nll_sum / batches, v_sum / batches
        if verbose:
            print(f"  behaviour cloning epoch {epoch + 1}/{cfg.epochs}: -log π(a|s) {last_nll:.3f}, "
                  f"value loss {last_vloss:.4f}", flush=True)
    policy.set_training_mode(False)
    with th.no_grad():  # share of action components the clone's mode gets right, on a random subset
        sub = th.randperm(n, generator=gen)[:20_000].to(device)
        mode = policy.get_distribution(obs[sub]).mode()
        agree = float((mode.reshape(actions[sub].shape) == actions[sub]).float().mean())
    # the demonstration's per-slot return, as the heuristic's episodes would score (no episode boundaries here)
    return {"pretrain/samples": float(n), "pretrain/nll": last_nll, "pretrain/value_loss": last_vloss,
            "pretrain/mode_agreement": agree, "pretrain/heuristic_reward_per_slot": float(demo["rewards"].mean())}
