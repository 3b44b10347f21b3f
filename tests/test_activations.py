"""The vectorised tanh is torch's tanh to float32 rounding, in values and gradients, and swaps only nn.Tanh."""

from __future__ import annotations

import torch as th
from torch import nn

from agents.common.activations import Tanh, fast_activation, tanh


def test_values_and_gradients_match_torch_tanh() -> None:
    x = th.cat([th.linspace(-30.0, 30.0, 200_001), th.randn(100_000) * 3.0,
                th.tensor([0.0, -0.0, 1e-30, -1e-30, 1e-8, 88.0, -88.0, 1e4, -1e4])])
    xa = x.clone().requires_grad_(True)
    xb = x.clone().requires_grad_(True)
    ya, yb = tanh(xa), th.tanh(xb)
    assert th.isfinite(ya).all() and (ya.abs() <= 1.0).all()
    assert (ya - yb).abs().max().item() < 2.4e-7
    w = th.randn_like(x)
    (ya * w).sum().backward()
    (yb * w).sum().backward()
    assert (xa.grad - xb.grad).abs().max().item() < 1e-6 * float(w.abs().max())
    # saturated inputs: exactly ±1 with zero gradient, as torch's
    assert ya[-2].item() == 1.0 and ya[-1].item() == -1.0
    assert xa.grad[-2].item() == 0.0 and xa.grad[-1].item() == 0.0


def test_gradcheck_in_double_precision() -> None:
    x = th.randn(40, dtype=th.float64, requires_grad=True)
    assert th.autograd.gradcheck(tanh, (x,))


def test_only_tanh_is_swapped() -> None:
    assert fast_activation(nn.Tanh) is Tanh
    assert fast_activation(nn.ReLU) is nn.ReLU and fast_activation(nn.ELU) is nn.ELU
    assert isinstance(Tanh(), nn.Tanh)
    th.testing.assert_close(Tanh()(th.tensor([0.5, -2.0])), th.tanh(th.tensor([0.5, -2.0])))
