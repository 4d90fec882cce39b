"""The one training engine.

The whole data set lives on the device; a minibatch is an index gather (no DataLoader).
``train`` fits one model; ``train_many`` fits K models of one architecture at once with
``torch.func.stack_module_state`` + ``vmap`` (seeds, ensembles, variants on different
data). Both stop when the training accuracy reaches ``target_train_acc`` and record
steps, epochs, wall seconds and a per-epoch curve.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import vmap

from .. import progress
from ..config import at_least, check, check_choices
from ..errors import UserError
from .health import health, raise_if_diverged, raise_if_stalled
from .stacked import Fit, Stack

OPTIMIZERS = ("sgd", "adam")
# (logits (B, C), hard labels (B,)) → the logits an accuracy is read from
Head = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class TrainConfig:
    optimizer: str = "sgd"  # sgd (with momentum) or adam
    lr: float = 0.05  # [1] learning rate per step
    momentum: float = 0.9  # [1] SGD momentum (ignored by adam)
    weight_decay: float = 0.0  # [1] L2 coefficient, coupled (torch.optim semantics)
    batch_size: int = 128  # [examples] examples per step
    max_epochs: int = 100  # [epochs] budget in passes over the training set
    max_steps: int | None = None  # [steps] budget in steps (whichever comes first)
    target_train_acc: float | None = 1.0  # [fraction] stop at this train accuracy (fraction); None:
    #   budget
    eval_test: bool = True  # test accuracy in the per-epoch curve (small sets: cheap)
    fused: bool = False  # one fused update kernel: faster at small batches, not bit-identical
    check_every: int | None = None  # [steps] with target_train_acc: once an epoch's running
    #   accuracy is within 5 pp of the target, check the full training accuracy every this many
    #   steps (fit time at step resolution); None: once per epoch

    def __post_init__(self):
        check_train_config(self)


def check_train_config(cfg: TrainConfig) -> None:
    check_choices(cfg.optimizer, "optimizer", OPTIMIZERS, "optimizer")
    check(0 < cfg.lr < math.inf, "lr", "a finite number > 0", cfg.lr)
    check(math.isfinite(cfg.momentum), "momentum", "a finite number", cfg.momentum)
    check(math.isfinite(cfg.weight_decay), "weight_decay", "a finite number", cfg.weight_decay)
    at_least(cfg, 1, "batch_size", "max_epochs")
    check(cfg.check_every is None or cfg.check_every >= 1, "check_every",
          "≥ 1 step (or none)", cfg.check_every)
    t = cfg.target_train_acc
    check(t is None or 0 < t <= 1, "target_train_acc", "a fraction in (0, 1] (or none)", t)


@dataclass
class TrainResult:
    """What one training run did. Accuracies are fractions, seconds wall-clock."""

    steps: int  # optimizer steps taken until the target was reached (or the budget ran out)
    epochs: float  # passes over the training set, fractional when stopped mid-epoch
    seconds: float  # wall time until the fit was confirmed, test probes excluded (train_many:
    # the shared wall time of all K)
    fitted: bool  # reached target_train_acc within the budget
    train_acc: float
    test_acc: float | None
    train_loss: float
    # per epoch: epoch, step, seconds, train_acc, train_loss, test_acc
    curve: list[dict] = field(default_factory=list)


# --------------------------------------------------------------------------- helpers

def make_optimizer(params, cfg: TrainConfig) -> torch.optim.Optimizer:
    fused = {"fused": True} if cfg.fused else {}  # default: torch's foreach update
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, **fused)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum,
                           weight_decay=cfg.weight_decay, **fused)


def hard_labels(y: torch.Tensor) -> torch.Tensor:
    """Class indices from labels (N,) or soft targets (N, C)."""
    return y.argmax(-1) if y.is_floating_point() else y


def default_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against class indices (N,) or a probability target (N, C)."""
    return F.cross_entropy(logits, y)


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch: int = 4096) -> torch.Tensor:
    """Logits (N, C), in eval mode, in chunks; the model's mode is restored."""
    was = model.training
    model.eval()
    out = torch.cat([model(x[i:i + batch]) for i in range(0, len(x), batch)])
    model.train(was)
    return out


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 4096,
             head: Head | None = None):
    """(accuracy as a fraction, mean cross-entropy) of ``model`` on (x, y); ``head`` maps
    (logits, labels) to the logits that are read (see ``train``)."""
    return _evaluate(model, x, hard_labels(y), batch, head)[:2]


