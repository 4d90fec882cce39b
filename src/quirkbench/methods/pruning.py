"""Compression arithmetic: pruning masks, iso-accuracy search, int8 quantization, bit counts.

Plain functions on plain inputs (parameter dicts, masks, lists of numbers), no training:
the compression task (``tasks/compression.py``) strings them together with the one engine.

* Masks are ``{parameter name: 0/1 float tensor}`` over the *weight matrices* (dim ≥ 2);
  biases are never pruned (Han et al. 2015 prune connections, not units).
* Pruning is *global*: one threshold over all weight matrices at once. ``magnitude`` keeps
  the largest |w|, ``random`` keeps a uniform random subset (the control, Blalock 2020).
  Already-pruned weights stay pruned, so repeated calls give nested masks (iterative).
* A compression ratio is dense parameters / nonzero parameters actually remaining (all
  parameters, biases included, counted with ``models.count_params``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..engine.models import count_params
from ..errors import UserError

PRUNING_METHODS = ("magnitude", "random")
INDEX_SCHEMES = ("bitmask", "relative-4", "relative-5", "relative-8")


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


# --------------------------------------------------------------------------- int8 and bits

@torch.no_grad()
def quantize_int8_(model: nn.Module) -> dict[str, float]:
    """Post-training symmetric per-tensor int8 quantization of the weight matrices, in place.

    w ← round(w / s).clamp(-127, 127) · s with s = max|w| / 127, so zeros stay zero and
    the sparsity pattern survives. Biases stay fp32. Returns name → scale s.
    """
    scales = {}
    for k, w in prunable(model).items():
        s = w.abs().max().item() / 127 or 1.0
        w.copy_(torch.round(w / s).clamp_(-127, 127) * s)
        scales[k] = s
    return scales


def index_bits(mask: torch.Tensor, scheme: str = "relative-5") -> tuple[int, int]:
    """(index bits, filler entries) to locate the nonzeros of one mask.

    ``bitmask``: one bit per position. ``relative-b`` (Han et al. 2016, CSR with relative
    indices): each nonzero stores the gap to the previous one (row-major, across rows) in b
    bits; a gap larger than 2^b needs filler zero entries, each costing b index bits and
    one stored (zero) value — the caller charges the value bits for the fillers.
    """
    if scheme not in INDEX_SCHEMES:
        raise UserError(f"unknown index scheme {scheme!r}; valid: {', '.join(INDEX_SCHEMES)}")
    if scheme == "bitmask":
        return mask.numel(), 0
    b = int(scheme.split("-")[1])
    pos = torch.nonzero(mask.reshape(-1)).reshape(-1)
    if len(pos) == 0:
        return 0, 0
    gaps = torch.diff(pos, prepend=torch.tensor([-1], device=pos.device))  # ≥ 1
    entries = int(torch.ceil(gaps.double() / 2 ** b).sum().item())  # one per 2^b of gap
    return entries * b, entries - len(pos)


def bits_breakdown(model: nn.Module, weight_bits: int = 8, scheme: str = "relative-5") -> dict:
    """Storage of a pruned, quantized model against dense fp32, in bits.

    dense = 32 × all parameters. compressed = nonzero weights × ``weight_bits`` + filler
    entries × ``weight_bits`` + index bits (``scheme``) + one fp32 scale per weight tensor
    + biases × 32. ``ratio`` = dense / compressed (×).
    """
    dense = 32 * count_params(model)
    weights = prunable(model)
    nnz = sum(int((w != 0).sum()) for w in weights.values())
    idx = fill = 0
    for w in weights.values():
        i, f = index_bits(w != 0, scheme)
        idx += i
        fill += f
    biases = count_params(model) - sum(w.numel() for w in weights.values())
    compressed = (nnz + fill) * weight_bits + idx + 32 * len(weights) + 32 * biases
    return {"dense_bits": dense, "compressed_bits": compressed, "nonzero_weights": nnz,
            "filler_entries": fill, "index_bits": idx, "weight_bits": weight_bits,
            "index_scheme": scheme, "ratio": dense / compressed}


# --------------------------------------------------------------------------- distillation

def distillation_loss(temperature: float) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Hinton et al. 2015: cross-entropy between the teacher's softened distribution y (N, C)
    (probabilities at temperature T) and the student's softmax at T, scaled by T² so the
    gradient magnitude does not shrink as 1/T²."""
    t = float(temperature)

    def loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return t * t * F.cross_entropy(logits / t, y)

    return loss


@torch.no_grad()
def soft_targets(teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """softmax(logits / T), (N, C) probabilities."""
    return F.softmax(teacher_logits / temperature, dim=-1)
