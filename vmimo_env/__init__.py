"""VMIMO: a Gymnasium environment for scheduling virtual-MIMO semantic communication.

Importing the package registers the environment ids:

| id                        | scenario        | action view      | max_episode_steps |
|---------------------------|-----------------|------------------|-------------------|
| ``VMIMO-v0``              | default         | ``dict``         | 200               |
| ``VMIMO-MultiDiscrete-v0``| default         | ``multidiscrete``| 200               |
| ``VMIMO-Box-v0``          | default         | ``box``          | 200               |
| ``VMIMO-Small-v0``        | small           | ``dict``         | 50                |
| ``VMIMO-Large-v0``        | large           | ``dict``         | 200               |
| ``VMIMO-HighMobility-v0`` | high_mobility   | ``dict``         | 200               |
| ``VMIMO-Cooperative-v0``  | cooperative     | ``dict``         | 200               |
| ``VMIMO-v1``              | v1              | ``dict``         | 200               |
| ``VMIMO-MultiDiscrete-v1``| v1              | ``multidiscrete``| 200               |
| ``VMIMO-Box-v1``          | v1              | ``box``          | 200               |
| ``VMIMO-Dense-v1``        | dense_v1        | ``dict``         | 200               |
| ``VMIMO-IoT-v1``          | iot_v1          | ``dict``         | 200               |
| ``VMIMO-Mobility-v1``     | mobility_v1     | ``dict``         | 200               |
| ``VMIMO-Hetero-v1``       | hetero_v1       | ``dict``         | 200               |
| ``VMIMO-Cooperative-v1``  | cooperative_v1  | ``dict``         | 200               |
| ``VMIMO-GenK-v1``         | gen_k_v1        | ``dict``         | 200               |
| ``VMIMO-GenSpeed-v1``     | gen_speed_v1    | ``dict``         | 200               |
| ``VMIMO-GenNLOS-v1``      | gen_nlos_v1     | ``dict``         | 200               |

Every id takes every scenario parameter as a keyword (``gym.make("VMIMO-v0", num_devices=16)``) and has a
native vector entry point (``gym.make_vec(id, num_envs=256, vectorization_mode="vector_entry_point")``).

Episode length: the environment truncates at its own ``horizon``. Each id is registered with
``max_episode_steps`` equal to its scenario's horizon, so ``gym.make`` adds a ``TimeLimit`` that coincides with
it (truncation is reported once, at that step) and wrappers that need the limit (``TimeAwareObservation``) work.
A shorter ``horizon=`` keyword ends episodes at that horizon (the ``TimeLimit`` never fires first). A longer one
needs a matching limit, ``gym.make("VMIMO-v0", horizon=500, max_episode_steps=500)``: without it gym.make's
``TimeLimit`` cuts episodes at the registered value (the vector entry point refuses the mismatch instead).
"""

from __future__ import annotations

from gymnasium.envs.registration import register, registry

from vmimo_env.config import MODALITIES, ScenarioConfig
from vmimo_env.scenario import SCENARIOS, TIERS, make_config

__all__ = ["MODALITIES", "SCENARIOS", "TIERS", "ScenarioConfig", "VMIMOEnv", "VMIMOVectorEnv", "make_config",
           "scenario_env_id"]
__version__ = "0.1.0"

ENV_IDS: dict[str, dict[str, str]] = {
    "VMIMO-v0": {},
    "VMIMO-MultiDiscrete-v0": {"action_view": "multidiscrete"},
    "VMIMO-Box-v0": {"action_view": "box"},
    "VMIMO-Small-v0": {"scenario": "small"},
    "VMIMO-Large-v0": {"scenario": "large"},
    "VMIMO-HighMobility-v0": {"scenario": "high_mobility"},
    "VMIMO-Cooperative-v0": {"scenario": "cooperative"},
    # VMIMO-v1: the recalibrated world (docs/MODEL.md "VMIMO-v1", docs/headroom.md); v0 ids are unchanged
    "VMIMO-v1": {"scenario": "v1"},
    "VMIMO-MultiDiscrete-v1": {"scenario": "v1", "action_view": "multidiscrete"},
    "VMIMO-Box-v1": {"scenario": "v1", "action_view": "box"},
    "VMIMO-Dense-v1": {"scenario": "dense_v1"},
    "VMIMO-IoT-v1": {"scenario": "iot_v1"},
    "VMIMO-Mobility-v1": {"scenario": "mobility_v1"},
    "VMIMO-Hetero-v1": {"scenario": "hetero_v1"},
    "VMIMO-Cooperative-v1": {"scenario": "cooperative_v1"},
    "VMIMO-GenK-v1": {"scenario": "gen_k_v1"},
    "VMIMO-GenSpeed-v1": {"scenario": "gen_speed_v1"},
    "VMIMO-GenNLOS-v1": {"scenario": "gen_nlos_v1"},
}

for _id, _kwargs in ENV_IDS.items():
    if _id not in registry:
        register(
            id=_id,
            entry_point="vmimo_env.env:VMIMOEnv",
            vector_entry_point="vmimo_env.vector:VMIMOVectorEnv",
            kwargs=dict(_kwargs),
            max_episode_steps=make_config(_kwargs.get("scenario")).horizon,
            disable_env_checker=False,
        )


def scenario_env_id(scenario: str) -> str:
    """The registered env id of ``scenario`` with its native (dict) action view, e.g. ``"dense_v1"`` ->
    ``"VMIMO-Dense-v1"``; ``ValueError`` when no id registers it."""
    for env_id, kwargs in ENV_IDS.items():
        if kwargs.get("scenario", "default") == scenario and "action_view" not in kwargs:
            return env_id
    raise ValueError(f"no registered env id has scenario {scenario!r} (vmimo_env.ENV_IDS)")


def __getattr__(name: str):
    # the env classes import the frozen model lazily, so `import vmimo_env` stays cheap
    if name == "VMIMOEnv":
        from vmimo_env.env import VMIMOEnv

        return VMIMOEnv
    if name == "VMIMOVectorEnv":
        from vmimo_env.vector import VMIMOVectorEnv

        return VMIMOVectorEnv
    if name == "parallel_env":  # PettingZoo (optional extra "multiagent"): imported only when asked for
        from vmimo_env.multiagent import parallel_env

        return parallel_env
    raise AttributeError(name)
