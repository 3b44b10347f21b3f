"""The policy registry: names → policy factories, and :func:`make_policy`, which turns any policy spec into a policy.

A spec is one of

- a registered name (``"round_robin"``, ``"max_weight"``, ``"planner"``, ``"oracle"``; case, ``_`` and ``-`` are
  ignored);
- a trained model: ``[algo:]path`` to a ``.zip`` written by ``train_agent.py`` (or a run folder holding one);
- ``module:ClassName``: a user's own policy class, imported and built as ``ClassName(env, **kwargs)`` like the
  heuristics. Importing ``module`` runs its code: naming it is the user's explicit choice (as with any Python
  import), so only name modules you trust;
- an object that already has ``act`` and ``reset`` (returned as is) or an SB3 model (wrapped in ``SB3Policy``).

The registry does not import the heuristics statically: built-in policies live in :data:`BUILTIN_MODULES`, which
register themselves with :func:`register_policy` when first needed. Heuristic modules import this module (through
``agents.policies``), never the other way round at import time.
"""

from __future__ import annotations

import difflib
import importlib
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Policy(Protocol):
    """A VMIMO scheduling policy: ``reset(seed)`` then ``act(obs, info) -> native action`` (``agents.policies``)."""

    name: str

    def reset(self, seed: int | None) -> None: ...

    def act(self, obs: Any, info: dict[str, Any]) -> Any: ...


# modules whose import registers the built-in policies
BUILTIN_MODULES = ("agents.heuristics", "agents.oracle", "agents.planner")
# registered policies that plan on the simulator (slow, model-based): not heuristic baselines
PLANNER_NAMES = ("oracle", "clairvoyant", "planner")
# name -> factory(env, **kwargs)
_REGISTRY: dict[str, Callable[..., Policy]] = {}
_USER_CLASS = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def register_policy(name: str) -> Callable[[Callable[..., Policy]], Callable[..., Policy]]:
    """Class/function decorator: register ``factory(env, **kwargs) -> Policy`` under ``name``."""

    def deco(factory: Callable[..., Policy]) -> Callable[..., Policy]:
        _REGISTRY[name] = factory
        return factory

    return deco


def _import_builtins() -> None:
    for module in BUILTIN_MODULES:
        importlib.import_module(module)


def policy_names() -> list[str]:
    """Every registered policy name (heuristics, the causal planner and the clairvoyant oracle)."""
    _import_builtins()
    return list(_REGISTRY)


def heuristic_names() -> list[str]:
    """Every registered policy except the planners of :data:`PLANNER_NAMES` (the clairvoyant oracle, which knows the
    future, and the causal MPC planner: both plan on replicated simulator state and are much slower)."""
    return [n for n in policy_names() if n not in PLANNER_NAMES]


def _squash(name: str) -> str:
    return name.lower().replace("_", "").replace("-", "")


def canonical_name(spec: str) -> str | None:
    """The registered name ``spec`` refers to, ignoring case, ``_`` and ``-`` (``maxweight`` → ``max_weight``)."""
    _import_builtins()
    if spec in _REGISTRY:
        return spec
    key = _squash(spec)
    for name in _REGISTRY:
        if _squash(name) == key:
            return name
    return None


def suggest(word: str, candidates: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` for the closest candidate, or ``""``."""
    cands = list(candidates)
    close = difflib.get_close_matches(word, cands, n=1, cutoff=0.6)
    if not close:  # compare ignoring case and separators too (MaxWeight, max-weight)
        squashed = {_squash(c): c for c in cands}
        hit = difflib.get_close_matches(_squash(word), list(squashed), n=1, cutoff=0.6)
        close = [squashed[hit[0]]] if hit else []
    return f" (did you mean {close[0]!r}?)" if close else ""


def is_user_class_spec(spec: str) -> bool:
    """True for ``module:ClassName`` (and not an ``algo:path`` model spec or an existing file)."""
    from agents.policies import ALGO_CLASSES

    head = spec.partition(":")[0]
    return bool(_USER_CLASS.match(spec)) and head not in ALGO_CLASSES and not Path(spec).exists()


def load_policy_class(spec: str) -> Callable[..., Policy]:
    """Import ``module:ClassName`` and return the class; ``ValueError`` names what is missing."""
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"policy {spec!r}: cannot import module {module_name!r} ({exc})") from exc
    cls = getattr(module, attr, None)
    if cls is None or not callable(cls):
        public = [n for n in dir(module) if not n.startswith("_")]
        raise ValueError(f"policy {spec!r}: module {module_name!r} has no class {attr!r}{suggest(attr, public)}")
    return cls


def make_policy(spec: Any, env: Any, **kwargs: Any) -> Policy:
    """Build a policy for ``env`` from any spec of the module docstring."""
    if not isinstance(spec, str):
        if hasattr(spec, "act") and hasattr(spec, "reset"):
            return spec
        from agents.policies import SB3Policy

        return SB3Policy(spec, env, **kwargs)
    name = canonical_name(spec)
    if name is not None:
        return _REGISTRY[name](env, **kwargs)
    from agents.policies import ALGO_CLASSES, load_sb3_policy, resolve_model_path

    algo = None
    path = spec
    head, sep, tail = spec.partition(":")
    if sep and head in ALGO_CLASSES:
        algo, path = head, tail
    resolved = resolve_model_path(path)
    if resolved is not None:
        return load_sb3_policy(resolved, env, algo=algo, **kwargs)
    if is_user_class_spec(spec):
        policy = load_policy_class(spec)(env, **kwargs)
        if not (hasattr(policy, "act") and hasattr(policy, "reset")):
            raise ValueError(f"policy {spec!r} has no act(obs, info) and reset(seed) methods")
        if not hasattr(policy, "name"):
            policy.name = spec
        return policy
    raise ValueError(f"unknown policy {spec!r}{suggest(spec, _REGISTRY)}: not a heuristic ({list(_REGISTRY)}), "
                     "an existing model path or a module:ClassName")
