"""Sharpness: large-batch training lands in sharper minima and generalizes a little worse
(Keskar, Mudigere, Nocedal, Smelyanskiy & Tang 2017, "On large-batch training for deep
learning: generalization gap and sharp minima").

The same architecture, from the same initialization, is trained for the same number of
epochs with a small batch and with a large batch (≈ 10% of the training set), both with
the same optimizer and learning rate. At each solution the task measures

* test accuracy and the generalization gap (train − test, pp);
* the top eigenvalue of the training-loss Hessian, by power iteration on Hessian-vector
  products (``geometry.top_hessian_eigenvalue``);
* Keskar's ε-sharpness (Metric 2.1, A = I, ε = 1e-3): the largest relative rise of the
  training loss within a box of half-width ε(|θ_i| + 1), in percent, maximised here by a
  few projected sign-gradient steps (the paper used L-BFGS-B) — a lower bound.

The runs differ in batch size and hence in step count; that is the paper's comparison.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..config import at_least, check, model_setting
from ..engine.models import make_model
from ..engine.train import TrainConfig, train
from ..errors import UserError
from ..methods.geometry import eps_sharpness, flat_loss, params_vector, top_hessian_eigenvalue
from ..metrics import HIGHER, NONE, Anchor, Metric
from . import Context, Figure, Task, TaskOutput, register

KESKAR = "Keskar et al. 2017"


@dataclass(frozen=True)
class SharpnessConfig:
    # Keskar's F1 is a 784-512×5-10 MLP; one layer shows the effect on a CPU
    model: str = model_setting("mlp-128")
    n_train: int | None = 1000  # [examples] training examples (large batch = large_fraction of
    #   these)
    n_test: int | None = 1000  # [examples] test examples
    # [fraction] held-out share of sets without an official test split (mnist5k); with n_test
    # none and 0.75, 3,750 test digits: the test accuracy's sampling sd (about 1 pp at 1,000
    # digits, most of its seed-to-seed spread) halves
    test_fraction: float = 0.2
    small_batch: int = 32  # [examples] Keskar's small batch is 256 of 60,000 (0.4%); 32 of 1,000
    #   here
    large_fraction: float = 0.1  # [fraction] large batch as a fraction of the training set (Keskar:
    #   10%)
    n_curvature: int = 500  # [examples] training examples on which the Hessian and ε-sharpness are
    #   measured
    power_iters: int = 20  # [products] Hessian-vector products at most for the top eigenvalue
    eps: float = 1e-3  # [1] box half-width factor of ε-sharpness (Keskar's Table 3 uses 1e-3)
    sharpness_steps: int = 10  # [steps] projected ascent steps maximising the loss in the ε-box
    # SGD with momentum at one learning rate for both batches: the large batch takes 3× fewer,
    # less noisy steps. (Keskar used Adam; Adam lr 3e-3 shows the same direction, ~3× not ~5×.)
    train: TrainConfig = TrainConfig(optimizer="sgd", lr=0.05, momentum=0.9, batch_size=32,
                                     max_epochs=10, target_train_acc=None, eval_test=False)

    def __post_init__(self):
        check(0 < self.test_fraction < 1, "test_fraction", "a fraction in (0, 1)",
              self.test_fraction)
        check(0 < self.large_fraction <= 1, "large_fraction",
              "a fraction of the training set in (0, 1]", self.large_fraction)
        at_least(self, 1, "small_batch", "power_iters", "sharpness_steps")
        check(self.eps > 0, "eps", "> 0", self.eps)
        at_least(self, 10, "n_curvature", unit=" examples")


def run(cfg: SharpnessConfig, ctx: Context) -> TaskOutput:
    ds = ctx.load_data(n_train=cfg.n_train, n_test=cfg.n_test, test_fraction=cfg.test_fraction)
    n = len(ds.y_train)
    large = max(1, round(cfg.large_fraction * n))
    if large <= cfg.small_batch:
        raise UserError(f"the large batch ({large} = {cfg.large_fraction} × {n}) must exceed "
                        f"small_batch={cfg.small_batch}; raise n_train or large_fraction")
    xc, yc = ds.x_train[:cfg.n_curvature], ds.y_train[:cfg.n_curvature]
    found = {}
    for label, batch in (("small", cfg.small_batch), ("large", large)):
        # same init, same data order seed: only the batch size differs
        model = make_model(cfg.model, ds.input_shape, ds.num_classes, seed=ctx.seed).to(ctx.device)
        tc = replace(cfg.train, batch_size=batch)
        r = train(model, ds.x_train, ds.y_train, tc, seed=ctx.seed, x_test=ds.x_test,
                  y_test=ds.y_test)
        theta, loss = params_vector(model), flat_loss(model, xc, yc)
        lam = top_hessian_eigenvalue(loss, theta, iters=cfg.power_iters, seed=ctx.seed)
        phi = eps_sharpness(loss, theta, eps=cfg.eps, steps=cfg.sharpness_steps, seed=ctx.seed)
        found[label] = (batch, r, lam, phi)
        ctx.log(f"batch {batch:5d} ({label}): {r.steps} steps, test {100 * r.test_acc:.2f}%, "
                f"top eig {lam:.3g}, ε-sharpness {phi:.3g}%")

    metrics: list[Metric] = []
    anchors_acc = {"small": 98.03, "large": 97.81}
    anchors_phi = {"small": 1.23, "large": 205.14}
    for label, (batch, r, lam, phi) in found.items():
        t = {"batch": label}
        metrics += [
            Metric("batch_size", batch, "samples", NONE, t),
            Metric("test_acc", 100 * r.test_acc, "%", HIGHER, t, headline=label == "large",
                   anchor=Anchor(KESKAR, anchors_acc[label], "%", f"MNIST MLP F1, {label} batch")),
            Metric("train_acc", 100 * r.train_acc, "%", NONE, t),
            Metric("generalization_gap", 100 * (r.train_acc - r.test_acc), "pp", NONE, t),
            Metric("top_hessian_eigenvalue", lam, "1", NONE, t),
            Metric("eps_sharpness", phi, "%", NONE, t,
                   anchor=Anchor(KESKAR, anchors_phi[label], "%",
                                 f"MNIST MLP F1, ε=1e-3, {label} batch, Table 3")),
        ]
    (_, _, lam_s, phi_s), (_, _, lam_l, phi_l) = found["small"], found["large"]
    ratio = lambda a, b: a / b if b > 0 else float("inf")  # noqa: E731
    metrics += [
        Metric("sharpness_ratio", ratio(lam_l, lam_s), "×", NONE, {"measure": "hessian"},
               holds=lam_l > lam_s, headline=True),
        Metric("sharpness_ratio", ratio(phi_l, phi_s), "×", NONE, {"measure": "eps"},
               holds=phi_l > phi_s, headline=True,
               anchor=Anchor(KESKAR, 205.14 / 1.23, "×", "MNIST MLP F1, large/small, Table 3")),
        Metric("test_acc_drop", 100 * (found["small"][1].test_acc - found["large"][1].test_acc),
               "pp", NONE, {}, anchor=Anchor(KESKAR, 0.22, "pp", "MNIST MLP F1, Table 2")),
    ]
    series = [{"batch": label, "batch_size": batch, "train_acc": 100 * r.train_acc,
               "test_acc": 100 * r.test_acc, "top_hessian_eigenvalue": lam,
               "eps_sharpness": phi} for label, (batch, r, lam, phi) in found.items()]
    return TaskOutput(metrics, series={"sharpness": series},
                      info={"dataset": ds.describe(), "model": cfg.model, "large_batch": large})


register(Task(
    name="sharpness",
    description="small vs large batch: test accuracy, top Hessian eigenvalue, ε-sharpness "
                "(Keskar et al. 2017)",
    config=SharpnessConfig,
    run=run,
    blurb="Large-batch training lands in sharper minima and generalizes a little worse "
          "(Keskar et al. 2017).",
    figures=(Figure("sharpness"),),
    cost={"smoke": 0.3, "pr": 1.5, "quick": 0.5},  # seconds a unit, one thread
    suites={
        # batch 10 vs 50 for 5 epochs: the ratio holds on seeds 0-2 (3 epochs of 32 vs 40 did not)
        "smoke": dict(n_train=500, n_test=200, small_batch=10, n_curvature=200, power_iters=8,
                      sharpness_steps=4, **{"train.max_epochs": 5}),
        # 30 epochs (both batches, as Keskar compares them: each fitted to ~100% train): at
        # 10 the large batch was still fitting (train 95.7-97.7% on tuning seeds 0-9; one
        # validation seed 92.9%, and its test accuracy 2 pp below the rest), so its test
        # accuracy read how far training had got. At 30 on 0-9: train 99.9-100%, test sd
        # 0.53 pp, and the ratios' log-sd 0.10 (Hessian) / 0.19 (ε) instead of 0.19 / 0.31
        "pr": dict(n_test=None, test_fraction=0.75, **{"train.max_epochs": 30}),
        "quick": {},
        "nightly": dict(model="mlp-512-512", n_train=None, n_test=None, small_batch=64,
                        n_curvature=2000, **{"train.max_epochs": 30}),
    },
))
