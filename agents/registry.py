"""The policy registry: names → policy factories, and :func:`make_policy`, which turns any policy spec into a policy.

A spec is one of

- a registered name (``"round_robin"``, ``"max_weight"``, ``"planner"``, ``"oracle"``; case, ``_`` and ``-`` are
  ignored);
- a trained model: ``[algo:]path`` to a ``.zip`` written by ``train_agent.py`` (or a run folder holding one);
- ``module:ClassName``: a user's own policy class, imported and built as ``ClassName(env, **kwargs)`` like the
  heuristics. Importing ``module`` runs its code: naming it is the user's explicit choice (as with any Python
  import), so only name modules you trust;
- an object that already has ``act`` and ``reset`` (returned as is) or an SB3 model (wrapped in ``SB3Policy``).

``make_policy(name, env, tuned=True)`` builds a heuristic with the parameters ``python -m agents.tune_baselines``
tuned for the env's scenario on validation seeds (:func:`tuned_params`, read from
``agents/hyperparams/baselines/<scenario>.yml``); explicit keywords still win, and a scenario without a file gets
the registered defaults.

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


def policy_factory(name: str) -> Callable[..., Policy]:
    """The registered factory (usually the class) of ``name`` (any spelling :func:`canonical_name` accepts)."""
    key = canonical_name(name)
    if key is None:
        raise ValueError(f"unknown policy {name!r}{suggest(name, _REGISTRY)}")
    return _REGISTRY[key]


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


# tuned baseline parameters, one YAML file per scenario (written by python -m agents.tune_baselines)
TUNED_DIR = Path(__file__).resolve().parent / "hyperparams" / "baselines"


def tuned_file(scenario: str) -> Path:
    """The file holding the tuned baseline parameters of ``scenario`` (it may not exist)."""
    return TUNED_DIR / f"{scenario}.yml"


def tuned_params(name: str, scenario: str | None) -> dict[str, Any]:
    """The parameters of heuristic ``name`` tuned on validation seeds of ``scenario``; ``{}`` when the scenario
    has no file (or is ``None``, a custom one) or the file does not list the heuristic."""
    if scenario is None or not tuned_file(scenario).is_file():
        return {}
    import yaml

    with open(tuned_file(scenario), encoding="utf-8") as fh:
        data = yaml.safe_load(fh) or {}
    entry = (data.get("baselines") or {}).get(canonical_name(name) or name)
    return dict(entry.get("params") or {}) if entry else {}


def env_scenario(env: Any) -> str | None:
    """The named scenario of a VMIMO front end (``vmimo_env.scenario.scenario_of`` of its BS view's config).

    The episode length and the reward mode may differ from the scenario's: a heuristic does not read the reward,
    so the training env of a recipe (``reward_mode: soft``) finds the parameters tuned for its world."""
    from vmimo_env.frontend import view_fetcher
    from vmimo_env.scenario import scenario_of

    return scenario_of(view_fetcher(env)[0]().cfg, ignore=("horizon", "reward_mode"))


def make_policy(spec: Any, env: Any, tuned: bool = False, **kwargs: Any) -> Policy:
    """Build a policy for ``env`` from any spec of the module docstring.

    ``tuned``: for a registered heuristic, start from :func:`tuned_params` of the env's scenario
    (:func:`env_scenario`); ``kwargs`` override them. Other specs ignore it (they have no tuned parameters)."""
    if not isinstance(spec, str):
        if hasattr(spec, "act") and hasattr(spec, "reset"):
            return spec
        from agents.policies import SB3Policy

        return SB3Policy(spec, env, **kwargs)
    name = canonical_name(spec)
    if name is not None:
        if tuned:
            kwargs = {**tuned_params(name, env_scenario(env)), **kwargs}
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
