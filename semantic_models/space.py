"""The architecture search space and the deployment budgets (one job: what may be searched, and what is allowed).

A genome is a tuple of choice indices: ``(width, blocks)`` for each of the five encoders, then ``embed_dim``,
``head_width`` and ``head_blocks`` of the fusion head — 13 genes, about 6·10⁷ architectures.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .spec import MODALITIES
from .student import StudentArch, arch_cost


@dataclass(frozen=True)
class SearchSpace:
    enc_width: tuple[int, ...] = (16, 32, 48, 64, 96, 128)
    enc_blocks: tuple[int, ...] = (0, 1, 2)
    embed_dim: tuple[int, ...] = (8, 16, 24, 32)
    head_width: tuple[int, ...] = (64, 96, 128, 192)
    head_blocks: tuple[int, ...] = (0, 1)

    def gene_sizes(self) -> tuple[int, ...]:
        enc = (len(self.enc_width), len(self.enc_blocks)) * len(MODALITIES)
        return (*enc, len(self.embed_dim), len(self.head_width), len(self.head_blocks))

    def size(self) -> int:
        return int(np.prod(self.gene_sizes(), dtype=np.float64))

    def decode(self, genome: tuple[int, ...], num_classes: int) -> StudentArch:
        M = len(MODALITIES)
        widths = tuple(self.enc_width[genome[2 * m]] for m in range(M))
        blocks = tuple(self.enc_blocks[genome[2 * m + 1]] for m in range(M))
        e, h, hb = genome[2 * M:]
        return StudentArch(widths, blocks, self.embed_dim[e], self.head_width[h], self.head_blocks[hb], num_classes)

    def largest(self, num_classes: int) -> StudentArch:
        return self.decode(tuple(s - 1 for s in self.gene_sizes()), num_classes)

    def smallest(self, num_classes: int) -> StudentArch:
        return self.decode((0,) * len(self.gene_sizes()), num_classes)

    def to_dict(self) -> dict:
        return {k: list(v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class Budgets:
    """Deployment limits: on-device encoder FLOPs (each device runs one encoder), BS head FLOPs per scene (the
    environment's hot path), and the parameters of the whole student."""

    device_mflops: float = 0.03
    # 0.03 MFLOP per scene keeps the numpy head near 150 µs per 256 scenes on one core (the environment's aim)
    head_mflops: float = 0.03
    params: int = 64_000

    def violation(self, arch: StudentArch) -> float:
        """0 when every budget holds, else the summed relative excess (used by constrained domination)."""
        c = arch_cost(arch)
        return (max(0.0, c["device_flops_max"] / (1e6 * self.device_mflops) - 1.0)
                + max(0.0, c["head_flops"] / (1e6 * self.head_mflops) - 1.0)
                + max(0.0, c["params_total"] / self.params - 1.0))

    def feasible(self, arch: StudentArch) -> bool:
        return self.violation(arch) == 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def random_genome(space: SearchSpace, rng: np.random.Generator) -> tuple[int, ...]:
    return tuple(int(rng.integers(0, s)) for s in space.gene_sizes())


def random_feasible_genome(space: SearchSpace, budgets: Budgets, num_classes: int, rng: np.random.Generator,
                           tries: int = 500) -> tuple[int, ...]:
    """Rejection-sample a genome inside the budgets (the supernet trains, and the search starts, where it matters)."""
    g = random_genome(space, rng)
    for _ in range(tries):
        if budgets.feasible(space.decode(g, num_classes)):
            return g
        g = random_genome(space, rng)
    return tuple(0 for _ in space.gene_sizes())  # the smallest architecture is always tiny
