"""What every VMIMO front end shares: construction, the seed contract, action decoding, observation and info.

``VMIMOEnv`` (one environment), ``VMIMOVectorEnv`` (N environments as one batch) and, through the vector env,
the SB3 adapter ``VMIMOSB3VecEnv`` each hold one :class:`FrontEnd`; they differ only in how they present its
results (Gymnasium ``Env``, ``VectorEnv`` with same-step autoreset, SB3 ``VecEnv``).

Seed contract (:func:`episode_seeds`): ``reset(seed=s)`` seeds environment ``i`` with ``s + i``, so environment
``i`` of a vector env reproduces a single env reset with seed ``s + i`` step for step; an unseeded *first* reset
takes its seeds from the front end's ``np_random`` (OS entropy unless the caller seeded it), as Gymnasium's
environments do; later unseeded resets continue each environment's own stream.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from vmimo_env.bs_view import BSView
from vmimo_env.config import ScenarioConfig, check_max_episode_steps
from vmimo_env.core import StepResult, VMIMOCore
from vmimo_env.memory import check_num_envs_memory
from vmimo_env.obs_spec import ObsLayout
from vmimo_env.scenario import make_config
from vmimo_env.scenes import build_pool, load_model
from vmimo_env.spaces import ACTION_VIEWS, ActionLayout

SEED_BOUND = 2**63  # seeds drawn for an unseeded first reset lie in [0, 2**63)


def check_action_view(action_view: Any) -> str:
    """``action_view`` if it names a view, else ``ValueError`` listing the views."""
    if action_view not in ACTION_VIEWS:
        raise ValueError(f"action_view must be one of {list(ACTION_VIEWS)}, got {action_view!r}")
    return action_view


def observation_space(spec: ObsLayout, obs_mode: str) -> spaces.Space[Any]:
    """Finite per-block bounds of the spec as a ``Box``, or a ``Dict`` of the same blocks in dict mode."""
    if obs_mode == "dict":
        return spaces.Dict({k: spaces.Box(spec.low[a:b], spec.high[a:b], dtype=np.float32)
                            for k, (a, b) in spec.slices.items()})
    return spaces.Box(spec.low.copy(), spec.high.copy(), dtype=np.float32)


def decode_action(layout: ActionLayout, view: str, action: Any, *, batch: int | None) -> dict[str, np.ndarray]:
    """Any view's action to validated native arrays; the one place the front ends call ``ActionLayout``'s decoders.

    ``batch`` is None for a single environment's unbatched action (native arrays (K,) and (G,)) and the number of
    environments for a batch ((batch, K), (batch, G)). Raises ``ValueError`` naming the field on bad input.
    """
    # each decoder enforces the leading axes of ``batch`` itself (and names the problem), so nothing is re-checked
    if view == "dict":
        return layout.validate_native(action, batch=batch)
    if view == "multidiscrete":
        return layout.from_multidiscrete(action, batch=batch)
    return layout.from_box(action, batch=batch)


def episode_seeds(seed: int | list[int | None] | None, env_ids: np.ndarray, first_reset: bool,
                  np_random: np.random.Generator) -> list[int | None] | None:
    """Per-environment seeds of a reset of ``env_ids`` under the seed contract (module docstring).

    ``seed`` is an int (environment ``i`` gets ``seed + i``), a list with one seed (or None) per reset
    environment, or None (continue the streams; on the first reset, draw them from ``np_random``). Returns None
    when no environment is re-seeded.
    """
    n = len(env_ids)
    if seed is None:
        if not first_reset:
            return None
        return [int(s) for s in np_random.integers(SEED_BOUND, size=n)]
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return [int(seed) + int(i) for i in env_ids]
    if isinstance(seed, (list, tuple)):
        if len(seed) != n:
            raise ValueError(f"seed list has {len(seed)} entries for {n} environments")
        return list(seed)
    raise ValueError(f"seed must be an int, a list of ints or None, got {type(seed).__name__}")


class FrontEnd:
    """Config, scene pool, frozen model, core, action layout and spaces of ``num_envs`` environments.

    ``batch`` is None for a single environment (unbatched actions, observations and info) and ``num_envs`` for a
    vector env. Arguments are those of ``VMIMOEnv`` (``make_config`` resolves scenario, config and overrides).
    """

    def __init__(self, num_envs: int, scenario: str | None, config: ScenarioConfig | str | dict | None,
                 action_view: str, checkpoint: str | None, pool_size: int, overrides: dict[str, Any],
                 batched: bool, max_episode_steps: int | None = None) -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        if not batched and num_envs != 1:
            raise ValueError(f"an unbatched front end holds one environment, got num_envs={num_envs}")
        self.action_view = check_action_view(action_view)
        self.cfg = make_config(scenario, config, **overrides)
        if batched:
            check_num_envs_memory(self.cfg, num_envs)  # before any allocation
            check_max_episode_steps(self.cfg, max_episode_steps)  # gym.make_vec passes the registered limit
        self.num_envs = num_envs
        self.batch: int | None = num_envs if batched else None
        self._lead = (num_envs,) if batched else ()  # the leading axes of this front end's actions
        self._dict_view = action_view == "dict"
        model = load_model(checkpoint)
        self.core = VMIMOCore(self.cfg, num_envs, build_pool(pool_size, checkpoint=checkpoint), model)
        self.layout = ActionLayout.from_config(self.cfg)
        self.obs_spec: ObsLayout = self.core.obs_spec
        self.single_action_space = self.layout.space(action_view)
        self.single_observation_space = observation_space(self.obs_spec, self.cfg.obs_mode)
        # every action is valid in every state (see ``all_valid_mask``): built once, copied per call
        mask = all_valid_mask(self.layout, num_envs)
        self._mask = mask if batched else mask[0]
        self._ever_reset = False

    # ------------------------------------------------------------------ reset / step
    def reset(self, env_ids: np.ndarray, seed: int | list[int | None] | None,
              np_random: np.random.Generator) -> None:
        """Start new episodes in ``env_ids`` under the seed contract."""
        seeds = episode_seeds(seed, env_ids, not self._ever_reset, np_random)
        self._ever_reset = True
        self.core.reset(env_ids, seeds)

    def decode(self, action: Any) -> dict[str, np.ndarray]:
        """This front end's action (any view) to native arrays (see :func:`decode_action`)."""
        if self._dict_view and type(action) is dict:  # the per-step common case, without the general dispatch
            fast = self.layout.validate_native_fast(action, self._lead)
            if fast is not None:
                return fast
        return decode_action(self.layout, self.action_view, action, batch=self.batch)

    def step(self, native: dict[str, np.ndarray]) -> StepResult:
        """One slot of every environment under a decoded native action."""
        if self.batch is None:
            return self.core.step_one(native["group"], native["power"], native["compression"], native["bandwidth"])
        return self.core.step(native["group"], native["power"], native["compression"], native["bandwidth"])

    def truncated(self) -> np.ndarray:
        """(N,) bool: the environments whose episode reached ``horizon`` (the only way an episode ends)."""
        return self.core.t >= self.cfg.horizon

    def truncated_single(self) -> bool:
        """:meth:`truncated` of a single environment, as a Python bool."""
        return self.core.t.item(0) >= self.cfg.horizon

    # ------------------------------------------------------------------ observation / info
    def observation(self) -> np.ndarray | dict[str, np.ndarray]:
        """Flat float32 observation ((D,) single, (N, D) batched), or the dict of its blocks in dict mode."""
        flat = self.core.observe()
        if self.batch is None:
            flat = flat[0]
        if self.cfg.obs_mode == "dict":
            return {k: flat[..., a:b] for k, (a, b) in self.obs_spec.slices.items()}
        return flat

    def action_masks(self) -> np.ndarray:
        """All-valid multidiscrete masks ((sum(nvec),) single, (N, sum(nvec)) batched), a fresh copy."""
        return self._mask.copy()

    def info(self, res: StepResult, native: dict[str, np.ndarray]) -> dict[str, Any]:
        """The step info of ``core.INFO_FIELDS`` (single: scalars and (K,) arrays; batched: leading N axis)."""
        return res.to_info(self.core.p_joint.copy(), native, self.action_masks(),
                           index=0 if self.batch is None else None)

    def reset_info(self) -> dict[str, Any]:
        """The reset info (``core.RESET_INFO_KEYS``), shaped like the step info."""
        queue, p_joint = self.core.queue_lengths(), self.core.p_joint.copy()
        if self.batch is None:
            queue, p_joint = queue[0], p_joint[0]
        return {"queue": queue, "p_joint": p_joint, "action_mask": self.action_masks()}

    def obs_slices(self) -> dict[str, slice]:
        """Name -> slice of each observation block (``obs_spec``)."""
        return {k: slice(a, b) for k, (a, b) in self.obs_spec.slices.items()}


