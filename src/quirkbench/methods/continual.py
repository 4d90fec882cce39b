"""Continual learning: protocols, strategies and the forgetting metrics.

A *protocol* turns one data set into a sequence of T tasks (Hsu et al. 2018, van de Ven &
Tolias 2019):

* ``permuted``     domain-incremental: every task is the whole data set under one fixed pixel
                   permutation (task 0 the identity); one 10-way head shared by all tasks.
* ``split-task``   task-incremental: task t holds classes (2t, 2t+1); one output layer whose
                   logits are *masked* to the task's classes in training and test (the task is
                   known at test time) — equivalent to a separate 2-way head per task.
* ``split-class``  class-incremental: the same class pairs, one head over all classes, no
                   task given at test time.

A *strategy* is how a model is fitted to the sequence: ``naive`` fine-tuning, ``ewc``
(Kirkpatrick et al. 2017: a quadratic penalty weighted by the diagonal Fisher of every
earlier task) or ``replay`` (a small fixed memory of examples per earlier task,
concatenated to the current task's training set). All training goes through the one engine,
``quirkbench.train.train``, with the data resident on the device.

The metrics are plain functions of the accuracy matrix R (numpy (T, T), percent),
R[i, j] = accuracy on task j after training task i, exactly as ../shared/ANCHORS.md defines
them (Lopez-Paz & Ranzato 2017, Chaudhry et al. 2018).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap

from ..engine.data import Dataset
from ..engine.train import TrainConfig, predict, train
from ..errors import UserError, choices

PROTOCOLS = ("permuted", "split-task", "split-class")
STRATEGIES = ("naive", "ewc", "replay")


# --------------------------------------------------------------------------- metrics on R

def _check_matrix(R) -> np.ndarray:
    R = np.asarray(R, dtype=float)
    if R.ndim != 2 or R.shape[0] != R.shape[1] or R.shape[0] < 2:
        raise ValueError(f"R must be a square (T, T) matrix with T ≥ 2, got shape {R.shape}")
    return R


def average_accuracy(R) -> float:
    """ACC = mean_j R[T, j]: mean final accuracy over all tasks (same unit as R)."""
    R = _check_matrix(R)
    return float(R[-1].mean())


def bwt(R) -> float:
    """Backward transfer = mean_{j<T} (R[T, j] − R[j, j]) (Lopez-Paz & Ranzato 2017).

    Negative when learning later tasks hurt earlier ones."""
    R = _check_matrix(R)
    t = len(R)
    return float(np.mean([R[-1, j] - R[j, j] for j in range(t - 1)]))


def _best_before_last(R: np.ndarray) -> np.ndarray:
    """max_{l<T} R[l, j] for each earlier task j: (T-1,)."""
    return R[:-1, :-1].max(axis=0)


def chaudhry_forgetting(R) -> float:
    """Mean over earlier tasks of f_j = max_{l<T} R[l, j] − R[T, j] (Chaudhry et al. 2018)."""
    R = _check_matrix(R)
    return float(np.mean(_best_before_last(R) - R[-1, :-1]))


def forgetting_pct(R) -> float:
    """Mean over earlier tasks of (R[j, j] − R[T, j]) / R[j, j] × 100: forgetting relative to
    the accuracy just after learning the task; 100% = everything lost, 0% = nothing, negative
    = later training improved it. Meaningful only when every task was learned (see
    ``unlearned_tasks``); a task at 0 on the diagonal counts 0."""
    R = _check_matrix(R)
    learned, final = np.diag(R)[:-1], R[-1, :-1]
    rel = np.where(learned > 0, (learned - final) / np.where(learned > 0, learned, 1.0), 0.0)
    return float(100.0 * rel.mean())


def learned_criterion(n_classes: int, fraction: float = 0.5) -> float:
    """Accuracy (%) on a task just after training it that counts as *learned*: ``fraction``
    of the way from chance among the task's own classes (100/k) to 100%. Halfway: 75% for a
    class pair (50% = only one class of the pair predicted), 55% for a 10-class task."""
    chance = 100.0 / max(n_classes, 1)
    return chance + fraction * (100.0 - chance)


def unlearned_tasks(R, n_classes: list[int], fraction: float = 0.5) -> list[int]:
    """Tasks t whose R[t, t] is below ``learned_criterion`` (their own class counts)."""
    R = _check_matrix(R)
    return [t for t in range(len(R)) if R[t, t] < learned_criterion(n_classes[t], fraction)]


# --------------------------------------------------------------------------- protocols

@dataclass
class Experience:
    """One task of a sequence. x: (N, *input_shape) on the device; y: (N,) class indices."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: tuple[int, ...]  # the classes this task holds


