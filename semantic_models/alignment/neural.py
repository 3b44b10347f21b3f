r"""Neural semantic MIMO precoder/decoder (real-pair MLPs) under a hard per-sample power budget.

Encoder ``f_θ: R^{d_tx} → C^{Nt}`` and decoder ``g_φ: C^{Nr} → R^{d_rx}`` are small MLPs on real pairs
(``[Re; Im]``). The encoder output is normalised per sample, ``s ← √P · s / ||s||``, so *every* transmitted vector
has energy exactly ``P`` (a hard constraint, stricter than the average constraint of the linear aligner). Training
minimises ``E||y − g_φ(H f_θ(x) + n)||²`` through the noisy channel (fresh ``n ~ CN(0, σ² I)`` each batch; the
complex channel acts on real pairs as ``[[Re H, −Im H], [Im H, Re H]]``).

Complexity knob: global magnitude pruning of the weight matrices to a target ``sparsity`` followed by masked
fine-tuning; :func:`neural_flops` counts the FLOPs of the pruned network (see :mod:`.flops`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .admm import _prepare_pair, check_channel_matrix, resolve_sigma2
from .channel import RawLink, SVDMMSELink, real_channel
from .flops import REAL_MAC, neural_flops_from_layers
from .linalg import pack_complex, unpack_complex

__all__ = ["NeuralAligner", "NeuralNet", "fit_neural_aligner", "neural_flops"]


class NeuralNet(nn.Module):
    """The encoder and decoder MLPs with input/output standardisation folded in as buffers."""

    def __init__(self, d_tx: int, d_rx: int, n_tx: int, n_rx: int, hidden: int = 64, power: float = 1.0) -> None:
        super().__init__()
        self.n_tx, self.n_rx, self.power = n_tx, n_rx, float(power)
        self.enc = nn.Sequential(nn.Linear(d_tx, hidden), nn.ReLU(), nn.Linear(hidden, 2 * n_tx))
        self.dec = nn.Sequential(nn.Linear(2 * n_rx, hidden), nn.ReLU(), nn.Linear(hidden, d_rx))
        self.register_buffer("x_mean", torch.zeros(d_tx))
        self.register_buffer("x_std", torch.ones(d_tx))
        self.register_buffer("y_mean", torch.zeros(d_rx))
        self.register_buffer("y_scale", torch.ones(()))
        self.masks: dict[str, torch.Tensor] = {}

    def linears(self) -> list[nn.Linear]:
        """The weight layers in forward order (encoder then decoder)."""
        return [m for m in (*self.enc, *self.dec) if isinstance(m, nn.Linear)]

    def precode(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, d_tx)`` → ``(B, 2Nt)`` real pairs with ``||s_b||² = P`` for every sample."""
        s = self.enc((x - self.x_mean) / self.x_std)
        # The clamp only guards the (measure-zero) all-zero output; it never changes a valid sample's power.
        return math.sqrt(self.power) * s / s.norm(dim=1, keepdim=True).clamp_min(1e-12)

    def decode(self, r: torch.Tensor) -> torch.Tensor:
        """``(B, 2Nr)`` received real pairs → ``(B, d_rx)`` receiver latents."""
        return self.dec(r) * self.y_scale + self.y_mean

    def apply_masks(self) -> None:
        """Zero the pruned weights (after every optimiser step during masked fine-tuning)."""
        with torch.no_grad():
            for i, lin in enumerate(self.linears()):
                m = self.masks.get(str(i))
                if m is not None:
                    lin.weight.mul_(m)


def _prune_global(net: NeuralNet, sparsity: float) -> None:
    """Global magnitude pruning: zero the ``sparsity`` fraction of smallest-|w| weights over all layers."""
    if sparsity <= 0.0:
        net.masks = {}
        return
    weights = [lin.weight.detach().abs().flatten() for lin in net.linears()]
    allw = torch.cat(weights)
    n_prune = round(sparsity * allw.numel())
    if n_prune == 0:
        net.masks = {}
        return
    thresh = torch.kthvalue(allw, n_prune).values
    net.masks = {str(i): (lin.weight.detach().abs() > thresh).float() for i, lin in enumerate(net.linears())}
    net.apply_masks()


