"""Environment construction for training and evaluation.

- The algorithm decides the action view: discrete-action algorithms (PPO, A2C, MaskablePPO, RecurrentPPO) see
  VMIMO's ``multidiscrete`` view, continuous ones (SAC, TD3, DDPG) its ``box`` view. Both map invertibly onto the
  same native action, so dynamics and rewards are identical.
- ``--vec-env batched`` (default) steps all training environments as one numpy batch
  (:class:`vmimo_env.sb3.VMIMOSB3VecEnv` with its allocation statistics on); ``dummy``/``subproc`` build SB3's
  ``DummyVecEnv``/``SubprocVecEnv`` of ``gym.make`` environments, with Monitor and :class:`EpisodeStatsWrapper`
  producing the same episode statistics from the same accumulator (:class:`vmimo_env.sb3.EpisodeStats`).
  Non-VMIMO ids (CartPole, Pendulum, ...) work with ``dummy``/``subproc``; ``batched`` falls back to ``dummy``
  for them with a warning.
- Seeds: training environment ``i`` starts from seed ``seed + i``; evaluation uses disjoint seed ranges
  (:data:`VALIDATION_SEED_BASE` during training, :data:`TEST_SEED_BASE` in ``agents.evaluate``).
"""

from __future__ import annotations

import functools
import warnings
from typing import Any

import gymnasium as gym
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv

from vmimo_env.sb3 import ALLOCATION_KEYS, EPISODE_KEYS, EpisodeStats, VMIMOSB3VecEnv

VALIDATION_SEED_BASE = 1_000_000  # evaluation during training (model selection)
TEST_SEED_BASE = 2_000_000  # final evaluation (agents.evaluate): never seen by model selection either
MAX_TRAIN_SEED = VALIDATION_SEED_BASE  # training seeds seed + i must stay below the held-out ranges

DISCRETE_ALGOS = ("ppo", "a2c", "maskable_ppo", "recurrent_ppo")
CONTINUOUS_ALGOS = ("sac", "td3", "ddpg")
ALGOS = DISCRETE_ALGOS + CONTINUOUS_ALGOS
VEC_ENVS = ("batched", "dummy", "subproc")

# per-episode statistics reported next to Monitor's r/l/t: the SB3 adapter's lists (one definition, vmimo_env.sb3)
STAT_KEYS = EPISODE_KEYS
ALLOC_KEYS = ALLOCATION_KEYS


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


class EpisodeStatsWrapper(gym.Wrapper):
    """Adds VMIMO's summed reward parts and allocation statistics to Monitor's ``info["episode"]``.

    Goes *outside* ``Monitor`` (which writes ``info["episode"]`` at the end of an episode) and feeds the per-slot
    ``info`` of ``VMIMOEnv.step`` to the SB3 adapter's accumulator (:class:`vmimo_env.sb3.EpisodeStats`), so a
    ``gym.make`` environment reports exactly the batched env's episode statistics.
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.stats = EpisodeStats(1, allocation=True)

    def reset(self, **kwargs: Any) -> Any:
        self.stats.clear()
        return self.env.reset(**kwargs)

    def step(self, action: Any) -> Any:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.stats.add_single(reward, info)
        if (terminated or truncated) and "episode" in info:
            info["episode"].update(self.stats.sums_of(0))
        return obs, reward, terminated, truncated, info


def make_train_env(env_id: str, n_envs: int, vec_env: str, seed: int, env_kwargs: dict[str, Any] | None,
                   action_view: str, monitor_dir: str | None = None,
                   num_threads: int | None = None) -> tuple[VecEnv, str]:
    """The training ``VecEnv`` and the vec-env kind actually used; ``num_threads`` is the batched env's
    (``VMIMOVectorEnv``; None: its default), ignored by the other kinds."""
    if vec_env not in VEC_ENVS:
        raise ValueError(f"--vec-env must be one of {list(VEC_ENVS)}, got {vec_env!r}")
    vmimo = is_vmimo(env_id)
    if vec_env == "batched" and not vmimo:
        warnings.warn(f"--vec-env batched needs a VMIMO environment; using dummy for {env_id}", stacklevel=2)
        vec_env = "dummy"
    if vec_env == "batched":
        kwargs = vmimo_kwargs(env_id, env_kwargs, action_view)
        kwargs.pop("action_view")
        venv = VMIMOSB3VecEnv(num_envs=n_envs, action_view=action_view, seed=seed, allocation_stats=True,
                              num_threads=num_threads, **kwargs)
        return venv, vec_env
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

    env = gym.make(env_id, **kwargs)
    horizon = getattr(env.unwrapped, "cfg", None) and env.unwrapped.cfg.horizon
    if horizon and "max_episode_steps" not in kwargs and env.spec is not None \
            and env.spec.max_episode_steps not in (None, horizon):
        # a horizon override (env_kwargs) differs from the id's registered limit: let the episode run to it
        env.close()
        env = gym.make(env_id, max_episode_steps=horizon, **kwargs)
    return env


def make_eval_vector_env(env_id: str, env_kwargs: dict[str, Any] | None, num_envs: int,
                         action_view: str | None = None) -> gym.vector.VectorEnv:
    """A Gymnasium ``VectorEnv`` for evaluation: VMIMO's native batched env (dict view unless told otherwise),
    or a ``SyncVectorEnv`` of ``gym.make`` environments for other ids."""
    if is_vmimo(env_id):
        from vmimo_env.vector import VMIMOVectorEnv

        kwargs = vmimo_kwargs(env_id, env_kwargs, action_view or "dict")
        return VMIMOVectorEnv(num_envs=num_envs, **kwargs)
    return gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="sync", **(env_kwargs or {}))