@dataclass
class Protocol:
    """A sequence of tasks and how logits are read.

    ``group_of`` (C,) maps class → task id in the task-incremental scenario: logits are
    masked to the classes of the example's own task (derived from its label, which is the
    same as knowing the task); ``None`` = one head over all classes."""

    name: str
    tasks: list[Experience]
    num_classes: int
    group_of: torch.Tensor | None = None

    def logits(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """(B, C) logits → the same with other tasks' classes at −inf (task-incremental only)."""
        if self.group_of is None:
            return logits
        allowed = self.group_of[None, :] == self.group_of[y][:, None]
        return logits.masked_fill(~allowed, float("-inf"))

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(self.logits(logits, y), y)

    def accuracy(self, model: nn.Module, j: int) -> float:
        """Test accuracy on task j in percent (task known only in the task-incremental case)."""
        e = self.tasks[j]
        out = self.logits(predict(model, e.x_test), e.y_test)
        return 100.0 * (out.argmax(1) == e.y_test).float().mean().item()


def permutations(d: int, n_tasks: int, seed: int, first_identity: bool = True,
                 device: torch.device | str = "cpu") -> list[torch.Tensor]:
    """T fixed permutations of d features, drawn from ``seed`` (the same on every call)."""
    g = torch.Generator().manual_seed(10_007 * seed + 1)
    perms = [torch.randperm(d, generator=g) for _ in range(n_tasks)]
    if first_identity:
        perms[0] = torch.arange(d)
    return [p.to(device) for p in perms]


def permute_pixels(x: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    """x (N, *shape) with its flattened features reordered by perm (d,)."""
    return x.reshape(len(x), -1)[:, perm].reshape(x.shape)


def permuted(ds: Dataset, n_tasks: int, seed: int, first_identity: bool = True) -> Protocol:
    d = int(np.prod(ds.input_shape))
    perms = permutations(d, n_tasks, seed, first_identity, ds.device)
    every = tuple(range(ds.num_classes))
    tasks = [Experience(permute_pixels(ds.x_train, p), ds.y_train,
                        permute_pixels(ds.x_test, p), ds.y_test, every) for p in perms]
    return Protocol("permuted", tasks, ds.num_classes)


def split(ds: Dataset, n_tasks: int, scenario: str, classes_per_task: int = 2) -> Protocol:
    """Classes (k·t, …, k·t + k − 1) form task t; ``scenario`` is ``task`` or ``class``."""
    if scenario not in ("task", "class"):
        raise UserError(f"unknown scenario {scenario!r}; valid: task, class")
    need = n_tasks * classes_per_task
    if need > ds.num_classes:
        raise UserError(f"split into {n_tasks} tasks of {classes_per_task} classes needs {need} "
                        f"classes; {ds.name} has {ds.num_classes} (valid: n_tasks ≤ "
                        f"{ds.num_classes // classes_per_task})")
    tasks = []
    for t in range(n_tasks):
        cls = tuple(range(t * classes_per_task, (t + 1) * classes_per_task))
        c = torch.tensor(cls, device=ds.device)
        tr, te = torch.isin(ds.y_train, c), torch.isin(ds.y_test, c)
        tasks.append(Experience(ds.x_train[tr], ds.y_train[tr], ds.x_test[te], ds.y_test[te], cls))
    group_of = None
    if scenario == "task":
        # classes beyond the last task get their own group so they are never allowed
        group_of = torch.arange(ds.num_classes, device=ds.device) // classes_per_task
    return Protocol(f"split-{scenario}", tasks, ds.num_classes, group_of)


def make_protocol(name: str, ds: Dataset, n_tasks: int, seed: int,
                  classes_per_task: int = 2) -> Protocol:
    if n_tasks < 2:
        raise UserError(f"a continual protocol needs n_tasks ≥ 2, got {n_tasks}")
    if name == "permuted":
        return permuted(ds, n_tasks, seed)
    if name in ("split-task", "split-class"):
        return split(ds, n_tasks, name.split("-")[1], classes_per_task)
    raise UserError(f"unknown protocol (scenario) {name!r}; valid: {choices(PROTOCOLS)}")


# --------------------------------------------------------------------------- strategies

def fisher_diagonal(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                    loss_fn: Callable, chunk: int = 256) -> dict[str, torch.Tensor]:
    """Empirical diagonal Fisher: mean over examples of the squared per-example gradient of
    ``loss_fn`` (true labels), per parameter. x: (n, ...), y: (n,). Eval mode (no BN updates)."""
    was = model.training
    model.eval()
    params = {k: v.detach() for k, v in model.named_parameters()}
    buffers = dict(model.named_buffers())

    def loss_one(p, xi, yi):
        return loss_fn(functional_call(model, (p, buffers), (xi[None],)), yi[None])

    per_example = vmap(grad(loss_one), in_dims=(None, 0, 0))
    fisher = {k: torch.zeros_like(v) for k, v in params.items()}
    for i in range(0, len(x), chunk):
        for k, g in per_example(params, x[i:i + chunk], y[i:i + chunk]).items():
            fisher[k] += (g ** 2).sum(0)
    model.train(was)
    return {k: f / len(x) for k, f in fisher.items()}


class EWCPenalty:
    """λ/2 · Σ_tasks Σ_i F_i (θ_i − θ*_i)² over every finished task (Fisher F, weights θ*).

    Kept as one quadratic λ/2 · Σ_i A_i (θ_i − m_i)² with A = Σ F and m = Σ F θ* / A: the same
    gradient (the value differs by a constant), and a cost per step that does not grow with T.
    """

    def __init__(self, lam: float):
        self.lam = lam
        self.tasks = 0
        self.A: dict[str, torch.Tensor] = {}  # Σ_t F_t
        self.B: dict[str, torch.Tensor] = {}  # Σ_t F_t θ*_t
        self.mean: dict[str, torch.Tensor] = {}  # B / A (0 where A = 0: no pull there)

    def add(self, model: nn.Module, fisher: dict[str, torch.Tensor]) -> None:
        self.tasks += 1
        for k, p in model.named_parameters():
            self.A[k] = self.A.get(k, 0) + fisher[k]
            self.B[k] = self.B.get(k, 0) + fisher[k] * p.detach()
            self.mean[k] = torch.where(self.A[k] > 0, self.B[k] / self.A[k].clamp_min(1e-30), 0)

    def __call__(self, model: nn.Module) -> torch.Tensor:
        total = sum((self.A[k] * (p - self.mean[k]) ** 2).sum()
                    for k, p in model.named_parameters())
        return 0.5 * self.lam * total


def memory_sample(x: torch.Tensor, y: torch.Tensor, m: int, seed: int):
    """m examples drawn uniformly without replacement (fixed by seed): (x (m, ...), y (m,))."""
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(x), generator=g)[:m].to(x.device)
    return x[idx], y[idx]


@dataclass
class SequenceResult:
    R: np.ndarray  # (T, T) test accuracy in percent, R[i, j] after training task i
    seconds: float  # wall time of training (Fisher and memory included, evaluation excluded)
    steps: int  # optimizer steps over the whole sequence
    task_classes: tuple[int, ...] = ()  # classes per task (for the "learned" criterion)
    budget_steps: int = 0  # of ``steps``, those of every task's own budget (before any extra
    #   steps the learned criterion asks for): T × max_steps unless training stopped short


def run_sequence(protocol: Protocol, strategy: str, model: nn.Module, cfg: TrainConfig, *,
                 seed: int = 0, ewc_lambda: float = 100.0, fisher_samples: int = 500,
                 memory_per_task: int = 100, learn_fraction: float | None = None,
                 extra_steps: int = 0,
                 log: Callable[[str], None] | None = None,
                 first_task: dict | None = None) -> SequenceResult:
    """Train ``model`` on the protocol's tasks in order with ``strategy``; fill R.

    ``cfg`` is used for every task (a fresh optimizer per task); it is run for its epoch budget
    (``target_train_acc`` ignored). Replay concatenates ``memory_per_task`` stored examples of
    every earlier task to the current task's training set, so later tasks take more steps.

    With ``learn_fraction`` and ``extra_steps``: a task whose training accuracy after its
    budget is below ``learned_criterion(k, learn_fraction)`` (k = its classes) trains on, with
    a fresh optimizer, for up to ``extra_steps`` more steps until it reaches it — a
    class-incremental task whose classes start far behind (their logits were pushed down
    by every earlier task) is then learned instead of left at one class of its pair.

    ``first_task``: a dict shared by the sequences of one protocol. The first task is
    trained alike by every strategy (no penalty, no memory yet), so the first sequence
    stores its start and end weights, steps and seconds there, and a later one whose model
    starts from the same weights takes them instead of training it again (the same
    numbers, bit for bit; another start trains as usual).
    """
    if strategy not in STRATEGIES:
        raise UserError(f"unknown strategy {strategy!r}; valid: {choices(STRATEGIES)}")
    cfg = replace(cfg, target_train_acc=None, eval_test=False)
    t_n = len(protocol.tasks)
    R = np.zeros((t_n, t_n))
    penalty = EWCPenalty(ewc_lambda) if strategy == "ewc" else None
    mem_x: list[torch.Tensor] = []
    mem_y: list[torch.Tensor] = []
    seconds, steps, budget = 0.0, 0, 0
    for i, task in enumerate(protocol.tasks):
        x, y = task.x_train, task.y_train
        t0 = time.perf_counter()
        if strategy == "replay" and mem_x:
            x, y = torch.cat([x, *mem_x]), torch.cat([y, *mem_y])
        pen = penalty if (penalty is not None and penalty.tasks) else None
        start = _state(model) if i == 0 and first_task is not None else None
        if start is not None and first_task and _same(start, first_task["start"]):
            model.load_state_dict(first_task["state"])
            steps += first_task["steps"]
            budget += first_task["budget"]
            t0 -= first_task["seconds"]  # its training time, as measured once
        else:
            done, own = _learn(model, x, y, cfg, seed * 1000 + i, protocol, pen,
                               learn_fraction, extra_steps, len(task.classes))
            steps, budget = steps + done, budget + own
            if start is not None and not first_task:
                if x.device.type == "cuda":
                    torch.cuda.synchronize(x.device)
                first_task.update(start=start, state=_state(model), steps=steps, budget=budget,
                                  seconds=time.perf_counter() - t0)
        if strategy == "ewc" and i < t_n - 1:
            fx, fy = memory_sample(task.x_train, task.y_train, fisher_samples, seed * 1000 + i)
            penalty.add(model, fisher_diagonal(model, fx, fy, protocol.loss))
        if strategy == "replay" and i < t_n - 1 and memory_per_task > 0:
            mx, my = memory_sample(task.x_train, task.y_train, memory_per_task, seed * 1000 + i)
            mem_x.append(mx)
            mem_y.append(my)
        if x.device.type == "cuda":
            torch.cuda.synchronize(x.device)
        seconds += time.perf_counter() - t0
        R[i] = [protocol.accuracy(model, j) for j in range(t_n)]
        if log is not None:
            log(f"{protocol.name}/{strategy} after task {i}: "
                + " ".join(f"{a:5.1f}" for a in R[i]))
    return SequenceResult(R, seconds, steps, tuple(len(t.classes) for t in protocol.tasks),
                          budget)


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _learn(model: nn.Module, x, y, cfg: TrainConfig, seed: int, protocol: Protocol, penalty,
           learn_fraction: float | None, extra_steps: int,
           n_classes: int) -> tuple[int, int]:
    """One task of a sequence: its budget, then up to ``extra_steps`` more until it is learned
    (``run_sequence``); (the steps taken, those of the budget). The accuracy the learned
    criterion reads is the protocol's (task-incremental: masked to the task's classes, as in
    its loss and tests)."""
    loss_fn, head = protocol.loss, protocol.logits
    r = train(model, x, y, cfg, seed=seed, loss_fn=loss_fn, penalty=penalty, head=head)
    steps = r.steps
    if learn_fraction is not None and extra_steps > 0:
        goal = learned_criterion(n_classes, learn_fraction) / 100.0
        if r.train_acc < goal:
            more = replace(cfg, max_steps=extra_steps, max_epochs=10 ** 6, target_train_acc=goal)
            steps += train(model, x, y, more, seed=seed + 500, loss_fn=loss_fn,
                           penalty=penalty, head=head).steps
    return steps, r.steps
