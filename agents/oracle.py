"""The clairvoyant oracle: a rollout search with perfect foresight that never ends below its base policy.

Each slot and each environment, the clairvoyant oracle copies the environment's full state *including its random
stream* (``VMIMOCore.replicate(rows)``), so it knows the future: this slot's arrivals, the fading, the latent noise
and which scenes the frozen model will classify correctly. It is a reference for what schedule quality plus
foresight reach, **not an upper bound** on causal policies in any proven sense (the search is local), and its
return mixes luck (knowing which noisy latents land right) with schedule quality: compare causal policies with
the causal planner (``agents.planner``), use this one to see how much foresight is worth.

The search is Bertsekas' rollout algorithm on the known future:

1. the **incumbent** is the base policy's action (default max-weight), scored by the clairvoyant reward-to-go
   ``Q(x_t, a) = r_t(a) + J_base(x_{t+1})``: this slot's reward plus the base policy's return from the next slot to
   the **end of the episode** (``lookahead=None``, the default);
2. **candidates**: the actions of other heuristics for this slot, "everyone idle" and last slot's choice, then
   ``rounds`` of **coordinate descent** around the incumbent (for every device every alternative group, power
   level and prefix; for every used group every bandwidth level in {0, ¼, ½, ¾, 1});
3. a candidate replaces the incumbent only if its reward-to-go is strictly higher.

**Monotonicity** (the cost-improvement property of rollout): with ``V_t = Σ_{s<t} r_s + J_base(x_t)``, the played
action ``a_t`` has ``Q(x_t, a_t) ≥ Q(x_t, base(x_t)) = J_base(x_t)``, so ``V_{t+1} = Σ_{s<t} r_s + Q(x_t, a_t) ≥
V_t``; ``V_0`` is the base policy's return on that seed and ``V_H`` the oracle's, so the oracle's return is at least
its base policy's **on every seed**, exactly, whenever the base policy is deterministic and memoryless (its action
a function of the BS view alone: max-weight, NAS-VMIMO, greedy, SUS; not round-robin or fractional power, which
carry a pointer). ``tests/test_oracle_monotone.py`` checks it seed by seed. A finite ``lookahead`` (score = this
slot plus ``lookahead`` base slots) is cheaper and usually about as good, but without the guarantee.

Every set of alternatives is scored in **one batched step** of a replicated core with one row per (environment,
candidate), then rolled out to the end (or ``lookahead``) under the base policy. Cost per slot: ~``(candidates +
rounds · (K (G + L_p + L_c) + 5 G)) × slots left`` environment steps: use it for evaluation, not for training
(``rounds=0`` keeps only the heuristics' candidates). Being clairvoyant, it needs the simulator in its own process
(a ``gym.make`` env, wrapped or not, the native vector env or a ``VMIMOCore``): it uses the core's public
``replicate``, ``step`` and ``bs_view`` only, and decides like every heuristic from the BS view.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from agents.heuristics.base import Heuristic
from agents.policies import register_policy
from vmimo_env.bs_view import BSView

BANDWIDTH_LEVELS = (0.0, 0.25, 0.5, 0.75, 1.0)
DEFAULT_CANDIDATES = ("coverage", "round_robin", "greedy", "proportional_fair", "fractional_power", "sus",
                      "max_weight", "nas_vmimo")  # the registered ones propose starting points
# deterministic heuristics whose action is a function of the BS view alone: the rollout guarantee needs one as base
MEMORYLESS_BASES = ("max_weight", "nas_vmimo", "greedy", "sus", "coverage")


@register_policy("oracle")
@register_policy("clairvoyant")
class OraclePolicy(Heuristic):
    """The clairvoyant oracle: monotone rollout search over a discretised action space (see the module docstring).

    Knows the whole ``VMIMOCore`` state, including its random number generators (the future), through
    ``VMIMOCore.replicate``. Parameters: ``lookahead`` base-policy slots scored after the decision (default None:
    to the end of the episode, which makes the return at least the base policy's on every seed), ``rounds`` of
    coordinate descent, ``candidates`` (heuristic names proposing alternatives; unregistered ones are skipped),
    ``base`` (memoryless heuristic of the incumbent and of the rollouts, :data:`MEMORYLESS_BASES`).
    """

    name = "oracle"

    def __init__(self, env: Any, lookahead: int | None = None, rounds: int = 1,
                 candidates: tuple[str, ...] = DEFAULT_CANDIDATES, base: str = "max_weight", env_chunk: int = 8,
                 **kwargs: Any) -> None:
        super().__init__(env, **kwargs)
        from agents.policies import make_policy
        from agents.registry import canonical_name, policy_names

        self.sim = simulator_of(env)
        self.lookahead = None if lookahead is None else int(lookahead)
        self.rounds = int(rounds)
        self.env_chunk = int(env_chunk)  # environments searched together (bounds the replicated core's memory)
        self.base_name = canonical_name(base) or base
        if self.base_name not in MEMORYLESS_BASES:
            import warnings

            warnings.warn(f"clairvoyant oracle: base {base!r} is not known to be memoryless "
                          f"({', '.join(MEMORYLESS_BASES)}); the return is then not guaranteed to reach the base "
                          f"policy's", stacklevel=2)
        self.base = make_policy(self.base_name, self.view)
        names = [n for n in candidates if n in policy_names() and n != self.base_name]
        self.proposers = [make_policy(name, self.view) for name in names]
        self.prev: dict[str, np.ndarray] | None = None
        self.last_scores: np.ndarray | None = None  # per env: the played action's clairvoyant reward-to-go
        self.last_base_scores: np.ndarray | None = None  # per env: the base action's

    def reset(self, seed: int | None = None) -> None:
        super().reset(seed)
        for p in (self.base, *self.proposers):
            p.reset(seed)
        self.prev = None

    # ------------------------------------------------------------------ search
    def act_batch(self, info: dict[str, Any]) -> dict[str, np.ndarray]:
        N, K, G = self.N, self.K, self.G
        view = self.view
        base = self.base.act_view(view, info)
        proposals = [p.act_view(view, info) for p in self.proposers]
        idle = {"group": np.zeros((N, K), np.int64), "power": np.zeros((N, K), np.int64),
                "compression": np.zeros((N, K), np.int64), "bandwidth": np.zeros((N, G))}
        proposals.append(idle)
        if self.prev is not None:
            proposals.append(self.prev)
        best = {k: np.array(v, copy=True) for k, v in base.items()}
        best["bandwidth"] = best["bandwidth"].astype(np.float64)
        scores = np.full(N, -np.inf)
        for lo in range(0, N, self.env_chunk):
            ids = np.arange(lo, min(N, lo + self.env_chunk))
            # 0. the incumbent: the base policy's action, scored by its reward-to-go (the base policy's own return
            # from here, which every accepted candidate must beat: the rollout guarantee)
            inc = [(int(i), {k: np.asarray(base[k][i]) for k in base}) for i in ids]
            scores[ids] = self._score(view, inc)
            # 1. candidates of every proposer, all environments of the chunk in one batched rollout
            cands = [(int(i), {k: np.asarray(p[k][i]) for k in p}) for i in ids for p in proposals]
            self._keep_best(cands, self._score(view, cands), best, scores)
            # 2. coordinate descent around each environment's incumbent
            for _ in range(self.rounds):
                neigh = [(int(i), b) for i in ids for b in self._neighbours({k: v[i] for k, v in best.items()})]
                if not neigh or not self._keep_best(neigh, self._score(view, neigh), best, scores):
                    break
        self.prev = {k: v.copy() for k, v in best.items()}
        self.last_scores = scores
        return best

    @staticmethod
    def _keep_best(cands: list[tuple[int, dict[str, np.ndarray]]], s: np.ndarray, best: dict[str, np.ndarray],
                   scores: np.ndarray) -> bool:
        """Adopt, per environment, the best-scoring candidate if it beats the incumbent; True if any did."""
        improved = False
        env = np.array([i for i, _ in cands])
        for i in np.unique(env):
            rows = np.flatnonzero(env == i)
            j = rows[int(np.argmax(s[rows]))]
            if s[j] > scores[i] + 1e-12:
                for k, v in cands[j][1].items():
                    best[k][i] = v
                scores[i] = s[j]
                improved = True
        return improved

    def _neighbours(self, a: dict[str, np.ndarray]) -> list[dict[str, np.ndarray]]:
        """Single-coordinate changes of ``a`` that can change the outcome (an idle device's power and prefix
        cannot, nor can the band share of an empty group)."""
        K, G = self.K, self.G
        L_c = len(self.view.prefix_levels)
        out = []

        def changed(key: str, idx: int, value: Any) -> dict[str, np.ndarray]:
            b = {kk: vv.copy() for kk, vv in a.items()}
            b[key][idx] = value
            return b

        for k in range(K):
            out += [changed("group", k, v) for v in range(G + 1) if v != a["group"][k]]
            if a["group"][k] > 0:
                out += [changed("power", k, v) for v in range(self.L_p) if v != a["power"][k]]
                out += [changed("compression", k, v) for v in range(L_c) if v != a["compression"][k]]
        for g in range(G):
            if (a["group"] == g + 1).any():
                out += [changed("bandwidth", g, lvl) for lvl in BANDWIDTH_LEVELS
                        if abs(lvl - float(a["bandwidth"][g])) > 1e-6]
        return out

    def _score(self, view: BSView, cands: list[tuple[int, dict[str, np.ndarray]]]) -> np.ndarray:
        """Clairvoyant reward-to-go of each (env, action) candidate: this slot's reward plus the base policy's
        rewards to the end of the episode (or over ``lookahead`` slots), every row on its environment's known
        future."""
        from agents.policies import make_policy

        rows = np.array([i for i, _ in cands])
        rep = self.sim.replicate(rows)
        g = np.stack([c["group"] for _, c in cands]).astype(np.int64)
        p = np.stack([c["power"] for _, c in cands]).astype(np.int64)
        c_ = np.stack([c["compression"] for _, c in cands]).astype(np.int64)
        b = np.clip(np.stack([c["bandwidth"] for _, c in cands]).astype(np.float64), 0.0, 1.0).astype(np.float32)
        total = rep.step(g, p, c_, b).reward.astype(np.float64)
        left = self.cfg.horizon - view.t[rows] - 1  # no reward after the episode's last slot
        steps = int(left.max()) if self.lookahead is None else int(min(self.lookahead, left.max()))
        if steps > 0:
            rep_view = rep.bs_view()
            rollout_reward(rep, make_policy(self.base_name, rep_view), steps, left, rep_view, out=total)
        return total


def rollout_reward(rep: Any, base: Any, steps: int, left: np.ndarray, view: Any | None = None,
                   out: np.ndarray | None = None) -> np.ndarray:
    """Reward of every row of the replicated core ``rep`` over ``steps`` slots played by ``base`` (a heuristic
    built on ``rep``), rows with ``left`` slots of their episode left counting only those, added slot by slot to
    ``out`` (a new zero array when None) and returned; ``view`` is ``rep``'s current BS view when the caller
    already has it. The rollout the clairvoyant oracle and the planner share."""
    total = np.zeros(rep.N) if out is None else out
    for s in range(steps):
        a = base.act_view(view if (s == 0 and view is not None) else rep.bs_view(), {})
        r = rep.step(a["group"].astype(np.int64), a["power"].astype(np.int64), a["compression"].astype(np.int64),
                     np.clip(a["bandwidth"], 0.0, 1.0).astype(np.float32)).reward
        total += np.where(s < left, r, 0.0)
    return total


def simulator_of(env: Any) -> Any:
    """The ``VMIMOCore`` behind an in-process VMIMO front end, through public attributes (``get_wrapper_attr``
    for a wrapped Gymnasium env, ``unwrapped`` for a vector env); the clairvoyant oracle and the causal planner use
    its ``replicate``, ``step`` and ``bs_view`` only."""
    if callable(getattr(env, "replicate", None)):
        return env
    core = None
    if isinstance(env, gym.vector.VectorEnv):
        core = getattr(env.unwrapped, "core", None)
    elif isinstance(env, gym.Env):
        try:
            core = env.get_wrapper_attr("core")
        except AttributeError:
            core = None
    if core is None or not callable(getattr(core, "replicate", None)):
        raise TypeError(f"this policy plans on the simulator itself (VMIMOCore.replicate), so it needs an in-process "
                        f"VMIMO env (gym.make, the native vector env or a VMIMOCore), got {type(env).__name__}")
    return core
