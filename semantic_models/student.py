"""The student: per-modality on-device encoders with nested latents and a BS fusion head (torch).

Encoder (one per modality, runs on the device)::

    x (d_m) → Linear(d_m, w) → ReLU → b × [h + ReLU(Linear(w, w) h)] → Linear(w, 64) → nested power norm

The nested power norm splits the 64 values into the segments [0:4], [4:8], [8:16], [16:32], [32:64] (the prefix
set) and scales each segment of each sample to unit mean square. Every allowed prefix is a union of whole
segments, so *every* prefix has exactly unit average power per value for every sample: the transmit power
constraint holds whichever prefix the scheduler picks, and no prefix can cheat by concentrating energy.

Fusion head (runs at the BS) for each modality ``m``: the received 64 values (zero beyond the prefix), a
present bit and ``prefix / 64`` go through a per-modality embedding ``Linear(66, e) → ReLU``; the five
embeddings are concatenated and classified by ``Linear(5e, H) → ReLU → b_h × residual(H) → Linear(H, C)``.
A missing modality has zero latent and zero bit, so its embedding is a learned constant: the head knows it is
missing. The per-modality factorisation keeps the BS cost low (about 5·64·e + 5e·H multiply-adds per scene
instead of 320·H for a dense first layer), which is what makes the numpy hot path fast.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import nn

from .spec import INPUT_DIMS, LATENT_DIM, MODALITIES, PREFIX_LENGTHS

#: Segment boundaries of the nested latent (prefix set with a leading 0).
SEGMENTS: tuple[int, ...] = (0, *PREFIX_LENGTHS)


@dataclass(frozen=True)
class StudentArch:
    """One point of the search space (see ``nas.SEARCH_SPACE``)."""

    enc_width: tuple[int, ...]  # hidden width per modality (MODALITIES order)
    enc_blocks: tuple[int, ...]  # residual hidden blocks per modality
    embed_dim: int  # per-modality embedding e at the BS
    head_width: int  # fusion hidden width H
    head_blocks: int  # residual blocks in the fusion MLP
    num_classes: int = 10

    def to_dict(self) -> dict:
        d = asdict(self)
        d["enc_width"], d["enc_blocks"] = list(self.enc_width), list(self.enc_blocks)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> StudentArch:
        return cls(tuple(d["enc_width"]), tuple(d["enc_blocks"]), int(d["embed_dim"]), int(d["head_width"]),
                   int(d["head_blocks"]), int(d.get("num_classes", 10)))

    def key(self) -> str:
        enc = "-".join(f"{w}x{b}" for w, b in zip(self.enc_width, self.enc_blocks, strict=True))
        return f"enc[{enc}]_e{self.embed_dim}_h{self.head_width}x{self.head_blocks}"


# ---------------------------------------------------------------------- cost model
def encoder_flops(d_in: int, width: int, blocks: int) -> int:
    """FLOPs to encode one sample: 2 per multiply-add, plus bias adds, ReLUs and the nested power norm."""
    macs = d_in * width + blocks * width * width + width * LATENT_DIM
    elementwise = 2 * width * (1 + blocks) + blocks * width + LATENT_DIM  # bias+ReLU, residual add, out bias
    norm = 3 * LATENT_DIM  # square, sum, scale (per value)
    return 2 * macs + elementwise + norm


def encoder_params(d_in: int, width: int, blocks: int) -> int:
    return d_in * width + width + blocks * (width * width + width) + width * LATENT_DIM + LATENT_DIM


def head_flops(arch: StudentArch) -> int:
    """BS FLOPs per scene for the fusion head."""
    M, e, H = len(MODALITIES), arch.embed_dim, arch.head_width
    macs = M * (LATENT_DIM + 2) * e + M * e * H + arch.head_blocks * H * H + H * arch.num_classes
    elementwise = 2 * M * e + 2 * H * (1 + arch.head_blocks) + arch.head_blocks * H + arch.num_classes
    return 2 * macs + elementwise


def head_params(arch: StudentArch) -> int:
    M, e, H = len(MODALITIES), arch.embed_dim, arch.head_width
    return (M * ((LATENT_DIM + 2) * e + e) + M * e * H + H + arch.head_blocks * (H * H + H)
            + H * arch.num_classes + arch.num_classes)


def arch_cost(arch: StudentArch) -> dict:
    """FLOPs and parameters of every part (the numbers the budgets and the metadata use)."""
    enc_f = [encoder_flops(INPUT_DIMS[m], w, b) for m, w, b in zip(MODALITIES, arch.enc_width, arch.enc_blocks,
                                                                   strict=True)]
    enc_p = [encoder_params(INPUT_DIMS[m], w, b) for m, w, b in zip(MODALITIES, arch.enc_width, arch.enc_blocks,
                                                                    strict=True)]
    hp = head_params(arch)
    return {"encoder_flops": enc_f, "encoder_params": enc_p, "head_flops": head_flops(arch), "head_params": hp,
            "device_flops_max": max(enc_f), "device_flops_total": sum(enc_f), "params_total": sum(enc_p) + hp}


# ---------------------------------------------------------------------- modules
def nested_power_norm(z: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Scale each prefix segment of each sample to unit mean square (see the module docstring)."""
    parts = []
    for a, b in pairwise(SEGMENTS):
        s = z[..., a:b]
        parts.append(s * torch.rsqrt(s.pow(2).mean(-1, keepdim=True) + eps))
    return torch.cat(parts, dim=-1)


