"""The input gradient an attack ascends: the loss, autograd's ∇ₓ, and a hand-derived fast
path for plain ReLU MLPs that gives the same bits without a graph.

``gradient_fn(model, loss, n, like)`` picks one once per attack call; the attack then calls
it every iteration as ``(x_adv, y) -> (flipped (n,) bool, ∇ₓ loss (n, ...))``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ...engine.models import MLP

Gradient = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def attack_loss(logits: torch.Tensor, y: torch.Tensor, kind: str = "ce") -> torch.Tensor:
    """Summed loss the attacker ascends: cross-entropy, or the logit margin
    max_{j≠y} z_j − z_y (no softmax, so a saturated softmax cannot zero its gradient)."""
    if kind == "ce":
        return F.cross_entropy(logits, y, reduction="sum")
    true = logits.gather(1, y[:, None])[:, 0]
    other = logits.masked_fill(F.one_hot(y, logits.shape[1]).bool(), float("-inf")).amax(1)
    return (other - true).sum()


def input_gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                   loss: str = "ce") -> tuple[torch.Tensor, torch.Tensor]:
    """(logits (N, C), ∇ₓ of the summed ``loss`` (N, ...)) by autograd."""
    x = x.detach().requires_grad_(True)
    logits = model(x)
    (g,) = torch.autograd.grad(attack_loss(logits, y, loss), x)
    return logits.detach(), g


def gradient_fn(model: nn.Module, loss: str, n: int, like: torch.Tensor) -> Gradient:
    """``(x_adv, y) -> (flipped, ∇ₓ loss)`` for batches of at most ``n`` inputs shaped like
    ``like``: the hand-derived MLP gradient where it is exact, autograd anywhere else."""
    layers = MLPGradient.match(model, loss)
    if layers:
        return MLPGradient(layers, n, like)

    def autograd(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, g = input_gradient(model, x, y, loss)
        return logits.argmax(1) != y, g

    return autograd


class MLPGradient:
    """(flipped, ∇ₓ CE) for a plain ReLU MLP (``engine.models.MLP``: Flatten, then Linear and
    ReLU alternating, a Linear last), derived by hand instead of by autograd: the same ATen
    ops autograd would run (addmm forward, log-softmax and its backward at the logits,
    ``mm`` by each weight, ``threshold_backward`` at each ReLU), so the gradient is
    bit-identical, but into buffers allocated once per attack (rows ``[:n]`` of them as the
    batch shrinks), with no graph, no weight gradient and no per-step allocation of the
    (N, features) tensors. ``match`` returns None for anything else (autograd is used)."""

    def __init__(self, layers: list[nn.Linear], n: int, like: torch.Tensor):
        self.layers = layers
        kw = dict(device=like.device, dtype=like.dtype)
        self.acts = [torch.empty(n, lin.out_features, **kw) for lin in layers]
        self.grads = [torch.empty(n, lin.in_features, **kw) for lin in layers]
        classes = layers[-1].out_features
        self.onehot = torch.empty(n, classes, **kw)  # −onehot(y): ∂(sum CE)/∂ log_softmax
        self.logp = torch.empty(n, classes, **kw)
        self.dz = torch.empty(n, classes, **kw)

    @staticmethod
    def match(model: nn.Module, loss: str) -> list[nn.Linear] | None:
        if (loss != "ce" or type(model) is not MLP or type(model).forward is not MLP.forward
                or any(p.requires_grad for p in model.parameters())):
            return None
        mods = list(model.net)
        if not mods or type(mods[0]) is not nn.Flatten or mods[0].start_dim != 1:
            return None
        layers = mods[1::2]
        if (any(type(m) is not nn.Linear for m in layers)
                or any(type(m) is not nn.ReLU for m in mods[2::2])
                or type(mods[-1]) is not nn.Linear
                or any(m._forward_hooks or m._forward_pre_hooks or m._backward_hooks
                       for m in [model, *mods])):
            return None
        return layers

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n, last = len(x), len(self.layers) - 1
        h = x.reshape(n, -1)
        for i, lin in enumerate(self.layers):
            out = self.acts[i][:n]
            if lin.bias is None:
                torch.mm(h, lin.weight.t(), out=out)
            else:
                torch.addmm(lin.bias, h, lin.weight.t(), out=out)
            if i < last:
                out.clamp_min_(0)
            h = out
        flipped = h.argmax(1) != y
        logp, g = self.logp[:n], self.dz[:n]
        torch.ops.aten._log_softmax.out(h, 1, False, out=logp)
        onehot = self.onehot[:n].zero_().scatter_(1, y[:, None], -1.0)
        torch.ops.aten._log_softmax_backward_data.out(onehot, logp, 1, h.dtype, out=g)
        for i in range(last, -1, -1):
            out = self.grads[i][:n]
            torch.mm(g, self.layers[i].weight, out=out)
            if i:
                torch.ops.aten.threshold_backward.grad_input(out, self.acts[i - 1][:n], 0,
                                                             grad_input=out)
            g = out
        return flipped, g.view(x.shape)
