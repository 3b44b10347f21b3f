"""A thin Stable-Baselines3 ``VecEnv`` over the batched core.

SB3's ``DummyVecEnv`` steps N Python environments one after another; this adapter hands SB3 the whole batch from
one ``VMIMOCore`` instead. It follows SB3's conventions: flat actions (``multidiscrete`` or ``box`` view),
``dones`` with autoreset, ``terminal_observation`` and ``TimeLimit.truncated`` in the info of an environment whose
episode ended, and Monitor-style ``info["episode"] = {"r", "l", "t"}`` plus the episode's sums of the reward parts
(:data:`EPISODE_KEYS`: ``accuracy_term``, ``energy_j``, ...) and optionally of the allocation
(:data:`ALLOCATION_KEYS`), so ``ep_info_buffer`` and logging callbacks work without a ``VecMonitor``. The sums come
from :class:`EpisodeStats`, the one episode-statistics accumulator (also behind
``agents.common.envs.EpisodeStatsWrapper`` for single environments).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvStepReturn

from vmimo_env.bs_view import BSView
from vmimo_env.vector import VMIMOVectorEnv

# per-episode sums of these step-info keys (``core.INFO_FIELDS``) go into ``info["episode"]``
EPISODE_KEYS: tuple[str, ...] = ("accuracy_term", "energy_term", "energy_j", "energy_tx_j", "energy_circuit_j",
                                 "energy_encode_j", "arrived", "correct", "expired_empty", "closed_full",
                                 "dropped")
# with ``allocation=True``, also these per-episode sums of the allocation (see ``allocation_step_stats``)
ALLOCATION_KEYS: tuple[str, ...] = ("tx_device_slots", "latents_sent", "group_size_sum", "groups_used",
                                    "prefix_sum", "power_dbm_sum")


def allocation_step_stats(group: np.ndarray, prefix: np.ndarray, power_w: np.ndarray,
                          sent: np.ndarray) -> dict[str, np.ndarray]:
    """Per-env sums of one slot's allocation, (N,) each, from the step info's ``group``, ``prefix``, ``power_w``
    and ``sent`` (N, K).

    Only transmitting devices (effective group > 0 and latents delivered) count. Over an episode,
    ``group_size_sum / groups_used`` is the mean virtual-MIMO group size, ``prefix_sum / tx_device_slots`` the
    mean latent prefix length and ``power_dbm_sum / tx_device_slots`` the mean transmit power (dBm) of
    transmitting devices.
    """
    tx = (group > 0) & (sent > 0)
    n_tx = tx.sum(axis=1).astype(np.float64)
    N = group.shape[0]
    G = int(group.max()) if group.size else 0
    present = np.zeros((N, G + 1), dtype=bool)  # present[i, g]: group g has a transmitting member in env i
    present[np.arange(N)[:, None], np.where(tx, group, 0)] = True
    pdbm = 10.0 * np.log10(np.maximum(power_w, 1e-30)) + 30.0
    return {"tx_device_slots": n_tx, "latents_sent": np.where(tx, sent, 0).sum(1).astype(float),
            "group_size_sum": n_tx.copy(), "groups_used": present[:, 1:].sum(1).astype(np.float64),
            "prefix_sum": np.where(tx, prefix, 0).sum(1).astype(float), "power_dbm_sum": np.where(tx, pdbm, 0).sum(1)}


class EpisodeStats:
    """Running per-episode return, length and sums of the step info of N environments.

    The one episode-statistics accumulator of VMIMO: the SB3 adapter uses it for ``info["episode"]``, and
    ``agents.common.envs.EpisodeStatsWrapper`` for ``gym.make`` environments (one environment, unbatched info).
    Sums cover :data:`EPISODE_KEYS`, plus :data:`ALLOCATION_KEYS` when ``allocation`` is set.
    """

    def __init__(self, num_envs: int, allocation: bool = False) -> None:
        self.num_envs = num_envs
        self.allocation = allocation
        self.keys: tuple[str, ...] = EPISODE_KEYS + (ALLOCATION_KEYS if allocation else ())
        self.ret = np.zeros(num_envs)
        self.length = np.zeros(num_envs, dtype=np.int64)
        self.sums = {k: np.zeros(num_envs) for k in self.keys}

    def add(self, reward: np.ndarray, info: dict[str, Any]) -> None:
        """Account one step of every environment: ``reward`` (N,), batched step ``info`` (``INFO_FIELDS``)."""
        self.ret += reward
        self.length += 1
        for k in EPISODE_KEYS:
            self.sums[k] += info[k]
        if self.allocation:
            stats = allocation_step_stats(info["group"], info["prefix"], info["power_w"], info["sent"])
            for k, v in stats.items():
                self.sums[k] += v

    def add_single(self, reward: float, info: dict[str, Any]) -> None:
        """:meth:`add` for one environment's unbatched step info (scalars and (K,) arrays)."""
        needed = EPISODE_KEYS + (("group", "prefix", "power_w", "sent") if self.allocation else ())
        self.add(np.array([reward], dtype=np.float64), {k: np.asarray(info[k])[None] for k in needed})

    def sums_of(self, i: int) -> dict[str, float]:
        """The episode sums of environment ``i`` so far (keys :attr:`keys`)."""
        return {k: float(v[i]) for k, v in self.sums.items()}

    def clear(self, mask: np.ndarray | None = None) -> None:
        """Start new episodes in the environments of boolean ``mask`` (all when None)."""
        sel = slice(None) if mask is None else mask
        self.ret[sel] = 0.0
        self.length[sel] = 0
        for v in self.sums.values():
            v[sel] = 0.0


