"""Weight-sharing supernet over the search space (slimmable widths, elastic residual depth).

Every architecture of :class:`~semantic_models.space.SearchSpace` is a sub-network: an encoder of width ``w`` uses
the first ``w`` rows of the largest encoder's weights, and depth is elastic because hidden blocks are residual (a
skipped block is the identity). The head's embedding uses the first ``e`` of each modality's channels and the
fusion layer the matching columns. Training follows the sandwich rule (BigNAS / OFA): each step trains the largest
and the smallest network and a few random budget-feasible ones on the same batch and channel draw, with the
teacher's soft targets (in-place distillation would need the largest net to be good first; the teacher already
is; its targets see the same modality subset as the student). Candidates are then ranked by their inherited
weights without retraining.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .channel import sample_conditions
from .distill import kd_loss, soft_targets
from .space import Budgets, SearchSpace, random_feasible_genome
from .spec import INPUT_DIMS, LATENT_DIM, MODALITIES
from .student import Student, StudentArch, mask_latents, nested_power_norm
from .teacher import Teacher
from .training import cosine_lr, minibatches, progress, set_lr


def _linear(out_f: int, in_f: int) -> tuple[nn.Parameter, nn.Parameter]:
    lin = nn.Linear(in_f, out_f)  # PyTorch's default init, sliced later
    return nn.Parameter(lin.weight.data.clone()), nn.Parameter(lin.bias.data.clone())


class SuperEncoder(nn.Module):
    def __init__(self, d_in: int, max_width: int, max_blocks: int) -> None:
        super().__init__()
        self.w_in, self.b_in = _linear(max_width, d_in)
        blocks = [_linear(max_width, max_width) for _ in range(max_blocks)]
        self.w_blk = nn.ParameterList(w for w, _ in blocks)
        self.b_blk = nn.ParameterList(b for _, b in blocks)
        self.w_out, self.b_out = _linear(LATENT_DIM, max_width)

    def forward(self, x: torch.Tensor, width: int, blocks: int) -> torch.Tensor:
        h = F.relu(F.linear(x, self.w_in[:width], self.b_in[:width]))
        for i in range(blocks):
            h = h + F.relu(F.linear(h, self.w_blk[i][:width, :width], self.b_blk[i][:width]))
        return nested_power_norm(F.linear(h, self.w_out[:, :width], self.b_out))


class SuperHead(nn.Module):
    def __init__(self, max_embed: int, max_width: int, max_blocks: int, num_classes: int) -> None:
        super().__init__()
        M = len(MODALITIES)
        self.embed_w = nn.Parameter(torch.randn(M, LATENT_DIM + 2, max_embed) / (LATENT_DIM + 2) ** 0.5)
        self.embed_b = nn.Parameter(torch.zeros(M, max_embed))
        w, b = _linear(max_width, M * max_embed)
        self.w_fuse = nn.Parameter(w.data.view(max_width, M, max_embed).clone())
        self.b_fuse = b
        blocks = [_linear(max_width, max_width) for _ in range(max_blocks)]
        self.w_blk = nn.ParameterList(w for w, _ in blocks)
        self.b_blk = nn.ParameterList(b for _, b in blocks)
        self.w_out, self.b_out = _linear(num_classes, max_width)

    def forward(self, latents: torch.Tensor, prefix_len: torch.Tensor, embed: int, width: int,
                blocks: int) -> torch.Tensor:
        latents = mask_latents(latents, prefix_len)
        p = prefix_len.to(latents.dtype)
        inp = torch.cat([latents, (p > 0).to(latents.dtype)[..., None], (p / LATENT_DIM)[..., None]], dim=-1)
        z = F.relu(torch.einsum("nmk,mke->nme", inp, self.embed_w[:, :, :embed]) + self.embed_b[:, :embed])
        h = F.relu(F.linear(z.flatten(1), self.w_fuse[:width, :, :embed].reshape(width, -1), self.b_fuse[:width]))
        for i in range(blocks):
            h = h + F.relu(F.linear(h, self.w_blk[i][:width, :width], self.b_blk[i][:width]))
        return F.linear(h, self.w_out[:, :width], self.b_out)


class Supernet(nn.Module):
    """All candidate students in one set of shared weights."""

    def __init__(self, space: SearchSpace, num_classes: int) -> None:
        super().__init__()
        self.space = space
        self.num_classes = num_classes
        self.encoders = nn.ModuleList(SuperEncoder(INPUT_DIMS[m], max(space.enc_width), max(space.enc_blocks))
                                      for m in MODALITIES)
        self.head = SuperHead(max(space.embed_dim), max(space.head_width), max(space.head_blocks), num_classes)

    def encode_all(self, xs: list[torch.Tensor], arch: StudentArch) -> torch.Tensor:
        return torch.stack([enc(x, w, b) for enc, x, w, b in
                            zip(self.encoders, xs, arch.enc_width, arch.enc_blocks, strict=True)], dim=1)

    def classify(self, latents: torch.Tensor, prefix_len: torch.Tensor, arch: StudentArch) -> torch.Tensor:
        return self.head(latents, prefix_len, arch.embed_dim, arch.head_width, arch.head_blocks)

    @torch.no_grad()
    def extract(self, arch: StudentArch) -> Student:
        """A standalone :class:`Student` holding the sub-network's inherited weights (same outputs)."""
        st = Student(arch)
        for enc, sup, w, b in zip(st.encoders, self.encoders, arch.enc_width, arch.enc_blocks, strict=True):
            enc.inp.weight.copy_(sup.w_in[:w])
            enc.inp.bias.copy_(sup.b_in[:w])
            for i in range(b):
                enc.blocks[i].weight.copy_(sup.w_blk[i][:w, :w])
                enc.blocks[i].bias.copy_(sup.b_blk[i][:w])
            enc.out.weight.copy_(sup.w_out[:, :w])
            enc.out.bias.copy_(sup.b_out)
        h, sh, e, H = st.head, self.head, arch.embed_dim, arch.head_width
        h.embed_w.copy_(sh.embed_w[:, :, :e])
        h.embed_b.copy_(sh.embed_b[:, :e])
        h.fuse.weight.copy_(sh.w_fuse[:H, :, :e].reshape(H, -1))
        h.fuse.bias.copy_(sh.b_fuse[:H])
        for i in range(arch.head_blocks):
            h.blocks[i].weight.copy_(sh.w_blk[i][:H, :H])
            h.blocks[i].bias.copy_(sh.b_blk[i][:H])
        h.out.weight.copy_(sh.w_out[:, :H])
        h.out.bias.copy_(sh.b_out)
        return st.eval()


