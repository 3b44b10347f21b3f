"""Hyperparameter files in the RL Baselines3 Zoo layout, and the command-line ``key=value`` parsers.

Two files per algorithm, read by :func:`load_hyperparams`:

* ``agents/hyperparams/<algo>.yml`` loads into the RL Zoo as is (``python -m rl_zoo3.train -conf ...``): it maps an
  environment id to SB3 constructor kwargs and the keys the Zoo consumes itself (:data:`RL_ZOO_KEYS`), and is keyed
  also by the flat-action id the Zoo must use for the algorithm (``VMIMO-MultiDiscrete-v0`` for PPO/A2C,
  ``VMIMO-Box-v0`` for SAC/TD3/DDPG: the Zoo's algorithms reject ``VMIMO-v0``'s Dict action).
* ``agents/hyperparams/vmimo/<algo>.yml`` (optional) holds what only this project understands
  (:data:`PROJECT_KEYS`, and policies the Zoo cannot resolve by name such as ``DevicePolicy`` with their
  ``policy_kwargs``); its entry of the same key is merged over the Zoo file's (a key there replaces the one here).
  The Zoo never reads it. For ``-conf FILE`` the overlay is ``vmimo/<name of FILE>`` next to it, when it exists.

The merged entry holds SB3 keyword arguments plus keys consumed here instead of being passed on:

======================  =================================================================================
``n_timesteps``         default training budget (env steps)
``n_envs``              number of parallel environments
``policy``              policy class name (``MlpPolicy``, ``MlpLstmPolicy``, ``DevicePolicy``...)
``normalize``           ``true``/``false`` or a dict of ``VecNormalize`` kwargs (``{norm_obs: true}``)
``noise_type``          ``normal`` or ``ornstein-uhlenbeck`` action noise (TD3/DDPG), with ``noise_std``
``eval_freq`` ...       ``eval_freq``, ``eval_episodes``, ``save_freq``: defaults for the matching CLI flags
``train_env_kwargs``    env kwargs for the *training* environments only (e.g. ``{reward_mode: soft}``); evaluation
                        and baselines run the environment as ``--env-kwargs`` gives it; kept on resume
``pretrain``            behaviour-cloning warm start from a heuristic (PPO/A2C/MaskablePPO): a name or
                        ``{heuristic: fractional_power, steps: 400, epochs: 8, ...}`` (``agents.common.pretrain``)
======================  =================================================================================

Values may use Zoo conventions: ``lin_3e-4`` (linear schedule from 3e-4 to 0), ``policy_kwargs`` as a YAML mapping
(``{net_arch: [64, 64], activation_fn: tanh}``) or as the Zoo's ``"dict(net_arch=[64, 64])"`` string. An env id
missing from the file falls back to the ``default`` entry when the file has one.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

HYPERPARAMS_DIR = Path(__file__).resolve().parent.parent / "hyperparams"
PROJECT_SUBDIR = "vmimo"  # the overlay folder next to a Zoo file
# keys of a Zoo file entry that rl_zoo3 (ExperimentManager) consumes itself instead of passing them to the algorithm
RL_ZOO_KEYS = ("n_timesteps", "n_envs", "policy", "normalize", "noise_type", "noise_std", "env_kwargs", "frame_stack",
               "env_wrapper", "vec_env_wrapper", "callback", "monitor_kwargs")
# keys only train_agent.py understands: they live in the overlay file, the Zoo would pass them to the algorithm
PROJECT_KEYS = ("eval_freq", "eval_episodes", "save_freq", "train_env_kwargs", "pretrain")
ZOO_KEYS = ("n_timesteps", "n_envs", "policy", "normalize", "noise_type", "noise_std", "eval_freq",
            "eval_episodes", "save_freq", "train_env_kwargs", "pretrain")
ACTIVATIONS = {"tanh": "Tanh", "relu": "ReLU", "elu": "ELU", "leaky_relu": "LeakyReLU", "gelu": "GELU",
               "silu": "SiLU"}


def hyperparams_path(algo: str, conf_file: str | Path | None = None) -> Path:
    """The Zoo-loadable file: ``conf_file``, else ``agents/hyperparams/<algo>.yml``."""
    return Path(conf_file) if conf_file else HYPERPARAMS_DIR / f"{algo}.yml"


def project_hyperparams_path(algo: str, conf_file: str | Path | None = None) -> Path:
    """The project-only overlay of :func:`hyperparams_path`: ``vmimo/<same name>`` next to it (may not exist)."""
    path = hyperparams_path(algo, conf_file)
    return path.parent / PROJECT_SUBDIR / path.name


def read_hyperparams_file(path: Path) -> dict[str, dict[str, Any]]:
    """Every entry of a hyperparameter YAML file (env id -> mapping); ``ValueError`` names a malformed one."""
    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping from environment ids to hyperparameters, got "
                         f"{type(data).__name__}")
    out: dict[str, dict[str, Any]] = {}
    for key, entry in data.items():
        entry = entry or {}
        if not isinstance(entry, dict):
            raise ValueError(f"{path}: entry {key!r} must be a mapping, got {type(entry).__name__}")
        out[str(key)] = dict(entry)
    return out


def load_hyperparams(algo: str, env_id: str, conf_file: str | Path | None = None) -> tuple[dict[str, Any], str]:
    """The entry for ``env_id`` (or ``default``) of the algorithm's Zoo file with the overlay's entry of the same
    key merged over it (see the module docstring), and the key that was used."""
    path = hyperparams_path(algo, conf_file)
    if not path.is_file():
        raise FileNotFoundError(f"hyperparameter file {path} not found")
    data = read_hyperparams_file(path)
    key = next((k for k in (env_id, "default") if k in data), None)
    if key is None:
        raise KeyError(f"{path} has no entry for {env_id!r} and no 'default' entry; known: {sorted(data)}")
    entry = data[key]
    overlay = project_hyperparams_path(algo, conf_file)
    if overlay.is_file():
        entry.update(read_hyperparams_file(overlay).get(key, {}))
    return entry, key


def parse_value(text: str) -> Any:
    """A command-line value: YAML scalars/lists/maps (``3e-4``, ``true``, ``[64, 64]``, ``{a: 1}``), else the string."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str):
        try:  # YAML 1.1 reads "3e-4" (no dot) as a string; a number is what anyone typing it means
            number = float(value) if any(c in value for c in ".eE") else int(value)
            # "1e6" for a buffer size or budget means the integer
            if isinstance(number, float) and "." not in value and number.is_integer() and abs(number) >= 1:
                return int(number)
            return number
        except ValueError:
            return value
    return value


