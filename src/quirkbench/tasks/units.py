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
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..config import at_least, check, model_setting
from ..engine.models import make_model
from ..engine.train import TrainConfig, train
from ..errors import UserError
from ..methods.geometry import chance_purity, top_k_purity
from ..metrics import HIGHER, NONE, Anchor, Metric
from . import Context, Figure, Task, TaskOutput, register

SZEGEDY = "Szegedy et al. 2014"


@dataclass(frozen=True)
class UnitsConfig:
    # the last hidden layer has 128 units; a model needs .features(x)
    model: str = model_setting("mlp-128")
    n_train: int | None = 2000  # [examples] training examples
    n_test: int | None = 1000  # [examples] the pool the top-k inputs are chosen from
    top_k: int = 10  # [inputs] inputs per direction (Szegedy shows 8 images per direction)
    close_margin_pp: float = 10.0  # [pp] natural and random mean purity "close" within this
    random_per_unit: int = 8  # [directions] random directions per live unit
    train: TrainConfig = TrainConfig(optimizer="sgd", lr=0.05, momentum=0.9, batch_size=64,
                                     max_epochs=5, target_train_acc=None, eval_test=False)

    def __post_init__(self):
        at_least(self, 1, "top_k", unit=" input per direction")
        at_least(self, 1, "random_per_unit")
        check(self.close_margin_pp >= 0, "close_margin_pp", "≥ 0", self.close_margin_pp)


def run(cfg: UnitsConfig, ctx: Context) -> TaskOutput:
    ds = ctx.load_data(n_train=cfg.n_train, n_test=cfg.n_test)
    if cfg.top_k > len(ds.y_test):
        raise UserError(f"top_k={cfg.top_k} exceeds the {len(ds.y_test)} test inputs")
    model = make_model(cfg.model, ds.input_shape, ds.num_classes, seed=ctx.seed).to(ctx.device)
    hidden = any(isinstance(m, torch.nn.ReLU) for m in model.modules())
    if not hasattr(model, "features") or not hidden:
        raise UserError(f"model {cfg.model!r} has no hidden layer with .features(x); use an mlp "
                        "with hidden widths (mlp-128), lenet5 or convnet")
    r = train(model, ds.x_train, ds.y_train, cfg.train, seed=ctx.seed, x_test=ds.x_test,
              y_test=ds.y_test, final_train_eval=False)
    model.eval()
    with torch.no_grad():
        phi = model.features(ds.x_test).flatten(1)  # (N_test, D)
    live = phi.max(0).values > 0  # (D,) units that fire on some test input
    n_live = int(live.sum())
    if n_live == 0:
        raise UserError(f"no unit of {cfg.model!r}'s last hidden layer fires on the test set")
    g = torch.Generator(device="cpu").manual_seed(ctx.seed)
    n_rand = cfg.random_per_unit * n_live
    v = torch.randn(phi.shape[1], n_rand, generator=g).to(phi)  # (D, n_rand) random directions
    natural = top_k_purity(phi[:, live], ds.y_test, cfg.top_k)  # (n_live,)
    random = top_k_purity(phi @ v, ds.y_test, cfg.top_k)  # (n_rand,)
    floor = 100 * chance_purity(ds.y_test, cfg.top_k, seed=ctx.seed)
    nat, rnd = 100 * natural.mean().item(), 100 * random.mean().item()
    ctx.log(f"test {100 * r.test_acc:.1f}%; top-{cfg.top_k} purity: natural {nat:.1f}%, "
            f"random {rnd:.1f}%, chance {floor:.1f}% ({n_live}/{phi.shape[1]} units live)")

    where = "MNIST: random directions as coherent as single units (qualitative)"
    metrics = [
        Metric("top_k_purity", nat, "%", NONE, {"basis": "natural"}, headline=True),
        Metric("top_k_purity", rnd, "%", NONE, {"basis": "random"}, headline=True),
        Metric("top_k_purity", floor, "%", NONE, {"basis": "chance"}),
        Metric("purity_difference", nat - rnd, "pp", NONE, {}, headline=True,
               holds=abs(nat - rnd) <= cfg.close_margin_pp,
               anchor=Anchor(SZEGEDY, 0.0, "pp", where)),
        Metric("live_units", n_live, "1", NONE, {}),
        Metric("test_acc", 100 * r.test_acc, "%", HIGHER, {}),
    ]
    series = [{"basis": b, "direction": i, "purity": 100 * p}
              for b, vals in (("natural", natural), ("random", random))
              for i, p in enumerate(vals.tolist())]
    return TaskOutput(metrics, series={"unit_purity": series},
                      info={"dataset": ds.describe(), "model": cfg.model, "units": phi.shape[1]})


register(Task(
    name="units",
    description="class purity of top-activating test inputs along hidden units vs random "
                "directions (Szegedy et al. 2014)",
    config=UnitsConfig,
    run=run,
    blurb="Single hidden units are no more meaningful than random directions of the same "
          "layer (Szegedy et al. 2014).",
    figures=(Figure("unit_purity"),),
    cost={"smoke": 0.1, "pr": 0.2, "quick": 0.2},  # seconds a unit, one thread
    suites={
        "smoke": dict(n_train=400, n_test=200, **{"train.max_epochs": 3}),
        "pr": {},
        "quick": {},
        "nightly": dict(model="mlp-512-512", n_train=None, n_test=None, **{"train.max_epochs": 20}),
    },
))
