"""Environment construction for training and evaluation.

- The algorithm decides the action view: discrete-action algorithms (PPO, A2C, MaskablePPO, RecurrentPPO) see
  VMIMO's ``multidiscrete`` view, continuous ones (SAC, TD3, DDPG) its ``box`` view. Both map invertibly onto the
  same native action, so dynamics and rewards are identical.
- ``--vec-env batched`` (default) steps all training environments as one numpy batch
  (:class:`vmimo_env.sb3.VMIMOSB3VecEnv`, wrapped here by :class:`VMIMOStatsVecEnv` for the extra episode
  statistics); ``dummy``/``subproc`` build SB3's ``DummyVecEnv``/``SubprocVecEnv`` of ``gym.make`` environments,
  with Monitor and :class:`EpisodeStatsWrapper` producing the same episode statistics. Non-VMIMO ids (CartPole,
  Pendulum, ...) work with ``dummy``/``subproc``; ``batched`` falls back to ``dummy`` for them with a warning.
- Seeds: training environment ``i`` starts from seed ``seed + i``; evaluation uses disjoint seed ranges
  (:data:`VALIDATION_SEED_BASE` during training, :data:`TEST_SEED_BASE` in ``agents.evaluate``).
"""

from __future__ import annotations

import functools
import warnings
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv

VALIDATION_SEED_BASE = 1_000_000  # evaluation during training (model selection)
TEST_SEED_BASE = 2_000_000  # final evaluation (agents.evaluate): never seen by model selection either
MAX_TRAIN_SEED = VALIDATION_SEED_BASE  # training seeds seed + i must stay below the held-out ranges

DISCRETE_ALGOS = ("ppo", "a2c", "maskable_ppo", "recurrent_ppo")
CONTINUOUS_ALGOS = ("sac", "td3", "ddpg")
ALGOS = DISCRETE_ALGOS + CONTINUOUS_ALGOS
VEC_ENVS = ("batched", "dummy", "subproc")

# per-episode statistics reported next to Monitor's r/l/t (sums over the episode unless noted)
STAT_KEYS = ("accuracy_term", "energy_term", "energy_j", "energy_tx_j", "energy_circuit_j", "energy_encode_j",
             "arrived", "correct", "expired_empty", "dropped")
ALLOC_KEYS = ("tx_device_slots", "latents_sent", "group_size_sum", "groups_used", "prefix_sum", "power_dbm_sum")


def action_view_for(algo: str) -> str:
    if algo in DISCRETE_ALGOS:
        return "multidiscrete"
    if algo in CONTINUOUS_ALGOS:
        return "box"
    raise ValueError(f"--algo must be one of {list(ALGOS)}, got {algo!r}")


def is_vmimo(env_id: str) -> bool:
    """True for environment ids registered by ``vmimo_env``."""
    try:
        import vmimo_env  # noqa: F401  (registers the ids)
    except ImportError:
        return False
    try:
        spec = gym.spec(env_id)
    except gym.error.Error:
        return False
    entry = spec.entry_point if isinstance(spec.entry_point, str) else getattr(spec.entry_point, "__module__", "")
    return str(entry).startswith("vmimo_env")


def vmimo_kwargs(env_id: str, env_kwargs: dict[str, Any] | None, action_view: str | None) -> dict[str, Any]:
    """Registered kwargs of ``env_id`` merged with the user's, with the action view forced (VMIMO ids only)."""
    out = dict(gym.spec(env_id).kwargs or {})
    out.update(env_kwargs or {})
    if action_view is not None:
        out["action_view"] = action_view
    return out


def check_train_seed(seed: int, n_envs: int) -> None:
    if seed < 0 or seed + n_envs > MAX_TRAIN_SEED:
        raise ValueError(f"training seeds seed + i (i < n_envs) must lie in [0, {MAX_TRAIN_SEED}) to stay disjoint "
                         f"from the held-out evaluation seeds; got seed={seed}, n_envs={n_envs}")


