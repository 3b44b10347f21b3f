"""Scene arrivals: Poisson, or bursty (a two-phase Markov-modulated Poisson process, MMPP).

Every slot ``n`` scenes arrive, drawn by inversion of a precomputed CDF with one uniform. Under ``"poisson"`` the
rate is ``arrival_rate`` in every slot. Under ``"mmpp"`` a hidden phase, quiet (0) or busy (1), first moves on a
two-state Markov chain (one more uniform per slot) and then sets the slot's rate (``ScenarioConfig.phase_rates``,
``phase_switch_probs``): the load is bursty, with the same mean, so air time binds in busy runs and is idle in
quiet ones. The BS never sees the phase; it sees how many scenes arrived, from which it keeps the posterior
probability of the busy phase (``update_belief``, the forward filter of the hidden Markov chain), which a causal
planner may use to sample futures.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

POISSON_MAX_ARRIVALS = 8  # per slot; P(Poisson(3) > 8) < 4e-3, and arrivals beyond are dropped and counted wrong
MMPP_MAX_ARRIVALS = 16  # per slot of a busy phase (rate at most config.MAX_BUSY_RATE = 8)


def max_arrivals(cfg) -> int:
    """Arrivals admitted per slot (the uniforms drawn for scene identities); extra arrivals are dropped."""
    return MMPP_MAX_ARRIVALS if cfg.arrival_process == "mmpp" else POISSON_MAX_ARRIVALS


def poisson_pmf(lam: float, n: int) -> np.ndarray:
    """P(X = 0 .. n-1) of a Poisson(lam) variable, by the recurrence p_j = p_{j-1} lam / j."""
    return np.exp(-lam) * np.cumprod(np.r_[1.0, lam / np.arange(1, n)])


@dataclass(frozen=True)
class ArrivalLaw:
    """The arrival process of one scenario, as the compiled slot and the BS's filter use it."""

    cdf: np.ndarray  # (P, n) CDF of the slot's arrivals in each phase (P = 1 for Poisson, 2 for MMPP)
    pmf: np.ndarray  # (P, n) its probabilities (the likelihoods of the BS's phase filter)
    leave: np.ndarray  # (P,) probability of leaving each phase at the start of a slot
    busy_share: float  # stationary probability of the busy phase (0 for Poisson)

    @property
    def bursty(self) -> bool:
        return self.cdf.shape[0] == 2

    @classmethod
    def from_config(cls, cfg) -> ArrivalLaw:
        n = 4 * max_arrivals(cfg)
        if cfg.arrival_process != "mmpp":
            pmf = poisson_pmf(cfg.arrival_rate, n)[None]
            return cls(np.cumsum(pmf, axis=1), pmf, np.zeros(1), 0.0)
        pmf = np.stack([poisson_pmf(lam, n) for lam in cfg.phase_rates()])
        return cls(np.cumsum(pmf, axis=1), pmf, np.asarray(cfg.phase_switch_probs()), float(cfg.burst_fraction))

    def initial_phase(self, g: np.random.Generator) -> int:
        """A phase drawn from the chain's stationary law (the episode starts in steady state)."""
        return int(g.random() < self.busy_share) if self.bursty else 0

    def step_phase(self, phase: np.ndarray, u: np.ndarray) -> None:
        """Move every environment's phase one slot on (in place): leave it when the uniform ``u`` < ``leave``."""
        phase ^= (u < self.leave[phase]).astype(phase.dtype)

    def update_belief(self, belief: np.ndarray, n_arrivals: np.ndarray) -> None:
        """The BS's posterior P(busy) after one slot in which ``n_arrivals`` scenes arrived (in place): predict
        with the chain, weigh by each phase's Poisson likelihood of the count."""
        if not self.bursty:
            return
        prior = belief * (1.0 - self.leave[1]) + (1.0 - belief) * self.leave[0]
        n = np.minimum(n_arrivals, self.pmf.shape[1] - 1)
        busy = prior * self.pmf[1, n]
        belief[:] = busy / (busy + (1.0 - prior) * self.pmf[0, n])
