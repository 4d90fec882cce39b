"""Sensitivity: how much the final accuracy depends on the random seed, and how a badly
scaled initialization fails to learn at all (Erhan et al. 2010, "Why does unsupervised
pre-training help deep learning?"; LeCun, Bottou, Orr & Müller 2002, "Efficient BackProp").

One architecture, one training set, one budget; three groups of models, all trained side
by side in one ``train_many`` call:

* ``init``   N initialization seeds, the data order fixed;
* ``order``  N data-order seeds, the initialization fixed (the two groups share model 0);
* ``bad-init-×s``  the default initialization with every weight and bias multiplied by s
  (×10: exploding logits; ×0.01: vanishing signals and gradients through the layers).

Metrics: std (ddof = 1) and range of the final test accuracy in each group (pp), and the
test accuracy of each badly scaled model against the default's mean. ``holds`` when the
first of ``bad_init_scales`` underperforms the default mean by at least ``fail_margin_pp``
(the others are reported without a verdict).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

import torch

from ..config import check, model_setting
from ..engine.data import halves_both_ways
from ..engine.models import make_model
from ..engine.train import TrainConfig, train_many
from ..metrics import HIGHER, LOG, NONE, Anchor, Metric
from . import Context, Figure, Task, TaskOutput, register

KESKAR = "Keskar et al. 2017"
LECUN = "LeCun et al. 2002"


@dataclass(frozen=True)
class SensitivityConfig:
    # two hidden layers: a ×0.01 scale shrinks signals by 1e-6 end to end
    model: str = model_setting("mlp-64-64")
    n_train: int | None = 1000  # [examples] training examples
    n_test: int | None = 1000  # [examples] test examples: 1 example = 0.1 pp, finer than the seed
    #   spread
    # [fraction] held-out share of sets without an official test split (mnist5k); with n_test
    # none and 0.75, 3,750 test digits: the test accuracy's sampling sd (about 1 pp at 1,000
    # digits, most of its seed-to-seed spread) halves
    test_fraction: float = 0.2
    n_seeds: int = 5  # [models] models per group (init seeds, order seeds)
    # [folds] 1: the seed's split. 2: the data split into halves (test_fraction 0.5, n_test none),
    # used both ways (each half's n_train digits train, the other half tests), every metric the
    # mean over the two: all the digits are tested, whatever the seed
    folds: int = 1
    # [×] multipliers of the default init; the first is the checked one: ×0.01 stalls at chance on
    # every seed tried, ×10 only slows learning (32-79% test accuracy over seeds 0-2)
    bad_init_scales: tuple[float, ...] = (0.01, 10.0)
    fail_margin_pp: float = 20.0  # [pp] a bad init "fails" when this far below the default mean
    train: TrainConfig = TrainConfig(optimizer="sgd", lr=0.05, momentum=0.9, batch_size=64,
                                     max_epochs=10, target_train_acc=None, eval_test=False)

    def __post_init__(self):
        check(0 < self.test_fraction < 1, "test_fraction", "a fraction in (0, 1)",
              self.test_fraction)
        check(self.n_seeds >= 2, "n_seeds", "≥ 2 to measure a spread", self.n_seeds)
        check(self.folds in (1, 2), "folds", "1 or 2 (the halves used both ways)", self.folds)
        if self.folds == 2:
            check(self.test_fraction == 0.5 and self.n_test is None, "test_fraction",
                  "0.5 with n_test none when folds is 2 (each half tests the other's models)",
                  self.test_fraction)
        check(all(s > 0 for s in self.bad_init_scales), "bad_init_scales",
              "positive multipliers", self.bad_init_scales)


def scaled(model: torch.nn.Module, scale: float) -> torch.nn.Module:
    """``model`` with every parameter multiplied by ``scale`` (in place, returned)."""
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(scale)
    return model


def spread(accs: list[float]) -> tuple[float, float, float]:
    """(mean, std with ddof = 1, max − min) of accuracies given in %."""
    return statistics.mean(accs), statistics.stdev(accs), max(accs) - min(accs)


def halves(cfg: SensitivityConfig, ctx: Context) -> list:
    """The data sets the plan is trained on: the seed's split (folds 1), or its two halves
    used both ways, each training on ``n_train`` class-balanced digits of its half."""
    if cfg.folds == 1:
        return [ctx.load_data(n_train=cfg.n_train, n_test=cfg.n_test,
                              test_fraction=cfg.test_fraction)]
    return halves_both_ways(ctx.load_data(test_fraction=0.5), cfg.n_train, ctx.seed)


def spread_over(folds: list[list[float]]) -> tuple[float, float, float]:
    """(mean, std, range) of each fold's accuracies, averaged over the folds."""
    per = [spread(accs) for accs in folds]
    return tuple(statistics.mean(v) for v in zip(*per, strict=True))


