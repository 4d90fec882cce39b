"""Forgetting: a net trained on tasks in sequence forgets the earlier ones (McCloskey & Cohen
1989), unless a continual-learning strategy protects them (Kirkpatrick et al. 2017 EWC,
experience replay); metrics of Lopez-Paz & Ranzato 2017 and Chaudhry et al. 2018, protocols of
Hsu et al. 2018 and van de Ven & Tolias 2019.

For every protocol × strategy one fresh model (same init for all strategies) is trained on
the T tasks in order, and after each task it is tested on all T: the accuracy matrix R.
Protocols, strategies and the metric formulas live in ``quirkbench.continual``:

* ``permuted``     Permuted MNIST (domain-incremental), task 0 the identity;
* ``split-task``   Split MNIST in class pairs, task-incremental (logits masked to the task's
                   pair, i.e. one head per task, task known at test time);
* ``split-class``  the same pairs, class-incremental (one 10-way head, no task given).

Every (protocol, strategy) runs one after another with ``train`` — sequences are inherently
serial, and the per-sequence wall time is a metric.

A task that was never learned cannot be forgotten. R[t, t] (the accuracy on task t just
after training it) must reach the *learned criterion*: halfway from chance among the task's
own classes to 100% (75% for a Split-MNIST pair, where 50% means one class of the pair is
never predicted; 55% for a 10-class permuted task). A task whose training accuracy after
its step budget is below three quarters of that way trains on, up to ``extra_steps_factor``
× the budget (class-incremental pairs start far behind: every earlier task pushed their
logits down). If a task is still not learned, the sequence reports "task t not learned":
``min_learned_accuracy`` fails, and the forgetting figures are NaN with their checks failed
for that reason, instead of a training failure reported as forgetting.

Forgetting % = mean over earlier tasks of (R[j, j] − R[T, j]) / R[j, j] × 100 (against the
accuracy just after learning; Chaudhry's absolute forgetting, with its best-earlier-row
maximum, is reported beside it). Learning accuracy = mean over tasks of R[t, t] (Riemer et
al. 2019): how much each task was learned before the next came, what forgetting is measured
against. The steps a sequence took (``train_steps``: its budget plus any extra steps) are a
cost beside it; ``budget_steps``, the budget's own, says whether it trained as long as set.

Checks (``holds``), each from its anchor (ANCHORS.md):

* every task learned (``min_learned_accuracy``), for every protocol × strategy;
* naive forgetting on Permuted MNIST ≥ ``forgetting_min_pct`` (20%): van de Ven & Tolias
  2019 report naive ≈ 78.5% final accuracy against ≈ 97% for replay, i.e. about a fifth
  of what was learned is lost (McCloskey & Cohen 1989: catastrophic interference);
* class-incremental naive final accuracy within ``chance_margin_pp`` (5 pp) of 100/T: Hsu
  et al. 2018, 19.7% for T = 5 — only the last pair is still recognised;
* replay forgets at most half as much as naive (permuted and class-incremental): Hsu et al.
  2018, class-incremental replay 90.8% vs naive 19.7%.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import at_least, check, check_choices, model_setting, optional_seed
from ..engine.data import halves_both_ways
from ..engine.models import make_model
from ..engine.train import TrainConfig
from ..methods import continual
from ..methods.continual import PROTOCOLS, STRATEGIES, run_sequence
from ..metrics import HIGHER, LOWER, NONE, TIMING, Anchor, Metric
from . import Context, Figure, Task, TaskOutput, register

HSU = "Hsu et al. 2018"
VDV = "van de Ven & Tolias 2019"
# average final accuracy (%) the papers report, per (protocol, strategy); see ANCHORS.md
ACC_ANCHORS = {
    ("split-task", "naive"): Anchor(HSU, 93.5, "%", "Split MNIST task-incr., MLP 400-400; "
                                    "93.5–98.0 across settings"),
    ("split-task", "ewc"): Anchor(HSU, 97.7, "%", "Split MNIST task-incremental"),
    ("split-task", "replay"): Anchor(HSU, 99.4, "%", "Split MNIST task-incremental"),
    ("split-class", "naive"): Anchor(HSU, 19.7, "%", "Split MNIST class-incremental, 5 tasks"),
    ("split-class", "ewc"): Anchor(HSU, 19.8, "%", "Split MNIST class-incremental"),
    ("split-class", "replay"): Anchor(HSU, 90.8, "%", "Split MNIST class-incremental"),
    ("permuted", "naive"): Anchor(VDV, 78.5, "%", "Permuted MNIST (approx.)"),
    ("permuted", "ewc"): Anchor(VDV, 94.3, "%", "Permuted MNIST (approx.)"),
    ("permuted", "replay"): Anchor(VDV, 97.0, "%", "Permuted MNIST (approx.)"),
}
HEADLINE = {("forgetting_pct", "permuted", "naive"), ("forgetting_pct", "permuted", "ewc"),
            ("forgetting_pct", "permuted", "replay"), ("average_accuracy", "split-class", "naive"),
            ("average_accuracy", "split-class", "replay")}
FOLD_SEED = 1_000_003  # fold f > 0 draws its init, data order and permutations from seed + f × this
REPEAT_SEED = 7_000_001  # run r > 0 of a repeated sequence: seed + r × this (its fold's seed)


@dataclass(frozen=True)
class ForgettingConfig:
    # Hsu et al. 2018 use mlp-400-400 (nightly); 100-100 fits a CPU
    model: str = model_setting("mlp-100-100")
    # continual-learning protocols: permuted, split-task, split-class
    protocols: tuple[str, ...] = PROTOCOLS
    # strategies compared on each protocol: naive, ewc, replay
    strategies: tuple[str, ...] = STRATEGIES
    n_tasks: int = 5  # [tasks] T; split protocols need T × classes_per_task ≤ classes (5 pairs on
    #   MNIST)
    classes_per_task: int = 2  # [classes] class pairs, as in Split MNIST
    n_train: int | None = None  # [examples] training examples before splitting (None: all, 4,000 on
    #   mnist5k)
    n_test: int | None = None  # [examples] test examples before splitting (None: all, 1,000 on
    #   mnist5k)
    # [fraction] held-out share of sets without an official test split (mnist5k): 0.5 tests
    # every task on 2,500 digits instead of 1,000 (its accuracies 1.6× less noisy) and trains
    # on the other 2,500; the step budget per task is the same
    test_fraction: float = 0.2
    # [folds] 1: the seed's split. 2: the data cut into halves (test_fraction and n_test unused),
    # every sequence trained on each half (n_train digits of it) and tested on the other, from
    # its own init and order; R is the mean of the two folds' matrices, so every seed tests all
    # the digits with two training runs (a task not learned in either fold is not learned)
    folds: int = 1
    # [seed] the data split (and with folds 2 the halves' subsets) drawn from this seed for
    # every run (None: the run's seed): the seeds then differ only in inits, orders and
    # permutations
    split_seed: int | None = None
    # [seed] the permuted protocol's pixel permutations drawn from this seed for every run,
    # fold and repeat (None: each run's own seed): the tasks are then one fixed sequence, as
    # a benchmark's, and the seeds differ only in inits and orders
    permutation_seed: int | None = None
    # [runs] "protocol/strategy:N": that sequence trained N times on the same data, run r > 0
    # from its own init, order and permutations (seed + r × REPEAT_SEED; the permutations
    # permutation_seed's when it is set); its R is the mean of the N matrices (a task not
    # learned in any run is not learned). Entries for sequences the run does not train are
    # ignored
    repeats: tuple[str, ...] = ()
    ewc_lambda: float = 100.0  # [1] EWC penalty weight λ on the empirical Fisher (mean over
    #   examples); 1000 froze later permuted tasks (task 5 at 63%), 100 keeps them learnable
    fisher_samples: int = 500  # [examples] examples of each task the Fisher is estimated on
    memory_per_task: int = 200  # [examples] replay: examples stored per finished task (uniform
    #   draw); a quarter of a Split-MNIST task on mnist5k, 5% of a Permuted one
    forgetting_min_pct: float = 20.0  # [%] holds: naive forgetting on permuted is at least this
    chance_margin_pp: float = 5.0  # [pp] holds: class-incr. naive accuracy within this of 100/T
    learned_fraction: float = 0.5  # [fraction] a task is learned when R[t, t] is this far from
    #   chance (100/k for its k classes) to 100%: 75% for a class pair, 55% for a 10-class task
    # False where the budget is too small for permuted tasks to interfere (the smoke suite's
    # 20 Adam steps per task forgot 1.4-9.2% on tuning seeds 0-9, 40 steps no better): the
    # permuted checks are then reported as not shown at this budget, never as NO
    permuted_checks: bool = True
    extra_steps_factor: int = 4  # [×] a task below 3/4 of the way from chance to 100% on its
    #   training set after its budget trains on for up to this × max_steps more steps
    # per task: 100 Adam steps of 128 at 3e-3 (a fresh optimizer per task). Adam at 1e-3
    # forgot only 13% on permuted in as many steps; SGD 0.05 + momentum 0.9 forgot 29% but
    # sometimes stalled a class-incremental task at 50% (one class of the pair)
    train: TrainConfig = TrainConfig(optimizer="adam", lr=3e-3, batch_size=128, max_epochs=100,
                                     max_steps=100, target_train_acc=None, eval_test=False)

    def __post_init__(self):
        check_choices(self.protocols, "protocols", PROTOCOLS, "protocol (scenario)")
        check_choices(self.strategies, "strategies", STRATEGIES, "strategy")
        check(self.n_tasks >= 2, "n_tasks", "≥ 2 (a sequence)", self.n_tasks)
        at_least(self, 0, "memory_per_task", unit=" examples")
        at_least(self, 1, "classes_per_task", "fisher_samples")
        at_least(self, 0, "ewc_lambda")
        check(0 <= self.learned_fraction < 1, "learned_fraction", "a fraction in [0, 1)",
              self.learned_fraction)
        at_least(self, 0, "extra_steps_factor")
        check(0 < self.test_fraction < 1, "test_fraction", "a fraction in (0, 1)",
              self.test_fraction)
        check(self.folds in (1, 2), "folds", "1 or 2 (the halves used both ways)", self.folds)
        repeat_counts(self.repeats)
        optional_seed(self, "split_seed")
        optional_seed(self, "permutation_seed")


def repeat_counts(repeats: tuple[str, ...]) -> dict[tuple[str, str], int]:
    """``repeats`` entries as {(protocol, strategy): N}; a malformed entry is a ConfigError."""
    counts = {}
    for entry in repeats:
        seq, _, n = str(entry).partition(":")
        pname, _, strategy = seq.partition("/")
        check(pname in PROTOCOLS and strategy in STRATEGIES and n.isdigit() and int(n) >= 1,
              "repeats", f"entries protocol/strategy:N with a protocol of {', '.join(PROTOCOLS)},"
              f" a strategy of {', '.join(STRATEGIES)} and N ≥ 1", entry)
        counts[pname, strategy] = int(n)
    return counts


def run(cfg: ForgettingConfig, ctx: Context) -> TaskOutput:
    if cfg.folds == 1:
        sets = [ctx.load_data(n_train=cfg.n_train, n_test=cfg.n_test,
                              test_fraction=cfg.test_fraction, split_seed=cfg.split_seed)]
    else:
        split = ctx.seed if cfg.split_seed is None else cfg.split_seed
        sets = halves_both_ways(ctx.load_data(test_fraction=0.5, split_seed=split),
                                cfg.n_train, split)
    counts = repeat_counts(cfg.repeats)
    runs = []  # each fold's first run trains every sequence, its later runs the repeated ones
    for f, ds in enumerate(sets):
        for r in range(max([1, *counts.values()])):
            only = None if r == 0 else {k for k, n in counts.items() if n > r}
            runs.append(_sequences(cfg, ds, ctx, ctx.seed + FOLD_SEED * f + REPEAT_SEED * r,
                                   only))
    if len(runs) == 1:
        return measure(cfg, runs[0])
    return measure(cfg, {k: pool([run[k] for run in runs if k in run]) for k in runs[0]}, runs)


def _sequences(cfg: ForgettingConfig, ds, ctx: Context, seed: int,
               only: set | None = None) -> dict[tuple[str, str], continual.SequenceResult]:
    """Every protocol × strategy (or those in ``only``) trained in sequence on ``ds`` from
    ``seed`` (init, order and, unless ``permutation_seed`` is set, permutations)."""
    results: dict[tuple[str, str], continual.SequenceResult] = {}
    tasks_seed = seed if cfg.permutation_seed is None else cfg.permutation_seed
    for pname in cfg.protocols:
        protocol = continual.make_protocol(pname, ds, cfg.n_tasks, tasks_seed,
                                           cfg.classes_per_task)
        first_task: dict = {}  # every strategy trains the first task alike: once per protocol
        for strategy in cfg.strategies:
            if only is not None and (pname, strategy) not in only:
                continue
            model = make_model(cfg.model, ds.input_shape, ds.num_classes, seed=seed)
            r = run_sequence(protocol, strategy, model.to(ctx.device), cfg.train, seed=seed,
                             ewc_lambda=cfg.ewc_lambda, fisher_samples=cfg.fisher_samples,
                             memory_per_task=cfg.memory_per_task,
                             learn_fraction=(1 + cfg.learned_fraction) / 2,
                             extra_steps=cfg.extra_steps_factor * (cfg.train.max_steps or 0),
                             first_task=first_task)
            results[pname, strategy] = r
            ctx.log(f"{pname:11s} {strategy:6s} ACC {continual.average_accuracy(r.R):5.1f}% "
                    f"forgetting {continual.forgetting_pct(r.R):5.1f}% in {r.seconds:.1f} s")
    return results


def pool(folds: list[continual.SequenceResult]) -> continual.SequenceResult:
    """One sequence's folds (or runs) as one: the mean accuracy matrix, and the mean wall time
    and steps of a sequence."""
    n = len(folds)
    if n == 1:
        return folds[0]
    return continual.SequenceResult(
        R=sum(r.R for r in folds) / n, seconds=sum(r.seconds for r in folds) / n,
        steps=sum(r.steps for r in folds) / n, task_classes=folds[0].task_classes,
        budget_steps=sum(r.budget_steps for r in folds) / n)


def measure(cfg: ForgettingConfig,
            results: dict[tuple[str, str], continual.SequenceResult],
            folds: list[dict] | None = None) -> TaskOutput:
    """Metrics and the ``accuracy_matrix`` series from the accuracy matrices (pooled over
    ``folds``, the runs of every fold, whose own matrices say which tasks were not learned: in
    any run)."""
    t = cfg.n_tasks
    metrics: list[Metric] = []
    matrix: list[dict] = []
    reasons: dict[str, str] = {}
    unlearned = {k: sorted({j for fold in folds or [results] if k in fold
                            for j in _unlearned(cfg, fold[k])}) for k in results}
    nan = float("nan")
    for (pname, strategy), r in results.items():
        tags = {"protocol": pname, "strategy": strategy}
        matrix += [{**tags, "i": i, "j": j, "acc": float(r.R[i, j])}
                   for i in range(t) for j in range(t)]
        bad = unlearned[pname, strategy]
        naive = results.get((pname, "naive"))
        naive_bad = unlearned.get((pname, "naive"), [])
        # a task that was never learned cannot be forgotten: no forgetting figure, and every
        # check of this sequence fails with that reason instead of reporting a phenomenon
        why = ""
        if bad:
            why = f"task{'s' if len(bad) > 1 else ''} {', '.join(map(str, bad))} not learned"
        f_pct = nan if bad else continual.forgetting_pct(r.R)
        acc = nan if bad else continual.average_accuracy(r.R)
        holds_f = None
        if pname == "permuted" and strategy == "naive":
            holds_f = (not bad) and f_pct >= cfg.forgetting_min_pct
        elif strategy == "replay" and naive is not None and pname != "split-task":
            # task-incremental naive forgets little (masking protects it), so halving is noise
            if naive_bad and not why:
                why = f"naive: tasks {', '.join(map(str, naive_bad))} not learned"
            holds_f = (not why) and f_pct <= 0.5 * continual.forgetting_pct(naive.R)
        unshown = ""
        if pname == "permuted" and holds_f is not None and not cfg.permuted_checks:
            holds_f, unshown = None, (f"not shown at this budget ({cfg.train.max_steps} steps "
                                      "a task): run --suite pr")
        holds_acc = None
        if pname == "split-class" and strategy == "naive":
            holds_acc = (not bad) and abs(acc - 100.0 / t) <= cfg.chance_margin_pp
        key = ",".join(f"{k}={v}" for k, v in sorted(tags.items()))
        if why:
            for name, h in (("forgetting_pct", holds_f), ("average_accuracy", holds_acc),
                            ("min_learned_accuracy", False)):
                if h is not None:
                    reasons[f"{name}[{key}]"] = why
        metrics += _sequence_metrics(r, tags, bad, holds_f, unshown, holds_acc)
    return TaskOutput(metrics, series={"accuracy_matrix": matrix},
                      info={"model": cfg.model, "n_tasks": t, "check_reasons": reasons,
                            "not_learned": {f"{p}/{s}": b for (p, s), b in unlearned.items()
                                            if b},
                            "memory_per_task": cfg.memory_per_task, "ewc_lambda": cfg.ewc_lambda,
                            "task_incremental": "logits masked to the task's classes"})


def _unlearned(cfg: ForgettingConfig, r: continual.SequenceResult) -> list[int]:
    return (continual.unlearned_tasks(r.R, list(r.task_classes), cfg.learned_fraction)
            if r.task_classes else [])


def _sequence_metrics(r: continual.SequenceResult, tags: dict[str, str], bad: list[int],
                      holds_f: bool | None, unshown: str,
                      holds_acc: bool | None) -> list[Metric]:
    """One protocol × strategy's metrics from its accuracy matrix ``r.R`` (``bad``: the tasks
    not learned; the checks' verdicts and why one is not shown, from ``measure``)."""
    pname, strategy = tags["protocol"], tags["strategy"]
    nan = float("nan")
    f_pct = nan if bad else continual.forgetting_pct(r.R)
    acc = nan if bad else continual.average_accuracy(r.R)
    diag = [float(r.R[j, j]) for j in range(len(r.R))]
    return [
        # R[t, t]: the accuracy on each task just after learning it; the check is that
        # every task reached the learned criterion (not a paper's figure: a precondition)
        Metric("min_learned_accuracy", min(diag), "%", HIGHER, tags,
               holds=not bad if r.task_classes else None),
        # ... and their mean, the learning accuracy (Riemer et al. 2019): how much each task
        # was learned before the next came, the plasticity that forgetting is measured
        # against. A headline on Permuted MNIST with naive training, where no 10-class task
        # is learned to the full in its budget (R[t, t] ≈ 90%, sd 0.33 pp over tuning seeds
        # 0-9, no tail), so a sequence that learns less shows here (each task's budget
        # halved: −2.1 pp on seed 0)
        Metric("learning_accuracy", sum(diag) / len(diag), "%", HIGHER, tags,
               headline=(pname, strategy) == ("permuted", "naive")),

        # naive fine-tuning exhibits the phenomenon (direction none: it should stay where
        # it is; less forgetting because the net learned less is no improvement); the
        # strategies are meant to forget less
        Metric("forgetting_pct", f_pct, "%", NONE if strategy == "naive" else LOWER, tags,
               holds=holds_f, not_shown=unshown,
               headline=("forgetting_pct", pname, strategy) in HEADLINE,
               anchor=Anchor("McCloskey & Cohen 1989", None, "%", "catastrophic interference")
               if (pname, strategy) == ("permuted", "naive") else None),
        Metric("chaudhry_forgetting", nan if bad else continual.chaudhry_forgetting(r.R),
               "pp", LOWER, tags),
        Metric("bwt", nan if bad else continual.bwt(r.R), "pp", HIGHER, tags),
        Metric("average_accuracy", acc, "%",
               NONE if (pname, strategy) == ("split-class", "naive") else HIGHER, tags,
               holds=holds_acc,
               headline=("average_accuracy", pname, strategy) in HEADLINE,
               anchor=ACC_ANCHORS.get((pname, strategy)) if len(r.R) == 5 else None),
        # time per optimizer step: a run that does fewer steps must not read as faster
        Metric("train_ms_per_step", 1e3 * r.seconds / max(r.steps, 1), "ms", LOWER, tags,
               kind=TIMING),
        Metric("train_seconds", r.seconds, "s", NONE, tags, kind=TIMING),
        # the steps the sequence took: its budget (T × max_steps) plus the extra steps the
        # learned criterion asks for when a task lags (a class-incremental pair that this
        # seed's draw makes hard). Over seeds a point mass at the budget with a one-sided
        # tail (validation seeds 100-119: 14 at exactly 500, then 506 ... 563), which no
        # seed spread can weigh a one-seed change against: a cost, not a headline.
        Metric("train_steps", r.steps, "steps", NONE, tags),
        # ... and of them, the budget's own: the same on every seed unless the training
        # stopped short of it (a sequence that trained less than it should: the headline,
        # on the naive strategy of each protocol, that train_steps was)
        Metric("budget_steps", r.budget_steps, "steps", NONE, tags,
               headline=strategy == "naive"),
    ]