# ====================================================================== per-step allocation statistics
def allocation_step_stats(group: np.ndarray, prefix: np.ndarray, power_w: np.ndarray,
                          sent: np.ndarray) -> dict[str, np.ndarray]:
    """Per-env sums of one slot's allocation, (N,) each, from effective (transmitting-only) arrays (N, K).

    ``group_size_sum / groups_used`` over an episode is the mean virtual-MIMO group size, ``prefix_sum /
    tx_device_slots`` the mean latent prefix length and ``power_dbm_sum / tx_device_slots`` the mean transmit
    power (dBm) of transmitting devices.
    """
    tx = (group > 0) & (sent > 0)
    n_tx = tx.sum(axis=1)
    G = int(group.max()) if group.size else 0
    used = np.zeros(group.shape[0])
    for g in range(1, G + 1):  # G is a handful of groups
        used += ((group == g) & tx).any(axis=1)
    pdbm = 10.0 * np.log10(np.maximum(power_w, 1e-30)) + 30.0
    return {"tx_device_slots": n_tx.astype(np.float64), "latents_sent": np.where(tx, sent, 0).sum(1).astype(float),
            "group_size_sum": n_tx.astype(np.float64), "groups_used": used,
            "prefix_sum": np.where(tx, prefix, 0).sum(1).astype(float), "power_dbm_sum": np.where(tx, pdbm, 0).sum(1)}


def derived_episode_metrics(ep: dict[str, float]) -> dict[str, float]:
    """Readable per-episode metrics from the summed statistics of one episode (keys absent stay absent)."""
    out: dict[str, float] = {}
    arrived = ep.get("arrived")
    if arrived is not None and arrived > 0:
        out["accuracy"] = ep.get("correct", 0.0) / arrived
        out["expired_frac"] = ep.get("expired_empty", 0.0) / arrived
        out["energy_per_scene_mj"] = 1e3 * ep.get("energy_j", 0.0) / arrived
        for part in ("energy_tx_j", "energy_circuit_j", "energy_encode_j"):
            if part in ep:
                out[part.replace("_j", "_per_scene_mj")] = 1e3 * ep[part] / arrived
    for key in ("accuracy_term", "energy_term", "energy_j", "correct", "arrived", "expired_empty", "dropped",
                "latents_sent"):
        if key in ep:
            out[key] = ep[key]
    if ep.get("groups_used", 0) > 0:
        out["group_size"] = ep["group_size_sum"] / ep["groups_used"]
    if ep.get("tx_device_slots", 0) > 0:
        out["prefix"] = ep["prefix_sum"] / ep["tx_device_slots"]
        out["power_dbm"] = ep["power_dbm_sum"] / ep["tx_device_slots"]
    if "tx_device_slots" in ep and ep.get("l"):
        out["tx_devices_per_slot"] = ep["tx_device_slots"] / ep["l"]
    return out


# ====================================================================== batched training env
def _vmimo_sb3_vecenv_cls() -> type:
    from vmimo_env.sb3 import VMIMOSB3VecEnv

    class VMIMOStatsVecEnv(VMIMOSB3VecEnv):
        """``VMIMOSB3VecEnv`` whose episode info also carries allocation statistics (group size, prefix, power).

        The SB3 adapter sums the reward parts per episode but discards the per-slot ``group``/``prefix``/
        ``power_w`` arrays of ``VMIMOVectorEnv.step``; this subclass taps them (one extra reduction per slot)
        and adds the sums of :data:`ALLOC_KEYS` to ``info["episode"]``.
        """

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._alloc = {k: np.zeros(self.num_envs) for k in ALLOC_KEYS}
            inner_step = self.venv.step

            def step(actions: Any) -> Any:
                out = inner_step(actions)
                infos = out[4]
                stats = allocation_step_stats(infos["group"], infos["prefix"], infos["power_w"], infos["sent"])
                for k, v in stats.items():
                    self._alloc[k] += v
                return out

            self.venv.step = step  # type: ignore[method-assign]

        def reset(self) -> np.ndarray:
            for v in self._alloc.values():
                v[:] = 0.0
            return super().reset()

        def step_wait(self) -> Any:
            obs, rew, dones, infos = super().step_wait()
            if dones.any():
                for i in np.flatnonzero(dones).tolist():
                    ep = infos[i].get("episode")
                    if ep is not None:
                        ep.update({k: float(v[i]) for k, v in self._alloc.items()})
                for v in self._alloc.values():
                    v[dones] = 0.0
            return obs, rew, dones, infos

    return VMIMOStatsVecEnv


