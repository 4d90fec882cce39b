"""Width: wider networks fit random labels sooner (Zhang et al. 2017, "Understanding deep
learning requires rethinking generalization", in miniature).

A one-hidden-layer MLP of each width in ``widths`` is trained on the data set's inputs with
labels drawn at random, for the same budget. The training accuracy each width reaches is
the metric; ``holds`` when the widest one fits at least ``min_fit_pct`` of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from quirkbench.config import at_least, check, check_each
from quirkbench.engine.models import make_model
from quirkbench.engine.train import TrainConfig, evaluate, train
from quirkbench.metrics import HIGHER, Anchor, Metric
from quirkbench.tasks import Context, Figure, Task, TaskOutput, register


@dataclass(frozen=True)
class WidthConfig:
    widths: tuple[int, ...] = (4, 16, 64, 256)  # hidden units of each MLP
    n_train: int = 500  # training examples, all relabelled at random
    min_fit_pct: float = 95.0  # holds: the widest MLP fits at least this share (%)
    train: TrainConfig = TrainConfig(lr=0.1, batch_size=50, max_epochs=100, eval_test=False)

    def __post_init__(self):
        check_each(self.widths, "widths", lambda w: w >= 1, "positive integers")
        at_least(self, 10, "n_train", unit=" examples")
        check(0 < self.min_fit_pct <= 100, "min_fit_pct", "a percentage in (0, 100]",
              self.min_fit_pct)


def run(cfg: WidthConfig, ctx: Context) -> TaskOutput:
    ds = ctx.load_data(n_train=cfg.n_train)
    g = torch.Generator().manual_seed(ctx.seed)
    y = torch.randint(0, ds.num_classes, ds.y_train.shape, generator=g).to(ctx.device)
    metrics, curves = [], []
    for w in cfg.widths:
        model = make_model(f"mlp-{w}", ds.input_shape, ds.num_classes, seed=ctx.seed)
        result = train(model.to(ctx.device), ds.x_train, y, cfg.train, seed=ctx.seed)
        acc = 100 * evaluate(model, ds.x_train, y)[0]
        ctx.log(f"mlp-{w}: {acc:.1f}% of random labels fitted in {result.steps} steps")
        widest = w == max(cfg.widths)
        metrics.append(Metric(
            "train_acc", acc, "%", HIGHER, {"width": w}, headline=widest,
            holds=acc >= cfg.min_fit_pct if widest else None,
            anchor=Anchor("Zhang et al. 2017", 100.0, "%", "random labels, CIFAR-10, "
                          "Inception") if widest else None))
        curves += [{"condition": f"mlp-{w}", **point} for point in result.curve]
    return TaskOutput(metrics, series={"train_curve": curves},
                      info={"dataset": ds.describe()})


register(Task(
    name="width",
    description="training accuracy on random labels vs hidden width (Zhang et al. 2017)",
    blurb="Wider networks fit labels drawn at random: memorization needs capacity, "
          "not structure in the data (Zhang et al. 2017).",
    config=WidthConfig,
    run=run,
    figures=(Figure("train_curve"),),  # records drawn by the existing training-curve plot
    suites={"smoke": {"widths": (4, 256), "n_train": 200, "train.max_epochs": 60},
            "quick": {}, "nightly": {"widths": (4, 16, 64, 256, 1024)}},
    default_dataset="digits",
))
