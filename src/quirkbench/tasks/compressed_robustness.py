"""Robustness of compressed models: does compression cost adversarial robustness?

From the compression task's protocol, four models on the same data:

* ``dense``     the trained model (LeNet-300-100 by default);
* ``pruned``    magnitude-iterative pruning with fine-tuning, at iso-accuracy (the largest
                ratio of the schedule within ``delta_pp`` of dense);
* ``int8``      the dense model quantized to int8 after training (symmetric per tensor);
* ``distilled`` the student trained on the dense teacher's softened outputs at T.

Each model is attacked on the same correctly-classified-by-dense test inputs with one
registered attack (``attack``, PGD by default) in L∞ and L2 on the same ε grids (success =
% of the inputs it classifies correctly that the attack flips), and its per-input minimal
L2 distortion is found by bisection (median reported). The robustness cost of a
compression is its success rate minus dense's (pp, > 0: less robust) and its
``distortion_ratio`` (×, < 1: less robust): the median over the attacked inputs of each
input's minimal distortion on the compressed model over its minimal distortion on dense (the
inputs both found; a paired estimator: an input's own difficulty cancels, which the ratio of
the two medians left in — on tuning seeds 0-9 at pr settings the pruned model's log-sd fell
from 0.040 to 0.019 at no cost); ``clean_acc_matched`` (1
or 0) says whether its clean accuracy is within ``delta_pp`` of dense, the only case where
the cost is the compression's alone. It is a metric of its own, not a tag of the costs: a
tag that depends on the outcome would give a metric another name on another seed.

Anchors, with their stated direction: Guo et al. 2018 (NeurIPS, "Sparse DNNs with improved
adversarial robustness"): moderately sparse nets are *more* robust (larger minimal
distortion), over-sparsified ones less; Ye et al. 2019 (ICCV, "Adversarial robustness vs.
model compression, or both?"): pruning a model without adversarial training *costs*
robustness. They point in opposite directions for moderate pruning; the task reports which
one our measurement agrees with, it does not check either.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..config import at_least, check, check_choices, check_each, model_setting
from ..engine.models import count_params, make_model
from ..engine.train import TrainConfig, evaluate, predict, train
from ..errors import UserError
from ..methods import attacks as A
from ..methods.distillation import distillation_loss, soft_targets
from ..methods.pruning import Pruner, iso_accuracy_index, state_copy
from ..methods.quantization import quantize_int8_
from ..metrics import HIGHER, NONE, Anchor, Metric
from . import Context, Task, TaskOutput, register

GUO = "Guo et al. 2018"
YE = "Ye et al. 2019"
MODELS = ("dense", "pruned", "int8", "distilled")
REPEAT_SEED = 5_000_011  # draw k > 0 trains its four models from seed + k × this


@dataclass(frozen=True)
class CompressedRobustnessConfig:
    # the dense model that is pruned, quantized to int8 and distilled
    model: str = model_setting("lenet-300-100")
    # the distilled student (small on purpose)
    student: str = model_setting("mlp-100", follows_model_flag=False)
    n_train: int | None = None  # [examples] training examples (None: the whole split)
    n_attack: int = 300  # [inputs] test inputs attacked (those dense classifies correctly)
    ratios: tuple[float, ...] = (2.0, 4.0, 8.0, 16.0, 32.0)  # [×] pruning schedule
    #   (dense/remaining)
    delta_pp: float = 1.0  # [pp] iso-accuracy and "matched clean accuracy" tolerance
    temperature: float = 4.0  # [1] softmax temperature of the distillation's soft targets
    eps_linf: tuple[float, ...] = (0.05, 0.1, 0.2)  # [pixel units] L∞ budgets of the attack
    eps_l2: tuple[float, ...] = (0.5, 1.0, 2.0)  # [L2 norm] L2 budgets of the attack
    attack: str = "pgd"  # the registered attack run on the ε grids
    pgd_steps: int = 20  # [iterations] its iterations (and those of each minimal-distortion probe)
    search_steps: int = 8  # [halvings] bisection halvings of the minimal L2 distortion
    # [draws] the four models trained and attacked this many times, draw k > 0 from seed +
    # k × 5,000,011; metrics: the means over the draws (distortion ratios: the geometric
    # mean of each draw's paired ratio; clean_acc_matched: the fraction of draws matched)
    repeats: int = 1
    train: TrainConfig = TrainConfig(lr=0.05, max_epochs=10, target_train_acc=None,
                                     eval_test=False)
    finetune: TrainConfig = TrainConfig(lr=0.02, max_epochs=2, target_train_acc=None,
                                        eval_test=False)

    def __post_init__(self):
        at_least(self, 10, "n_attack")
        at_least(self, 1, "pgd_steps", "search_steps", "repeats")
        at_least(self, 0, "delta_pp", unit=" percentage points")
        check_each(self.ratios, "ratios", lambda r: r > 1, "ratios > 1 (dense/remaining)")
        check(list(self.ratios) == sorted(set(self.ratios)), "ratios", "strictly increasing",
              self.ratios)
        check_each(self.eps_linf, "eps_linf", lambda e: 0 < e <= 1, "budgets in (0, 1]")
        check_each(self.eps_l2, "eps_l2", lambda e: e > 0, "budgets > 0")
        check(self.temperature > 0, "temperature", "> 0", self.temperature)
        check_choices(self.attack, "attack", A.REGISTRY, "attack")


def _success(model, x, y, attack) -> float:
    ok = predict(model, x).argmax(1) == y
    if not bool(ok.any()):
        return 0.0
    x_adv = attack(model, x[ok], y[ok])
    return 100.0 * float((predict(model, x_adv).argmax(1) != y[ok]).float().mean())


def four_models(cfg: CompressedRobustnessConfig, ds, ctx: Context,
                seed: int) -> tuple[dict, float, float]:
    """({dense, pruned, int8, distilled}: model, dense test accuracy %, pruned ratio ×), trained
    from ``seed``."""
    x, y, xt, yt = ds.x_train, ds.y_train, ds.x_test, ds.y_test
    dense = make_model(cfg.model, ds.input_shape, ds.num_classes, seed=seed).to(ctx.device)
    train(dense, x, y, cfg.train, seed=seed, final_train_eval=False)
    dense_state = state_copy(dense)
    dense_acc = 100 * evaluate(dense, xt, yt)[0]
    models = {"dense": dense}

    pruned = make_model(cfg.model, ds.input_shape, ds.num_classes, seed=seed).to(ctx.device)
    pruned.load_state_dict(dense_state)
    pruner = Pruner("magnitude-iterative", pruned, dense_state, ds, cfg.ratios, cfg.finetune,
                    seed)
    points = [{"ratio": 1.0, "test_acc": dense_acc, "state": dense_state}] + pruner.curve()
    i = iso_accuracy_index([p["ratio"] for p in points], [p["test_acc"] for p in points],
                           dense_acc, cfg.delta_pp)
    pruned.load_state_dict(points[i]["state"])
    models["pruned"] = pruned

    q = make_model(cfg.model, ds.input_shape, ds.num_classes, seed=seed).to(ctx.device)
    q.load_state_dict(dense_state)
    quantize_int8_(q)
    models["int8"] = q

    student = make_model(cfg.student, ds.input_shape, ds.num_classes,
                         seed=seed + 1).to(ctx.device)
    train(student, x, soft_targets(predict(dense, x), cfg.temperature), cfg.train, seed=seed,
          loss_fn=distillation_loss(cfg.temperature), final_train_eval=False)
    models["distilled"] = student
    return models, dense_acc, points[i]["ratio"]


def run(cfg: CompressedRobustnessConfig, ctx: Context) -> TaskOutput:
    ds = ctx.load_data(n_train=cfg.n_train)
    if ds.bounds is None:
        raise UserError(f"compressed_robustness needs bounded inputs; {ds.name} is unbounded")
    draws = [_attack_four(cfg, ds, ctx, ctx.seed + REPEAT_SEED * k) for k in range(cfg.repeats)]
    rows = {name: _mean_row([d["rows"][name] for d in draws]) for name in MODELS}
    # distortion ratios: each draw's paired ratio against its own dense, then their geometric
    # mean (the ratio's spread is multiplicative)
    ratios = {name: _geomean([d["ratios"][name] for d in draws])
              for name in MODELS if name != "dense"}
    dense_acc = rows["dense"]["clean_acc"]
    matched = {name: sum(abs(d["rows"][name]["clean_acc"] - d["rows"]["dense"]["clean_acc"])
                         <= cfg.delta_pp for d in draws) / len(draws)
               for name in MODELS if name != "dense"}

    # ---- metrics
    m: list[Metric] = []
    base = rows["dense"]
    for name, r in rows.items():
        mt = {"model": name}
        m += [Metric("clean_acc", r["clean_acc"], "%", HIGHER, mt),
              *([Metric("clean_acc_matched", matched[name], "1", NONE, mt)]
                if name != "dense" else []),
              Metric("median_min_l2", r["median_l2"], "", NONE, mt),
              Metric("remaining_params", r["params"], "params", NONE, mt)]
        for norm, grid in (("linf", cfg.eps_linf), ("l2", cfg.eps_l2)):
            for eps in grid:
                t = {**mt, "norm": norm, "eps": f"{eps:g}"}
                m.append(Metric("success_rate", r[(norm, eps)], "%", NONE, t))
                if name != "dense":
                    anchor = Anchor(YE, None, "", "pruning a naturally trained model costs "
                                    "robustness: cost > 0") if name == "pruned" else None
                    m.append(Metric("robustness_cost", r[(norm, eps)] - base[(norm, eps)], "pp",
                                    NONE, t, anchor=anchor))
        if name != "dense":
            anchor = Anchor(GUO, None, "", "moderately sparse nets need larger minimal "
                            "perturbations: ratio > 1") if name == "pruned" else None
            m.append(Metric("distortion_ratio", ratios[name], "×", NONE, mt, anchor=anchor,
                            headline=name == "pruned"))
    pruned_ratio = sum(d["pruned_ratio"] for d in draws) / len(draws)
    m.append(Metric("pruned_ratio", pruned_ratio, "×", NONE, {"model": "pruned"}))
    first = draws[0]
    return TaskOutput(m, series={"compressed_robustness": first["series"]},
                      info={"dataset": ds.describe(), "model": cfg.model, "student": cfg.student,
                            "dense_acc_pct": dense_acc, "pruned_ratio": pruned_ratio,
                            "repeats": cfg.repeats, "attacked": first["attacked"],
                            "int8_levels": first["int8_levels"]})


def _attack_four(cfg: CompressedRobustnessConfig, ds, ctx: Context, seed: int) -> dict:
    """One draw: the four models trained from ``seed``, each attacked on the same test inputs
    (those its dense model classifies correctly): {rows: {model: row}, ratios: {model:
    distortion ratio against dense}, pruned_ratio, series, attacked, int8_levels}."""
    xt, yt = ds.x_test, ds.y_test
    models, dense_acc, ratio = four_models(cfg, ds, ctx, seed)
    dense, q = models["dense"], models["int8"]

    # ---- the same inputs for all: test inputs dense classifies correctly
    g = torch.Generator().manual_seed(seed)
    pick = torch.randperm(len(yt), generator=g)[:cfg.n_attack * 2].to(ctx.device)
    ok = predict(dense, xt[pick]).argmax(1) == yt[pick]
    xa, ya = xt[pick][ok][:cfg.n_attack], yt[pick][ok][:cfg.n_attack]

    rows, series = {}, []
    settings = A.AttackSettings(steps=cfg.pgd_steps, search_steps=cfg.search_steps,
                                bounds=ds.bounds, seed=seed)
    for name, m in models.items():
        acc = dense_acc if name == "dense" else 100 * evaluate(m, xt, yt)[0]
        r = {"clean_acc": acc, "params": count_params(m, nonzero=True)}
        for norm, grid in (("linf", cfg.eps_linf), ("l2", cfg.eps_l2)):
            for eps in grid:
                s = _success(m, xa, ya, A.make(cfg.attack, eps, norm, settings))
                r[(norm, eps)] = s
                series.append({"model": name, "norm": norm, "eps": eps, "success": s})
        mp = A.make("minimal", None, "l2", settings)  # eps None: the whole input box
        mp(m, xa, ya)
        r["l2"] = mp.distances  # (n,) per input, inf where none was found
        d = mp.distances[torch.isfinite(mp.distances)]
        r["median_l2"] = float(d.median()) if len(d) else math.inf
        rows[name] = r
        ctx.log(f"{name:9s} clean {acc:5.2f}%  " + "  ".join(
            f"{n}@{e:g} {r[(n, e)]:.0f}%" for n, g2 in (("linf", cfg.eps_linf),
                                                       ("l2", cfg.eps_l2)) for e in g2)
            + f"  median min L2 {r['median_l2']:.3f}")
    ratios = {name: paired_ratio(rows[name]["l2"], rows["dense"]["l2"])
              for name in MODELS if name != "dense"}
    return {"rows": rows, "ratios": ratios, "pruned_ratio": ratio, "series": series,
            "attacked": int(len(ya)),
            "int8_levels": max(int(w.unique().numel()) for n, w in q.named_parameters()
                               if w.dim() >= 2)}


def _geomean(values: list[float]) -> float:
    """The geometric mean (of one value: itself, bit for bit; nan if any is nan, 0 if any is
    0)."""
    if len(values) == 1:
        return values[0]
    if any(math.isnan(v) for v in values):
        return math.nan
    if any(v <= 0 for v in values):
        return 0.0
    return math.exp(sum(map(math.log, values)) / len(values))


def _mean_row(rows: list[dict]) -> dict:
    """One model's rows from several draws as one: the mean of every number (the per-input
    distances are dropped; of one row: the row)."""
    if len(rows) == 1:
        return rows[0]
    return {k: sum(r[k] for r in rows) / len(rows) for k in rows[0] if k != "l2"}


def paired_ratio(d: torch.Tensor, d_ref: torch.Tensor) -> float:
    """Median over inputs of d / d_ref, per-input distances (n,), over the inputs with both
    finite and d_ref > 0 (nan when there is none)."""
    both = torch.isfinite(d) & torch.isfinite(d_ref) & (d_ref > 0)
    return float((d[both] / d_ref[both]).median()) if bool(both.any()) else math.nan


_SMOKE = dict(n_train=300, n_attack=32, ratios=(2.0, 4.0), eps_linf=(0.1,), eps_l2=(1.0,),
              pgd_steps=3, search_steps=3, model="mlp-64", student="mlp-32",
              # 6 epochs: at 2 the distilled student reached 11-24% clean accuracy (seeds 0-2),
              # at 6 it reaches 68-74% (the teacher 78-81%)
              train=TrainConfig(lr=0.1, batch_size=64, max_epochs=6, target_train_acc=None,
                                eval_test=False),
              finetune=TrainConfig(lr=0.05, batch_size=64, max_epochs=1, target_train_acc=None,
                                   eval_test=False))

register(Task(
    name="compressed_robustness",
    description="dense vs magnitude-pruned (iso-accuracy) vs int8 vs distilled: PGD-L∞/L2 "
                "success on one ε grid, minimal L2 distortion, robustness cost at matched "
                "accuracy (Guo 2018, Ye 2019)",
    config=CompressedRobustnessConfig,
    run=run,
    blurb="Compression keeps accuracy; does it keep robustness? Guo et al. 2018 find moderate "
          "sparsity helps, Ye et al. 2019 that naive pruning hurts.",
    cost={"smoke": 0.2, "pr": 8, "quick": 1.9},  # seconds a unit, one thread
    suites={
        "smoke": _SMOKE,
        # 3 draws: the pruned distortion ratio's spread from seed to seed is the dense model
        # the seed trains (on tuning seeds 0-9 three pruned models of one dense model vary
        # with a log-sd of 0.0085, the seeds' one draw with 0.019); 3 draws: 0.013
        "pr": dict(n_train=2000, n_attack=300, ratios=(2.0, 4.0, 8.0), pgd_steps=10,
                   search_steps=5, repeats=3),
        "quick": dict(n_train=2000, n_attack=200, ratios=(2.0, 4.0, 8.0, 16.0), pgd_steps=10),
        "nightly": dict(n_attack=1000, eps_linf=(0.05, 0.1, 0.2, 0.3),
                        eps_l2=(0.5, 1.0, 2.0, 3.0), pgd_steps=40, search_steps=10),
    },
))
