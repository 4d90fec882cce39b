"""``train_many``'s K models of one architecture: their parameters stacked and called at
once through ``vmap`` (``Stack``), and where each reached its target (``Fit``)."""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap


class Stack:
    """K models of one architecture as stacked parameters, called at once through ``vmap``."""

    def __init__(self, models: list[nn.Module]):
        self.k = len(models)
        base = copy.deepcopy(models[0]).to("meta")
        torch.func.replace_all_batch_norm_modules_(base)
        self.params, self.buffers = stack_module_state(models)

        def logits_one(p, bufs, xb):
            return functional_call(base, (p, bufs), (xb,))

        self.batched = vmap(logits_one, in_dims=(0, 0, 0))

    def logits(self, xb: torch.Tensor) -> torch.Tensor:
        """xb (K, B, ...) → logits (K, B, C)."""
        return self.batched(self.params, self.buffers, xb)

    def accuracy(self, xe, ye, xper: bool, yper: bool) -> torch.Tensor:
        """Accuracy (K,) on ``xe``, ``ye``; xper/yper: one set per model (K, N, ...)."""
        with torch.no_grad():
            n_e = ye.shape[1] if yper else len(ye)
            accs = []
            for i in range(0, n_e, 4096):
                xb = xe[:, i:i + 4096] if xper else xe[i:i + 4096].expand(self.k,
                                                                        *xe[i:i + 4096].shape)
                yb = ye[:, i:i + 4096] if yper else ye[i:i + 4096].expand(self.k, -1)
                accs.append((self.logits(xb).argmax(-1) == yb).float().sum(1))
            return torch.stack(accs).sum(0) / n_e

    def snapshot(self, j: int) -> dict[str, torch.Tensor]:
        return {name: p[j].detach().clone() for name, p in self.params.items()}

    def restore(self, j: int, snap: dict[str, torch.Tensor]) -> None:
        for name, p in self.params.items():
            p[j].copy_(snap[name])

    def write_back(self, models: list[nn.Module]) -> None:
        for j, m in enumerate(models):
            m.load_state_dict({name: p[j].detach().clone() for name, p in self.params.items()}
                              | {name: bb[j].clone() for name, bb in self.buffers.items()})


class Fit:
    """Per model: the curve, and the point (and weights) where it reached the target."""

    def __init__(self, k: int):
        self.done_at: list[dict | None] = [None] * k
        self.snapshot: dict[int, dict[str, torch.Tensor]] = {}
        self.curves: list[list[dict]] = [[] for _ in range(k)]

    def all_done(self) -> bool:
        return all(d is not None for d in self.done_at)

    def record(self, stack: Stack, epoch: int, step: int, now: float, run_acc: list[float],
               full: list[float] | None, test: list[float] | None,
               target: float | None) -> None:
        """One epoch's point for every model still training; a model whose full training
        accuracy ``full`` reached ``target`` is done, its weights kept from now."""
        for j in range(len(self.done_at)):
            if self.done_at[j] is not None:
                continue
            acc = full[j] if full is not None else run_acc[j]
            point = {"epoch": epoch, "step": step, "seconds": now, "train_acc": acc}
            if test is not None:
                point["test_acc"] = test[j]
            self.curves[j].append(point)
            if full is not None and full[j] >= target:
                self.done_at[j] = point
                self.snapshot[j] = stack.snapshot(j)