def parse_assignments(items: Sequence[str] | None, sep: str) -> dict[str, Any]:
    """``["a=1", "b=x"]`` → ``{"a": 1, "b": "x"}`` (``sep`` is ``=`` for hyperparams, ``:`` for env kwargs)."""
    out: dict[str, Any] = {}
    for item in items or []:
        if sep not in item:
            raise ValueError(f"expected key{sep}value, got {item!r}")
        key, value = item.split(sep, 1)
        key = key.strip()
        if not key:
            raise ValueError(f"empty key in {item!r}")
        out[key] = parse_value(value)
    return out


def parse_hyperparams(items: Sequence[str] | None) -> dict[str, Any]:
    """Hyperparameter overrides written ``key=value`` (this project) or ``key:value`` (the RL Zoo's ``-params``):
    the key ends at the first ``=`` or ``:``, so values may contain either (``policy_kwargs:dict(net_arch=[64])``,
    ``policy_kwargs={net_arch: [64]}``)."""
    out: dict[str, Any] = {}
    for item in items or []:
        cuts = [i for i in (item.find("="), item.find(":")) if i >= 0]
        if not cuts:
            raise ValueError(f"expected key=value or key:value, got {item!r}")
        cut = min(cuts)
        key = item[:cut].strip()
        if not key:
            raise ValueError(f"empty key in {item!r}")
        out[key] = parse_value(item[cut + 1:])
    return out


def check_hyperparam_names(hp: dict[str, Any], algo_cls: type, source: str) -> None:
    """``ValueError`` for a key that is neither a Zoo key of this project (:data:`ZOO_KEYS`) nor a constructor
    argument of ``algo_cls``, with the closest valid name."""
    import difflib
    import inspect

    allowed: set[str] = set()
    for klass in algo_cls.__mro__:  # SB3 constructors pass **kwargs up their bases
        init = klass.__dict__.get("__init__")
        if init is not None:
            allowed |= set(inspect.signature(init).parameters)
    allowed -= {"self", "policy", "env", "args", "kwargs"}  # given by the script, not by a hyperparameter
    allowed |= set(ZOO_KEYS)
    for key in hp:
        if key not in allowed:
            close = difflib.get_close_matches(key, sorted(allowed), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"unknown hyperparameter {key!r} in {source} for {algo_cls.__name__}{hint}")


def check_zoo_entry(hp: dict[str, Any], algo_cls: type, source: str) -> None:
    """``ValueError`` unless ``hp`` loads into the RL Zoo: every key a Zoo key (:data:`RL_ZOO_KEYS`) or a
    constructor argument of ``algo_cls``, and ``policy`` a name the algorithm resolves (``MlpPolicy``...) or a
    dotted import path, which is how the Zoo resolves one."""
    import inspect

    allowed: set[str] = set(RL_ZOO_KEYS)
    for klass in algo_cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is not None:
            allowed |= set(inspect.signature(init).parameters)
    allowed -= {"self", "env", "args", "kwargs"}
    bad = sorted(set(hp) - allowed)
    if bad:
        project = [k for k in bad if k in PROJECT_KEYS]
        hint = f" ({project} belong in the {PROJECT_SUBDIR}/ overlay file)" if project else ""
        raise ValueError(f"{source}: keys {bad} would reach {algo_cls.__name__}() from the RL Zoo{hint}")
    policy = hp.get("policy")
    aliases = getattr(algo_cls, "policy_aliases", {})
    if policy is not None and not (isinstance(policy, str) and (policy in aliases or "." in policy)):
        raise ValueError(f"{source}: policy {policy!r} is not one the RL Zoo can resolve for {algo_cls.__name__} "
                         f"(one of {sorted(aliases)} or a dotted import path); put it in the {PROJECT_SUBDIR}/ "
                         f"overlay file")