class EpisodeStatsWrapper(gym.Wrapper):
    """Adds VMIMO's summed reward parts and allocation statistics to Monitor's ``info["episode"]``.

    Goes *outside* ``Monitor`` (which writes ``info["episode"]`` at the end of an episode) and reads the per-slot
    ``info`` of ``VMIMOEnv.step`` (reward parts, ``sent`` and the decoded ``action``).
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        core = env.unwrapped.core
        self._power_levels_w = core.power_levels_w
        self._prefix_levels = core.prefix_levels
        self._sums: dict[str, float] = {}

    def reset(self, **kwargs: Any) -> Any:
        self._sums = {}
        return self.env.reset(**kwargs)

    def step(self, action: Any) -> Any:
        obs, reward, terminated, truncated, info = self.env.step(action)
        for key in STAT_KEYS:
            if key in info:
                self._sums[key] = self._sums.get(key, 0.0) + float(info[key])
        native = info.get("action")
        if native is not None and "sent" in info:
            sent = np.asarray(info["sent"])[None]
            tx = sent > 0
            group = np.where(tx, native["group"][None], 0)
            prefix = self._prefix_levels[native["compression"]][None]
            power = np.where(tx, self._power_levels_w[native["power"]][None], 0.0)
            for key, value in allocation_step_stats(group, prefix, power, sent).items():
                self._sums[key] = self._sums.get(key, 0.0) + float(value[0])
        if (terminated or truncated) and "episode" in info:
            info["episode"].update(self._sums)
        return obs, reward, terminated, truncated, info


def make_train_env(env_id: str, n_envs: int, vec_env: str, seed: int, env_kwargs: dict[str, Any] | None,
                   action_view: str, monitor_dir: str | None = None) -> tuple[VecEnv, str]:
    """The training ``VecEnv`` and the vec-env kind actually used."""
    if vec_env not in VEC_ENVS:
        raise ValueError(f"--vec-env must be one of {list(VEC_ENVS)}, got {vec_env!r}")
    vmimo = is_vmimo(env_id)
    if vec_env == "batched" and not vmimo:
        warnings.warn(f"--vec-env batched needs a VMIMO environment; using dummy for {env_id}", stacklevel=2)
        vec_env = "dummy"
    if vec_env == "batched":
        kwargs = vmimo_kwargs(env_id, env_kwargs, action_view)
        kwargs.pop("action_view")
        return _vmimo_sb3_vecenv_cls()(num_envs=n_envs, action_view=action_view, seed=seed, **kwargs), vec_env
    kwargs = vmimo_kwargs(env_id, env_kwargs, action_view) if vmimo else dict(env_kwargs or {})
    cls = DummyVecEnv if vec_env == "dummy" else SubprocVecEnv
    venv = make_vec_env(functools.partial(gym_make, env_id), n_envs=n_envs, seed=seed, env_kwargs=kwargs,
                        vec_env_cls=cls, monitor_dir=monitor_dir,
                        wrapper_class=EpisodeStatsWrapper if vmimo else None)
    return venv, vec_env


def gym_make(env_id: str, **kwargs: Any) -> gym.Env:
    """``gym.make`` after importing ``vmimo_env``: SubprocVecEnv workers start fresh (forkserver) and would not
    know the VMIMO ids otherwise."""
    import vmimo_env  # noqa: F401

    return gym.make(env_id, **kwargs)


def make_eval_vector_env(env_id: str, env_kwargs: dict[str, Any] | None, num_envs: int,
                         action_view: str | None = None) -> gym.vector.VectorEnv:
    """A Gymnasium ``VectorEnv`` for evaluation: VMIMO's native batched env (dict view unless told otherwise),
    or a ``SyncVectorEnv`` of ``gym.make`` environments for other ids."""
    if is_vmimo(env_id):
        from vmimo_env.vector import VMIMOVectorEnv

        kwargs = vmimo_kwargs(env_id, env_kwargs, action_view or "dict")
        return VMIMOVectorEnv(num_envs=num_envs, **kwargs)
    return gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="sync", **(env_kwargs or {}))
