"""Pruning: masks, compression ratios, the iso-accuracy search, and ``Pruner``, a
prune-and-fine-tune path through a schedule of target ratios (Han et al. 2015).

The mask and search functions are plain functions on plain inputs (parameter dicts, masks,
lists of numbers); ``Pruner`` fine-tunes with the one engine. The compression tasks
(``tasks/compression.py``, ``tasks/compressed_robustness.py``) string them together.
Quantization and distillation have modules of their own (``quantization.py``,
``distillation.py``).

* Masks are ``{parameter name: 0/1 float tensor}`` over the *weight matrices* (dim ≥ 2);
  biases are never pruned (Han et al. 2015 prune connections, not units).
* Pruning is *global*: one threshold over all weight matrices at once. ``magnitude`` keeps
  the largest |w|, ``random`` keeps a uniform random subset (the control, Blalock 2020).
  Already-pruned weights stay pruned, so repeated calls give nested masks (iterative).
* A compression ratio is dense parameters / nonzero parameters actually remaining (all
  parameters, biases included, counted with ``models.count_params``).
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

from ..engine.models import count_params
from ..engine.train import TrainConfig, evaluate, train
from ..errors import UserError

PRUNING_METHODS = ("magnitude", "random")  # which weights a cut keeps
# the paths through a schedule: each cut from the last point (Han 2015), each from the dense
# model, or like the first keeping a uniform random subset (the control, Blalock 2020)
PATHS = ("magnitude-iterative", "magnitude-oneshot", "random")

# moved to quantization.py / distillation.py; older imports (``quirkbench.compression``)
# still find them here
_MOVED = {"INDEX_SCHEMES": "quantization", "quantize_int8_": "quantization",
          "index_bits": "quantization", "bits_breakdown": "quantization",
          "distillation_loss": "distillation", "soft_targets": "distillation"}


def __getattr__(name: str):
    if name in _MOVED:
        return getattr(importlib.import_module(f"{__package__}.{_MOVED[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def state_copy(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of ``model``'s state dict (a point to come back to)."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


# --------------------------------------------------------------------------- masks

def prunable(model: nn.Module) -> dict[str, torch.Tensor]:
    """The weight matrices/kernels of ``model`` (parameters with dim ≥ 2), by name."""
    return {k: p for k, p in model.named_parameters() if p.dim() >= 2}


def keep_for_ratio(total: int, unprunable: int, ratio: float) -> int:
    """Weights to keep so that ``total / (kept + unprunable) ≈ ratio`` (at least 1 weight)."""
    if not ratio > 1:
        raise UserError(f"a target compression ratio must be > 1, got {ratio}")
    return max(1, round(total / ratio) - unprunable)


def prune_masks(weights: dict[str, torch.Tensor], keep: int, method: str = "magnitude", *,
                masks: dict[str, torch.Tensor] | None = None,
                generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """Global masks keeping exactly ``keep`` weights among those not yet pruned.

    weights: name → tensor (any shape); masks: the current masks (None: nothing pruned).
    ``magnitude`` keeps the largest |w| over all tensors at once; ``random`` a uniform subset
    drawn from ``generator``. Returns name → 0/1 tensor of the weight's shape and dtype.
    """
    if method not in PRUNING_METHODS:
        raise UserError(f"unknown pruning method {method!r}; valid: {', '.join(PRUNING_METHODS)}")
    names = list(weights)
    flat = torch.cat([weights[k].detach().reshape(-1).float().cpu() for k in names])
    alive = (torch.cat([masks[k].reshape(-1).cpu() for k in names]) > 0 if masks
             else torch.ones_like(flat, dtype=torch.bool))
    if method == "magnitude":
        score = flat.abs()
    else:
        score = torch.rand(flat.shape, generator=generator)
    score = score.masked_fill(~alive, -math.inf)  # the pruned stay pruned: nested masks
    keep = min(keep, int(alive.sum()))
    flat_mask = torch.zeros_like(flat)
    flat_mask[torch.topk(score, keep, sorted=False).indices] = 1.0
    out, i = {}, 0
    for k in names:
        n = weights[k].numel()
        w = weights[k]
        out[k] = flat_mask[i:i + n].reshape(w.shape).to(w.device, w.dtype)
        i += n
    return out


def compression_ratio(model: nn.Module) -> float:
    """Dense parameters / nonzero parameters (×)."""
    return count_params(model) / max(count_params(model, nonzero=True), 1)


# --------------------------------------------------------------------------- iso-accuracy

def meets(acc: float, dense_acc: float, delta_pp: float) -> bool:
    """Accuracy (%) within ``delta_pp`` percentage points of the dense accuracy (%)."""
    return acc >= dense_acc - delta_pp - 1e-9


def iso_accuracy_index(ratios: Sequence[float], accs: Sequence[float], dense_acc: float,
                       delta_pp: float) -> int | None:
    """Index of the largest ratio whose accuracy (%) is within δ of the dense accuracy (%).

    ``ratios`` and ``accs`` are one accuracy-vs-ratio curve (any order). None when no point
    qualifies. By construction every larger ratio on the curve misses δ.
    """
    if delta_pp < 0:
        raise UserError(f"delta_pp must be ≥ 0 percentage points, got {delta_pp}")
    ok = [i for i, a in enumerate(accs) if meets(a, dense_acc, delta_pp)]
    return max(ok, key=lambda i: ratios[i]) if ok else None


def bisect_ratio(lo: float, hi: float, probe: Callable[[float], bool], steps: int) -> float:
    """Refine an iso-accuracy ratio: ``lo`` meets δ, ``hi`` does not; ``probe(r)`` says
    whether ratio r meets δ. Bisects in log-ratio ``steps`` times; returns the largest
    ratio found to meet δ."""
    for _ in range(steps):
        mid = math.sqrt(lo * hi)
        if probe(mid):
            lo = mid
        else:
            hi = mid
    return lo


def crossing_ratio(lo: tuple[float, float], hi: tuple[float, float], threshold: float) -> float:
    """Where an accuracy-vs-ratio curve crosses ``threshold`` (%), interpolated linearly in
    log-ratio between two bracketing points (ratio ×, accuracy %): ``lo`` meets it (accuracy
    ≥ threshold), ``hi`` is at a larger ratio and misses it. Returns a ratio in [lo, hi].

    The iso point then moves smoothly with the accuracies instead of jumping between the
    probed ratios: a point 0.1 pp above the threshold and one 0.1 pp below no longer give
    answers a whole bisection step apart."""
    (r0, a0), (r1, a1) = lo, hi
    if not (r1 > r0 > 0 and a0 >= threshold - 1e-9 and a1 < threshold - 1e-9):
        raise ValueError(f"crossing_ratio needs lo={lo} meeting {threshold} and hi={hi} at a "
                         "larger ratio missing it")
    t = min(1.0, max(0.0, (a0 - threshold) / (a0 - a1)))
    return math.exp(math.log(r0) + t * (math.log(r1) - math.log(r0)))


# --------------------------------------------------------------------------- the path

class Pruner:
    """Prune-and-fine-tune steps for one path of ``PATHS``, all from the same dense model
    (``dense_state``) and data set ``ds``: each cut prunes globally to a target ratio (×),
    then fine-tunes with ``finetune`` (masks keep pruned weights at zero). ``ratios``: the
    schedule ``curve`` walks; ``draw``: another random mask draw (its own generator)."""

    def __init__(self, method: str, model: nn.Module, dense_state: dict, ds,
                 ratios: Sequence[float], finetune: TrainConfig, seed: int, draw: int = 0):
        if method not in PATHS:
            raise UserError(f"unknown pruning path {method!r}; valid: {', '.join(PATHS)}")
        self.method, self.model, self.ds, self.seed = method, model, ds, seed
        self.ratios, self.finetune = tuple(ratios), finetune
        self.kind = "random" if method == "random" else "magnitude"
        self.gen = torch.Generator().manual_seed(seed + 7919 * draw)
        self.dense = {"ratio": 1.0, "state": dense_state, "masks": None}
        self.total = count_params(model)
        self.unprunable = self.total - sum(p.numel() for p in prunable(model).values())

    def step(self, start: dict, target: float, train_seed: int) -> dict:
        """Prune from the ``start`` point to ``target`` (×), fine-tune; the new point:
        {target, ratio, test_acc (%), params (nonzero), steps, state, masks}."""
        self.model.load_state_dict(start["state"])
        keep = keep_for_ratio(self.total, self.unprunable, target)
        masks = prune_masks(prunable(self.model), keep, self.kind, masks=start["masks"],
                            generator=self.gen)
        r = train(self.model, self.ds.x_train, self.ds.y_train, self.finetune, seed=train_seed,
                  masks=masks, final_train_eval=False)
        acc = 100 * evaluate(self.model, self.ds.x_test, self.ds.y_test)[0]
        return {"target": target, "ratio": compression_ratio(self.model), "test_acc": acc,
                "params": count_params(self.model, nonzero=True), "steps": r.steps,
                "state": state_copy(self.model), "masks": masks}

    def curve(self, stop_below: float | None = None) -> list[dict]:
        """One point per target ratio; iterative paths start each cut from the last point.
        With ``stop_below`` (an accuracy, %), stop after two points in a row below it."""
        points, prev = [], self.dense
        for j, target in enumerate(self.ratios):
            start = self.dense if self.method == "magnitude-oneshot" else prev
            prev = self.step(start, target, train_seed=self.seed * 1000 + j)
            points.append(prev)
            if stop_below is not None and len(points) >= 2 and \
                    all(p["test_acc"] < stop_below - 1e-9 for p in points[-2:]):
                break
        return points
