"""VMIMO as a PettingZoo ``ParallelEnv``: the devices are the agents, the base station splits the band.

``VMIMOParallelEnv`` wraps one ``VMIMOEnv`` (same core, same rules, same seeds) and re-cuts its observation and
action per device:

- **Agents** ``"device_0"`` … ``"device_{K-1}"``, all alive for the whole episode (no termination; every agent is
  truncated together after ``horizon`` slots, then ``agents`` is empty).
- **Observation of device k** (``Box``, float32; ``agent_obs_layout()`` gives the slices), taken from the single
  environment's flat observation with its bounds:

  | Block | Size | Entry |
  | --- | --- | --- |
  | `gain_db` | 1 | device k's large-scale gain (scaled as in ``VMIMOEnv``) |
  | `snr_db` | 1 | its SNR at max power over a 1/G band |
  | `queue` | 1 | scenes waiting at it |
  | `hol_age` | 1 | age of its oldest waiting scene |
  | `p_joint` | 1 | its compute × memory availability |
  | `modality` | 5 | its modality, one-hot |
  | `correlation` | K-1 | ∣h_kᴴh_j∣ / (‖h_k‖‖h_j‖) with every other device j, in increasing j |
  | `csi` | 2 Nr | only with ``obs_full_csi``: Re then Im of its own normalised channel |
  | `time` | 1 | shared context: slot index / horizon |
  | `agent_id` | K | only with ``include_agent_id=True``: one-hot of k (for parameter sharing) |

- **Action of device k**: ``MultiDiscrete([G+1, L_p, L_c])`` = (group, 0 = idle; power level index; compression
  level index), the same indices as the single environment's native action.
- **Bandwidth**: the base station's, not an agent's. ``bandwidth_rule`` maps the devices' groups to raw group
  shares: ``"proportional"`` (default; each group's share is its number of members over the number of scheduled
  devices), ``"equal"`` (1/G to every group that has a member), or a callable ``rule(group (K,) int array,
  num_groups) -> (G,) shares in [0, 1]``. The single environment then applies its own share rule (scaled down when
  the shares sum above 1).
- **Reward**: the team reward. Every agent receives the single environment's reward ``r_t`` (accuracy minus
  energy cost of the whole cell) unchanged, so the sum over agents is ``K r_t``; it is a fully cooperative game.
- **Info of device k**: its ``sinr_db``, ``sent``, ``queue`` and ``p_joint`` this slot plus ``team``, the single
  environment's scalar info (``accuracy_term``, ``energy_j``, ``correct`` …), identical for every agent.
- ``state()`` is the single environment's full flat observation (for centralised critics), ``state_space`` its space.

``make_shared_policy_vec_env`` turns the game into a Stable-Baselines3 ``VecEnv`` with one slot per (copy,
device), so one SB3 policy is shared by every device (parameter sharing); see ``examples/pettingzoo_shared_ppo.py``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from vmimo_env.env import VMIMOEnv

BandwidthRule = Callable[[np.ndarray, int], np.ndarray]
BANDWIDTH_RULES: tuple[str, ...] = ("proportional", "equal")
TEAM_INFO_KEYS: tuple[str, ...] = ("accuracy_term", "energy_term", "energy_j", "energy_tx_j", "energy_circuit_j",
                                   "energy_encode_j", "energy_d2d_j", "arrived", "dropped", "closed", "correct",
                                   "expired_empty", "closed_full")


def proportional_shares(group: np.ndarray, num_groups: int) -> np.ndarray:
    """Share of group g = its members / all scheduled devices (zeros when every device is idle)."""
    counts = np.bincount(np.asarray(group, dtype=np.int64), minlength=num_groups + 1)[1:num_groups + 1]
    total = counts.sum()
    return (counts / total if total > 0 else np.zeros(num_groups)).astype(np.float32)


def equal_shares(group: np.ndarray, num_groups: int) -> np.ndarray:
    """1 / G to every group with at least one member, 0 to empty groups."""
    counts = np.bincount(np.asarray(group, dtype=np.int64), minlength=num_groups + 1)[1:num_groups + 1]
    return np.where(counts > 0, 1.0 / num_groups, 0.0).astype(np.float32)


_RULES: dict[str, BandwidthRule] = {"proportional": proportional_shares, "equal": equal_shares}


class VMIMOParallelEnv(ParallelEnv):
    """Devices of one VMIMO cell as cooperative agents (see the module docstring).

    Parameters
    ----------
    env_id
        A registered VMIMO id (``"VMIMO-Small-v0"`` …) whose keywords are the base; ``None`` for ``VMIMO-v0``.
    bandwidth_rule
        ``"proportional"``, ``"equal"`` or a callable ``(group (K,), G) -> raw shares (G,)`` in [0, 1].
    include_agent_id
        Append a one-hot of the device index to its observation.
    render_mode
        ``"rgb_array"`` or ``"ansi"`` (the single environment's renderers).
    **env_kwargs
        Any ``VMIMOEnv`` keyword (scenario parameters, ``scenario``, ``config`` …) except ``action_view``.
    """

    metadata = {"name": "vmimo_parallel_v0", "render_modes": ["rgb_array", "ansi"], "render_fps": 10,
                "is_parallelizable": True}

    def __init__(self, env_id: str | None = None, bandwidth_rule: str | BandwidthRule = "proportional",
                 include_agent_id: bool = False, render_mode: str | None = None, **env_kwargs: Any) -> None:
        if "action_view" in env_kwargs and env_kwargs["action_view"] != "dict":
            raise ValueError(f"action_view: the parallel env drives the native 'dict' view, got "
                             f"{env_kwargs['action_view']!r}")
        env_kwargs.pop("action_view", None)
        if env_id is not None:
            import vmimo_env  # noqa: F401  (registers the ids)

            spec = gym.spec(env_id)
            if spec.entry_point != "vmimo_env.env:VMIMOEnv":
                raise ValueError(f"env_id must be a VMIMO id, got {env_id!r} (entry point {spec.entry_point!r})")
            env_kwargs = {**spec.kwargs, **env_kwargs}
            env_kwargs.pop("action_view", None)
        if isinstance(bandwidth_rule, str):
            if bandwidth_rule not in _RULES:
                raise ValueError(f"bandwidth_rule must be one of {list(BANDWIDTH_RULES)} or a callable, "
                                 f"got {bandwidth_rule!r}")
            self._rule: BandwidthRule = _RULES[bandwidth_rule]
        elif callable(bandwidth_rule):
            self._rule = bandwidth_rule
        else:
            raise TypeError(f"bandwidth_rule must be a str or a callable, got {type(bandwidth_rule).__name__}")
        if not isinstance(include_agent_id, bool):
            raise TypeError(f"include_agent_id must be a bool, got {include_agent_id!r}")
        self.env = VMIMOEnv(action_view="dict", render_mode=render_mode, **env_kwargs)
        self.render_mode = render_mode
        self.cfg = self.env.cfg
        self.layout = self.env.layout
        K, G = self.cfg.num_devices, self.cfg.num_groups
        self.num_devices, self.num_groups = K, G
        self.include_agent_id = include_agent_id
        self.possible_agents = [f"device_{k}" for k in range(K)]
        self.agents: list[str] = []
        self._index = {a: k for k, a in enumerate(self.possible_agents)}

        # per-device gather indices into the single env's flat observation, in agent_obs_layout() order
        lay = {name: (a, b) for name, (a, b) in self.env.core.obs_layout().items()}
        self._flat_layout = lay
        iu0, iu1 = np.triu_indices(K, 1)
        pair_pos = {(int(i), int(j)): p for p, (i, j) in enumerate(zip(iu0, iu1, strict=True))}
        rows, blocks = [], None
        for k in range(K):
            idx: list[int] = []
            sizes: list[tuple[str, int]] = []
            for name in ("gain_db", "snr_db", "queue", "hol_age", "p_joint"):
                idx.append(lay[name][0] + k)
                sizes.append((name, 1))
            M = (lay["modality"][1] - lay["modality"][0]) // K
            idx.extend(range(lay["modality"][0] + k * M, lay["modality"][0] + (k + 1) * M))
            sizes.append(("modality", M))
            c0 = lay["correlation"][0]
            idx.extend(c0 + pair_pos[(min(k, j), max(k, j))] for j in range(K) if j != k)
            sizes.append(("correlation", K - 1))
            if "csi" in lay:
                Nr = self.cfg.num_antennas
                s0 = lay["csi"][0]
                idx.extend(range(s0 + k * Nr, s0 + (k + 1) * Nr))  # real parts, then imaginary parts
                idx.extend(range(s0 + K * Nr + k * Nr, s0 + K * Nr + (k + 1) * Nr))
                sizes.append(("csi", 2 * Nr))
            idx.append(lay["time"][0])
            sizes.append(("time", 1))
            rows.append(idx)
            blocks = sizes
        self._gather = np.asarray(rows, dtype=np.int64)  # (K, per-device obs dim without agent id)
        assert blocks is not None
        if include_agent_id:
            blocks = [*blocks, ("agent_id", K)]
        self._agent_layout: dict[str, slice] = {}
        start = 0
        for name, n in blocks:
            self._agent_layout[name] = slice(start, start + n)
            start += n

        low, high = self.env.core.obs_bounds()
        self.state_space = spaces.Box(low, high, dtype=np.float32)
        eye = np.eye(K, dtype=np.float32)
        self._obs_spaces: dict[str, spaces.Box] = {}
        self._act_spaces: dict[str, spaces.MultiDiscrete] = {}
        nvec = np.array([G + 1, self.layout.num_power, self.layout.num_compression], dtype=np.int64)
        self._nvec = nvec
        for k, agent in enumerate(self.possible_agents):
            lo, hi = low[self._gather[k]], high[self._gather[k]]
            if include_agent_id:
                lo, hi = np.concatenate([lo, np.zeros(K, np.float32)]), np.concatenate([hi, np.ones(K, np.float32)])
            self._obs_spaces[agent] = spaces.Box(lo, hi, dtype=np.float32)
            self._act_spaces[agent] = spaces.MultiDiscrete(nvec)
        self._eye = eye
        self._flat: np.ndarray | None = None
        # the dict form some PettingZoo tools read (SuperSuit, RLlib wrappers): the same objects
        self.observation_spaces: dict[str, spaces.Box] = self._obs_spaces
        self.action_spaces: dict[str, spaces.MultiDiscrete] = self._act_spaces

    # ------------------------------------------------------------------ spaces
    # PettingZoo requires the same space object on every call: they are built once in __init__
    def observation_space(self, agent: str) -> spaces.Box:
        return self._obs_spaces[self._check_agent(agent)]

    def action_space(self, agent: str) -> spaces.MultiDiscrete:
        return self._act_spaces[self._check_agent(agent)]

    def agent_obs_layout(self) -> dict[str, slice]:
        """Block name -> slice of every agent's observation (same for all agents)."""
        return dict(self._agent_layout)

    def _check_agent(self, agent: str) -> str:
        if agent not in self._index:
            raise ValueError(f"agent must be one of {self.possible_agents}, got {agent!r}")
        return agent

    # ------------------------------------------------------------------ PettingZoo API
    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, _ = self.env.reset(seed=seed, options=options)
        self._flat = self._as_flat(obs)
        self.agents = list(self.possible_agents)
        q, pj = self.env.core.queue_lengths()[0], self.env.core.p_joint[0]
        infos = {a: {"queue": int(q[k]), "p_joint": float(pj[k])} for k, a in enumerate(self.agents)}
        return self._split_obs(), infos

    def step(self, actions: dict[str, Any]):
        if not self.agents:
            raise gym.error.ResetNeeded("Cannot call step() before reset() (or after the episode ended)")
        if not isinstance(actions, dict):
            raise TypeError(f"actions must be a dict agent -> action, got {type(actions).__name__}")
        missing = [a for a in self.agents if a not in actions]
        extra = [a for a in actions if a not in self._index]
        if missing or extra:
            raise ValueError(f"actions must hold one action per live agent; missing {missing}, unknown {extra}")
        native = self.joint_action(actions)
        obs, reward, terminated, truncated, info = self.env.step(native)
        self._flat = self._as_flat(obs)
        team = {key: info[key] for key in TEAM_INFO_KEYS}
        agents = self.agents
        rewards = dict.fromkeys(agents, float(reward))
        terms = dict.fromkeys(agents, bool(terminated))
        truncs = dict.fromkeys(agents, bool(truncated))
        infos = {a: {"sinr_db": float(info["sinr_db"][k]), "sent": int(info["sent"][k]),
                     "queue": int(info["queue"][k]), "p_joint": float(info["p_joint"][k]), "team": dict(team)}
                 for k, a in enumerate(agents)}
        observations = self._split_obs()
        if terminated or truncated:
            self.agents = []
        return observations, rewards, terms, truncs, infos

    def joint_action(self, actions: dict[str, Any]) -> dict[str, np.ndarray]:
        """Per-agent actions to the single environment's native dict action (bandwidth from the BS rule)."""
        K, G = self.num_devices, self.num_groups
        per = np.empty((K, 3), dtype=np.int64)
        for agent, k in self._index.items():
            a = np.asarray(actions[agent])
            if (a.shape != (3,) or not np.issubdtype(a.dtype, np.number) or not np.isfinite(a).all()
                    or not np.array_equal(a, np.round(a))):
                raise ValueError(f"action of {agent} must be 3 integers (group, power, compression), got {a!r}")
            if (a < 0).any() or (a >= self._nvec).any():
                raise ValueError(f"action of {agent} = {a.tolist()} out of range: group in [0, {G}], power in "
                                 f"[0, {self._nvec[1] - 1}], compression in [0, {self._nvec[2] - 1}]")
            per[k] = a
        group = per[:, 0].copy()
        shares = np.asarray(self._rule(group.copy(), G), dtype=np.float32)
        if shares.shape != (G,):
            raise ValueError(f"bandwidth_rule must return shape ({G},), got {shares.shape}")
        if not np.isfinite(shares).all() or (shares < 0).any() or (shares > 1).any():
            raise ValueError(f"bandwidth_rule must return finite shares in [0, 1], got {shares.tolist()}")
        # validated (ranges, names) by the single environment's own action check
        return {"group": group, "power": per[:, 1].copy(), "compression": per[:, 2].copy(), "bandwidth": shares}

    def state(self) -> np.ndarray:
        if self._flat is None:
            raise gym.error.ResetNeeded("Cannot call state() before reset()")
        return self._flat.copy()

    def render(self):
        return self.env.render()

    def close(self) -> None:
        self.env.close()

    # ------------------------------------------------------------------ helpers
    def _as_flat(self, obs: np.ndarray | dict[str, np.ndarray]) -> np.ndarray:
        if isinstance(obs, dict):  # obs_mode="dict": the same blocks, back in flat order
            return np.concatenate([obs[name] for name in self._flat_layout]).astype(np.float32)
        return np.asarray(obs, dtype=np.float32)

    def _split_obs(self) -> dict[str, np.ndarray]:
        assert self._flat is not None
        per = self._flat[self._gather]  # (K, d)
        if self.include_agent_id:
            per = np.concatenate([per, self._eye], axis=1)
        return {a: per[k] for k, a in enumerate(self.possible_agents)}

    def __str__(self) -> str:
        return f"VMIMOParallelEnv(K={self.num_devices}, G={self.num_groups})"


def parallel_env(**kwargs: Any) -> VMIMOParallelEnv:
    """``VMIMOParallelEnv(**kwargs)``: the PettingZoo-style factory (``vmimo_env.parallel_env(num_devices=6)``)."""
    return VMIMOParallelEnv(**kwargs)


# ====================================================================== parameter sharing with SB3
def make_shared_policy_vec_env(num_copies: int = 1, seed: int | None = None, **env_kwargs: Any):
    """An SB3 ``VecEnv`` of ``num_copies`` parallel games, one slot per (copy, device).

    Slot ``c * K + k`` is device k of copy c, so a single SB3 policy acts for every device (parameter sharing).
    All slots of a copy end together; an ended copy is reset at once (SB3 autoreset) and its slots carry
    ``terminal_observation``, ``TimeLimit.truncated`` and a Monitor-style ``episode`` (team return and length)
    in their infos. ``seed`` seeds copy c with ``seed + c`` on the first reset. Keywords go to
    ``VMIMOParallelEnv``.
    """
    from stable_baselines3.common.vec_env.base_vec_env import VecEnv

    class SharedPolicyVecEnv(VecEnv):
        """Every device of every copy as one SB3 environment slot (see ``make_shared_policy_vec_env``)."""

        def __init__(self) -> None:
            if not isinstance(num_copies, int) or num_copies < 1:
                raise ValueError(f"num_copies must be a positive integer, got {num_copies!r}")
            self.games = [VMIMOParallelEnv(**env_kwargs) for _ in range(num_copies)]
            first = self.games[0]
            self.K = first.num_devices
            agent0 = first.possible_agents[0]
            super().__init__(num_copies * self.K, first.observation_space(agent0), first.action_space(agent0))
            self._seed = seed
            self._actions: np.ndarray | None = None
            self._ep_ret = np.zeros(num_copies)
            self._ep_len = np.zeros(num_copies, dtype=np.int64)
            self._t0 = time.time()

        def _stack(self, obs_per_game: list[dict[str, np.ndarray]]) -> np.ndarray:
            return np.stack([o[a] for g, o in zip(self.games, obs_per_game, strict=True) for a in g.possible_agents])

        def reset(self) -> np.ndarray:
            s = self._seed
            self._seed = None  # later resets continue the streams
            obs = [g.reset(seed=None if s is None else s + c)[0] for c, g in enumerate(self.games)]
            self._ep_ret[:] = 0.0
            self._ep_len[:] = 0
            return self._stack(obs)

        def step_async(self, actions: np.ndarray) -> None:
            self._actions = np.asarray(actions).reshape(len(self.games), self.K, -1)

        def step_wait(self):
            assert self._actions is not None
            obs_all, rew, dones, infos = [], np.zeros(self.num_envs, np.float32), np.zeros(self.num_envs, bool), []
            for c, g in enumerate(self.games):
                acts = {a: self._actions[c, k] for k, a in enumerate(g.possible_agents)}
                obs, r, term, trunc, _ = g.step(acts)
                team_r = r[g.possible_agents[0]]
                self._ep_ret[c] += team_r
                self._ep_len[c] += 1
                done = bool(term[g.possible_agents[0]] or trunc[g.possible_agents[0]])
                sl = slice(c * self.K, (c + 1) * self.K)
                rew[sl] = team_r
                dones[sl] = done
                if done:
                    ep = {"r": float(self._ep_ret[c]), "l": int(self._ep_len[c]),
                          "t": round(time.time() - self._t0, 6)}
                    truncated = bool(trunc[g.possible_agents[0]]) and not bool(term[g.possible_agents[0]])
                    infos.extend({"terminal_observation": obs[a], "TimeLimit.truncated": truncated,
                                  "episode": dict(ep)} for a in g.possible_agents)
                    self._ep_ret[c], self._ep_len[c] = 0.0, 0
                    obs, _ = g.reset()
                else:
                    infos.extend({} for _ in g.possible_agents)
                obs_all.append(obs)
            return self._stack(obs_all), rew, dones, infos

        def close(self) -> None:
            for g in self.games:
                g.close()

        def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
            return [getattr(self.games[i // self.K], attr_name) for i in self._get_indices(indices)]

        def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
            for i in self._get_indices(indices):
                setattr(self.games[i // self.K], attr_name, value)

        def env_method(self, method_name: str, *method_args: Any, indices: Any = None, **method_kwargs: Any):
            return [getattr(self.games[i // self.K], method_name)(*method_args, **method_kwargs)
                    for i in self._get_indices(indices)]

        def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
            return [False for _ in self._get_indices(indices)]

    return SharedPolicyVecEnv()


__all__ = ["BANDWIDTH_RULES", "VMIMOParallelEnv", "equal_shares", "make_shared_policy_vec_env", "parallel_env",
           "proportional_shares"]