class VMIMOSB3VecEnv(VecEnv):
    """SB3 ``VecEnv`` running ``num_envs`` VMIMO environments as one batch.

    ``seed`` fixes the environments' seeds (environment i gets ``seed + i``); ``allocation_stats`` adds the
    allocation sums (:data:`ALLOCATION_KEYS`) to ``info["episode"]``; other keyword arguments go to
    ``VMIMOVectorEnv`` (scenario parameters, ``num_threads``...).
    """

    def __init__(self, num_envs: int = 8, action_view: str = "multidiscrete", seed: int | None = None,
                 allocation_stats: bool = False, **env_kwargs: Any) -> None:
        if action_view == "dict":
            raise ValueError("SB3 needs a flat action view: action_view must be 'multidiscrete' or 'box'")
        # SB3 expects the ended episode's last observation in the same step (``terminal_observation``)
        self.venv = VMIMOVectorEnv(num_envs=num_envs, action_view=action_view, autoreset_mode="same_step",
                                   **env_kwargs)
        super().__init__(num_envs, self.venv.single_observation_space, self.venv.single_action_space)
        self._seed = seed
        self._actions: np.ndarray | None = None
        self.stats = EpisodeStats(num_envs, allocation=allocation_stats)
        self._t0 = time.time()

    # ------------------------------------------------------------------ VecEnv API
    def reset(self) -> np.ndarray:
        seed = self._seed
        self._seed = None  # later resets continue the streams, as DummyVecEnv does after its first seed
        if seed is None and self._seeds and self._seeds[0] is not None:
            seed = int(self._seeds[0])
        self._seeds = [None] * self.num_envs
        obs, _ = self.venv.reset(seed=seed)
        self.stats.clear()
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self) -> VecEnvStepReturn:
        obs, rew, _, trunc, infos = self.venv.step(self._actions)
        stats = self.stats
        stats.add(rew, infos)
        out: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        if trunc.any():
            final = infos["final_obs"]
            for i in np.flatnonzero(trunc).tolist():
                ep = {"r": float(stats.ret[i]), "l": int(stats.length[i]), "t": round(time.time() - self._t0, 6)}
                ep.update(stats.sums_of(i))
                out[i] = {"terminal_observation": final[i], "TimeLimit.truncated": True, "episode": ep}
            stats.clear(trunc)
        if "bs_view" in infos:  # info_bs_view=True: each environment's own row
            for i, row in enumerate(BSView.split_dict(infos["bs_view"])):
                out[i]["bs_view"] = row
        return obs, rew.astype(np.float32), trunc.copy(), out

    def close(self) -> None:
        self.venv.close()

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
