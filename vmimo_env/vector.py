"""Natively batched VMIMO: a Gymnasium ``VectorEnv`` over one ``VMIMOCore`` holding all N environments.

Registered as the ``vector_entry_point`` of every VMIMO id, so
``gym.make_vec("VMIMO-v0", num_envs=256, vectorization_mode="vector_entry_point")`` steps all 256 environments
with one set of array operations and one call of the frozen model per step.

Autoreset: ``autoreset_mode="next_step"`` (default, Gymnasium's own default, which its vector wrappers and
RLlib's ``VECTOR_ENTRY_POINT`` mode expect) or ``"same_step"``, declared in ``metadata["autoreset_mode"]``.

- ``next_step``: the step that ends an episode returns its last observation with ``truncated`` set; the next
  ``step`` call resets that environment instead of stepping it (its action is ignored) and returns the new
  episode's first observation with reward 0, ``terminated = truncated = False`` and the reset info's values.
  The other environments step as usual.
- ``same_step``: an environment whose episode ends is reset within that step; the returned observation is the new
  episode's first, and the ended episode's last observation and info are in ``infos["final_obs"]`` /
  ``infos["final_info"]`` (masked by ``infos["_final_obs"]``). The SB3 adapter uses this mode.

Either way environment ``i``'s trajectory is the same sequence of episodes. Seeding follows Gymnasium:
``reset(seed=s)`` seeds environment ``i`` with ``s + i``, so environment ``i`` reproduces ``VMIMOEnv`` reset with
seed ``s + i`` step for step.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from vmimo_env.bs_view import BSView, check_info_flag
from vmimo_env.config import ScenarioConfig
from vmimo_env.core import INFO_KEYS
from vmimo_env.frontend import FrontEnd, check_action_view


class VMIMOVectorEnv(VectorEnv):
    """N VMIMO environments stepped as one batch (see the module docstring; dynamics in ``VMIMOEnv``).

    Step and reset infos hold the keys of ``vmimo_env.core.INFO_FIELDS`` with a leading N axis (the single env's
    scalars become (N,) arrays, its (K,) arrays (N, K)).

    ``num_threads``: the environments step and observe in that many contiguous shards, one thread each
    (``VMIMOCore.set_num_threads``); None (default) takes one thread per available core with at least
    ``vmimo_env.core.MIN_ENVS_PER_THREAD`` (64) environments each, so 128 or more environments on a 2-core
    machine use both cores; 1 keeps everything on the calling thread (what to pass when several processes share
    the cores, e.g. several RLlib runners). Any count gives the same trajectories bit for bit.
    """

    metadata = {"render_modes": [], "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, num_envs: int = 1, scenario: str | None = None,
                 config: ScenarioConfig | str | dict | None = None, action_view: str = "dict",
                 checkpoint: str | None = None, pool_size: int = 4096, render_mode: str | None = None,
                 max_episode_steps: int | None = None, info_bs_view: bool = False,
                 autoreset_mode: str | AutoresetMode = AutoresetMode.NEXT_STEP, num_threads: int | None = None,
                 **overrides: Any) -> None:
        self._info_bs_view = check_info_flag(info_bs_view)
        self.autoreset_mode = _check_autoreset_mode(autoreset_mode)
        self.metadata = {**self.metadata, "autoreset_mode": self.autoreset_mode}
        if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        check_action_view(action_view)
        if render_mode is not None:
            raise ValueError("VMIMOVectorEnv does not render; use VMIMOEnv(render_mode=...)")
        self.frontend = fe = FrontEnd(num_envs, scenario, config, action_view, checkpoint, pool_size, overrides,
                                      batched=True, max_episode_steps=max_episode_steps)
        self.cfg, self.core, self.layout, self.action_view = fe.cfg, fe.core, fe.layout, fe.action_view
        self.core.set_num_threads(num_threads)
        self.num_envs = num_envs
        self.single_action_space = fe.single_action_space
        self.single_observation_space = fe.single_observation_space
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self._ids = np.arange(num_envs)
        self._needs_reset = True

    def reset(self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None):
        # VectorEnv.reset seeds the vector env's own np_random and takes an int only; per-env seeds are ours
        super().reset(seed=seed if isinstance(seed, int) else None)
        mask = None if options is None else options.get("reset_mask")
        ids = self._ids if mask is None else np.flatnonzero(np.asarray(mask, dtype=bool))
        self.frontend.reset(ids, seed, self.np_random)
        self._needs_reset = False
        self._pending = np.zeros(self.num_envs, dtype=bool)  # NEXT_STEP: reset at the next step
        info = self.frontend.reset_info()
        if self._info_bs_view:
            info["bs_view"] = self.bs_view().to_dict()
        return self._obs(), info

    def decode_action(self, actions: Any) -> dict[str, np.ndarray]:
        """A batch of actions (any view) to validated native arrays (num_envs, n)."""
        return self.frontend.decode(actions)

    def step(self, actions: Any):
        if self._needs_reset:
            raise gym.error.ResetNeeded("Cannot call step() before reset()")
        fe = self.frontend
        native = fe.decode(actions)
        if self.autoreset_mode == AutoresetMode.SAME_STEP:
            return self._step_same(native)
        pending = self._pending
        held = None
        if pending.any():
            # the environments that ended last step start their next episode now and stay at its first slot:
            # reset them, step everyone, then put their reset state and random streams back
            ids = np.flatnonzero(pending)
            self.core.reset(ids, None)
            held = self.core.hold(ids)
        res = fe.step(native)
        if held is not None:
            self.core.release(ids, held)
        truncated = fe.truncated()
        infos = fe.info(res, native)
        reward = res.reward.copy()
        if held is not None:
            truncated[ids] = False
            reward[ids] = 0.0
            _reset_rows(infos, ids, fe.reset_info())
        self._pending = truncated.copy()
        if self._info_bs_view:
            infos["bs_view"] = self.bs_view().to_dict()
        return self._obs(), reward, np.zeros(self.num_envs, dtype=bool), truncated, infos

    def _step_same(self, native: dict[str, np.ndarray]):
        fe = self.frontend
        res = fe.step(native)
        truncated = fe.truncated()
        terminated = np.zeros(self.num_envs, dtype=bool)
        infos = fe.info(res, native)
        obs = self._obs()
        if truncated.any():
            done = np.flatnonzero(truncated)
            infos["final_obs"] = obs.copy() if not isinstance(obs, dict) else {k: v.copy() for k, v in obs.items()}
            infos["_final_obs"] = truncated.copy()
            infos["final_info"] = _copy_info(infos)
            infos["_final_info"] = truncated.copy()
            self.core.reset(done, None)
            obs = self._obs()
        if self._info_bs_view:  # after the autoreset: the view of the slot the returned obs starts
            infos["bs_view"] = self.bs_view().to_dict()
        return obs, res.reward.copy(), terminated, truncated, infos

    def close(self, **kwargs: Any) -> None:
        self.core.close()  # the shards' threads, on every call (VectorEnv.close does nothing once closed)
        super().close(**kwargs)

    def action_masks(self) -> np.ndarray:
        return self.frontend.action_masks()

    def _obs(self) -> np.ndarray | dict[str, np.ndarray]:
        return self.frontend.observation()

    def bs_view(self) -> BSView:
        """What the BS knows at the start of the next slot, all N environments (``vmimo_env.bs_view.BSView``).

        With ``info_bs_view=True`` the step and reset infos carry it as ``infos["bs_view"]`` (``to_dict()``)."""
        return self.core.bs_view()


def _copy_info(infos: dict[str, Any]) -> dict[str, Any]:
    """A copy of a step info (arrays and the native action dict), for ``final_info``."""
    return {k: ({kk: vv.copy() for kk, vv in v.items()} if isinstance(v, dict) else v.copy())
            for k, v in infos.items() if k in INFO_KEYS}


def _check_autoreset_mode(mode: Any) -> AutoresetMode:
    """``"next_step"``/``"same_step"`` (or the ``AutoresetMode``) as an ``AutoresetMode``; ``ValueError`` otherwise."""
    allowed = {"next_step": AutoresetMode.NEXT_STEP, "same_step": AutoresetMode.SAME_STEP}
    if isinstance(mode, AutoresetMode) and mode in allowed.values():
        return mode
    if isinstance(mode, str) and mode.lower() in allowed:
        return allowed[mode.lower()]
    raise ValueError(f"autoreset_mode must be one of {sorted(allowed)}, got {mode!r}")


def _reset_rows(infos: dict[str, Any], ids: np.ndarray, reset_info: dict[str, Any]) -> None:
    """Rows ``ids`` of a batched step info as a reset leaves them: the reset info's values where it has the key,
    zero for what a slot produces (nothing was sent, received or spent)."""
    for key, value in infos.items():
        if key in reset_info and isinstance(value, np.ndarray):
            value[ids] = np.asarray(reset_info[key])[ids]
        elif isinstance(value, np.ndarray):
            value[ids] = 0
        elif isinstance(value, dict):
            for arr in value.values():
                if isinstance(arr, np.ndarray):
                    arr[ids] = 0