register(Task(
    name="forgetting",
    description="catastrophic forgetting on Permuted and Split MNIST: naive vs EWC vs replay, "
                "the accuracy matrix (McCloskey & Cohen 1989, Hsu 2018, van de Ven 2019)",
    config=ForgettingConfig,
    run=run,
    blurb="Training on a new task erases old ones (McCloskey & Cohen 1989, Kirkpatrick 2017).",
    figures=(Figure("accuracy_matrix"),),
    cost={"smoke": 1.8, "pr": 19, "quick": 17},  # seconds a unit, one thread
    suites={
        # smoke: 3 tasks of the whole split, 30 steps each, replay memory 200 (with 500
        # digits and 20 steps the class-incremental last task was learned too little to
        # leave naive at chance on 2 of tuning seeds 0-9, and a memory of 20 let replay forget
        # more than half of naive's on 2); permuted tasks do not interfere in so few steps
        # (naive forgot 1.4-9.2%): those checks are not shown at this budget
        "smoke": {"model": "mlp-100", "n_tasks": 3, "fisher_samples": 50,
                  "memory_per_task": 200, "train.max_steps": 30, "permuted_checks": False},
        # 60 steps/task left a class-incremental last task stuck at 50% (seed 1): keep 100.
        # One split, tested on 2,500 digits. Two folds (every sequence on each half) made the
        # seed sd smaller on tuning seeds 0-9 (split-class replay's average accuracy 0.81 ->
        # 0.58 pp, permuted EWC's forgetting 1.03 -> 0.65 pp) but trains twice as many
        # sequences, so a seed meets the rare sequence that leaves a task unlearned twice as
        # often: on the validation seeds one did (a class-incremental last task stuck in one
        # fold), and the seed-swap null of the one-seed gate went from 8 to 18 of 190 pairs
        # failing (goal <= 5%). Power bought with false alarms is not kept.
        # Repeats instead, of the two sequences whose headline metric the one-seed gate saw too
        # coarsely, on the same split (naive's sequences, where a task can stay unlearned, run
        # once). Tuning seeds 0-9, 4 runs each: permuted EWC's forgetting spreads 1.03 pp a
        # run, 0.26 of it shared by a seed's runs when each run draws its own permutations
        # (0.73 when they keep the seed's: the permutations drawn are the noise), so 3 runs
        # give a seed sd of 0.65 pp; split-class replay's average accuracy 0.74 a run, 0.15
        # shared, 2 runs 0.54 pp. On validation seeds 100-119 two runs spread 0.84 pp (the
        # gate caught 5.15 pp, goal 5): 4 runs, sd 0.40 pp on tuning seeds 0-9, half the
        # 0.82 pp the goal allows (a tuning sd ran 1.2-2.1x below validation before). One
        # split for every seed (split_seed 0), as landscape, memorization and compression: a
        # seed's runs share its split, and one validation seed's split left all four of its
        # replay runs 1.8 pp below the rest, which the seed-swap null failed on; on tuning
        # seeds 0-9 one split took permuted naive's forgetting sd from 5.3 to 4.6 pp.
        # One sequence of permutations for every seed and run (permutation_seed 0), as a
        # benchmark's: which permutations a seed drew was most of what its permuted forgetting
        # spread over seeds. Tuning seeds 0-9, drawn then fixed: naive 4.6 -> 2.3 pp a run,
        # EWC (3 runs) 0.97 -> 0.34 pp, replay 0.98 -> 0.57 pp. Naive runs twice: a run spreads
        # 2.6-2.8 pp (60 runs), so its forgetting_min_pct check (20%) held on a single run by
        # about 2 sd, and two runs halve its variance for ~1.2 s. On validation seeds 100-119
        # permuted replay's forgetting (one run) spread 0.85 pp, over the 0.82 pp a one-seed
        # gate catching 5 pp allows (0.72 with each seed's own permutations; tuning said 0.57):
        # it runs twice, in the run that repeats naive, so its first task is shared
        "pr": {"fisher_samples": 200, "test_fraction": 0.5, "split_seed": 0,
               "permutation_seed": 0,
               "repeats": ("permuted/naive:2", "permuted/ewc:3", "permuted/replay:2",
                           "split-class/replay:4")},
        "quick": {},
        "nightly": {"model": "mlp-400-400", "train.max_steps": 500},
    },
))
