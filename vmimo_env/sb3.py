"""A thin Stable-Baselines3 ``VecEnv`` over the batched core.

SB3's ``DummyVecEnv`` steps N Python environments one after another; this adapter hands SB3 the whole batch from
one ``VMIMOCore`` instead. It follows SB3's conventions: flat actions (``multidiscrete`` or ``box`` view),
``dones`` with autoreset, ``terminal_observation`` and ``TimeLimit.truncated`` in the info of an environment whose
episode ended, and Monitor-style ``info["episode"] = {"r", "l", "t"}`` plus the episode's reward parts
(``accuracy``, ``energy_j``, ...) so ``ep_info_buffer`` and logging callbacks work without a ``VecMonitor``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvStepReturn

from vmimo_env.bs_view import BSView
from vmimo_env.vector import VMIMOVectorEnv

EPISODE_KEYS = ("accuracy_term", "energy_term", "energy_j", "energy_tx_j", "energy_circuit_j", "energy_encode_j",
                "arrived", "correct", "expired_empty", "dropped")


class VMIMOSB3VecEnv(VecEnv):
    """SB3 ``VecEnv`` running ``num_envs`` VMIMO environments as one batch.

    ``seed`` fixes the environments' seeds (environment i gets ``seed + i``); keyword arguments go to
    ``VMIMOVectorEnv`` (scenario parameters, ``action_view``...).
    """

    def __init__(self, num_envs: int = 8, action_view: str = "multidiscrete", seed: int | None = None,
                 **env_kwargs: Any) -> None:
        if action_view == "dict":
            raise ValueError("SB3 needs a flat action view: action_view must be 'multidiscrete' or 'box'")
        self.venv = VMIMOVectorEnv(num_envs=num_envs, action_view=action_view, **env_kwargs)
        super().__init__(num_envs, self.venv.single_observation_space, self.venv.single_action_space)
        self._seed = seed
        self._actions: np.ndarray | None = None
        self._ep_ret = np.zeros(num_envs)
        self._ep_len = np.zeros(num_envs, dtype=np.int64)
        self._ep_sums = {k: np.zeros(num_envs) for k in EPISODE_KEYS}
        self._t0 = time.time()

    # ------------------------------------------------------------------ VecEnv API
    def reset(self) -> np.ndarray:
        seed = self._seed
        self._seed = None  # later resets continue the streams, as DummyVecEnv does after its first seed
        if seed is None and self._seeds and self._seeds[0] is not None:
            seed = int(self._seeds[0])
        self._seeds = [None] * self.num_envs
        obs, _ = self.venv.reset(seed=seed)
        self._ep_ret[:] = 0.0
        self._ep_len[:] = 0
        for v in self._ep_sums.values():
            v[:] = 0.0
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self) -> VecEnvStepReturn:
        obs, rew, _, trunc, infos = self.venv.step(self._actions)
        self._ep_ret += rew
        self._ep_len += 1
        for k, v in self._ep_sums.items():
            v += infos[k]
        out: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        if trunc.any():
            final = infos["final_obs"]
            for i in np.flatnonzero(trunc).tolist():
                ep = {"r": float(self._ep_ret[i]), "l": int(self._ep_len[i]),
                      "t": round(time.time() - self._t0, 6)}
                ep.update({k: float(v[i]) for k, v in self._ep_sums.items()})
                out[i] = {"terminal_observation": final[i], "TimeLimit.truncated": True, "episode": ep}
            self._ep_ret[trunc] = 0.0
            self._ep_len[trunc] = 0
            for v in self._ep_sums.values():
                v[trunc] = 0.0
        if "bs_view" in infos:  # info_bs_view=True: each environment's own row
            for i, row in enumerate(BSView.split_dict(infos["bs_view"])):
                out[i]["bs_view"] = row
        return obs, rew.astype(np.float32), trunc.copy(), out

    def close(self) -> None:
        return None

    def action_masks(self) -> np.ndarray:
        """For sb3-contrib's MaskablePPO (multidiscrete view)."""
        return self.venv.action_masks()

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        value = getattr(self, attr_name) if hasattr(self, attr_name) else getattr(self.venv, attr_name)
        return [value for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        setattr(self.venv, attr_name, value)

    def env_method(self, method_name: str, *method_args: Any, indices: Any = None, **method_kwargs: Any) -> list[Any]:
        if method_name == "action_masks":
            masks = self.action_masks()
            return [masks[i] for i in self._get_indices(indices)]
        if method_name == "bs_view":  # per environment, as SB3's other VecEnvs return it
            view = self.bs_view()
            return [view.row(i) for i in self._get_indices(indices)]
        fn = getattr(self.venv, method_name)
        return [fn(*method_args, **method_kwargs) for _ in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]

    def get_images(self) -> Sequence[np.ndarray | None]:
        return [None for _ in range(self.num_envs)]

    def bs_view(self) -> BSView:
        """What the BS knows at the start of the next slot, all environments (``vmimo_env.bs_view.BSView``).

        ``env_method("bs_view")`` gives one single-environment view per index; with ``info_bs_view=True`` (a
        ``VMIMOVectorEnv`` keyword) every step's per-environment info carries its row as ``info["bs_view"]``."""
        return self.venv.bs_view()
