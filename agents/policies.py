"""One interface for every VMIMO policy: heuristics, the oracle and trained SB3 models.

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

``spec`` is a heuristic name (see :data:`POLICY_NAMES`, e.g. ``"round_robin"``, ``"max_weight"``, ``"oracle"``),
a path to a model or checkpoint written by ``train_agent.py`` (``.zip``; the algorithm is read from the
checkpoint's metadata or given as ``ppo:path``), or an SB3 model object.

Usage on a custom loop::

    env = gym.make("VMIMO-v0")
    policy = make_policy("max_weight", env)
    obs, info = env.reset(seed=0); policy.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(policy.act(obs, info))
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np


@runtime_checkable
class Policy(Protocol):
    """A VMIMO scheduling policy (see the module docstring)."""

    name: str

    def reset(self, seed: int | None) -> None: ...

    def act(self, obs: Any, info: dict[str, Any]) -> Any: ...


# name -> factory(env, **kwargs); filled by agents.heuristics and agents.oracle on import
_REGISTRY: dict[str, Callable[..., Policy]] = {}


def register_policy(name: str) -> Callable[[Callable[..., Policy]], Callable[..., Policy]]:
    def deco(factory: Callable[..., Policy]) -> Callable[..., Policy]:
        _REGISTRY[name] = factory
        return factory

    return deco


def policy_names() -> list[str]:
    _import_all()
    return list(_REGISTRY)


def canonical_name(spec: str) -> str | None:
    """The registered name ``spec`` refers to, ignoring case, ``_`` and ``-`` (``maxweight`` → ``max_weight``)."""
    _import_all()
    if spec in _REGISTRY:
        return spec
    key = spec.lower().replace("_", "").replace("-", "")
    for name in _REGISTRY:
        if name.replace("_", "") == key:
            return name
    return None


def heuristic_names() -> list[str]:
    """Every registered policy except the oracle (which is much slower and is an upper bound, not a baseline)."""
    return [n for n in policy_names() if n != "oracle"]


def _import_all() -> None:
    import agents.heuristics
    import agents.oracle  # noqa: F401


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


def load_sb3_policy(path: str | Path, env: Any, algo: str | None = None, name: str | None = None,
                    device: str = "cpu", trust: bool | None = None) -> SB3Policy:
    """A :class:`SB3Policy` from a checkpoint/model zip (VecNormalize statistics restored from the checkpoint).

    Nothing in the file is unpickled unless ``trust`` (see :func:`agents.checkpoint.load_trained`).
    """
    from agents.checkpoint import load_trained

    path = Path(path)
    loaded = load_trained(path, algo, device=device, trust=trust)
    return SB3Policy(loaded.model, env, loaded.vecnormalize, name=name or path.stem, action_view=loaded.action_view)


def make_policy(spec: Any, env: Any, **kwargs: Any) -> Policy:
    """Build a policy for ``env`` from a name, a ``[algo:]path`` to a trained model, or an SB3 model object."""
    if not isinstance(spec, str):
        if hasattr(spec, "act") and hasattr(spec, "reset"):
            return spec
        return SB3Policy(spec, env, **kwargs)
    _import_all()
    name = canonical_name(spec)
    if name is not None:
        return _REGISTRY[name](env, **kwargs)
    algo = None
    path = spec
    head, sep, tail = spec.partition(":")
    if sep and head in ALGO_CLASSES:
        algo, path = head, tail
    if Path(path).exists() or Path(path + ".zip").exists():
        p = Path(path) if Path(path).exists() else Path(path + ".zip")
        return load_sb3_policy(p, env, algo=algo, **kwargs)
    raise ValueError(f"unknown policy {spec!r}: not a heuristic ({list(_REGISTRY)}) nor an existing model path")
