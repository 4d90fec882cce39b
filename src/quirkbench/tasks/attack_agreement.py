"""Attack agreement: the project's FGSM and PGD against the same attacks in torchattacks,
Foolbox and (if installed) IBM's Adversarial Robustness Toolbox (ART), on one model and the
same inputs, with the same budget, steps and step size.

For each attack of ``attacks`` in each of its norms (by default FGSM-L∞, PGD-L∞, PGD-L2),
budget ε and reference library that has a version of it (``methods.attacks.references``):

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

from dataclasses import dataclass

import torch

from .. import peers
from ..config import at_least, check, check_choices, check_each, model_setting
from ..engine.models import make_model
from ..engine.train import TrainConfig, predict, train
from ..methods import attacks as A
from ..methods.attacks.references import LIBRARIES, installed, reference_run
from ..metrics import HIGHER, LOWER, NONE, Anchor, Metric
from . import Context, Task, TaskOutput, register

CROCE = "Croce & Hein 2020"


@dataclass(frozen=True)
class AttackAgreementConfig:
    model: str = model_setting("mlp-100-100")  # the attacked model, trained here
    n_train: int | None = 2000  # [examples] training examples
    n_attack: int = 500  # [inputs] test inputs attacked (the same inputs for every library)
    # registered attacks (name: every norm it has; name-norm: that one), each compared
    # with every reference library that has a version of it
    attacks: tuple[str, ...] = ("fgsm", "pgd")
    eps_linf: tuple[float, ...] = (0.05, 0.1)  # [pixel units] L∞ budgets
    eps_l2: tuple[float, ...] = (1.0,)  # [L2 norm] L2 budgets
    pgd_steps: int = 20  # [iterations] iterations of the iterative attacks
    tolerance_pp: float = 2.0  # [pp] ours may trail a reference by at most this (pp)
    # reference libraries compared with ours (those installed run)
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
        check_choices(self.attacks, "attacks", A.labels(), "attack")
        check(bool(self.eps_linf or self.eps_l2), "eps_linf", "at least one budget", ())


# --------------------------------------------------------------------------- the task

def cases(cfg: AttackAgreementConfig) -> list[tuple[type[A.Attack], str, float]]:
    """(attack class, norm, ε) for every attack of ``cfg.attacks`` in each of its norms, at
    every budget of that norm, in that order."""
    out = []
    for ref in cfg.attacks:
        cls, norms = A.resolve(ref)
        for norm in norms:
            out += [(cls, norm, e) for e in (cfg.eps_linf if norm == "linf" else cfg.eps_l2)]
    return out


def run(cfg: AttackAgreementConfig, ctx: Context) -> TaskOutput:
    ds = ctx.load_data(n_train=cfg.n_train)
    if ds.bounds != (0.0, 1.0):
        from ..errors import UserError

        raise UserError(f"attack_agreement needs images in [0, 1]; {ds.name} is unbounded")
    model = make_model(cfg.model, ds.input_shape, ds.num_classes, seed=ctx.seed).to(ctx.device)
    train(model, ds.x_train, ds.y_train, cfg.train, seed=ctx.seed, final_train_eval=False)
    model.eval()
    g = torch.Generator().manual_seed(ctx.seed)
    pick = torch.randperm(len(ds.y_test), generator=g)[:cfg.n_attack].to(ctx.device)
    x, y = ds.x_test[pick], ds.y_test[pick]
    correct = predict(model, x).argmax(1) == y
    x, y = x[correct], y[correct]  # success is measured on correctly classified inputs
    clean_acc = 100.0 * float(correct.float().mean())

    available, skipped, unavailable = [], {}, {}
    for lib in cfg.libraries:  # any failure to import one skips it (the run says why, once)
        if not installed(lib):
            skipped[lib] = unavailable[lib] = peers.unavailable(lib)
        else:
            available.append(lib)

    def flipped(x_adv):
        x_adv = x_adv.to(x.device, x.dtype).clamp(0.0, 1.0)
        with torch.no_grad():
            return predict(model, x_adv).argmax(1) != y

    metrics, series, worst = [], [], 0.0
    for cls, norm, eps in cases(cfg):
        attack = cls.label(norm)
        alpha = 2.5 * eps / cfg.pgd_steps  # Madry's step for every iterative attack, all sides
        settings = A.AttackSettings(steps=cfg.pgd_steps, step_size=alpha, seed=ctx.seed)
        ours = flipped(cls.configure(eps, norm, settings)(model, x, y))
        ours_rate = 100.0 * float(ours.float().mean())
        tags = {"attack": attack, "eps": f"{eps:g}"}
        metrics.append(Metric("success_rate", ours_rate, "%", NONE, {**tags, "impl": "ours"}))
        for lib in available:
            try:
                run = reference_run(lib, cls.name, model, x, y, eps=eps, norm=norm,
                                    steps=cfg.pgd_steps, step_size=alpha, bounds=ds.bounds)
                if run is None:
                    skipped[f"{lib}:{attack}"] = f"{lib} has no version of {attack}"
                    continue
                ref = flipped(run())
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
                            "peers_unavailable": unavailable,
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
    cost={"smoke": 0.9, "pr": 1.1, "quick": 1.3},  # seconds a unit, one thread
    suites={
        "smoke": _SMOKE,
        "pr": dict(n_attack=200, pgd_steps=10),
        "quick": {},
        "nightly": dict(n_train=None, n_attack=1000, eps_linf=(0.05, 0.1, 0.2, 0.3),
                        eps_l2=(0.5, 1.0, 2.0), pgd_steps=40),
    },
))
