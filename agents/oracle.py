"""A clairvoyant planner: the oracle reference (an upper bound in practice) for small scenarios.

Each slot and each environment, the oracle copies the environment's full state *including its random stream*
(``VMIMOCore.replicate(rows)``), so it knows the future: this slot's arrivals, the fading, the latent noise and
which scenes the frozen model will classify correctly. It then searches a discretised action space:

1. **candidates**: the actions of every heuristic for this slot (they cover sensible groupings, powers and
   prefixes), "everyone idle", and last slot's choice;
2. **coordinate descent** from the best candidate: for every device, every alternative group, power level and
   prefix; for every group, every bandwidth level in {0, ¼, ½, ¾, 1}; the best neighbour becomes the incumbent,
   for ``rounds`` rounds or until nothing improves.

Every set of alternatives is scored in **one batched step** of a replicated core of ``n`` copies. The score is
the reward of the slot plus the reward of the next ``lookahead`` slots (default: the deadline) under a base
policy (max-weight), all on the same known future. The lookahead matters: a scene is scored when it closes (all
devices delivered, or at its deadline), so the accuracy a transmission earns often shows up slots later while
its energy is paid now, and a purely one-step score would never transmit anything that does not close a scene
at once (``lookahead=0`` gives that myopic variant).

It optimises the clairvoyant reward-to-go of a rollout (Bertsekas' rollout algorithm with perfect foresight), is
not a proven bound (the search is local and the horizon finite), and costs ~``(candidates + K (G + L_p + L_c) +
5 G) × (lookahead + 1)`` environment steps per slot: use it for evaluation on small scenarios, not for training.
Being clairvoyant, it needs the simulator in its own process (a ``gym.make`` env, wrapped or not, the native
vector env or a ``VMIMOCore``): it uses the core's public ``replicate``, ``step`` and ``bs_view`` only, and
decides like every heuristic from the BS view.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from agents.heuristics.base import Heuristic
from agents.policies import register_policy
from vmimo_env.bs_view import BSView

BANDWIDTH_LEVELS = (0.0, 0.25, 0.5, 0.75, 1.0)
DEFAULT_CANDIDATES = ("round_robin", "greedy", "proportional_fair", "fractional_power", "sus", "max_weight",
                      "nas_vmimo")


@register_policy("oracle")
class OraclePolicy(Heuristic):
    """Clairvoyant rollout planner over a discretised action space (see the module docstring).

    Knows the whole ``VMIMOCore`` state, including its random number generators (the future), through
    ``VMIMOCore.replicate``. Parameters: ``lookahead`` slots scored after the decision (default: ``deadline_slots``),
    ``rounds`` of coordinate descent, ``candidates`` (heuristic names proposing starting points), ``base``
    (heuristic used in the lookahead rollouts).
    """

    name = "oracle"

    def __init__(self, env: Any, lookahead: int | None = None, rounds: int = 2,
                 candidates: tuple[str, ...] = DEFAULT_CANDIDATES, base: str = "max_weight", env_chunk: int = 8,
                 **kwargs: Any) -> None:
        super().__init__(env, **kwargs)
        from agents.policies import make_policy

        self.sim = simulator_of(env)
        self.lookahead = self.cfg.deadline_slots if lookahead is None else int(lookahead)
        self.rounds = int(rounds)
        self.env_chunk = int(env_chunk)  # environments searched together (bounds the replicated core's memory)
        self.base_name = base
        self.proposers = [make_policy(name, self.view) for name in candidates]
        self.prev: dict[str, np.ndarray] | None = None
        self.last_scores: np.ndarray | None = None

    def reset(self, seed: int | None = None) -> None:
        super().reset(seed)
        for p in self.proposers:
            p.reset(seed)
        self.prev = None

    # ------------------------------------------------------------------ search
    def act_batch(self, info: dict[str, Any]) -> dict[str, np.ndarray]:
        N, K, G = self.N, self.K, self.G
        view = self.view
        proposals = [p.act_view(view, info) for p in self.proposers]
        idle = {"group": np.zeros((N, K), np.int64), "power": np.zeros((N, K), np.int64),
                "compression": np.zeros((N, K), np.int64), "bandwidth": np.zeros((N, G))}
        proposals.append(idle)
        if self.prev is not None:
            proposals.append(self.prev)
        best = {k: np.zeros((N, *v.shape[1:]), dtype=v.dtype) for k, v in idle.items()}
        scores = np.full(N, -np.inf)
        for lo in range(0, N, self.env_chunk):
            ids = np.arange(lo, min(N, lo + self.env_chunk))
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
        """Reward of each (env, action) candidate for this slot plus ``lookahead`` base-policy slots, every row on
        its environment's known future."""
        from agents.policies import make_policy

        rows = np.array([i for i, _ in cands])
        rep = self.sim.replicate(rows)
        g = np.stack([c["group"] for _, c in cands]).astype(np.int64)
        p = np.stack([c["power"] for _, c in cands]).astype(np.int64)
        c_ = np.stack([c["compression"] for _, c in cands]).astype(np.int64)
        b = np.stack([c["bandwidth"] for _, c in cands]).astype(np.float64)
        total = rep.step(g, p, c_, b).reward.astype(np.float64)
        left = self.cfg.horizon - view.t[rows] - 1  # no reward after the episode's last slot
        steps = int(min(self.lookahead, left.max()))
        if steps > 0:
            rep_view = rep.bs_view()
            base = make_policy(self.base_name, rep_view)
            for s in range(steps):
                a = base.act_view(rep_view if s == 0 else rep.bs_view(), {})
                r = rep.step(a["group"], a["power"], a["compression"], a["bandwidth"]).reward
                total += np.where(s < left, r, 0.0)
        return total


def simulator_of(env: Any) -> Any:
    """The ``VMIMOCore`` behind an in-process VMIMO front end, through public attributes (``get_wrapper_attr``
    for a wrapped Gymnasium env, ``unwrapped`` for a vector env); the oracle uses its ``replicate`` only."""
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
        raise TypeError(f"the oracle plans on the simulator itself (VMIMOCore.replicate), so it needs an in-process "
                        f"VMIMO env (gym.make, the native vector env or a VMIMOCore), got {type(env).__name__}")
    return core
