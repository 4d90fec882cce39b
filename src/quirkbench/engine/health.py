"""Whether training is going anywhere, checked once an epoch from numbers the engine reads
in its one host sync: a non-finite loss or parameter, a finite loss that exploded, or (when
aiming for a target accuracy) a model still at chance past a budget. Each is an error that
fails the unit with the step named, so no metric is read off a model that did not train."""

from __future__ import annotations

import torch

from ..errors import DidNotTrainError, DivergenceError

EXPLODE = 1e3  # a finite loss this many times its first step's (at least 1 nat): diverged
STALL_EPOCHS = 20  # aiming for a target, still at chance after this many epochs: did not train
STALL_MARGIN = 0.02  # "at chance": running accuracy within 2 pp of the largest class's share
STALL_LOSS = 1.0  # ... and the epoch's mean loss not below the first step's at all (a slow
#   learner at chance has a falling loss: the docs' width example, 2.29 < 2.31 at epoch 20)


def health(losses: list[torch.Tensor], params, first: torch.Tensor) -> torch.Tensor:
    """On the device, no host sync: (index of the first non-finite loss in ``losses`` or -1,
    1 if every parameter is finite else 0, index of the first finite loss above ``EXPLODE``
    × max(``first``, 1) or -1, that loss), float64, read with the epoch's other numbers in
    one transfer. The per-step cost is a list append of a tensor the step made anyway; the
    check runs once per epoch."""
    stacked = torch.stack(losses)
    finite = torch.isfinite(stacked)
    first_bad = torch.where((~finite).any(), (~finite).long().argmax(), -1)
    ok = all_finite(params).to(stacked.device)
    big = finite & (stacked > EXPLODE * torch.clamp(first, min=1.0))
    first_big = torch.where(big.any(), big.long().argmax(), -1)
    return torch.stack([first_bad.double(), ok.double(), first_big.double(),
                        stacked[first_big.clamp(min=0)].double()])


def all_finite(params) -> torch.Tensor:
    """0-dim bool on the device: every element of every tensor in ``params`` is finite.
    Each tensor's largest and smallest element (``amax``/``amin`` propagate NaN; +inf is a
    largest, -inf a smallest element): the same answer as ``isfinite(p).all()`` with two
    reading passes and no tensor the size of ``p`` allocated: on one CPU thread here
    0.09 ms for mlp-512's parameters against 1.5 ms, which the training step paid once an
    epoch."""
    ends = [e for p in params if p.numel() for e in (p.detach().amax(), p.detach().amin())]
    return torch.isfinite(torch.stack(ends)).all() if ends else torch.ones((), dtype=torch.bool)


def raise_if_diverged(health: list[float], first: float, step0: int, step: int) -> None:
    """``health``: what ``health`` measured; ``step0``: steps taken before this epoch;
    ``step``: after it. The earliest sign wins."""
    first_bad, params_ok, first_big, big = health
    if first_big >= 0 and (first_bad < 0 or first_big < first_bad):
        raise DivergenceError(step0 + int(first_big) + 1, reason=(
            f"loss {big:.3g}, over {EXPLODE:g}× the first step's {first:.3g}"))
    if first_bad >= 0:
        raise DivergenceError(step0 + int(first_bad) + 1, "loss")
    if not params_ok:
        raise DivergenceError(step, "parameters")


def raise_if_stalled(epoch: int, step: int, acc: float, loss: float, chance: float,
                      first: float) -> None:
    """Training that aims for a target accuracy and, ``STALL_EPOCHS`` epochs in, still sits
    at chance with a loss that has not fallen: a dead network (random labels are off chance
    and their loss well down by then on every seed tried, 5-25 epochs into 300)."""
    if epoch >= STALL_EPOCHS and acc <= chance + STALL_MARGIN and loss >= STALL_LOSS * first:
        raise DidNotTrainError(step, (
            f"({epoch} epochs) the training accuracy {100 * acc:.1f}% is chance "
            f"({100 * chance:.1f}%, the largest class) and the loss {loss:.3g} has not fallen "
            f"below the first step's {first:.3g}"))
