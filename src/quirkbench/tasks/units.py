"""Units: single hidden units are no more meaningful than random directions of the same layer
(Szegedy et al. 2014, "Intriguing properties of neural networks", section 3).

A model is trained; its last hidden layer φ(x) (``model.features``) is computed for the
test set. For each direction v the k test inputs with the largest ⟨φ(x), v⟩ are taken and
their *class purity* is measured: the share of the most common class among them.

* ``natural``  v = e_i, one hidden unit each (units that never fire on the test set are
  left out: their top-k is a tie, not a selection);
* ``random``   v drawn from a standard Gaussian, ``random_per_unit`` × as many as there are
  live units (the random side's mean is then a precise baseline, not a second noisy
  sample of the same size);
* ``chance``   k test inputs drawn at random (the floor).

Szegedy et al. found the top images along random directions as semantically coherent as
along single units: ``holds`` when the mean purities differ by at most ``close_margin_pp``
(10 pp; their finding is qualitative, "as coherent", so the margin is a small fraction of
the ~45 pp gap between these purities, ~70%, and chance, ~27%). With one random direction
per live unit the difference had a spread of about 3 pp over seeds and exceeded 10 pp on
one held-out seed (203 of 200-204); eight per unit narrow the random side's share of it.

With ``models`` K > 1, K models (other init and data-order seeds) are trained side by side
and their live units (and random directions, eight per live unit of each) are pooled: the
purities are means over K × 128 directions and over K training runs. With one model the
natural purity's seed-to-seed sd was 1.6 pp on tuning seeds 0-9 (1 pp of it the training
run's, not the directions'), too coarse to see a 5 pp change from one seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..config import at_least, check, model_setting
from ..engine.data import halves_both_ways
from ..engine.models import make_model
from ..engine.train import TrainConfig, train, train_many
from ..errors import UserError
from ..methods.geometry import chance_purity, top_k_purity
from ..metrics import HIGHER, NONE, Anchor, Metric
from . import Context, Figure, Task, TaskOutput, register

SZEGEDY = "Szegedy et al. 2014"
MODEL_SEED = 1_000_003  # model k > 0 of a unit draws its init and batch order from seed + k × this


@dataclass(frozen=True)
class UnitsConfig:
    # the last hidden layer has 128 units; a model needs .features(x)
    model: str = model_setting("mlp-128")
    n_train: int | None = 2000  # [examples] training examples
    n_test: int | None = 1000  # [examples] the pool the top-k inputs are chosen from
    top_k: int = 10  # [inputs] inputs per direction (Szegedy shows 8 images per direction)
    close_margin_pp: float = 10.0  # [pp] natural and random mean purity "close" within this
    random_per_unit: int = 8  # [directions] random directions per live unit
    models: int = 1  # [models] models trained side by side whose directions are pooled
    # [folds] 1: the seed's split. 2: the data cut into halves, each half's n_train digits train
    # ``models`` models whose top-k inputs are chosen from the other half (n_test unused); the
    # purities pool both folds' directions
    folds: int = 1
    train: TrainConfig = TrainConfig(optimizer="sgd", lr=0.05, momentum=0.9, batch_size=64,
                                     max_epochs=5, target_train_acc=None, eval_test=False)

    def __post_init__(self):
        at_least(self, 1, "top_k", unit=" input per direction")
        at_least(self, 1, "random_per_unit", "models")
        check(self.folds in (1, 2), "folds", "1 or 2 (the halves used both ways)", self.folds)
        check(self.close_margin_pp >= 0, "close_margin_pp", "≥ 0", self.close_margin_pp)


def run(cfg: UnitsConfig, ctx: Context) -> TaskOutput:
    if cfg.folds == 1:
        sets = [ctx.load_data(n_train=cfg.n_train, n_test=cfg.n_test)]
    else:
        sets = halves_both_ways(ctx.load_data(test_fraction=0.5), cfg.n_train, ctx.seed)
    parts = [_fold(cfg, ds, ctx) for ds in sets]
    ds = sets[0]
    natural, random = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
    n_live, width = sum(p[2] for p in parts), parts[0][3]
    n_models = cfg.models * len(sets)
    floor = 100 * sum(chance_purity(d.y_test, cfg.top_k, seed=ctx.seed) for d in sets) / len(sets)
    nat, rnd = 100 * natural.mean().item(), 100 * random.mean().item()
    test_acc = sum(p[4] for p in parts) / len(parts)
    ctx.log(f"test {test_acc:.1f}%; top-{cfg.top_k} purity: natural {nat:.1f}%, "
            f"random {rnd:.1f}%, chance {floor:.1f}% ({n_live} units live in {n_models} "
            f"model{'s' if n_models > 1 else ''})")

    where = "MNIST: random directions as coherent as single units (qualitative)"
    metrics = [
        Metric("top_k_purity", nat, "%", NONE, {"basis": "natural"}, headline=True),
        Metric("top_k_purity", rnd, "%", NONE, {"basis": "random"}, headline=True),
        Metric("top_k_purity", floor, "%", NONE, {"basis": "chance"}),
        Metric("purity_difference", nat - rnd, "pp", NONE, {}, headline=True,
               holds=abs(nat - rnd) <= cfg.close_margin_pp,
               anchor=Anchor(SZEGEDY, 0.0, "pp", where)),
        Metric("live_units", n_live / n_models, "1", NONE, {}),  # per model
        Metric("test_acc", test_acc, "%", HIGHER, {}),  # the models' mean
    ]
    series = [{"basis": b, "direction": i, "purity": 100 * p}
              for b, vals in (("natural", natural), ("random", random))
              for i, p in enumerate(vals.tolist())]
    return TaskOutput(metrics, series={"unit_purity": series},
                      info={"dataset": ds.describe(), "model": cfg.model, "units": width,
                            "models": n_models})


def _fold(cfg: UnitsConfig, ds, ctx: Context):
    """(natural purities, random purities, live units, layer width, mean test accuracy) of
    ``models`` models trained on ``ds``'s training digits, top-k inputs from its test digits."""
    if cfg.top_k > len(ds.y_test):
        raise UserError(f"top_k={cfg.top_k} exceeds the {len(ds.y_test)} test inputs")
    seeds = [ctx.seed + MODEL_SEED * k for k in range(cfg.models)]  # init and data order
    models = [make_model(cfg.model, ds.input_shape, ds.num_classes, seed=s).to(ctx.device)
              for s in seeds]
    hidden = any(isinstance(m, torch.nn.ReLU) for m in models[0].modules())
    if not hasattr(models[0], "features") or not hidden:
        raise UserError(f"model {cfg.model!r} has no hidden layer with .features(x); use an mlp "
                        "with hidden widths (mlp-128), lenet5 or convnet")
    if len(models) == 1:
        fits = [train(models[0], ds.x_train, ds.y_train, cfg.train, seed=ctx.seed,
                      x_test=ds.x_test, y_test=ds.y_test, final_train_eval=False)]
    else:
        fits = train_many(models, ds.x_train, ds.y_train, cfg.train, seeds=seeds,
                          x_test=ds.x_test, y_test=ds.y_test)
    g = torch.Generator(device="cpu").manual_seed(ctx.seed)
    natural, random, n_live = [], [], 0
    for model in models:
        nat, rnd, width = _purities(model, ds, cfg, g)
        natural.append(nat)
        random.append(rnd)
        n_live += len(nat)
    test_acc = sum(100 * r.test_acc for r in fits) / len(fits)
    return torch.cat(natural), torch.cat(random), n_live, width, test_acc


