"""A causal model-predictive planner: the strongest model-based baseline, deciding on *sampled* futures.

Each slot and each environment the planner

1. collects **candidate actions**: the action every proposer (default: the strong heuristics that are registered,
   ``coverage``, ``max_weight``, ``fractional_power``) proposes for this slot, plus local perturbations of the
   base policy's action: per device idle ↔ scheduled, power level ±1 and prefix level ±1;
2. scores each candidate by the **expected return of the next ``horizon`` slots** (default: the deadline, so every
   scene pending now closes inside the window): the candidate this slot, then the base policy, averaged over
   ``samples`` futures drawn from the model's laws with fresh randomness;
3. plays the candidate of highest lower confidence bound on its gain over the base policy's action (mean paired
   gain minus ``margin`` standard errors over the sampled futures), the base action when none is positive.

All candidates × futures of a batch of environments run in **one** replicated core (``N = Σ candidates ·
samples`` rows) per horizon step. Future ``m`` of an environment is the same for all its candidates (common random
numbers: the candidates are compared on equal futures, which keeps the comparison's noise low).

Information set (what the planner knows and what it samples):

- **known, as the BS knows it at the start of the slot**: the BS view (``VMIMOCore.bs_view``: current channels,
  i.e. CSI of age 0, since the slot's fading is drawn before the slot and the slot uses exactly it; large-scale
  gains; queues; head-of-line ages; compute/memory reports; which prefix of which modality of every pending scene
  it holds) and, through the replicated state, the SINR at which it received each held latent, the slowly varying
  large-scale state (device positions, LOS flags, Rician K-factors and shadowing fields, which set how the fading
  evolves: the LOS part of each channel is the deterministic geometric part) and the latent state of the
  compute/memory process behind the reported ``p_joint``;
- **sampled, never read**: everything random from this slot on, from the planner's own generator
  (``VMIMOCore.replicate(..., future_seeds=...)``): this slot's and later arrivals and which scenes they are,
  the fading innovations, the latent noise, the compute/memory innovations (and mobility); and the identity of
  every pending scene, redrawn from the scene pool, so neither the true class labels nor the content of latents
  the BS has not received enter any score. The score is the reward on those sampled scenes with the accuracy
  term counted soft (the head's probability of the sampled scene's class, ``score="soft"``; ``"reward"``: the
  scenario's own 0/1 count): a Monte-Carlo estimate of expected accuracy on scenes drawn from the pool, minus
  energy exactly as the slot charges it.

Measured on VMIMO-v1 against the best causal heuristic: ``python -m benchmarks.bench_planner`` (``docs/planner.md``).

The true random stream of the environment is never copied, so changing it (reseeding the env after the state is
fixed) cannot change a decision; tests check that. Cost per slot: ``(candidates × samples) × horizon`` batched
environment steps; about 3–5 candidates per device. It needs the simulator in its own process, like the
clairvoyant oracle (``agents.oracle.simulator_of``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from agents.heuristics.base import Heuristic, proportional_shares
from agents.oracle import rollout_reward, simulator_of
from agents.policies import register_policy

PREFERRED_CANDIDATES = ("coverage", "max_weight", "fractional_power")
PREFERRED_BASES = ("coverage", "max_weight")
PolicySpec = str | tuple[str, dict[str, Any]]


def available(names: Sequence[str]) -> list[str]:
    """The registered policies among ``names``, in order (a policy another module adds is used when present)."""
    from agents.registry import policy_names

    registered = policy_names()
    return [n for n in names if n in registered]


def _build(spec: PolicySpec, view: Any, tuned: bool = True) -> Heuristic:
    from agents.policies import make_policy

    name, kwargs = (spec, {}) if isinstance(spec, str) else spec
    return make_policy(name, view, tuned=tuned, **kwargs)


@register_policy("planner")
class PlannerPolicy(Heuristic):
    """Causal model-predictive control on sampled futures (see the module docstring for the information set).

    Parameters
    ----------
    horizon:
        Slots scored per candidate, this one included (default ``deadline_slots``).
    samples:
        Sampled futures per candidate (default 8).
    candidates:
        Proposer policies: registered names or ``(spec, kwargs)`` pairs (any :func:`agents.policies.make_policy`
        spec). Default: the registered ones of :data:`PREFERRED_CANDIDATES`.
    base:
        Policy of the horizon's later slots and centre of the perturbations (default ``coverage`` when registered,
        else ``max_weight``); a memoryless one is best, since the planner builds it anew on every replica.
    perturb:
        Add the per-device perturbations of the base action (idle ↔ scheduled, power ±1, prefix ±1).
    score:
        ``"soft"`` (default): the accuracy term of a scored slot is the head's probability of the (sampled) scene's
        class rather than the 0/1 hit, a smooth proxy of accuracy (equal in expectation for a calibrated head)
        with far less variance per sample; ``"reward"``: the scenario's own reward.
    margin:
        A candidate replaces the base action only if its mean gain over it (paired on the same sampled futures)
        minus ``margin`` standard errors is the largest and positive (0: plain argmax of the mean).
    seed:
        Seed of the planner's own generator (the sampled futures); None: the seed given to :meth:`reset`.
    env_chunk:
        Environments planned together (bounds the replicated core's rows).
    tuned_proposers:
        Build the proposers and the base policy with the parameters tuned for the scenario on validation seeds
        (``agents.tune_baselines``). Default False: on VMIMO-v1's validation seeds the planner around the tuned
        coverage scheduler (SINR target 0 dB) scored below the one around its registered defaults (6 dB).
    """

    name = "planner"

    def __init__(self, env: Any, horizon: int | None = None, samples: int = 8,
                 candidates: Sequence[PolicySpec] | None = None, base: PolicySpec | None = None,
                 perturb: bool = True, score: str = "soft", margin: float = 1.0, seed: int | None = None,
                 env_chunk: int = 4, tuned_proposers: bool = False, **kwargs: Any) -> None:
        super().__init__(env, **kwargs)
        self.sim = simulator_of(env)
        self.horizon = self.cfg.deadline_slots if horizon is None else int(horizon)
        self.samples = int(samples)
        if self.horizon < 1 or self.samples < 1:
            raise ValueError(f"horizon and samples must be >= 1, got {self.horizon}, {self.samples}")
        self.base_spec: PolicySpec = base if base is not None else available(PREFERRED_BASES)[0]
        specs = list(candidates) if candidates is not None else available(PREFERRED_CANDIDATES)
        self.candidate_specs = [s for s in specs if s != self.base_spec]
        self.tuned = bool(tuned_proposers)
        self.base = _build(self.base_spec, self.view, self.tuned)
        self.proposers = [_build(s, self.view, self.tuned) for s in self.candidate_specs]
        self.perturb = bool(perturb)
        if score not in ("soft", "reward"):
            raise ValueError(f"score must be 'soft' or 'reward', got {score!r}")
        self.score_mode = score
        self.margin = float(margin)
        self.seed = seed
        self.env_chunk = int(env_chunk)
        self.last_scores: np.ndarray | None = None  # per env: the chosen candidate's mean gain over the base action

    def reset(self, seed: int | None = None) -> None:
        super().reset(self.seed if self.seed is not None else seed)
        for p in (self.base, *self.proposers):
            p.reset(seed)

    # ------------------------------------------------------------------ candidates
    def _perturbations(self, a: dict[str, np.ndarray]) -> list[dict[str, np.ndarray]]:
        """Single-device changes of ``a``: idle a scheduled device (or schedule an idle one into the smallest
        group in use), its power level ±1, its prefix level ±1; shares follow group sizes when groups change."""
        K, G, L_p, L_c = self.K, self.G, self.L_p, len(self.view.prefix_levels)
        out = []

        def changed(key: str, k: int, value: int) -> dict[str, np.ndarray]:
            b = {kk: vv.copy() for kk, vv in a.items()}
            b[key][k] = value
            if key == "group":
                b["bandwidth"] = proportional_shares(b["group"][None], G)[0]
            return b

        sizes = np.array([(a["group"] == g + 1).sum() for g in range(G)])
        join = int(np.argmin(np.where(sizes > 0, sizes, np.iinfo(np.int64).max))) + 1 if sizes.any() else 1
        for k in range(K):
            if a["group"][k] > 0:
                out.append(changed("group", k, 0))
                for key, top in (("power", L_p), ("compression", L_c)):
                    for d in (-1, 1):
                        v = int(a[key][k]) + d
                        if 0 <= v < top:
                            out.append(changed(key, k, v))
            elif sizes[join - 1] < self.Nr or not sizes.any():
                out.append(changed("group", k, join))
        return out

    def _candidates(self, i: int, proposals: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
        """Environment ``i``'s candidates, the base action first, duplicates removed."""
        base = {k: np.asarray(v[i]) for k, v in proposals[0].items()}
        cands = [base] + [{k: np.asarray(v[i]) for k, v in p.items()} for p in proposals[1:]]
        if self.perturb:
            cands += self._perturbations(base)
        seen, out = set(), []
        for c in cands:
            key = b"".join(np.ascontiguousarray(c[k]).astype(np.float64).tobytes()
                           for k in ("group", "power", "compression", "bandwidth"))
            if key not in seen:
                seen.add(key)
                out.append(c)
        return out

    # ------------------------------------------------------------------ planning
    def act_batch(self, info: dict[str, Any]) -> dict[str, np.ndarray]:
        view = self.view
        proposals = [p.act_view(view, info) for p in (self.base, *self.proposers)]
        best = {k: np.array(v, copy=True) for k, v in proposals[0].items()}
        # one batch of future seeds per slot, drawn for every env even when it has one candidate: the planner's
        # stream then depends on the slot count only, so a decision never depends on other environments' states
        seeds = self.rng.integers(0, 2**63 - 1, size=(self.N, self.samples))
        gain = np.zeros(self.N)
        for lo in range(0, self.N, self.env_chunk):
            ids = range(lo, min(self.N, lo + self.env_chunk))
            cands = [(i, c) for i in ids for c in self._candidates(i, proposals)]
            per_sample = self._score(view, cands, seeds)  # (candidates, samples)
            env = np.array([i for i, _ in cands])
            for i in ids:
                rows = np.flatnonzero(env == i)
                # paired differences to the base action (same sampled futures): a candidate counts only when its
                # mean gain clears `margin` standard errors, so sampling noise rarely displaces the base action
                d = per_sample[rows] - per_sample[rows[0]]
                se = d.std(axis=1, ddof=1) / np.sqrt(self.samples) if self.samples > 1 else np.zeros(len(rows))
                lcb = d.mean(axis=1) - self.margin * se
                lcb[0] = 0.0
                j = rows[int(np.argmax(lcb))]  # first maximum: the base action wins ties
                for k, v in cands[j][1].items():
                    best[k][i] = v
                gain[i] = d[j - rows[0]].mean()
        self.last_scores = gain
        return best

    def _score(self, view: Any, cands: list[tuple[int, dict[str, np.ndarray]]], seeds: np.ndarray) -> np.ndarray:
        """(candidates, samples): each (env, action) candidate's return over the horizon (this slot with the
        candidate, then the base policy) on each sampled future, cut at the episode's end."""
        S = self.samples
        rows = np.repeat([i for i, _ in cands], S)
        future = np.concatenate([seeds[i] for i, _ in cands])
        rep = self.sim.replicate(rows, future_seeds=future,
                                 reward_mode="soft" if self.score_mode == "soft" else None)

        def stacked(key: str, dtype: type) -> np.ndarray:
            return np.repeat(np.stack([c[key] for _, c in cands]), S, axis=0).astype(dtype)

        total = rep.step(stacked("group", np.int64), stacked("power", np.int64), stacked("compression", np.int64),
                         np.clip(stacked("bandwidth", np.float64), 0.0, 1.0).astype(np.float32)).reward.astype(float)
        left = self.cfg.horizon - np.asarray(view.t)[rows] - 1  # slots after this one in the episode
        steps = int(min(self.horizon - 1, left.max()))
        if steps > 0:
            rep_view = rep.bs_view()
            rollout_reward(rep, _build(self.base_spec, rep_view, self.tuned), steps, left, rep_view, out=total)
        return total.reshape(-1, S)
