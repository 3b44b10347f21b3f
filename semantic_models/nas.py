"""NSGA-II search over the supernet's sub-networks under device FLOP, BS FLOP and parameter budgets.

Objectives: maximise validation accuracy under random channel conditions (the supernet's inherited weights, fixed
common-random-number draws) and minimise the devices' total encoder FLOPs. Budgets enter through Deb's constrained
domination: a feasible candidate beats an infeasible one, two infeasible ones compare by total violation. Every
evaluated candidate is logged; the chosen architecture is the most accurate feasible one (ties: fewer FLOPs).
Genes are ordinal (widths, depths), so mutation mostly steps to a neighbouring choice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from .space import Budgets, SearchSpace, random_feasible_genome
from .student import StudentArch, arch_cost
from .training import progress

Genome = tuple[int, ...]


@dataclass(frozen=True)
class NASConfig:
    population: int = 24
    generations: int = 8
    crossover_prob: float = 0.9
    mutation_prob: float = 0.12  # per gene
    seed: int = 0


@dataclass
class Candidate:
    genome: Genome
    arch: StudentArch
    accuracy: float
    cost: dict
    violation: float
    generation: int

    @property
    def objectives(self) -> tuple[float, float]:
        return (-self.accuracy, float(self.cost["device_flops_total"]))

    def to_log(self) -> dict:
        c = self.cost
        return {"arch": self.arch.key(), "generation": self.generation, "accuracy": round(self.accuracy, 4),
                "device_mflops_max": round(c["device_flops_max"] / 1e6, 5),
                "device_mflops_total": round(c["device_flops_total"] / 1e6, 5),
                "head_mflops": round(c["head_flops"] / 1e6, 5), "params": c["params_total"],
                "feasible": self.violation == 0.0}


def _dominates(a: Candidate, b: Candidate) -> bool:
    """Deb's constrained domination."""
    if a.violation == 0.0 and b.violation > 0.0:
        return True
    if a.violation > 0.0 or b.violation > 0.0:
        return a.violation < b.violation
    oa, ob = a.objectives, b.objectives
    return all(x <= y for x, y in zip(oa, ob, strict=True)) and any(x < y for x, y in zip(oa, ob, strict=True))


def non_dominated_sort(pop: list[Candidate]) -> list[list[int]]:
    """Fronts of indices (front 0 is non-dominated)."""
    n = len(pop)
    dominated_by = [[] for _ in range(n)]
    count = [0] * n
    for i in range(n):
        for j in range(n):
            if i != j and _dominates(pop[i], pop[j]):
                dominated_by[i].append(j)
            elif i != j and _dominates(pop[j], pop[i]):
                count[i] += 1
    fronts = [[i for i in range(n) if count[i] == 0]]
    while fronts[-1]:
        nxt = []
        for i in fronts[-1]:
            for j in dominated_by[i]:
                count[j] -= 1
                if count[j] == 0:
                    nxt.append(j)
        fronts.append(nxt)
    return fronts[:-1]


def crowding(pop: list[Candidate], front: list[int]) -> dict[int, float]:
    dist = dict.fromkeys(front, 0.0)
    for k in range(2):
        order = sorted(front, key=lambda i: pop[i].objectives[k])
        lo, hi = pop[order[0]].objectives[k], pop[order[-1]].objectives[k]
        dist[order[0]] = dist[order[-1]] = float("inf")
        if hi > lo:
            for a, i, b in zip(order[:-2], order[1:-1], order[2:], strict=True):
                dist[i] += (pop[b].objectives[k] - pop[a].objectives[k]) / (hi - lo)
    return dist


def _tournament(pop: list[Candidate], rank: dict[int, int], crowd: dict[int, float],
                rng: np.random.Generator) -> Candidate:
    """Binary tournament: lower rank wins, then larger crowding distance."""
    i, j = (int(k) for k in rng.integers(0, len(pop), 2))
    return pop[i if (rank[i], -crowd[i]) <= (rank[j], -crowd[j]) else j]