def _purities(model, ds, cfg: UnitsConfig, g: torch.Generator):
    """(natural purities (live units,), random purities (random_per_unit × live,), the
    layer's width) of one trained model; the random directions are drawn from ``g``."""
    model.eval()
    with torch.no_grad():
        phi = model.features(ds.x_test).flatten(1)  # (N_test, D)
    live = phi.max(0).values > 0  # (D,) units that fire on some test input
    n_live = int(live.sum())
    if n_live == 0:
        raise UserError(f"no unit of {cfg.model!r}'s last hidden layer fires on the test set")
    v = torch.randn(phi.shape[1], cfg.random_per_unit * n_live, generator=g).to(phi)  # (D, R)
    return (top_k_purity(phi[:, live], ds.y_test, cfg.top_k),
            top_k_purity(phi @ v, ds.y_test, cfg.top_k), phi.shape[1])


register(Task(
    name="units",
    description="class purity of top-activating test inputs along hidden units vs random "
                "directions (Szegedy et al. 2014)",
    config=UnitsConfig,
    run=run,
    blurb="Single hidden units are no more meaningful than random directions of the same "
          "layer (Szegedy et al. 2014).",
    figures=(Figure("unit_purity"),),
    cost={"smoke": 0.1, "pr": 2.6, "quick": 0.2},  # seconds a unit, one thread
    suites={
        "smoke": dict(n_train=400, n_test=200, **{"train.max_epochs": 3}),
        # two folds: each half of the 5,000 digits is the pool for the models trained on the
        # other, so every seed's pools hold all the digits. Eight models a fold: on tuning
        # seeds 0-9 (16 models each) a model's natural purity spreads 2.0 pp and the
        # difference 2.0 pp, with no part shared by a seed's models, so a seed's sd is
        # 2.0 / sqrt(models): 0.71 pp with 8 models in all, 0.50 with 16, the fewest whose
        # one-seed gate catches a 4 pp change (the sd of 10 seeds alone is too coarse to see it)
        "pr": dict(models=8, folds=2),
        "quick": {},
        "nightly": dict(model="mlp-512-512", n_train=None, n_test=None, **{"train.max_epochs": 20}),
    },
))