def linear_schedule(initial: float) -> Callable[[float], float]:
    """SB3 schedule going linearly from ``initial`` (progress_remaining = 1) to 0."""

    def schedule(progress_remaining: float) -> float:
        return progress_remaining * initial

    schedule.__name__ = f"lin_{initial:g}"
    return schedule


def _parse_policy_kwargs(value: Any) -> dict[str, Any]:
    import torch.nn as nn

    if isinstance(value, str):
        # Zoo style "dict(net_arch=[64, 64], activation_fn=nn.Tanh)": parse the call without eval()
        tree = ast.parse(value.strip(), mode="eval").body
        if not (isinstance(tree, ast.Call) and getattr(tree.func, "id", None) == "dict"):
            raise ValueError(f"policy_kwargs string must look like dict(...), got {value!r}")
        value = {}
        for kw in tree.keywords:
            node = kw.value
            if isinstance(node, ast.Attribute):  # nn.Tanh / th.nn.ReLU
                value[kw.arg] = node.attr
            else:
                value[kw.arg] = ast.literal_eval(node)
    out = dict(value)
    act = out.get("activation_fn")
    if isinstance(act, str):
        name = ACTIVATIONS.get(act.lower(), act)
        if not hasattr(nn, name):
            raise ValueError(f"unknown activation_fn {act!r}")
        out["activation_fn"] = getattr(nn, name)
    return out


def prepare_algo_kwargs(hp: dict[str, Any], n_actions: int | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split a hyperparameter entry into (Zoo keys, SB3 constructor kwargs), converting schedules, policy kwargs
    and action noise to objects."""
    hp = dict(hp)
    zoo = {k: hp.pop(k) for k in ZOO_KEYS if k in hp}
    for key in ("learning_rate", "clip_range", "clip_range_vf"):
        value = hp.get(key)
        if isinstance(value, str) and value.startswith("lin_"):
            hp[key] = linear_schedule(float(value[4:]))
    if "policy_kwargs" in hp and hp["policy_kwargs"] is not None:
        hp["policy_kwargs"] = _parse_policy_kwargs(hp["policy_kwargs"])
    if "train_freq" in hp and isinstance(hp["train_freq"], list):
        hp["train_freq"] = tuple(hp["train_freq"])
    noise_type = zoo.get("noise_type")
    if noise_type:
        if n_actions is None:
            raise ValueError("action noise needs a continuous action space")
        from stable_baselines3.common.noise import NormalActionNoise, OrnsteinUhlenbeckActionNoise

        std = float(zoo.get("noise_std", 0.1)) * np.ones(n_actions)
        if noise_type == "normal":
            hp["action_noise"] = NormalActionNoise(np.zeros(n_actions), std)
        elif noise_type == "ornstein-uhlenbeck":
            hp["action_noise"] = OrnsteinUhlenbeckActionNoise(np.zeros(n_actions), std)
        else:
            raise ValueError(f"noise_type must be 'normal' or 'ornstein-uhlenbeck', got {noise_type!r}")
    return zoo, hp


def normalize_kwargs(value: Any) -> dict[str, Any] | None:
    """``normalize`` entry → VecNormalize kwargs, or None when normalisation is off."""
    if value is None or value is False:
        return None
    if value is True:
        return {}
    if isinstance(value, str):
        value = ast.literal_eval(value)
    if not isinstance(value, dict):
        raise ValueError(f"normalize must be a bool or a dict of VecNormalize kwargs, got {value!r}")
    return dict(value)


def jsonable(value: Any) -> Any:
    """A JSON/YAML-friendly copy of a hyperparameter dict (callables and classes by name)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, type):
        return value.__name__
    name = getattr(value, "__name__", None)
    return name if name else repr(value)


def changed_hyperparams(config: dict[str, Any]) -> list[str]:
    """The hyperparameter keys on which a finished run's ``config.yml`` (as ``train_agent.py`` writes it) differs
    from what the hyperparameter files give today for the same algorithm, environment, ``--conf-file`` and
    ``--hyperparams``: empty when the run is still the shipped recipe's, so a benchmark may reuse it."""
    args = config.get("args") or {}
    recorded = config.get("hyperparams")
    if not isinstance(recorded, dict) or "algo" not in config or "env_id" not in config:
        return ["<config.yml without algo, env_id and hyperparams>"]
    try:
        hp, _ = load_hyperparams(str(config["algo"]), str(config["env_id"]), args.get("conf_file"))
    except (FileNotFoundError, KeyError) as err:
        return [f"<{err}>"]
    hp.update(parse_hyperparams(args.get("hyperparams") or []))
    now = jsonable(hp)
    return sorted(k for k in set(now) | set(recorded) if now.get(k) != recorded.get(k))
