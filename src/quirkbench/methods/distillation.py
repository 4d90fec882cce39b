"""Knowledge distillation (Hinton et al. 2015): the softened targets, the T²-scaled loss, and
``distill``, which trains the same student on hard labels and on a teacher's soft targets."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from ..engine.models import count_params, make_model
from ..engine.train import TrainConfig, evaluate, predict, train


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


def distill(teacher, ds, *, student: str, temperature: float, fraction: float,
            train_cfg: TrainConfig, seed: int, device,
            log: Callable[[str], None] = lambda msg: None) -> tuple[dict[str, float], int, int]:
    """The same ``student`` model (same init, same steps) on hard labels and on the
    teacher's outputs softened at ``temperature``, both on the transfer set: ``fraction`` of
    ``ds``'s training split, drawn from ``seed``. Returns ({"hard-labels", "distilled": test
    accuracy %}, student parameters, transfer-set size)."""
    g = torch.Generator().manual_seed(seed * 1000 + 17)
    n = max(ds.num_classes, round(fraction * len(ds.y_train)))
    pick = torch.randperm(len(ds.y_train), generator=g)[:n].to(ds.y_train.device)
    x, y = ds.x_train[pick], ds.y_train[pick]
    teacher_soft = soft_targets(predict(teacher, x), temperature)
    students = {}
    for kind in ("hard-labels", "distilled"):
        s = make_model(student, ds.input_shape, ds.num_classes, seed=seed + 1)
        s = s.to(device)
        if kind == "distilled":
            train(s, x, teacher_soft, train_cfg, seed=seed, loss_fn=distillation_loss(temperature),
                  final_train_eval=False)
        else:
            train(s, x, y, train_cfg, seed=seed, final_train_eval=False)
        students[kind] = 100 * evaluate(s, ds.x_test, ds.y_test)[0]
    log(f"student {student} on {n} examples: hard labels {students['hard-labels']:.2f}%"
        f", distilled {students['distilled']:.2f}% (T={temperature:g})")
    return students, count_params(s), n
