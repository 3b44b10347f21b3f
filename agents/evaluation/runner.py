"""Running policies on held-out seeds with common random numbers: :func:`run_policy`, :func:`evaluate_policies`.

Every policy runs one episode per seed, and episode ``j`` of every policy starts from the same environment seed.
The environment draws a fixed amount of randomness per slot whatever the action, so arrivals, scenes, fading and
latent noise are *identical* across policies, and paired differences isolate the policies' effect with far
narrower intervals than independent runs. Episodes run batched: one ``VMIMOVectorEnv`` holds up to ``batch_size``
episodes, each reset with its own seed (environment ``i`` with seed ``s_i`` reproduces a single ``VMIMOEnv`` reset
with ``s_i``, step for step).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agents.common.envs import TEST_SEED_BASE, is_vmimo, make_eval_vector_env
from agents.common.stats import mean_ci

# per-episode metrics every VMIMO evaluation reports (names used in CSV columns and W&B keys)
METRICS = ("return", "accuracy", "energy_per_scene_mj", "expired_frac", "full_cover_frac", "accuracy_term",
           "energy_term", "energy_j", "arrived", "correct", "expired_empty", "closed_full", "dropped", "length")
# step-info entries summed per episode; closed_full counts the scenes closed holding every modality some device
# senses (the coverage a v1 scheduler is judged on, StepResult.closed_full)
SUM_KEYS = ("accuracy_term", "energy_term", "energy_j", "energy_tx_j", "energy_circuit_j", "energy_encode_j",
            "arrived", "correct", "expired_empty", "closed_full", "dropped")


@dataclass
class PolicyResult:
    """Per-episode results of one policy: ``episodes[metric]`` (n,), ``per_device[stat]`` (n, K)."""

    name: str
    seeds: np.ndarray
    episodes: dict[str, np.ndarray]
    per_device: dict[str, np.ndarray] = field(default_factory=dict)
    wall_s: float = 0.0
    kind: str = "heuristic"  # heuristic | planner | oracle (clairvoyant) | model | user

    def mean_ci(self, metric: str = "return") -> tuple[float, float]:
        return mean_ci(self.episodes[metric])

    def summary(self) -> dict[str, float]:
        out: dict[str, float] = {"episodes": float(len(self.seeds)), "wall_s": self.wall_s}
        for metric, values in self.episodes.items():
            m, h = mean_ci(values)
            out[f"{metric}_mean"], out[f"{metric}_ci95"] = m, h
        return out


def _kind_of(spec: Any) -> str:
    """``heuristic``, ``planner`` (causal MPC), ``oracle`` (the clairvoyant oracle), ``model`` (trained) or ``user``
    (a ``module:ClassName`` policy class)."""
    if isinstance(spec, str):
        from agents.registry import canonical_name, is_user_class_spec

        name = canonical_name(spec)
        if name in ("oracle", "clairvoyant"):
            return "oracle"
        if name == "planner":
            return "planner"
        if name is not None:
            return "heuristic"
        return "user" if is_user_class_spec(spec) else "model"
    return "model"


def _label(spec: Any) -> str:
    if isinstance(spec, str):
        from agents.registry import canonical_name

        if canonical_name(spec) is not None:
            return canonical_name(spec)
        p = Path(spec.split(":", 1)[-1])
        if p.suffix == ".zip":  # runs/ppo/<run>/best_model.zip -> ppo/<run>/best_model
            return "/".join(p.with_suffix("").parts[-3:])
        return spec
    return getattr(spec, "name", type(spec).__name__)


def run_policy(spec: Any, env_id: str, env_kwargs: dict[str, Any] | None, seeds: Sequence[int], *,
               batch_size: int = 64, name: str | None = None, policy_kwargs: dict[str, Any] | None = None,
               env_cache: dict[int, Any] | None = None, max_steps: int = 100_000) -> PolicyResult:
    """Run one episode per seed of ``spec`` (name, model path, SB3 model or a ``env -> Policy`` callable)."""
    from agents.registry import make_policy

    seeds = np.asarray(list(seeds), dtype=np.int64)
    vmimo = is_vmimo(env_id)
    chunks: list[dict[str, np.ndarray]] = []
    dev_chunks: list[dict[str, np.ndarray]] = []
    t0 = time.perf_counter()
    for start in range(0, len(seeds), batch_size):
        chunk = seeds[start:start + batch_size]
        n = len(chunk)
        env = env_cache.get(n) if env_cache is not None else None
        if env is None:
            env = make_eval_vector_env(env_id, env_kwargs, n)
            if env_cache is not None:
                env_cache[n] = env
        if isinstance(spec, type) or (callable(spec) and not hasattr(spec, "predict") and not hasattr(spec, "act")):
            policy = spec(env, **(policy_kwargs or {}))  # a factory env -> Policy
        else:
            policy = make_policy(spec, env, **(policy_kwargs or {}))
        obs, info = reset_with_seeds(env, chunk)
        policy.reset(int(chunk[0]))
        done = np.zeros(n, dtype=bool)
        sums = {k: np.zeros(n) for k in ("return", "length", *SUM_KEYS)}
        dev: dict[str, np.ndarray] = {}
        steps = 0
        while not done.all() and steps < max_steps:
            action = policy.act(obs, info)
            obs, reward, terminated, truncated, info = env.step(action)
            live = ~done
            sums["return"] += np.where(live, reward, 0.0)
            sums["length"] += live
            if vmimo:
                for key in SUM_KEYS:
                    sums[key] += np.where(live, np.asarray(info[key], dtype=float), 0.0)
                _accumulate_devices(dev, info, live)
            done |= np.asarray(terminated) | np.asarray(truncated)
            steps += 1
        chunks.append(sums)
        dev_chunks.append(dev)
    episodes = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
    if vmimo:
        arrived = np.maximum(episodes["arrived"], 1.0)
        episodes["accuracy"] = episodes["correct"] / arrived
        episodes["expired_frac"] = episodes["expired_empty"] / arrived
        episodes["full_cover_frac"] = episodes["closed_full"] / arrived
        episodes["energy_per_scene_mj"] = 1e3 * episodes["energy_j"] / arrived
    else:
        for key in SUM_KEYS:
            episodes.pop(key, None)
    per_device = {}
    if dev_chunks and dev_chunks[0]:
        raw = {k: np.concatenate([c[k] for c in dev_chunks]) for k in dev_chunks[0]}
        length = np.maximum(episodes["length"], 1.0)[:, None]
        tx = np.maximum(raw["tx_slots"], 1.0)
        per_device = {"tx_frac": raw["tx_slots"] / length, "latents_per_slot": raw["sent"] / length,
                      "prefix": np.where(raw["tx_slots"] > 0, raw["prefix_sum"] / tx, np.nan),
                      "power_dbm": np.where(raw["tx_slots"] > 0, raw["power_dbm_sum"] / tx, np.nan)}
    return PolicyResult(name or _label(spec), seeds, episodes, per_device, time.perf_counter() - t0, _kind_of(spec))


def reset_with_seeds(env: Any, seeds: Sequence[int]) -> tuple[Any, Any]:
    """Reset vector environment ``i`` with ``seeds[i]``.

    Consecutive seeds use the Gymnasium convention ``reset(seed=s0)`` (env i gets ``s0 + i``). Other lists go
    through ``reset(seed=[...])``; ``VMIMOVectorEnv.reset`` documents list seeds but hands the list to
    ``VectorEnv.reset``, which rejects it, so for VMIMO the per-env seeds are applied to the core directly.
    """
    seeds = [int(s) for s in seeds]
    if seeds == list(range(seeds[0], seeds[0] + len(seeds))):
        return env.reset(seed=seeds[0])
    try:
        return env.reset(seed=seeds)
    except Exception:
        core = getattr(env.unwrapped, "core", None)
        if core is None:
            raise
        _, info = env.reset(seed=seeds[0])
        core.reset(np.arange(len(seeds)), seeds)
        return env.unwrapped._obs(), info


def _accumulate_devices(dev: dict[str, np.ndarray], info: dict[str, Any], live: np.ndarray) -> None:
    sent = np.asarray(info["sent"], dtype=float)
    tx = (np.asarray(info["group"]) > 0) & (sent > 0) & live[:, None]
    if not dev:
        for key in ("tx_slots", "sent", "prefix_sum", "power_dbm_sum"):
            dev[key] = np.zeros(sent.shape)
    dev["tx_slots"] += tx
    dev["sent"] += np.where(tx, sent, 0.0)
    dev["prefix_sum"] += np.where(tx, info["prefix"], 0.0)
    dev["power_dbm_sum"] += np.where(tx, 10.0 * np.log10(np.maximum(info["power_w"], 1e-30)) + 30.0, 0.0)


def evaluate_policies(specs: Iterable[Any], env_id: str = "VMIMO-v0", env_kwargs: dict[str, Any] | None = None,
                      seeds: Sequence[int] | None = None, n_episodes: int = 50, seed_base: int = TEST_SEED_BASE,
                      batch_size: int = 64, verbose: bool = False,
                      policy_kwargs: dict[str, Any] | None = None) -> dict[str, PolicyResult]:
    """Run every policy on the same seeds (``seed_base + j`` unless ``seeds`` is given); ``policy_kwargs`` go to
    every ``make_policy`` call (e.g. ``{"tuned": True}``: the heuristics' tuned parameters)."""
    if seeds is None:
        seeds = range(seed_base, seed_base + n_episodes)
    seeds = list(seeds)
    out: dict[str, PolicyResult] = {}
    cache: dict[int, Any] = {}
    for spec in specs:
        res = run_policy(spec, env_id, env_kwargs, seeds, batch_size=batch_size, env_cache=cache,
                         policy_kwargs=policy_kwargs)
        if res.name in out:
            res.name = f"{res.name}#{len(out)}"
        out[res.name] = res
        if verbose:
            m, h = res.mean_ci()
            print(f"  {res.name:<28s} return {m:9.3f} ± {h:.3f}   ({res.wall_s:.1f} s)", flush=True)
    return out
