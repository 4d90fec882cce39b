"""A task for quirkbench: the logit margin of a trained model (correct logit minus the
largest other one), on the test set. Registered as ``example_margin``; it joins no suite by
default, so it runs only when named: ``quirkbench run --tasks example_margin``."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from quirkbench.config import at_least, model_setting
from quirkbench.engine.models import make_model
from quirkbench.engine.train import TrainConfig, predict, train
from quirkbench.metrics import HIGHER, Metric
from quirkbench.tasks import Context, Task, TaskOutput, register


@dataclass(frozen=True)
class MarginConfig:
    model: str = model_setting("example-cnn")  # any model name or package.module:factory
    n_train: int | None = 500  # [examples] training examples
    train: TrainConfig = TrainConfig(lr=0.05, max_epochs=2, target_train_acc=None,
                                     eval_test=False)

    def __post_init__(self):
        at_least(self, 10, "n_train")


def run(cfg: MarginConfig, ctx: Context) -> TaskOutput:
    ds = ctx.load_data(n_train=cfg.n_train)
    model = make_model(cfg.model, ds.input_shape, ds.num_classes, seed=ctx.seed).to(ctx.device)
    train(model, ds.x_train, ds.y_train, cfg.train, seed=ctx.seed)
    logits = predict(model, ds.x_test)
    right = logits.gather(1, ds.y_test[:, None]).squeeze(1)
    other = logits.scatter(1, ds.y_test[:, None], float("-inf")).max(1).values
    margin = right - other
    acc = 100.0 * float((margin > 0).float().mean())
    return TaskOutput([Metric("median_margin", float(margin.median()), "", HIGHER,
                              headline=True),
                       Metric("test_acc", acc, "%", HIGHER)],
                      info={"model": cfg.model, "n_test": int(len(margin)),
                            "torch": torch.__version__})


register(Task(
    name="example_margin",
    description="example plugin: median logit margin of a trained model on the test set",
    config=MarginConfig,
    run=run,
    blurb="An example of a task shipped by another package: how confidently a trained model "
          "separates the right class from the next one.",
    suites={},  # joins no suite: an installed example must not change anyone's suites
))
