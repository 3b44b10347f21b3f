"""One interface for every VMIMO policy: heuristics, the causal planner, the clairvoyant oracle and trained SB3 models.

.. code-block:: python

    class Policy(Protocol):
        name: str
        def reset(self, seed: int | None) -> None: ...
        def act(self, obs, info) -> action: ...

``act`` returns the **native** ``Dict`` action of VMIMO-v0 (``group``, ``power``, ``compression``,
``bandwidth``). A policy is built for one environment (``make_policy(spec, env)``): on a single ``VMIMOEnv`` it
returns arrays of shape ``(K,)`` (``(G,)`` for bandwidth), on a batched ``VMIMOVectorEnv`` arrays of shape
``(N, K)`` for all N environments at once. Heuristics read the environment's state from
``env.unwrapped.core`` (a ``VMIMOCore``) and, where noted, from ``info``; each docstring lists what it uses.

``spec`` is a registered name (:func:`policy_names`, e.g. ``"round_robin"``, ``"max_weight"``, ``"planner"``,
``"oracle"``),
a path to a model or checkpoint written by ``train_agent.py`` (``.zip`` or its run folder; the algorithm is read
from the checkpoint's metadata or given as ``ppo:path``), ``module:ClassName`` (a user's policy class), or an SB3
model object. The registry (:func:`register_policy`, :func:`make_policy`, names) is :mod:`agents.registry`; this
module holds the interface's SB3 side (:class:`SB3Policy`, the algorithm classes) and re-exports the registry.

Usage on a custom loop::

    env = gym.make("VMIMO-v0")
    policy = make_policy("max_weight", env)
    obs, info = env.reset(seed=0); policy.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(policy.act(obs, info))
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

# the registry lives in agents.registry; these names stay importable from here
from agents.registry import (  # noqa: F401
    Policy,
    canonical_name,
    heuristic_names,
    make_policy,
    policy_names,
    register_policy,
    tuned_params,
)

ALGO_CLASSES = {"ppo": ("stable_baselines3", "PPO"), "a2c": ("stable_baselines3", "A2C"),
                "sac": ("stable_baselines3", "SAC"), "td3": ("stable_baselines3", "TD3"),
                "ddpg": ("stable_baselines3", "DDPG"), "maskable_ppo": ("sb3_contrib", "MaskablePPO"),
                "recurrent_ppo": ("sb3_contrib", "RecurrentPPO")}


def algo_class(algo: str) -> type:
    import importlib

    if algo not in ALGO_CLASSES:
        raise ValueError(f"unknown algorithm {algo!r}; known: {list(ALGO_CLASSES)}")
    module, name = ALGO_CLASSES[algo]
    return getattr(importlib.import_module(module), name)


def algo_name_of(model: Any) -> str:
    cls = type(model).__name__
    for algo, (_, name) in ALGO_CLASSES.items():
        if name == cls:
            return algo
    raise ValueError(f"unsupported model class {cls}")


class SB3Policy:
    """A trained SB3 model as a :class:`Policy` (deterministic actions).

    Applies the training ``VecNormalize`` observation statistics (without updating them), keeps the LSTM state of
    RecurrentPPO across steps, asks the environment for action masks for MaskablePPO, and maps the model's flat
    action (``multidiscrete`` or ``box`` view) back to the native ``Dict`` with the environment's ``ActionLayout``.
    On a non-VMIMO environment the model's action is returned as is.
    """

    def __init__(self, model: Any, env: Any, vecnormalize: Any = None, name: str = "model",
                 action_view: str | None = None, deterministic: bool = True) -> None:
        self.model = model
        self.name = name
        self.vecnormalize = vecnormalize
        self.deterministic = deterministic
        self.algo = algo_name_of(model)
        base = env.unwrapped
        self._env = base
        self.layout = getattr(base, "layout", None)
        self.native = self.layout is not None and getattr(base, "action_view", "dict") == "dict"
        if action_view is None:
            from agents.common.envs import action_view_for

            action_view = action_view_for(self.algo)
        self.action_view = action_view
        self._single = not isinstance(base, gym.vector.VectorEnv)
        obs_space = getattr(base, "single_observation_space", None) if not self._single else base.observation_space
        model_space = getattr(model, "observation_space", None)
        if obs_space is not None and model_space is not None and getattr(obs_space, "shape", None) is not None \
                and model_space.shape != obs_space.shape:
            raise ValueError(f"model {name!r} expects observations of shape {model_space.shape}, the environment "
                             f"gives {obs_space.shape}: it was trained on another scenario")
        self._state: Any = None
        self._episode_start: np.ndarray | None = None

    def reset(self, seed: int | None = None) -> None:
        self._state = None
        self._episode_start = None

    def act(self, obs: Any, info: dict[str, Any] | None = None) -> Any:
        batch = np.asarray(obs)[None] if self._single else np.asarray(obs)
        if self.vecnormalize is not None:
            batch = self.vecnormalize.normalize_obs(batch)
        kwargs: dict[str, Any] = {"deterministic": self.deterministic}
        if self.algo == "recurrent_ppo":
            if self._episode_start is None:
                self._episode_start = np.ones(batch.shape[0], dtype=bool)
            kwargs.update(state=self._state, episode_start=self._episode_start)
        if self.algo == "maskable_ppo" and hasattr(self._env, "action_masks"):
            masks = np.asarray(self._env.action_masks())
            kwargs["action_masks"] = masks[None] if self._single else masks
        action, state = self.model.predict(batch, **kwargs)
        if self.algo == "recurrent_ppo":
            self._state = state
            self._episode_start = np.zeros(batch.shape[0], dtype=bool)
        if self.native:
            native = (self.layout.from_multidiscrete(action) if self.action_view == "multidiscrete"
                      else self.layout.from_box(action))
            return {k: v[0] for k, v in native.items()} if self._single else native
        return action[0] if self._single else action


def resolve_model_path(path: str | Path) -> Path | None:
    """The model file ``path`` names: the file itself, ``path + ".zip"``, or for a run folder of
    ``train_agent.py`` its ``best_model.zip``, else ``final_model.zip``, else its newest checkpoint. ``None`` when
    nothing exists there."""
    path = Path(path)
    if path.is_file():
        return path
    if path.is_dir():
        for name in ("best_model.zip", "final_model.zip"):
            if (path / name).is_file():
                return path / name
        from agents.checkpoint import latest_checkpoint

        found = latest_checkpoint(path)
        if found is None:
            raise ValueError(f"run folder {path} holds no model (best_model.zip, final_model.zip or checkpoints/*.zip)")
        return found
    if Path(str(path) + ".zip").is_file():
        return Path(str(path) + ".zip")
    return None


def load_sb3_policy(path: str | Path, env: Any, algo: str | None = None, name: str | None = None,
                    device: str = "cpu", trust: bool | None = None) -> SB3Policy:
    """A :class:`SB3Policy` from a checkpoint/model zip (VecNormalize statistics restored from the checkpoint).

    Nothing in the file is unpickled unless ``trust`` (see :func:`agents.checkpoint.load_trained`).
    """
    from agents.checkpoint import load_trained

    path = Path(path)
    loaded = load_trained(path, algo, device=device, trust=trust)
    return SB3Policy(loaded.model, env, loaded.vecnormalize, name=name or path.stem, action_view=loaded.action_view)
