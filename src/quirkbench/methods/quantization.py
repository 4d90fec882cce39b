"""Post-training int8 quantization and the storage it needs, sparse indices included (Han et
al. 2016): ``quantize_int8_`` rounds the weight matrices in place, ``bits_breakdown`` counts
the bits of a pruned, quantized model against dense fp32, ``quantize`` does both for one
trained state and reports the accuracy before and after."""

from __future__ import annotations

import torch
from torch import nn

from ..engine.models import count_params
from ..engine.train import evaluate
from ..errors import UserError
from .pruning import prunable

INDEX_SCHEMES = ("bitmask", "relative-4", "relative-5", "relative-8")


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


def quantize(model: nn.Module, state: dict, ds, index_scheme: str = "relative-5") -> dict:
    """int8 post-training quantization of ``state`` loaded into ``model`` (left quantized):
    test accuracy (%) of ``ds`` before (``pruned_acc``) and after (``int8_acc``), and the
    bits-level breakdown with the sparse index overhead (``bits``)."""
    model.load_state_dict(state)
    pruned_acc = 100 * evaluate(model, ds.x_test, ds.y_test)[0]
    quantize_int8_(model)
    int8_acc = 100 * evaluate(model, ds.x_test, ds.y_test)[0]
    return {"pruned_acc": pruned_acc, "int8_acc": int8_acc,
            "bits": bits_breakdown(model, 8, index_scheme)}
