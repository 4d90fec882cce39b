"""Landscape: the loss along straight lines in parameter space (Goodfellow, Vinyals & Saxe
2015, "Qualitatively characterizing neural network optimization problems").

Two models of one architecture, from different initialization seeds and data orders, are
trained side by side with ``train_many``. Then the training loss and accuracy are measured
at evenly spaced points θ(α) = (1 − α) θ_a + α θ_b on two lines:

* ``init-to-solution``      from model A's initialization to its trained weights:
  Goodfellow et al. found the loss decreases monotonically, no obstacles on the way;
* ``solution-to-solution``  from model A's solution to model B's: the two minima are not
  linearly connected (hidden units can be permuted), so a barrier rises in between.

Metrics: the largest rise of the loss along init→solution relative to its start (0 =
monotone; ``holds`` when it stays under ``monotone_tolerance``), and the barrier height of
the loss (nats) and of the accuracy (pp) above the chord between the two solutions.

With ``pairs`` K > 1, K independent pairs of models are trained (side by side, one
``train_many`` call) and the metrics are means over the pairs (the largest rise: the largest
over the K init→solution lines, so "monotone" must hold on every one). One pair's barrier
varies with the pair drawn: on tuning seeds 0-9 the accuracy barrier's seed-to-seed sd was
1.5 pp and the loss barrier's 13% of its mean with one pair. The figure shows the first pair.

With ``all_pairs`` the solution→solution barriers are measured between every two of the 2K
solutions, K(2K − 1) lines instead of K, at no extra training: a barrier is a property of
the pair more than of either model (tuning seeds 0-9, 8 models: a model's own share of the
accuracy barrier spreads 0.76 pp, the pair's 1.42 pp), so the mean over all 28 pairs of 8
models spread 0.39 pp from seed to seed against 0.61 over their 4 disjoint pairs.

With ``split_seed`` every run trains on the same data (the split and subsets drawn from that
seed), so seeds differ only in the models: the loss barrier's seed-to-seed spread has a part
that all of a seed's models share, its data (tuning seeds 0-9, 16 models: sd 2.6% of the
mean), which no number of models averages away.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from ..config import at_least, check, model_setting, optional_seed
from ..engine.models import make_model
from ..engine.train import TrainConfig, train_many
from ..methods.geometry import barrier_height, interpolation_path, max_relative_rise, params_vector
from ..metrics import HIGHER, NONE, Anchor, Metric
from . import Context, Figure, Task, TaskOutput, register

GOODFELLOW = "Goodfellow, Vinyals & Saxe 2015"


@dataclass(frozen=True)
class LandscapeConfig:
    # Goodfellow et al. use MNIST MLPs and maxout nets; one layer here
    model: str = model_setting("mlp-128")
    n_train: int | None = 1000  # [examples] training examples
    n_test: int | None = 1000  # [examples] test examples
    n_points: int = 25  # [points] α values on each line, 0 and 1 included (the paper plots ~25-100)
    n_eval: int = 1000  # [examples] training examples on which the loss along the lines is measured
    pairs: int = 1  # [pairs] independent pairs of solutions; the metrics are their means
    all_pairs: bool = False  # the barrier between every two solutions, not only within pairs
    # [seed] the data split and subsets drawn from this seed for every run (None: the run's
    # seed): the seeds then differ only in the models' inits and data orders
    split_seed: int | None = None
    monotone_tolerance: float = 0.01  # [fraction] "nearly monotone": largest rise ≤ 1% of the
    #   start's loss
    train: TrainConfig = TrainConfig(optimizer="sgd", lr=0.05, momentum=0.9, batch_size=64,
                                     max_epochs=10, target_train_acc=None, eval_test=False)

    def __post_init__(self):
        check(self.n_points >= 3, "n_points", "≥ 3 (the ends and a middle)", self.n_points)
        at_least(self, 10, "n_eval", unit=" examples")
        at_least(self, 1, "pairs")
        optional_seed(self, "split_seed")
        check(self.monotone_tolerance >= 0, "monotone_tolerance", "a fraction ≥ 0",
              self.monotone_tolerance)


def run(cfg: LandscapeConfig, ctx: Context) -> TaskOutput:
    ds = ctx.load_data(n_train=cfg.n_train, n_test=cfg.n_test, split_seed=cfg.split_seed)
    # pair k: models 2k and 2k + 1, each with its own init and data order
    seeds = [ctx.seed * 1000 + i for i in range(2 * cfg.pairs)]
    models = [make_model(cfg.model, ds.input_shape, ds.num_classes, seed=s).to(ctx.device)
              for s in seeds]
    inits = [params_vector(m) for m in models[0::2]]
    fits = train_many(models, ds.x_train, ds.y_train, cfg.train, seeds=seeds,
                      x_test=ds.x_test, y_test=ds.y_test)
    ctx.log(f"trained {len(models)} × {cfg.model}: test "
            + " / ".join(f"{100 * r.test_acc:.1f}%" for r in fits)
            + f" in {fits[0].seconds:.1f} s")

    xe, ye = ds.x_train[:cfg.n_eval], ds.y_train[:cfg.n_eval]
    model = models[0]  # the architecture to evaluate flat vectors with
    sols = [params_vector(m) for m in models]
    monos = [interpolation_path(model, init_a, sols[2 * k], xe, ye, cfg.n_points)
             for k, init_a in enumerate(inits)]
    ends = (itertools.combinations(range(len(models)), 2) if cfg.all_pairs
            else ((2 * k, 2 * k + 1) for k in range(cfg.pairs)))
    per_pair = []
    for i, j in ends:
        between = interpolation_path(model, sols[i], sols[j], xe, ye, cfg.n_points)
        per_pair.append({"models": [i, j], "line": between,
                         "barrier": barrier_height([p["loss"] for p in between]),
                         # a dip in accuracy
                         "acc_barrier": barrier_height([-p["acc"] for p in between])})
    series = [{"path": path, **p} for path, pts in (("init-to-solution", monos[0]),
                                                    ("solution-to-solution",
                                                     per_pair[0]["line"])) for p in pts]

    def mean(key: str, rows) -> float:
        return sum(p[key] for p in rows) / len(rows)

    mono_rows = [{"rise": max_relative_rise([p["loss"] for p in mono]),
                  "start_loss": mono[0]["loss"], "end_loss": mono[-1]["loss"]} for mono in monos]
    rise = max(p["rise"] for p in mono_rows)
    barrier, acc_barrier = mean("barrier", per_pair), mean("acc_barrier", per_pair)
    ctx.log(f"init→solution largest rise {100 * rise:.2f}% of the start; barrier between "
            f"solutions {barrier:.3f} nats, {acc_barrier:.1f} pp"
            + (f" (mean of {len(per_pair)} pairs)" if len(per_pair) > 1 else ""))
    init_t, sol_t = {"path": "init-to-solution"}, {"path": "solution-to-solution"}
    metrics = [
        Metric("max_relative_loss_rise", 100 * rise, "%", NONE, init_t, headline=True,
               holds=rise <= cfg.monotone_tolerance,
               anchor=Anchor(GOODFELLOW, 0.0, "%", "MNIST: monotone, no obstacles")),
        Metric("start_loss", mean("start_loss", mono_rows), "nats", NONE, init_t),
        Metric("end_loss", mean("end_loss", mono_rows), "nats", NONE, init_t),
        Metric("barrier_height", barrier, "nats", NONE, sol_t, headline=True),
        Metric("accuracy_barrier", acc_barrier, "pp", NONE, sol_t, headline=True),
        *(Metric("test_acc", 100 * sum(r.test_acc for r in fits[i::2]) / cfg.pairs, "%",
                 HIGHER, {"model": name}) for i, name in enumerate("ab")),
    ]
    return TaskOutput(metrics, series={"interpolation": series},
                      info={"dataset": ds.describe(), "model": cfg.model, "seeds": seeds,
                            "pairs": [{"models": p["models"], "barrier_height": p["barrier"],
                                       "accuracy_barrier": p["acc_barrier"]}
                                      for p in per_pair]})


register(Task(
    name="landscape",
    description="loss along the line init→solution (monotone) and solution→solution (barrier) "
                "(Goodfellow, Vinyals & Saxe 2015)",
    config=LandscapeConfig,
    run=run,
    blurb="Loss along straight lines from initialization to solution and between solutions "
          "(Goodfellow et al. 2015).",
    figures=(Figure("interpolation"),),
    cost={"smoke": 0.1, "pr": 5, "quick": 0.6},  # seconds a unit, one thread
    suites={
        "smoke": dict(n_train=400, n_test=200, n_eval=400, n_points=11,
                      **{"train.max_epochs": 3}),
        # 2,000 training digits, the loss measured on all of them: on tuning seeds 0-9 the
        # accuracy barrier's seed-to-seed sd fell from 0.87 to 0.61 pp (pairs 4); the
        # barriers between all 28 pairs of the 8 solutions, 0.39 pp. The loss barrier keeps
        # a part shared by a seed's models (sd 2.6% of its mean) that more models do not
        # remove: the seed's data split. One split for every seed (split_seed 0) leaves none,
        # and 12 solutions (66 pairs) bring its sd from 5.4% to 2.8% (16: 2.3%, but the unit
        # took 23 s, the longest of the suite; 12: about 13 s)
        "pr": dict(pairs=6, all_pairs=True, split_seed=0, n_train=2000, n_eval=2000),
        "quick": {},
        "nightly": dict(model="mlp-512-512", n_train=None, n_test=None, n_eval=4000,
                        n_points=51, **{"train.max_epochs": 30}),
    },
))
