"""VMIMO in RLlib / Ray Tune (optional extra ``rllib``; Ray pins its own Gymnasium, so use a separate venv).

RLlib builds environments inside remote env-runner processes. A plain id such as ``"VMIMO-v0"`` is found there only
if ``vmimo_env`` was imported in that process, which RLlib does not do, hence ``gymnasium.error.NameNotFound``.
``register_rllib()`` registers every VMIMO id with ``ray.tune.registry.register_env`` (Ray ships the registry to
every worker) under a creator that imports ``vmimo_env`` inside the worker before building the environment::

    from vmimo_env.rllib import register_rllib
    register_rllib()
    config = PPOConfig().environment("VMIMO-MultiDiscrete-v0", env_config={"num_devices": 6})

``env_config`` holds ``gym.make`` keywords (scenario parameters); RLlib's own ``EnvContext`` fields
(``worker_index``, ``vector_index``) are not passed on. RLlib seeds each sub-environment through ``reset(seed=...)``.

Vectorisation: RLlib's default (``gym_env_vectorize_mode`` SYNC) builds one ``VMIMOEnv`` per sub-environment; with
``gym_env_vectorize_mode="VECTOR_ENTRY_POINT"`` each runner steps one native ``VMIMOVectorEnv`` for all its
sub-environments instead. The native vector env autoresets ``NEXT_STEP`` (its default), which is what RLlib reads
correctly (with ``SAME_STEP`` RLlib loses one transition per episode).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import gymnasium as gym

MULTIAGENT_ID = "VMIMO-Parallel-v0"


def make_env_creator(env_id: str) -> Callable[[Any], gym.Env]:
    """A picklable RLlib env creator for ``env_id``: ``creator(env_config) -> gym.make(env_id, **env_config)``, or
    the native ``VMIMOVectorEnv`` when RLlib passes ``num_envs`` (``gym_env_vectorize_mode="VECTOR_ENTRY_POINT"``)."""
    if not isinstance(env_id, str):
        raise TypeError(f"env_id must be a str, got {type(env_id).__name__}")

    def creator(env_config: Any = None) -> gym.Env:
        import vmimo_env  # noqa: F401  (registers the ids in this worker process)

        kwargs = dict(env_config or {})  # EnvContext is a dict; its worker fields are attributes, not keys
        num_envs = kwargs.pop("num_envs", None)  # RLlib's VECTOR_ENTRY_POINT mode asks for a vector env this way
        if num_envs is not None:
            # RLlib scales out with runner processes: each runner's vector env stays on its own thread unless the
            # env_config asks for more (num_threads)
            kwargs.setdefault("num_threads", 1)
            return gym.make_vec(env_id, num_envs=int(num_envs), vectorization_mode="vector_entry_point", **kwargs)
        return gym.make(env_id, **kwargs)

    creator.__name__ = f"make_{env_id.replace('-', '_')}"
    return creator


def make_multiagent_creator() -> Callable[[Any], Any]:
    """RLlib creator of the PettingZoo game (``vmimo_env.multiagent``) wrapped in RLlib's ``ParallelPettingZooEnv``."""

    def creator(env_config: Any = None):
        from ray.rllib.env.wrappers.pettingzoo_env import ParallelPettingZooEnv

        from vmimo_env.multiagent import VMIMOParallelEnv

        return ParallelPettingZooEnv(VMIMOParallelEnv(**dict(env_config or {})))

    return creator


def ppo_config(env_id: str = "VMIMO-MultiDiscrete-v0", num_env_runners: int = 2, num_envs_per_env_runner: int = 1,
               train_batch: int = 400, env_config: dict[str, Any] | None = None, seed: int = 0, **training: Any):
    """A small ``PPOConfig`` (new API stack) for a VMIMO id, with RLlib's default (sync) vectorisation.

    Registers the VMIMO ids first. ``train_batch`` env steps per iteration, split evenly over the runners;
    ``training`` goes to ``PPOConfig.training`` (``lr``, ``entropy_coeff``, ``clip_param`` ...).
    """
    from ray.rllib.algorithms.ppo import PPOConfig

    register_rllib()
    fragment = max(1, train_batch // max(1, num_env_runners * num_envs_per_env_runner))
    return (
        PPOConfig()
        .environment(env_id, env_config=dict(env_config or {}))
        .env_runners(num_env_runners=num_env_runners, num_envs_per_env_runner=num_envs_per_env_runner,
                     rollout_fragment_length=fragment, num_cpus_per_env_runner=1)
        .learners(num_learners=0)
        .training(train_batch_size_per_learner=train_batch, minibatch_size=min(128, train_batch), num_epochs=2,
                  **training)
        .debugging(seed=seed)
    )


def register_rllib(env_ids: Iterable[str] | None = None, multiagent: bool = False) -> list[str]:
    """Register VMIMO ids with Ray Tune's registry; returns the registered names.

    Parameters
    ----------
    env_ids
        Ids to register; default every id in ``vmimo_env.ENV_IDS``.
    multiagent
        Also register ``"VMIMO-Parallel-v0"``, the PettingZoo game (needs the ``multiagent`` extra).
    """
    from ray.tune.registry import register_env

    import vmimo_env

    ids = list(vmimo_env.ENV_IDS) if env_ids is None else list(env_ids)
    unknown = [i for i in ids if i not in vmimo_env.ENV_IDS]
    if unknown:
        raise ValueError(f"env_ids must be VMIMO ids {list(vmimo_env.ENV_IDS)}, got unknown {unknown}")
    for env_id in ids:
        register_env(env_id, make_env_creator(env_id))
    if multiagent:
        register_env(MULTIAGENT_ID, make_multiagent_creator())
        ids.append(MULTIAGENT_ID)
    return ids


__all__ = ["MULTIAGENT_ID", "make_env_creator", "make_multiagent_creator", "ppo_config", "register_rllib"]