def _train(net: NeuralNet, x: torch.Tensor, y: torch.Tensor, h_real: torch.Tensor, sigma2: float, epochs: int,
           batch_size: int, lr: float, gen: torch.Generator, losses: list[float]) -> None:
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    n = x.shape[0]
    noise_std = float(np.sqrt(sigma2 / 2.0))  # per real component of CN(0, σ²)
    for _ in range(epochs):
        perm = torch.randperm(n, generator=gen)
        tot = 0.0
        for start in range(0, n, batch_size):
            idx = perm[start:start + batch_size]
            s = net.precode(x[idx])
            r = s @ h_real.T
            if noise_std > 0:
                r = r + noise_std * torch.randn(r.shape, generator=gen)
            loss = ((net.decode(r) - y[idx]) ** 2).sum(dim=1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            if net.masks:
                net.apply_masks()
            tot += float(loss.detach()) * len(idx)
        losses.append(tot / n)


@dataclass
class NeuralAligner:
    """A trained neural aligner working on numpy real latents (same interface as the linear aligner)."""

    net: NeuralNet
    link: RawLink | SVDMMSELink
    d_tx: int
    d_rx: int
    sparsity: float
    train_loss: list[float] = field(default_factory=list)

    @property
    def n_tx(self) -> int:
        """Complex symbols per channel use at the encoder output."""
        return self.net.n_tx

    def encode(self, x: np.ndarray) -> np.ndarray:
        """Real latents ``(n, d_tx)`` → complex symbols ``(Nt, n)``, each column with energy exactly ``P``.

        The network runs in float32; the result is renormalised in float64 so the per-sample budget holds to
        double precision (the float32 normalisation is only accurate to ~1e-7).
        """
        pack_complex(x, "x")  # validation only (shape, even d, finite)
        if x.shape[1] != self.d_tx:
            raise ValueError(f"x has d={x.shape[1]}, the aligner was trained for d_tx={self.d_tx}")
        with torch.no_grad():
            s = self.net.precode(torch.as_tensor(x, dtype=torch.float32)).double().numpy()
        sc = (s[:, : self.n_tx] + 1j * s[:, self.n_tx:]).T
        nrm = np.linalg.norm(sc, axis=0, keepdims=True)
        return np.sqrt(self.net.power) * sc / np.maximum(nrm, 1e-300)

    def decode(self, r: np.ndarray) -> np.ndarray:
        """Received complex ``(Nr, n)`` (or equalised ``(k, n)``) → real latents ``(n, d_rx)`` float64."""
        with torch.no_grad():
            rr = torch.as_tensor(unpack_complex(r), dtype=torch.float32)
            return self.net.decode(rr).double().numpy()

    def simulate(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """End to end over ``link`` with fresh noise from ``rng``."""
        return self.decode(self.link.transmit(self.encode(x), rng))


def neural_flops(aligner: NeuralAligner | NeuralNet) -> int:
    """Inference FLOPs per sample of the (pruned) encoder + decoder; counting rule in :mod:`.flops`."""
    net = aligner.net if isinstance(aligner, NeuralAligner) else aligner
    layers = []
    lins = net.linears()
    n_enc = sum(isinstance(m, nn.Linear) for m in net.enc)
    for i, lin in enumerate(lins):
        m = net.masks.get(str(i))
        nnz = int(m.sum()) if m is not None else int(torch.count_nonzero(lin.weight))
        last_of_block = i == n_enc - 1 or i == len(lins) - 1
        layers.append((nnz, lin.out_features, not last_of_block))
    # Power normalisation of 2Nt reals: 2Nt squares-and-adds (1 MAC each), one sqrt, one division, 2Nt scalings.
    norm = REAL_MAC * 2 * net.n_tx + 2 + 2 * net.n_tx
    return neural_flops_from_layers(layers) + norm


def fit_neural_aligner(x_tx: np.ndarray, y_rx: np.ndarray, h: np.ndarray, *, snr_db: float | None = None,
                       sigma2: float | None = None, power: float = 1.0, hidden: int = 64, epochs: int = 60,
                       batch_size: int = 128, lr: float = 3e-3, sparsity: float = 0.0, finetune_epochs: int = 20,
                       channel_aware: bool = True, seed: int = 0) -> NeuralAligner:
    """Train a neural aligner from paired real latents through the noisy MIMO channel ``H`` (``Nr × Nt``).

    Args:
        x_tx, y_rx: ``(n, d_tx)`` / ``(n, d_rx)`` latents of the same inputs (even dimensions).
        h: complex channel; the encoder emits ``Nt`` complex symbols, the decoder reads ``Nr``.
        snr_db / sigma2: training (and link) noise level, exactly one.
        power: per-sample transmit energy ``P`` (enforced exactly).
        hidden: width of the single hidden layer of each MLP (a complexity knob).
        epochs, batch_size, lr: Adam training schedule.
        sparsity: fraction of weights removed by global magnitude pruning after training (0 = dense), followed by
            ``finetune_epochs`` of masked fine-tuning.
        channel_aware: ``False`` trains with ``H = I_k``, no noise (``k = min(Nr, Nt)``) and evaluates over an
            :class:`SVDMMSELink` of the true channel.
        seed: seeds initialisation, batching and training noise (``torch.Generator``; global RNG untouched
            except for the layer initialisation, which is done under ``torch.random.fork_rng``).
    """
    s2 = resolve_sigma2(snr_db, sigma2, power)
    xc, yc = _prepare_pair(x_tx, y_rx)
    h = check_channel_matrix(h)
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity!r}")
    if hidden < 1 or epochs < 0 or batch_size < 1 or not lr > 0:
        raise ValueError("hidden, batch_size must be >= 1, epochs >= 0 and lr > 0")
    d_tx, d_rx = 2 * xc.shape[0], 2 * yc.shape[0]
    h_fit, s2_fit = (h, s2) if channel_aware else (np.eye(min(h.shape)), 0.0)
    n_rx, n_tx = h_fit.shape

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = NeuralNet(d_tx, d_rx, n_tx, n_rx, hidden=hidden, power=power)
    x = torch.as_tensor(np.asarray(x_tx), dtype=torch.float32)
    y = torch.as_tensor(np.asarray(y_rx), dtype=torch.float32)
    net.x_mean.copy_(x.mean(0))
    net.x_std.copy_(x.std(0).clamp_min(1e-6))
    net.y_mean.copy_(y.mean(0))
    # One scalar for y keeps the loss proportional to the alignment MSE (per-dimension scaling would reweight it).
    net.y_scale.copy_((y - y.mean(0)).pow(2).mean().sqrt().clamp_min(1e-6))
    gen = torch.Generator().manual_seed(seed)
    hr = torch.as_tensor(real_channel(h_fit.astype(np.complex128)), dtype=torch.float32)
    losses: list[float] = []
    _train(net, x, y, hr, s2_fit, epochs, batch_size, lr, gen, losses)
    if sparsity > 0:
        _prune_global(net, sparsity)
        _train(net, x, y, hr, s2_fit, finetune_epochs, batch_size, lr * 0.3, gen, losses)
    net.eval()
    aligner = NeuralAligner(net=net, link=RawLink(h, s2), d_tx=d_tx, d_rx=d_rx, sparsity=float(sparsity),
                            train_loss=losses)
    if not channel_aware:
        aligner.link = SVDMMSELink(h, s2, n_tx, power)
    return aligner