def run(cfg: SensitivityConfig, ctx: Context) -> TaskOutput:
    sets = halves(cfg, ctx)
    ds = sets[0]
    base = ctx.seed * 1000
    make = lambda s: make_model(cfg.model, ds.input_shape, ds.num_classes, seed=s)  # noqa: E731
    # (group, init seed, order seed, scale); model 0 is in both the init and the order group
    plan = [("init", base + i, base, 1.0) for i in range(cfg.n_seeds)]
    plan += [("order", base, base + i, 1.0) for i in range(1, cfg.n_seeds)]
    plan += [(f"bad-init-×{s:g}", base, base, s) for s in cfg.bad_init_scales]
    per_fold = []  # each fold's test accuracies, in plan order
    for d in sets:
        models = [scaled(make(init), s).to(ctx.device) for _, init, _, s in plan]
        fits = train_many(models, d.x_train, d.y_train, cfg.train,
                          seeds=[o for _, _, o, _ in plan], x_test=d.x_test, y_test=d.y_test)
        per_fold.append([100 * r.test_acc for r in fits])
        ctx.log(f"trained {len(models)} × {cfg.model} at once in {fits[0].seconds:.1f} s")
    acc = [statistics.mean(a) for a in zip(*per_fold, strict=True)]  # the folds' mean

    n = cfg.n_seeds
    groups = {g: [[a[0]] * (g == "order") + a[sl] for a in per_fold]
              for g, sl in (("init", slice(0, n)), ("order", slice(n, 2 * n - 1)))}
    metrics: list[Metric] = []
    records = [{"group": g, "init_seed": i, "order_seed": o, "scale": s, "test_acc": a}
               for (g, i, o, s), a in zip(plan, acc, strict=True)]
    for g, accs in groups.items():
        mean, std, rng = spread_over(accs)
        t = {"varied": g}
        ctx.log(f"{g:5s} seeds: test {mean:.2f}% ± {std:.2f} pp (range {rng:.2f} pp)")
        metrics += [
            Metric("test_acc_mean", mean, "%", HIGHER, t),
            # spreads over a few models: their seed noise is multiplicative (pr's sd of 3 models
            # ran ×/÷ 1.5-1.6 over tuning seeds 0-9, a long right tail on the linear scale; of 8,
            # ×/÷ 1.2-1.3)
            Metric("test_acc_std", std, "pp", NONE, t, headline=True, scale=LOG,
                   anchor=Anchor(KESKAR, 0.07, "pp", "MNIST MLP, over seeds")),
            Metric("test_acc_range", rng, "pp", NONE, t, scale=LOG),
        ]
    default = statistics.mean(acc[:n])
    for (g, _, _, s), a in zip(plan[2 * cfg.n_seeds - 1:], acc[2 * cfg.n_seeds - 1:], strict=True):
        ctx.log(f"{g}: test {a:.1f}% vs default {default:.1f}%")
        t = {"scale": f"{s:g}"}
        metrics += [
            Metric("bad_init_test_acc", a, "%", NONE, t),
            Metric("bad_init_shortfall", default - a, "pp", NONE, t,
                   headline=s == cfg.bad_init_scales[0],
                   holds=default - a >= cfg.fail_margin_pp if s == cfg.bad_init_scales[0] else None,
                   anchor=Anchor(LECUN, None, "", "badly scaled weights stall or slow learning")),
        ]
    return TaskOutput(metrics, series={"seed_accuracy": records},
                      info={"dataset": ds.describe(), "model": cfg.model, "models": len(models)})


register(Task(
    name="sensitivity",
    description="spread of test accuracy over init seeds vs data-order seeds; a badly scaled "
                "init that fails to learn (Erhan 2010, LeCun 2002)",
    config=SensitivityConfig,
    run=run,
    blurb="The final accuracy depends on the init and data-order seeds, and a badly scaled "
          "initialization fails to learn at all (Erhan et al. 2010, LeCun et al. 2002).",
    figures=(Figure("seed_accuracy"),),
    cost={"smoke": 0.1, "pr": 2.6, "quick": 0.8},  # seconds a unit, one thread
    suites={
        "smoke": dict(n_train=400, n_test=200, n_seeds=2, **{"train.max_epochs": 3}),
        # two folds: each half of the 5,000 digits tests the models trained on the other, so
        # every seed tests all the digits (tuning seeds 0-9: bad_init_shortfall sd 0.57 ->
        # 0.39 pp, 3,750 test digits of one split before). 8 models a group (17 in all): the
        # spreads' log sd falls as ~0.65/sqrt(n_seeds - 1) (tuning seeds 0-9, order group:
        # 0.50 at 3, 0.40 at 5, 0.29 at 6, 0.26 at 7, 0.20 at 8, 0.18 at 10), so the rise from
        # the typical ~0.8 pp that one seed's gate catches at 80% power goes 19.9 pp at 3 ->
        # 2.3 pp at 8 (3.5 by the fit); 8 is the fewest with both groups under 4 pp measured
        # and by the fit (7: 3.7 and 4.0); the unit takes 1.6-1.9x as long as with 3 (+1.2-
        # 1.5 s at seed 0, one thread; within the pr suite's run-to-run spread of its wall time)
        "pr": dict(n_seeds=8, n_test=None, test_fraction=0.5, folds=2),
        "quick": {},
        "nightly": dict(model="mlp-256-256", n_train=None, n_test=None, n_seeds=10,
                        **{"train.max_epochs": 30}),
    },
))
