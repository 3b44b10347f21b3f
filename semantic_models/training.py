"""Small training helpers shared by the teacher, the supernet and the distillation (one job: the loop plumbing)."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch
from tqdm.auto import tqdm

from .data import stack_features


def to_tensors(feats: dict[str, np.ndarray]) -> list[torch.Tensor]:
    """Features dict → list of float32 tensors in modality order."""
    return [torch.from_numpy(np.ascontiguousarray(f, dtype=np.float32)) for f in stack_features(feats)]


def minibatches(n: int, batch: int, gen: torch.Generator) -> Iterator[torch.Tensor]:
    """Index batches of one shuffled epoch (the last short batch is dropped to keep batch statistics even)."""
    perm = torch.randperm(n, generator=gen)
    for i in range(0, n - batch + 1, batch):
        yield perm[i:i + batch]


def cosine_lr(step: int, total: int, base: float, warmup: int = 50) -> float:
    """Linear warm-up then cosine decay to 2% of ``base`` (robust for short schedules)."""
    if step < warmup:
        return base * (step + 1) / warmup
    frac = (step - warmup) / max(1, total - warmup)
    return base * (0.02 + 0.98 * 0.5 * (1.0 + math.cos(math.pi * min(1.0, frac))))


def progress(total: int, desc: str, enabled: bool = True) -> tqdm:
    """A tqdm bar (disabled in tests/quiet builds; ``mininterval`` keeps redraws cheap)."""
    return tqdm(total=total, desc=desc, disable=not enabled, mininterval=0.5, leave=False, dynamic_ncols=True)


def set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    for g in opt.param_groups:
        g["lr"] = lr


def count_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