def _evaluate(model: nn.Module, x: torch.Tensor, yl: torch.Tensor, batch: int = 4096,
              head: Head | None = None):
    """``evaluate`` against class indices ``yl``, and the indices of the examples it got wrong."""
    logits = predict(model, x, batch)
    if head is not None:
        logits = head(logits, yl)
    hit = logits.argmax(1) == yl
    return (hit.float().mean().item(), F.cross_entropy(logits, yl).item(),
            (~hit).nonzero().squeeze(1))


class _FitProbe:
    """Whether the training accuracy has reached ``target``: the same answer as a full pass
    over the training set, most often without one.

    Near the fit most probes fail, on a few hard examples. The examples the last full pass
    got wrong are looked at first: when so many of them are still wrong that the accuracy
    must be below the target, the answer is no. A row counts as wrong there only by a logit
    margin of 1e-3 × its largest |logit| + 1e-3 — four orders of magnitude above the float
    rounding by which a row's logits can differ between a batch of a few rows and the full
    pass (≤ 2e-7 measured on the MLPs here) — so the subset says no only where the full pass
    would. Otherwise (and the first time) the full pass decides, and its wrong rows are kept
    for the next probe."""

    def __init__(self, x: torch.Tensor, yl: torch.Tensor, target: float,
                 head: Head | None = None):
        self.x, self.yl, self.target, self.head = x, yl, target, head
        self.wrong: torch.Tensor | None = None

    def full(self, model: nn.Module) -> tuple[float, float]:
        """(accuracy, loss) of a full pass, exactly ``evaluate``'s; the wrong rows are kept."""
        acc, loss, self.wrong = _evaluate(model, self.x, self.yl, head=self.head)
        return acc, loss

    def reached(self, model: nn.Module) -> bool:
        if self.wrong is not None and len(self.wrong):
            y = self.yl[self.wrong]
            raw = predict(model, self.x[self.wrong])
            logits = raw if self.head is None else self.head(raw, y)  # masked rows: -inf
            true = logits.gather(1, y[:, None]).squeeze(1)
            rival = logits.scatter(1, y[:, None], float("-inf")).amax(1)
            tol = 1e-3 * raw.abs().amax(1) + 1e-3
            sure = int((rival - true > tol).sum())
            n = len(self.yl)
            if (n - sure) / n < self.target - 1e-6:  # float32 rounding of the mean: < 1e-7
                return False
        return self.full(model)[0] >= self.target