class Encoder(nn.Module):
    """On-device encoder of one modality: features (n, d) → nested unit-power latent (n, 64)."""

    def __init__(self, d_in: int, width: int, blocks: int) -> None:
        super().__init__()
        self.inp = nn.Linear(d_in, width)
        self.blocks = nn.ModuleList(nn.Linear(width, width) for _ in range(blocks))
        self.out = nn.Linear(width, LATENT_DIM)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.inp(x))
        for blk in self.blocks:
            h = h + F.relu(blk(h))
        return nested_power_norm(self.out(h))


class FusionHead(nn.Module):
    """BS classifier over any modality subset and any prefix lengths (see the module docstring)."""

    def __init__(self, embed_dim: int, width: int, blocks: int, num_classes: int) -> None:
        super().__init__()
        M = len(MODALITIES)
        # per-modality embedding of [latent (64), present bit, prefix/64] → e
        self.embed_w = nn.Parameter(torch.randn(M, LATENT_DIM + 2, embed_dim) / (LATENT_DIM + 2) ** 0.5)
        self.embed_b = nn.Parameter(torch.zeros(M, embed_dim))
        self.fuse = nn.Linear(M * embed_dim, width)
        self.blocks = nn.ModuleList(nn.Linear(width, width) for _ in range(blocks))
        self.out = nn.Linear(width, num_classes)

    def forward(self, latents: torch.Tensor, prefix_len: torch.Tensor) -> torch.Tensor:
        """latents float (n, M, 64) received values; prefix_len int (n, M), 0 = missing → logits (n, C)."""
        latents = mask_latents(latents, prefix_len)
        p = prefix_len.to(latents.dtype)
        inp = torch.cat([latents, (p > 0).to(latents.dtype)[..., None], (p / LATENT_DIM)[..., None]], dim=-1)
        z = F.relu(torch.einsum("nmk,mke->nme", inp, self.embed_w) + self.embed_b)
        h = F.relu(self.fuse(z.flatten(1)))
        for blk in self.blocks:
            h = h + F.relu(blk(h))
        return self.out(h)


def mask_latents(latents: torch.Tensor, prefix_len: torch.Tensor) -> torch.Tensor:
    """Zero every value at or beyond its modality's prefix (so a missing modality's values cannot leak in)."""
    idx = torch.arange(LATENT_DIM, device=latents.device)
    return latents * (idx < prefix_len[..., None]).to(latents.dtype)


class Student(nn.Module):
    """Encoders + fusion head of one architecture."""

    def __init__(self, arch: StudentArch) -> None:
        super().__init__()
        self.arch = arch
        self.encoders = nn.ModuleList(Encoder(INPUT_DIMS[m], w, b) for m, w, b in
                                      zip(MODALITIES, arch.enc_width, arch.enc_blocks, strict=True))
        self.head = FusionHead(arch.embed_dim, arch.head_width, arch.head_blocks, arch.num_classes)

    def encode(self, m: int, x: torch.Tensor) -> torch.Tensor:
        return self.encoders[m](x)

    def encode_all(self, xs: list[torch.Tensor]) -> torch.Tensor:
        """Clean nested latents of every modality: (n, M, 64)."""
        return torch.stack([enc(x) for enc, x in zip(self.encoders, xs, strict=True)], dim=1)

    def classify(self, latents: torch.Tensor, prefix_len: torch.Tensor) -> torch.Tensor:
        return self.head(latents, prefix_len)

    def forward(self, latents: torch.Tensor, prefix_len: torch.Tensor) -> torch.Tensor:
        """The BS forward (what ``FrozenStudent.classify`` mirrors in numpy)."""
        return self.head(latents, prefix_len)
