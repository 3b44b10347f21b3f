"""Activation modules for the policies' CPU hot path.

torch's CPU ``tanh`` kernel is not vectorised in the builds this project ships against (it costs several times a
``sigmoid`` of the same tensor), and PPO's update spends a visible share of its time in it. :class:`Tanh` computes
the same function through the identity ``tanh(x) = 2·sigmoid(2x) − 1``, whose kernel is vectorised, with the
derivative ``1 − tanh²`` written out so that autograd stores one tensor, as ``nn.Tanh`` does. The two agree to
float32 rounding (absolute difference below 2.4e-7, ``tests/test_activations.py``); they are not bit-identical, so
a model trained with one and evaluated with the other differs in the last bits of its logits.

:func:`fast_activation` swaps ``nn.Tanh`` for :class:`Tanh` and leaves every other activation class unchanged. The
policies apply it when they build their networks, not in their constructor arguments, so saved models keep
``activation_fn=nn.Tanh`` and load with or without this module.
"""

from __future__ import annotations

from typing import Any

import torch as th
from torch import nn


class _SigmoidTanh(th.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: th.Tensor) -> th.Tensor:
        y = th.sigmoid(x * 2.0).mul_(2.0).sub_(1.0)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: Any, grad: th.Tensor) -> th.Tensor:
        (y,) = ctx.saved_tensors
        return grad * (1.0 - y * y)


def tanh(x: th.Tensor) -> th.Tensor:
    """``tanh(x)`` as ``2·sigmoid(2x) − 1`` (module docstring), differentiable."""
    return _SigmoidTanh.apply(x)


class Tanh(nn.Tanh):
    """``nn.Tanh`` computed by :func:`tanh`; a subclass, so ``isinstance(m, nn.Tanh)`` still holds."""

    def forward(self, x: th.Tensor) -> th.Tensor:
        return tanh(x)


def fast_activation(activation: type[nn.Module]) -> type[nn.Module]:
    """:class:`Tanh` for ``nn.Tanh``, any other activation class as it is."""
    return Tanh if activation is nn.Tanh else activation