def pareto_front(cands: list[Candidate]) -> list[Candidate]:
    """Feasible candidates not dominated in (accuracy, device FLOPs), sorted by FLOPs."""
    feas = [c for c in cands if c.violation == 0.0]
    front = [c for c in feas if not any(_dominates(o, c) for o in feas if o is not c)]
    return sorted(front, key=lambda c: c.cost["device_flops_total"])


def nsga2_search(score: Callable[[StudentArch], float], space: SearchSpace, budgets: Budgets, num_classes: int,
                 cfg: NASConfig, show: bool = True) -> tuple[Candidate, list[Candidate]]:
    """Run NSGA-II; returns the chosen candidate and every evaluated candidate (in evaluation order)."""
    rng = np.random.default_rng(cfg.seed)
    sizes = space.gene_sizes()
    cache: dict[Genome, Candidate] = {}
    bar = progress(cfg.population * (cfg.generations + 1), "search", show)

    def evaluate(g: Genome, gen: int) -> Candidate:
        if g not in cache:
            arch = space.decode(g, num_classes)
            cache[g] = Candidate(g, arch, score(arch), arch_cost(arch), budgets.violation(arch), gen)
        bar.update(1)
        return cache[g]

    def vary(a: Genome, b: Genome) -> Genome:
        child = list(a)
        if rng.random() < cfg.crossover_prob:
            child = [x if rng.random() < 0.5 else y for x, y in zip(a, b, strict=True)]
        for i, s in enumerate(sizes):
            if rng.random() < cfg.mutation_prob:
                # ordinal genes: usually a neighbouring choice, sometimes a jump
                child[i] = int(np.clip(child[i] + rng.choice([-1, 1]), 0, s - 1)) if rng.random() < 0.7 \
                    else int(rng.integers(0, s))
        return tuple(child)

    pop = [evaluate(random_feasible_genome(space, budgets, num_classes, rng), 0) for _ in range(cfg.population)]
    for gen in range(1, cfg.generations + 1):
        fronts = non_dominated_sort(pop)
        rank = {i: r for r, f in enumerate(fronts) for i in f}
        crowd = {i: d for f in fronts for i, d in crowding(pop, f).items()}

        offspring = []
        for _ in range(cfg.population):
            a, b = _tournament(pop, rank, crowd, rng), _tournament(pop, rank, crowd, rng)
            offspring.append(evaluate(vary(a.genome, b.genome), gen))
        merged = list({c.genome: c for c in pop + offspring}.values())
        nxt: list[Candidate] = []
        for f in non_dominated_sort(merged):
            if len(nxt) + len(f) <= cfg.population:
                nxt += [merged[i] for i in f]
            else:
                d = crowding(merged, f)
                nxt += [merged[i] for i in sorted(f, key=lambda i: -d[i])[:cfg.population - len(nxt)]]
                break
        pop = nxt
        best = max((c.accuracy for c in cache.values() if c.violation == 0.0), default=0.0)
        bar.set_postfix(best=f"{best:.3f}", evaluated=len(cache))
    bar.close()
    evaluated = list(cache.values())
    feasible = [c for c in evaluated if c.violation == 0.0]
    chosen = max(feasible, key=lambda c: (c.accuracy, -c.cost["device_flops_total"]))
    return chosen, evaluated


def search_log(chosen: Candidate, evaluated: list[Candidate], space: SearchSpace, budgets: Budgets,
               cfg: NASConfig, extra: dict | None = None) -> dict:
    """The JSON search log: settings, every candidate, the Pareto front and the choice."""
    return {"algorithm": "NSGA-II (constrained domination) over a weight-sharing supernet",
            "objectives": ["max val accuracy under random channel conditions", "min total device encoder FLOPs"],
            "search_space": space.to_dict(), "search_space_size": space.size(), "budgets": budgets.to_dict(),
            "config": asdict(cfg), **(extra or {}),
            "candidates": [c.to_log() for c in evaluated],
            "pareto_front": [c.arch.key() for c in pareto_front(evaluated)],
            "chosen": chosen.to_log()}