def _sync(device: torch.device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _steps_per_epoch(n: int, b: int) -> int:
    return max(1, n // b)  # drop the ragged last batch: every step sees b examples


# --------------------------------------------------------------------------- one model

def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, cfg: TrainConfig, *,
          seed: int = 0, x_test: torch.Tensor | None = None, y_test: torch.Tensor | None = None,
          loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = default_loss,
          penalty: Callable[[nn.Module], torch.Tensor] | None = None,
          masks: dict[str, torch.Tensor] | None = None,
          log: Callable[[str], None] | None = None,
          final_train_eval: bool = True, head: Head | None = None,
          stall_check: bool = False) -> TrainResult:
    """Train ``model`` in place on (x, y) resident on its device.

    x: (N, *input_shape); y: (N,) class indices or (N, C) soft targets.
    ``penalty(model)`` is added to the loss (EWC); ``masks`` (parameter name → 0/1 tensor)
    are re-applied after every step so pruned weights stay zero.
    Training accuracy is tracked on the minibatches as they go (free); when an epoch's
    running accuracy reaches the target, a full pass over the training set confirms it.
    Without a target (or when it was not reached) a full pass at the end gives
    ``train_acc`` and ``train_loss``; ``final_train_eval=False`` skips it for a caller that
    reads neither (they are then the last epoch's running figures).
    ``head(logits, labels)`` gives the logits the accuracy is read from, when that is not
    the model's output as it is: a task-incremental protocol masks other tasks' classes
    (its ``loss_fn`` does the same), so the target is the accuracy its tests measure.
    Each epoch's host sync also reads ``health``: diverged; did not train (``stall_check``).
    """
    n = len(x)
    if n == 0:
        raise UserError("cannot train on an empty training set")
    device = x.device
    yl = hard_labels(y)
    opt = make_optimizer([p for p in model.parameters() if p.requires_grad], cfg)
    g = torch.Generator(device=device).manual_seed(seed)
    b = min(cfg.batch_size, n)
    spe = _steps_per_epoch(n, b)
    max_steps = cfg.max_steps or spe * cfg.max_epochs
    bar = progress.phase("training run", max_steps, progress.until(cfg.target_train_acc))
    mask_list = _mask_pairs(model, masks)
    _apply_masks(mask_list)
    model.train()
    run = _Run(model, opt, x, y, yl, b, spe, max_steps, cfg, loss_fn, penalty, mask_list, head)
    curve: list[dict] = []
    train_acc, train_loss, epoch, first = 0.0, 0.0, 0, None
    _sync(device)
    t0 = time.perf_counter()
    while run.step < max_steps and not run.fitted:
        perm = torch.randperm(n, generator=g, device=device)
        step0 = run.step
        correct, loss_sum, seen, losses = run.epoch(perm)
        epoch += 1
        first = losses[0] if first is None else first
        with torch.no_grad():  # one host sync per epoch: accuracy, loss, the health checks
            c, ls, ch, f, *signs = torch.cat([
                torch.stack([correct.double(), loss_sum.double(), run.chance, first.double()]),
                health(losses, model.parameters(), first)]).tolist()
        raise_if_diverged(signs, f, step0, run.step)
        train_acc = run_acc = c / seen
        train_loss = ls / seen
        if stall_check and cfg.target_train_acc is not None:
            raise_if_stalled(epoch, run.step, run_acc, train_loss, ch, f)
        if run.fitted or (cfg.target_train_acc is not None
                          and run_acc >= cfg.target_train_acc - 0.02):
            train_acc, train_loss = run.fit_probe.full(model)
            run.fitted = train_acc >= cfg.target_train_acc
            model.train()
        run.near = (cfg.check_every is not None and cfg.target_train_acc is not None
                    and run_acc >= cfg.target_train_acc - 0.05)
        point = {"epoch": epoch, "step": run.step,
                 "seconds": time.perf_counter() - t0 - run.t_probe,
                 "train_acc": train_acc, "train_loss": train_loss}
        if cfg.eval_test and x_test is not None:
            point["test_acc"] = run.probe(lambda: evaluate(model, x_test, y_test)[0])
        curve.append(point)
        bar.update(run.step)
        if log is not None:
            log(f"epoch {epoch} step {run.step} train_acc {train_acc:.3f}")
    _sync(device)
    seconds = curve[-1]["seconds"] if curve else time.perf_counter() - t0 - run.t_probe
    if (cfg.target_train_acc is None or not run.fitted) and final_train_eval:
        train_acc, train_loss = evaluate(model, x, y, head=head)
    test_acc = evaluate(model, x_test, y_test)[0] if x_test is not None else None
    return TrainResult(run.step, run.step / spe, seconds, run.fitted, train_acc, test_acc,
                       train_loss, curve)


class _Run:
    """The state of one ``train`` call across epochs: steps taken, whether the fit is
    confirmed, the probing time that is not training time, and the step loop itself."""

    def __init__(self, model, opt, x, y, yl, b, spe, max_steps, cfg, loss_fn, penalty,
                 mask_list, head):
        self.model, self.opt, self.x, self.y, self.yl = model, opt, x, y, yl
        self.b, self.spe, self.max_steps, self.cfg = b, spe, max_steps, cfg
        self.loss_fn, self.penalty, self.mask_list, self.head = loss_fn, penalty, mask_list, head
        self.step, self.fitted, self.near, self.t_probe = 0, False, False, 0.0
        self.chance = (yl.bincount().max() / len(yl)).double()  # the largest class's share
        self.fit_probe = (_FitProbe(x, yl, cfg.target_train_acc, head)
                          if cfg.target_train_acc is not None else None)

    def probe(self, fn):  # fn() in eval mode, its time not counted as training time
        t1 = time.perf_counter()
        out = fn()
        self.model.train()
        self.t_probe += time.perf_counter() - t1
        return out

    def epoch(self, perm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int, list]:
        """One pass in the order ``perm``: (correct, summed loss, examples seen, each step's
        loss), on the device. When ``near`` the target, the fit is probed every check_every."""
        model, cfg, x, y, opt = self.model, self.cfg, self.x, self.y, self.opt
        mask_list, step, device = self.mask_list, self.step, x.device
        correct = torch.zeros((), device=device)
        loss_sum = torch.zeros((), device=device)
        seen, losses = 0, []
        for i in range(self.spe):
            if step >= self.max_steps:
                break
            idx = perm[i * self.b:(i + 1) * self.b]
            xb, yb = x[idx], y[idx]
            logits = model(xb)
            loss = self.loss_fn(logits, yb)
            if self.penalty is not None:
                loss = loss + self.penalty(model)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if mask_list:
                _apply_masks(mask_list)
            step += 1
            seen += len(idx)
            with torch.no_grad():
                read = logits if self.head is None else self.head(logits, self.yl[idx])
                correct += (read.argmax(1) == self.yl[idx]).sum()
                lost = loss.detach()
                losses.append(lost)
                loss_sum += lost * len(idx)
            if self.near and step % cfg.check_every == 0:
                self.fitted = self.probe(lambda: self.fit_probe.reached(model))
                if self.fitted:
                    break
        self.step = step
        return correct, loss_sum, seen, losses


def _mask_pairs(model: nn.Module, masks):
    if not masks:
        return []
    params = dict(model.named_parameters())
    unknown = set(masks) - set(params)
    if unknown:
        raise ValueError(f"masks name parameters the model lacks: {sorted(unknown)}")
    return [(params[k], m.to(params[k].device, params[k].dtype)) for k, m in masks.items()]


@torch.no_grad()
def _apply_masks(pairs):
    for p, m in pairs:
        p.mul_(m)


# --------------------------------------------------------------------------- K models at once

def train_many(models: list[nn.Module], x: torch.Tensor, y: torch.Tensor, cfg: TrainConfig, *,
               seeds: list[int], x_test: torch.Tensor | None = None,
               y_test: torch.Tensor | None = None) -> list[TrainResult]:
    """Train K models of one architecture at once with ``torch.func`` + ``vmap``.

    x: (N, ...) shared by all models, or (K, N, ...) one training set per model (variants
    on different data, e.g. label conditions); y likewise (N,) or (K, N). Each model draws
    its own batch order from its seed. Because torch.optim updates are elementwise, one
    optimizer over the stacked parameters is exactly K independent optimizers. A model that
    reaches the target is frozen at that point (its parameters are restored after the run);
    ``seconds`` is the shared wall time. The trained weights are written back into
    ``models``. BatchNorm is run without running statistics (``replace_all_batch_norm_modules_``).
    """
    k = len(models)
    if k == 0 or len(seeds) != k:
        raise ValueError("train_many needs K ≥ 1 models and K seeds")
    # labels (K, N) or soft targets (K, N, C): one label set per model; inputs likewise when
    # x is (K, N, ...) (else one input set shared by all, e.g. label-noise variants)
    per_model = y.dim() == (3 if y.is_floating_point() else 2)
    x_per = per_model and tuple(x.shape[:2]) == tuple(y.shape[:2])
    n = y.shape[1] if per_model else y.shape[0]
    device = x.device
    stack = Stack(models)
    opt = make_optimizer(list(stack.params.values()), cfg)
    gens = [torch.Generator(device=device).manual_seed(s) for s in seeds]
    b = min(cfg.batch_size, n)
    spe = _steps_per_epoch(n, b)
    max_steps = cfg.max_steps or spe * cfg.max_epochs
    ar = torch.arange(k, device=device)[:, None]
    yl = hard_labels(y)

    def batch(idx):  # idx (K, B) → inputs, targets, hard labels, each (K, B, ...)
        def gather(t, per):
            return t[ar, idx] if per else t[idx]
        return gather(x, x_per), gather(y, per_model), gather(yl, per_model)

    fit = Fit(k)
    until = progress.until(cfg.target_train_acc, f"{k} models")
    step, epoch, first, bar = 0, 0, None, progress.phase("training run", max_steps, until)
    _sync(device)
    t0 = time.perf_counter()
    while step < max_steps and not fit.all_done():
        perm = torch.stack([torch.randperm(n, generator=g, device=device) for g in gens])
        step0 = step
        correct, step, losses = _one_epoch(stack, opt, perm, b, spe, step, max_steps, batch)
        epoch += 1
        first = losses[0] if first is None else first
        with torch.no_grad():  # one host sync per epoch, the divergence checks included
            stats = torch.cat([(correct / (spe * b)).double(), first.double()[None],
                               health(losses, stack.params.values(), first)]).tolist()
        raise_if_diverged(stats[-4:], stats[-5], step0, step)
        run_acc = stats[:-5]
        full = None
        if cfg.target_train_acc is not None and max(run_acc) >= cfg.target_train_acc - 0.02:
            full = stack.accuracy(x, yl, x_per, per_model).tolist()
        test = stack.accuracy(x_test, y_test, False, False).tolist() \
            if (cfg.eval_test and x_test is not None) else None
        fit.record(stack, epoch, step, time.perf_counter() - t0, run_acc, full, test,
                   cfg.target_train_acc)
        bar.update(step)
    _sync(device)
    total = time.perf_counter() - t0
    with torch.no_grad():
        for j, snap in fit.snapshot.items():
            stack.restore(j, snap)
        train_accs = stack.accuracy(x, yl, x_per, per_model).tolist()
        test_accs = stack.accuracy(x_test, y_test, False, False).tolist() if x_test is not None \
            else [None] * k
        stack.write_back(models)
    out = []
    for j in range(k):
        d = fit.done_at[j]
        s = d["step"] if d else step
        out.append(TrainResult(s, s / spe, d["seconds"] if d else total, d is not None,
                               train_accs[j], test_accs[j], float("nan"), fit.curves[j]))
    return out


def _one_epoch(stack: Stack, opt, perm: torch.Tensor, b: int, spe: int, step: int,
               max_steps: int, batch) -> tuple[torch.Tensor, int, list[torch.Tensor]]:
    """One pass, each model in its own order ``perm`` (K, N): (correct (K,), steps so far,
    each step's summed loss, still on the device, for the divergence check)."""
    correct = torch.zeros(stack.k, device=perm.device)
    losses = []
    for i in range(spe):
        if step >= max_steps:
            break
        xb, yb, lb = batch(perm[:, i * b:(i + 1) * b])
        logits = stack.logits(xb)
        loss = vmap(default_loss)(logits, yb).sum()  # sum of per-model means: independent grads
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        losses.append(loss.detach())
        with torch.no_grad():
            correct += (logits.argmax(-1) == lb).sum(1)
    return correct, step, losses