def all_valid_mask(layout: ActionLayout, num_envs: int) -> np.ndarray:
    """Flat MultiDiscrete masks (N, sum(nvec)) for MaskablePPO: every entry is valid.

    No action is invalid in VMIMO: a device whose queue is empty now still holds this slot's arrivals when the
    action takes effect (scenes arrive at the start of the slot), so masking it idle would forbid useful sends.
    The masks exist so mask-aware algorithms run unchanged.
    """
    return np.ones((num_envs, int(layout.nvec.sum())), dtype=bool)


__all__ = ["FrontEnd", "all_valid_mask", "check_action_view", "decode_action", "episode_seeds",
           "observation_space"]


# ====================================================================== getting the view from a front end
def view_fetcher(env: Any) -> tuple[Callable[[], BSView], bool]:
    """``(fetch, single)`` for a VMIMO front end, through public API only: ``fetch()`` returns the current
    ``BSView``; ``single`` is True for a single (non-vector) Gymnasium env, whose actions are unbatched.

    Accepts a ``BSView`` (returned as is), anything with a ``bs_view()`` method (``VMIMOCore``, ``VMIMOEnv``,
    ``VMIMOVectorEnv``, ``VMIMOSB3VecEnv`` and SB3 wrappers around it), a wrapped Gymnasium env
    (``get_wrapper_attr``), a Gymnasium vector env of VMIMO envs (``call``) and any SB3 ``VecEnv`` of VMIMO envs
    incl. ``SubprocVecEnv`` (``env_method``).
    """
    if isinstance(env, BSView):
        return (lambda: env), False
    is_vector = isinstance(env, gym.vector.VectorEnv)
    if not is_vector and isinstance(env, gym.Env):
        try:
            method = env.get_wrapper_attr("bs_view")
        except AttributeError:
            method = None
        if callable(method):
            return method, True
    else:
        method = getattr(env, "bs_view", None)  # SB3 wrappers forward attribute lookups to the VecEnv inside
        if callable(method):
            return method, False
        if is_vector:
            inner = getattr(env.unwrapped, "bs_view", None)
            if callable(inner):
                return inner, False
            if hasattr(env, "call"):
                return (lambda: BSView.stack(list(env.call("bs_view")))), False
        if hasattr(env, "env_method") and hasattr(env, "num_envs"):  # an SB3 VecEnv
            return (lambda: BSView.stack(env.env_method("bs_view"))), False
    raise TypeError(f"{type(env).__name__} exposes no BS view (a VMIMO env, vector env, SB3 VecEnv or BSView "
                    "is needed)")
