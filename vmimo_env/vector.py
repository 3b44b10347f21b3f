"""Natively batched VMIMO: a Gymnasium ``VectorEnv`` over one ``VMIMOCore`` holding all N environments.

Registered as the ``vector_entry_point`` of every VMIMO id, so
``gym.make_vec("VMIMO-v0", num_envs=256, vectorization_mode="vector_entry_point")`` steps all 256 environments
with one set of array operations and one call of the frozen model per step.

Autoreset is ``SAME_STEP`` (declared in ``metadata``): an environment whose episode ends is reset within that
step; the returned observation is the new episode's first, and the ended episode's last observation and info are
in ``infos["final_obs"]`` / ``infos["final_info"]`` (masked by ``infos["_final_obs"]``). Seeding follows
Gymnasium: ``reset(seed=s)`` seeds environment ``i`` with ``s + i``, so environment ``i`` reproduces
``VMIMOEnv`` reset with seed ``s + i`` step for step.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from vmimo_env.bs_view import BSView, check_info_flag
from vmimo_env.config import ScenarioConfig
from vmimo_env.core import StepResult, VMIMOCore
from vmimo_env.env import action_masks, make_observation_space
from vmimo_env.scenario import make_config
from vmimo_env.scenes import build_pool, load_model
from vmimo_env.spaces import ACTION_VIEWS, ActionLayout


class VMIMOVectorEnv(VectorEnv):
    """N VMIMO environments stepped as one batch (see the module docstring; dynamics in ``VMIMOEnv``)."""

    metadata = {"render_modes": [], "autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(self, num_envs: int = 1, scenario: str | None = None,
                 config: ScenarioConfig | str | dict | None = None, action_view: str = "dict",
                 checkpoint: str | None = None, pool_size: int = 4096, render_mode: str | None = None,
                 info_bs_view: bool = False, **overrides: Any) -> None:
        self._info_bs_view = check_info_flag(info_bs_view)
        if not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        if action_view not in ACTION_VIEWS:
            raise ValueError(f"action_view must be one of {list(ACTION_VIEWS)}, got {action_view!r}")
        if render_mode is not None:
            raise ValueError("VMIMOVectorEnv does not render; use VMIMOEnv(render_mode=...)")
        self.cfg = make_config(scenario, config, **overrides)
        self.num_envs = num_envs
        self.action_view = action_view
        self.core = VMIMOCore(self.cfg, num_envs, build_pool(pool_size, checkpoint=checkpoint),
                              load_model(checkpoint))
        self.layout = ActionLayout.from_config(self.cfg)
        self.single_action_space = self.layout.space(action_view)
        self.single_observation_space = make_observation_space(self.core)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self._ids = np.arange(num_envs)
        self._ever_reset = False
        self._needs_reset = True

    def reset(self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None):
        # VectorEnv.reset seeds the vector env's own np_random and takes an int only; per-env seeds are ours
        super().reset(seed=seed if isinstance(seed, int) else None)
        mask = None if options is None else options.get("reset_mask")
        ids = self._ids if mask is None else np.flatnonzero(np.asarray(mask, dtype=bool))
        if isinstance(seed, int):
            seeds: list[int | None] | None = [seed + int(i) for i in ids]
        elif seed is None:
            seeds = None
            if not self._ever_reset:
                seeds = [int(s) for s in self.np_random.integers(2**63, size=len(ids))]
        else:
            if len(seed) != len(ids):
                raise ValueError(f"seed list has {len(seed)} entries for {len(ids)} environments")
            seeds = list(seed)
        self._ever_reset = True
        self.core.reset(ids, seeds)
        self._needs_reset = False
        info = {"queue": self.core.queue_lengths(), "p_joint": self.core.p_joint.copy()}
        if self._info_bs_view:
            info["bs_view"] = self.bs_view().to_dict()
        return self._obs(), info

    def decode_action(self, actions: Any) -> dict[str, np.ndarray]:
        if self.action_view == "dict":
            native = self.layout.validate_native(actions)
        elif self.action_view == "multidiscrete":
            native = self.layout.from_multidiscrete(actions)
        else:
            native = self.layout.from_box(actions)
        for key, arr in native.items():
            if arr.ndim != 2 or arr.shape[0] != self.num_envs:
                raise ValueError(f"batched action['{key}'] must have shape ({self.num_envs}, n), got {arr.shape}")
        return native

    def step(self, actions: Any):
        if self._needs_reset:
            raise gym.error.ResetNeeded("Cannot call step() before reset()")
        native = self.decode_action(actions)
        res = self.core.step(native["group"], native["power"], native["compression"], native["bandwidth"])
        truncated = self.core.t >= self.cfg.horizon
        terminated = np.zeros(self.num_envs, dtype=bool)
        infos = step_infos(res)
        obs = self._obs()
        if truncated.any():
            done = np.flatnonzero(truncated)
            infos["final_obs"] = obs.copy() if not isinstance(obs, dict) else {k: v.copy() for k, v in obs.items()}
            infos["_final_obs"] = truncated.copy()
            infos["final_info"] = {k: v.copy() for k, v in infos.items() if isinstance(v, np.ndarray)}
            infos["_final_info"] = truncated.copy()
            self.core.reset(done, None)
            obs = self._obs()
        if self._info_bs_view:  # after the autoreset: the view of the slot the returned obs starts
            infos["bs_view"] = self.bs_view().to_dict()
        return obs, res.reward.copy(), terminated, truncated, infos

    def action_masks(self) -> np.ndarray:
        return action_masks(self.layout, self.core.queue_lengths())

    def _obs(self) -> np.ndarray | dict[str, np.ndarray]:
        flat = self.core.observe()
        if self.cfg.obs_mode == "dict":
            return {k: flat[:, a:b] for k, (a, b) in self.core.obs_layout().items()}
        return flat

    def bs_view(self) -> BSView:
        """What the BS knows at the start of the next slot, all N environments (``vmimo_env.bs_view.BSView``).

        With ``info_bs_view=True`` the step and reset infos carry it as ``infos["bs_view"]`` (``to_dict()``)."""
        return self.core.bs_view()


def step_infos(res: StepResult) -> dict[str, np.ndarray]:
    """Batched per-step info arrays (every key holds one entry per environment)."""
    e = res.energy_j
    return {
        "accuracy_term": res.accuracy_term, "energy_term": res.energy_term, "energy_j": e.sum(1),
        "energy_tx_j": e[:, 0], "energy_circuit_j": e[:, 1], "energy_encode_j": e[:, 2], "energy_d2d_j": e[:, 3],
        "arrived": res.arrived, "dropped": res.dropped, "closed": res.closed, "correct": res.correct,
        "expired_empty": res.expired_empty, "sent": res.sent, "group": res.group, "prefix": res.prefix,
        "power_w": res.power_w,
    }