@dataclass(frozen=True)
class SupernetConfig:
    epochs: int = 6
    batch: int = 256
    lr: float = 3e-3
    weight_decay: float = 1e-4
    random_subnets: int = 2  # per step, besides the largest and the smallest
    temperature: float = 1.0  # as in distill.DistillConfig (see the reason there)
    hard_weight: float = 0.2


def train_supernet(xs: list[torch.Tensor], y: torch.Tensor, teacher: Teacher, space: SearchSpace,
                   budgets: Budgets, num_classes: int, cfg: SupernetConfig, seed: int = 0,
                   show: bool = True) -> tuple[Supernet, dict]:
    """Sandwich-rule training of the supernet with distillation from the teacher."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed + 1)
    rng = np.random.default_rng(seed + 2)
    net = Supernet(space, num_classes)
    teacher.eval()
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    n = y.shape[0]
    total = cfg.epochs * (n // cfg.batch)
    big, small = space.largest(num_classes), space.smallest(num_classes)
    bar = progress(total, "supernet", show)
    step = 0
    losses = []
    for _ in range(cfg.epochs):
        net.train()
        for idx in minibatches(n, cfg.batch, gen):
            set_lr(opt, cosine_lr(step, total, cfg.lr))
            batch = [x[idx] for x in xs]
            snr, prefix = sample_conditions(len(idx), len(MODALITIES), gen)
            noise = torch.randn(len(idx), len(MODALITIES), LATENT_DIM, generator=gen)
            archs = [big, small] + [space.decode(random_feasible_genome(space, budgets, num_classes, rng),
                                                 num_classes) for _ in range(cfg.random_subnets)]
            targets = soft_targets(teacher, batch, prefix)
            opt.zero_grad(set_to_none=True)
            total_loss = 0.0
            for arch in archs:
                lat = net.encode_all(batch, arch)
                std = torch.pow(10.0, -snr / 20.0)[..., None]
                rx = mask_latents(lat + std * noise, prefix)
                loss = kd_loss(net.classify(rx, prefix, arch), targets, y[idx], cfg.temperature,
                               cfg.hard_weight) / len(archs)
                loss.backward()
                total_loss += loss.item()
            opt.step()
            losses.append(total_loss)
            step += 1
            bar.update(1)
            if step % 50 == 0:
                bar.set_postfix(loss=f"{np.mean(losses[-50:]):.3f}")
    bar.close()
    net.eval()
    return net, {"config": asdict(cfg), "final_loss": float(np.mean(losses[-50:])) if losses else None,
                 "steps": step}


__all__ = ["SuperEncoder", "SuperHead", "Supernet", "SupernetConfig", "train_supernet"]
