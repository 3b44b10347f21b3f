"""Teacher: a multimodal transformer over all modalities (one token per modality plus a CLS token).

It is trained once on clean features (no channel: sensing noise only) and then only supplies soft targets. Half of
its training batches hide a random subset of modalities (attention key-padding mask), so that for any subset it
outputs a calibrated posterior of what that subset reveals: distillation then hands the student, which often sees
only some modalities, the matching "which classes are still confusable" target rather than the full-view answer.
Its reported clean accuracy is on complete scenes. It is deliberately several times larger than any student the
search may pick (the metadata records both sizes); it never runs on a device or on the environment's hot path.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .spec import INPUT_DIMS, MODALITIES
from .training import cosine_lr, count_params, minibatches, progress, set_lr


@dataclass(frozen=True)
class TeacherConfig:
    # Wide per-modality tokenisers carry most of the capacity; one attention layer over 6 tokens fuses them. This
    # keeps the teacher ~4-5x the student's parameters while training in about a minute on one CPU thread.
    d_model: int = 64
    layers: int = 1
    heads: int = 4
    ff: int = 128
    tokenizer_hidden: int = 384
    dropout: float = 0.1
    epochs: int = 8
    subset_prob: float = 0.5  # share of training samples that see a random modality subset
    batch: int = 256
    lr: float = 2e-3
    weight_decay: float = 1e-4


class Teacher(nn.Module):
    """Tokenise each modality with its own MLP, add a modality embedding, attend, classify from CLS."""

    def __init__(self, num_classes: int, cfg: TeacherConfig) -> None:
        super().__init__()
        D = cfg.d_model
        self.tokenizers = nn.ModuleList(
            nn.Sequential(nn.Linear(INPUT_DIMS[m], cfg.tokenizer_hidden), nn.GELU(),
                          nn.Linear(cfg.tokenizer_hidden, D)) for m in MODALITIES)
        self.modality_embed = nn.Parameter(0.02 * torch.randn(len(MODALITIES), D))
        self.cls = nn.Parameter(0.02 * torch.randn(1, 1, D))
        layer = nn.TransformerEncoderLayer(D, cfg.heads, cfg.ff, cfg.dropout, activation="gelu", batch_first=True,
                                           norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(D)
        self.out = nn.Linear(D, num_classes)

    def forward(self, xs: list[torch.Tensor], present: torch.Tensor | None = None) -> torch.Tensor:
        """xs: per-modality features; present: optional bool (n, M) — absent modalities are masked in attention."""
        tokens = torch.stack([tok(x) for tok, x in zip(self.tokenizers, xs, strict=True)], dim=1)
        tokens = tokens + self.modality_embed
        n = tokens.shape[0]
        seq = torch.cat([self.cls.expand(n, -1, -1), tokens], dim=1)
        pad = None
        if present is not None:
            pad = torch.cat([torch.zeros(n, 1, dtype=torch.bool), ~present], dim=1)  # True = ignore
        h = self.encoder(seq, src_key_padding_mask=pad)
        return self.out(self.norm(h[:, 0]))


def train_teacher(xs: list[torch.Tensor], y: torch.Tensor, val_xs: list[torch.Tensor], val_y: torch.Tensor,
                  num_classes: int, cfg: TeacherConfig, seed: int = 0, show: bool = True) -> tuple[Teacher, dict]:
    """Train on clean features with AdamW and a cosine schedule; returns the model and a small history."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = Teacher(num_classes, cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    n = y.shape[0]
    steps_per_epoch = n // cfg.batch
    total = cfg.epochs * steps_per_epoch
    history = []
    step = 0
    bar = progress(total, "teacher", show)
    for epoch in range(cfg.epochs):
        model.train()
        for idx in minibatches(n, cfg.batch, gen):
            set_lr(opt, cosine_lr(step, total, cfg.lr))
            present = random_present(len(idx), gen, cfg.subset_prob)
            loss = F.cross_entropy(model([x[idx] for x in xs], present), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            bar.update(1)
        acc = evaluate_teacher(model, val_xs, val_y)
        history.append({"epoch": epoch + 1, "val_acc": acc})
        bar.set_postfix(val_acc=f"{acc:.3f}")
    bar.close()
    model.eval()
    return model, {"history": history, "params": count_params(model), "config": asdict(cfg)}


def random_present(n: int, gen: torch.Generator, subset_prob: float, keep_prob: float = 0.6) -> torch.Tensor:
    """Bool (n, M): all True except for a ``subset_prob`` share of rows, which keep a random non-empty subset."""
    M = len(MODALITIES)
    present = torch.rand(n, M, generator=gen) < keep_prob
    present |= (torch.rand(n, 1, generator=gen) >= subset_prob)  # these rows see everything
    empty = ~present.any(1)
    present[empty.nonzero().squeeze(1), torch.randint(0, M, (int(empty.sum()),), generator=gen)] = True
    return present


@torch.no_grad()
def teacher_logits(model: Teacher, xs: list[torch.Tensor], present: torch.Tensor | None = None,
                   batch: int = 2048) -> torch.Tensor:
    """Eval-mode logits on clean inputs (optionally with modalities hidden): the distillation targets."""
    model.eval()
    n = xs[0].shape[0]
    if n == 0:
        return torch.zeros(0, model.out.out_features)
    return torch.cat([model([x[i:i + batch] for x in xs], None if present is None else present[i:i + batch])
                      for i in range(0, n, batch)])


def evaluate_teacher(model: Teacher, xs: list[torch.Tensor], y: torch.Tensor,
                     present: torch.Tensor | None = None) -> float:
    logits = teacher_logits(model, xs, present)
    return float((logits.argmax(1) == y).float().mean())


def single_modality_accuracy(model: Teacher, xs: list[torch.Tensor], y: torch.Tensor) -> dict[str, float]:
    """The teacher's accuracy from each modality alone (shows how partial every modality is)."""
    out = {}
    for m, name in enumerate(MODALITIES):
        present = torch.zeros(y.shape[0], len(MODALITIES), dtype=torch.bool)
        present[:, m] = True
        out[name] = evaluate_teacher(model, xs, y, present)
    return out


def teacher_flops_per_sample(model: Teacher) -> int:
    """Rough FLOPs per scene (2 per multiply-add of every linear layer; tokens × layer weights)."""
    tok = sum(2 * p.numel() for t in model.tokenizers for p in t.parameters() if p.dim() == 2)
    per_token = sum(2 * p.numel() for p in model.encoder.parameters() if p.dim() == 2)
    return int(tok + per_token * (len(MODALITIES) + 1) + 2 * model.out.weight.numel())


__all__ = ["Teacher", "TeacherConfig", "evaluate_teacher", "random_present", "single_modality_accuracy",
           "teacher_flops_per_sample", "teacher_logits", "train_teacher"]
