"""Attack agreement: the project's FGSM and PGD against the same attacks in torchattacks,
Foolbox and (if installed) IBM's Adversarial Robustness Toolbox (ART), on one model and the
same inputs, with the same budget, steps and step size.

For each attack (FGSM-L∞, PGD-L∞, PGD-L2), budget ε and reference library:

* ``success_rate`` of ours and of the reference (% of the correctly classified inputs that
  the attack flips; the reference's adversarials are judged by our model, clipped to the
  same bounds);
* ``success_gap`` = ours − reference (pp): negative means ours is weaker;
* ``disagreement`` = % of those inputs where one attack succeeds and the other does not.
  PGD starts at random points, so two correct implementations disagree on a few inputs.

``agreement`` holds when ours is nowhere weaker than any reference by more than
``tolerance_pp`` (2 pp), in the spirit of AutoAttack's sanity checks (Croce & Hein 2020): an
attack that falls behind a reference signals a bug or gradient masking. Tracked over
commits, it catches a weakened attack even when the model changes too. A reference library
that is not installed is skipped with one line naming the extra that brings it.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

import torch

from ..config import at_least, check, check_each, model_setting
from ..engine.models import make_model
from ..engine.train import TrainConfig, predict, train
from ..methods import attacks as A
from ..metrics import HIGHER, LOWER, NONE, Anchor, Metric
from . import Context, Task, TaskOutput, register

CROCE = "Croce & Hein 2020"
LIBRARIES = ("torchattacks", "foolbox", "art")
EXTRA = {"torchattacks": "attacks", "foolbox": "attacks", "art": "art"}
MODULE = {"torchattacks": "torchattacks", "foolbox": "foolbox", "art": "art"}


@dataclass(frozen=True)
class AttackAgreementConfig:
    model: str = model_setting("mlp-100-100")
    n_train: int | None = 2000  # training examples
    n_attack: int = 500  # test inputs attacked (the same inputs for every library)
    eps_linf: tuple[float, ...] = (0.05, 0.1)  # FGSM and PGD-L∞ budgets
    eps_l2: tuple[float, ...] = (1.0,)  # PGD-L2 budgets
    pgd_steps: int = 20
    tolerance_pp: float = 2.0  # ours may trail a reference by at most this (pp)
    libraries: tuple[str, ...] = LIBRARIES
    train: TrainConfig = TrainConfig(lr=0.1, max_epochs=10, target_train_acc=None,
                                     eval_test=False)

    def __post_init__(self):
        at_least(self, 10, "n_attack")
        at_least(self, 1, "pgd_steps")
        at_least(self, 0, "tolerance_pp", unit=" percentage points")
        check_each(self.eps_linf, "eps_linf", lambda e: 0 < e <= 1, "budgets in (0, 1]")
        check_each(self.eps_l2, "eps_l2", lambda e: e > 0, "budgets > 0")
        check_each(self.libraries, "libraries", lambda n: n in LIBRARIES,
                   f"reference libraries among {', '.join(LIBRARIES)}")
        check(bool(self.eps_linf or self.eps_l2), "eps_linf", "at least one budget", ())


# --------------------------------------------------------------------------- references

def _torchattacks(model, attack, eps, steps, alpha, x, y):
    import torchattacks as ta

    if attack == "fgsm":
        atk = ta.FGSM(model, eps=eps)
    elif attack == "pgd-linf":
        atk = ta.PGD(model, eps=eps, alpha=alpha, steps=steps, random_start=True)
    else:
        atk = ta.PGDL2(model, eps=eps, alpha=alpha, steps=steps, random_start=True)
    return atk(x, y)


def _foolbox(model, attack, eps, steps, alpha, x, y):
    import foolbox as fb

    fmodel = fb.PyTorchModel(model, bounds=(0.0, 1.0))
    if attack == "fgsm":
        atk = fb.attacks.FGSM()
    elif attack == "pgd-linf":
        atk = fb.attacks.LinfPGD(abs_stepsize=alpha, steps=steps, random_start=True)
    else:
        atk = fb.attacks.L2PGD(abs_stepsize=alpha, steps=steps, random_start=True)
    _, clipped, _ = atk(fmodel, x, y, epsilons=eps)
    return clipped


def _art(model, attack, eps, steps, alpha, x, y):
    import numpy as np
    from art.attacks.evasion import FastGradientMethod, ProjectedGradientDescent
    from art.estimators.classification import PyTorchClassifier

    clf = PyTorchClassifier(model, loss=torch.nn.CrossEntropyLoss(),
                            input_shape=tuple(x.shape[1:]), nb_classes=int(y.max()) + 1,
                            clip_values=(0.0, 1.0), device_type="gpu" if x.is_cuda else "cpu")
    if attack == "fgsm":
        atk = FastGradientMethod(clf, norm=np.inf, eps=eps)
    else:
        atk = ProjectedGradientDescent(clf, norm=np.inf if attack == "pgd-linf" else 2, eps=eps,
                                       eps_step=alpha, max_iter=steps, num_random_init=1,
                                       verbose=False)
    adv = atk.generate(x.cpu().numpy(), y=y.cpu().numpy())
    return torch.as_tensor(adv, device=x.device, dtype=x.dtype)


RUNNERS = {"torchattacks": _torchattacks, "foolbox": _foolbox, "art": _art}


def _ours(attack, eps, steps, alpha, seed):
    if attack == "fgsm":
        return A.FGSM(eps)
    norm = "linf" if attack == "pgd-linf" else "l2"
    return A.PGD(eps, norm, steps, step_size=alpha, random_start=True, seed=seed)


# --------------------------------------------------------------------------- the task

def run(cfg: AttackAgreementConfig, ctx: Context) -> TaskOutput:
    ds = ctx.load_data(n_train=cfg.n_train)
    if ds.bounds != (0.0, 1.0):
        from ..errors import UserError

        raise UserError(f"attack_agreement needs images in [0, 1]; {ds.name} is unbounded")
    model = make_model(cfg.model, ds.input_shape, ds.num_classes, seed=ctx.seed).to(ctx.device)
    train(model, ds.x_train, ds.y_train, cfg.train, seed=ctx.seed)
    model.eval()
    g = torch.Generator().manual_seed(ctx.seed)
    pick = torch.randperm(len(ds.y_test), generator=g)[:cfg.n_attack].to(ctx.device)
    x, y = ds.x_test[pick], ds.y_test[pick]
    correct = predict(model, x).argmax(1) == y
    x, y = x[correct], y[correct]  # success is measured on correctly classified inputs
    clean_acc = 100.0 * float(correct.float().mean())

    available, skipped = [], {}
    for lib in cfg.libraries:
        if importlib.util.find_spec(MODULE[lib]) is None:
            skipped[lib] = (f"{lib} is not installed: pip install 'quirkbench[{EXTRA[lib]}]'")
            ctx.log(f"skipping {lib}: {skipped[lib]}")
        else:
            available.append(lib)

    def flipped(x_adv):
        x_adv = x_adv.to(x.device, x.dtype).clamp(0.0, 1.0)
        with torch.no_grad():
            return predict(model, x_adv).argmax(1) != y

    cases = [("fgsm", "linf", e) for e in cfg.eps_linf] + \
            [("pgd-linf", "linf", e) for e in cfg.eps_linf] + \
            [("pgd-l2", "l2", e) for e in cfg.eps_l2]
    metrics, series, worst = [], [], 0.0
    for attack, _norm, eps in cases:
        alpha = 2.5 * eps / cfg.pgd_steps
        ours = flipped(_ours(attack, eps, cfg.pgd_steps, alpha, ctx.seed)(model, x, y))
        ours_rate = 100.0 * float(ours.float().mean())
        tags = {"attack": attack, "eps": f"{eps:g}"}
        metrics.append(Metric("success_rate", ours_rate, "%", NONE, {**tags, "impl": "ours"}))
        for lib in available:
            try:
                ref = flipped(RUNNERS[lib](model, attack, eps, cfg.pgd_steps, alpha, x, y))
            except Exception as e:  # a reference that breaks is reported, not fatal
                skipped[f"{lib}:{attack}"] = f"{type(e).__name__}: {str(e)[:120]}"
                ctx.log(f"{lib} {attack} ε={eps:g} failed: {skipped[f'{lib}:{attack}']}")
                continue
            ref_rate = 100.0 * float(ref.float().mean())
            gap = ours_rate - ref_rate
            dis = 100.0 * float((ours != ref).float().mean())
            worst = min(worst, gap)
            t = {**tags, "reference": lib}
            metrics += [Metric("success_rate", ref_rate, "%", NONE, {**tags, "impl": lib}),
                        Metric("success_gap", gap, "pp", HIGHER, t,
                               holds=gap >= -cfg.tolerance_pp),
                        Metric("disagreement", dis, "%", LOWER, t)]
            series.append({"attack": attack, "eps": eps, "reference": lib, "ours": ours_rate,
                           "theirs": ref_rate, "gap_pp": gap, "disagreement_pct": dis})
            ctx.log(f"{attack:8s} ε={eps:<5g} ours {ours_rate:5.1f}%  {lib:12s} "
                    f"{ref_rate:5.1f}%  gap {gap:+.1f} pp  disagreement {dis:.1f}%")
    compared = bool(series)
    metrics += [
        Metric("worst_gap", worst, "pp", HIGHER, headline=True,
               holds=(worst >= -cfg.tolerance_pp) if compared else None,
               anchor=Anchor(CROCE, None, "", "a weaker attack than a reference signals a bug "
                             "or gradient masking")),
        Metric("clean_acc", clean_acc, "%", HIGHER),
        Metric("references_compared", len({s["reference"] for s in series}), "1", NONE)]
    return TaskOutput(metrics, series={"attack_agreement": series},
                      info={"dataset": ds.describe(), "model": cfg.model,
                            "attacked": int(len(y)), "skipped": skipped,
                            "flag": (f"ours trails a reference by {-worst:.1f} pp "
                                     f"(> {cfg.tolerance_pp:g})")
                            if worst < -cfg.tolerance_pp else None})


_SMOKE = dict(n_train=300, n_attack=200, eps_linf=(0.1,), eps_l2=(1.0,), pgd_steps=5,
              libraries=("torchattacks",),
              train=TrainConfig(lr=0.1, batch_size=64, max_epochs=2, target_train_acc=None,
                                eval_test=False))

register(Task(
    name="attack_agreement",
    description="our FGSM/PGD vs torchattacks, Foolbox and ART on the same model and inputs: "
                "success gaps, per-input disagreement, a flag when ours is weaker by > 2 pp",
    config=AttackAgreementConfig,
    run=run,
    blurb="The project's attacks should be as strong as the reference implementations; a "
          "weaker one is a bug or gradient masking (Croce & Hein 2020's sanity checks).",
    suites={
        "smoke": _SMOKE,
        "pr": dict(n_attack=200, pgd_steps=10),
        "quick": {},
        "nightly": dict(n_train=None, n_attack=1000, eps_linf=(0.05, 0.1, 0.2, 0.3),
                        eps_l2=(0.5, 1.0, 2.0), pgd_steps=40),
    },
))
