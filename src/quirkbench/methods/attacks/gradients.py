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


_PAD = 64  # the transposed logits' columns: a multiple of any CPU's vector width
_AGREES: dict[tuple, bool] = {}


def transposed_log_softmax_agrees(classes: int, dtype: torch.dtype, device) -> bool:
    """Whether log-softmax and its backward give the same bits along dim 0 of the
    transposed logits (classes, n), n a multiple of ``_PAD``, as along the last dim of
    (n, classes). On this CPU (AVX512) they do for fewer classes than the vector width and
    not beyond; checked once per process on random logits, and autograd is the judge in
    ``tests/test_attacks.py``."""
    key = (classes, dtype, torch.device(device).type)
    if key not in _AGREES:
        g = torch.Generator(device=device).manual_seed(0)
        h = torch.randn(4 * _PAD, classes, generator=g, device=device, dtype=dtype) * 8
        y = torch.randint(0, classes, (len(h),), generator=g, device=device)
        oh = torch.zeros_like(h).scatter_(1, y[:, None], -1.0)
        a = torch.ops.aten._log_softmax(h, 1, False)
        b = torch.ops.aten._log_softmax(h.t().contiguous(), 0, False)
        ga = torch.ops.aten._log_softmax_backward_data(oh, a, 1, dtype)
        gb = torch.ops.aten._log_softmax_backward_data(oh.t().contiguous(), b, 0, dtype)
        _AGREES[key] = torch.equal(a, b.t()) and torch.equal(ga, gb.t())
    return _AGREES[key]


class MLPGradient:
    """(flipped, ∇ₓ CE) for a plain ReLU MLP (``engine.models.MLP``: Flatten, then Linear and
    ReLU alternating, a Linear last), derived by hand instead of by autograd: the same ATen
    ops autograd would run (addmm forward, log-softmax and its backward at the logits,
    ``mm`` by each weight, ``threshold_backward`` at each ReLU), so the gradient is
    bit-identical, but into buffers allocated once per attack (their first n rows as the
    batch shrinks), with no graph, no weight gradient and no per-step allocation of the
    (N, features) tensors. ``match`` returns None for anything else (autograd is used).

    Where ``transposed_log_softmax_agrees``, the log-softmax and its backward run on the
    logits transposed to (classes, n padded to a multiple of 64): along a dimension of 10
    the last-dimension kernel costs ~17x the other (76 vs 4.5 µs at n = 256, this CPU),
    with the same bits. −onehot(y) is built once per batch of rows."""

    def __init__(self, layers: list[nn.Linear], n: int, like: torch.Tensor):
        self.layers = layers
        kw = dict(device=like.device, dtype=like.dtype)
        c = layers[-1].out_features
        self.transposed = transposed_log_softmax_agrees(c, like.dtype, like.device)
        width = -(-n // _PAD) * _PAD if self.transposed else n
        self._acts = [torch.empty(n * lin.out_features, **kw) for lin in layers]
        self._grads = [torch.empty(n * lin.in_features, **kw) for lin in layers]
        # logits, log-probabilities, −onehot(y) (∂ sum CE / ∂ log-softmax) and the logits'
        # gradient, (classes, width) when transposed, else (n, classes); zeros: padding
        # columns stay finite
        self._t = [torch.zeros(c * width, **kw) for _ in range(4)]
        self._dz = torch.empty(n * c, **kw)
        self._n = self._y = None

    def _views(self, n: int) -> None:
        """Contiguous views of the buffers' first n rows, made when n changes."""
        c = self.layers[-1].out_features
        self.acts = [a[:n * lin.out_features].view(n, lin.out_features)
                     for a, lin in zip(self._acts, self.layers, strict=True)]
        self.grads = [g[:n * lin.in_features].view(n, lin.in_features)
                      for g, lin in zip(self._grads, self.layers, strict=True)]
        shape = (c, -(-n // _PAD) * _PAD) if self.transposed else (n, c)
        self.logits, self.logp, self.onehot, self.dlogits = (t[:shape[0] * shape[1]].view(shape)
                                                             for t in self._t)
        self.dz = self._dz[:n * c].view(n, c)
        self._n, self._y = n, None

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
        if n != self._n:
            self._views(n)
        h = x.reshape(n, -1)
        for i, lin in enumerate(self.layers):
            out = self.acts[i]
            if lin.bias is None:
                torch.mm(h, lin.weight.t(), out=out)
            else:
                torch.addmm(lin.bias, h, lin.weight.t(), out=out)
            if i < last:
                out.clamp_min_(0)
            h = out
        flipped = h.argmax(1) != y
        g = self._logits_grad(h, y)
        for i in range(last, -1, -1):
            out = self.grads[i]
            torch.mm(g, self.layers[i].weight, out=out)
            if i:
                torch.ops.aten.threshold_backward.grad_input(out, self.acts[i - 1], 0,
                                                             grad_input=out)
            g = out
        return flipped, g.view(x.shape)

    def _logits_grad(self, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """∂ sum CE / ∂ logits (n, classes): log-softmax, then its backward at −onehot(y)."""
        n, dim = len(h), 0 if self.transposed else 1
        if y is not self._y:  # a new batch of rows: −onehot(y)
            self.onehot.zero_().scatter_(dim, y[None, :] if dim == 0 else y[:, None], -1.0)
            self._y = y
        if self.transposed:
            self.logits[:, :n].copy_(h.t())
            logits = self.logits
        else:
            logits = h
        torch.ops.aten._log_softmax.out(logits, dim, False, out=self.logp)
        torch.ops.aten._log_softmax_backward_data.out(self.onehot, self.logp, dim, h.dtype,
                                                      out=self.dlogits)
        if not self.transposed:
            return self.dlogits
        return self.dz.copy_(self.dlogits[:, :n].t())
