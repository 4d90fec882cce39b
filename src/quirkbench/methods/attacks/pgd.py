"""Projected gradient descent in L∞ or L2 with a random start (Madry et al. 2018), the loop
every iterative attack here shares, with its update rule as a hook.

One iteration: the loss's input gradient (``gradients.gradient_fn``), the update rule
(``PGD.ascend``, the hook a variant overrides), the projection onto the ε-ball ∩ the data
bounds. Around it, the bookkeeping: per input, the first misclassified iterate is kept
(``_FirstAdversarial``), and with ``early_stop`` an input leaves the batch once it is flipped
(``_Rows`` gathers the rows still in play into a smaller batch), which changes the work and
the time, never the output.
"""

from __future__ import annotations

import torch

from ...errors import UserError
from .base import (
    NORMS,
    Attack,
    AttackSettings,
    Bounds,
    check_attack,
    check_l2_range,
    largest,
    norms,
    register,
    unit_l2,
    view,
)
from .gradients import gradient_fn


def _keep(dst: torch.Tensor, src: torch.Tensor, rows: torch.Tensor) -> None:
    """dst[rows] = src[rows] in place, rows (N,) bool. A CPU gathers the few rows (a
    broadcast ``torch.where`` over the whole batch costs more than the attack step's
    elementwise work); a GPU uses ``torch.where``, which needs no host sync."""
    if dst.device.type == "cpu":
        idx = rows.nonzero().squeeze(1)
        if len(idx):
            dst.index_copy_(0, idx, src.index_select(0, idx))
    else:
        dst.copy_(torch.where(view(rows, dst), src, dst))


def _gather(t, rows: torch.Tensor):
    """Rows of a per-input tensor (N, ...); a number or a shared (1, ...) tensor as it is."""
    return t.index_select(0, rows) if isinstance(t, torch.Tensor) and t.shape[0] > 1 else t


class _Rows:
    """The inputs still attacked: their indices into the whole batch (None: all of them, in
    order), iterates ``xa``, clean inputs ``x``, labels ``y``, the L∞ box ``lo``..``hi``
    (ε-box ∩ bounds; None in L2), budgets ``eps`` and step sizes ``step`` ((n, 1, ...) or
    shared) and the update rule's per-input ``state``."""

    def __init__(self, xa, x, y, lo, hi, eps, step, state: dict[str, torch.Tensor]):
        self.idx = None
        self.xa, self.x, self.y, self.lo, self.hi = xa, x, y, lo, hi
        self.eps, self.step, self.state = eps, step, state

    def __len__(self) -> int:
        return len(self.xa)

    def keep(self, rows: torch.Tensor) -> None:
        """Only ``rows`` (indices into the current rows) stay in play."""
        self.idx = rows if self.idx is None else self.idx[rows]
        self.xa, self.x, self.y = self.xa.index_select(0, rows), self.x.index_select(0, rows), \
            self.y[rows]
        if self.lo is not None:
            self.lo, self.hi = self.lo.index_select(0, rows), self.hi.index_select(0, rows)
        self.eps, self.step = _gather(self.eps, rows), _gather(self.step, rows)
        self.state = {k: v.index_select(0, rows) for k, v in self.state.items()}


class _FirstAdversarial:
    """Per input, the first iterate that is misclassified (the start included), else the
    last iterate: ``best`` (N, ...), ``found`` (N,) bool, and ``at`` (N,) int64, the number
    of steps taken before that iterate (0: the start; -1: never). ``done`` says, per row
    still in play, whether it was flipped (it is ``_found`` itself until the rows are
    gathered)."""

    def __init__(self, x_adv: torch.Tensor):
        self.best = x_adv.clone()
        self._found = torch.zeros(len(x_adv), dtype=torch.bool, device=x_adv.device)
        self.at = torch.full((len(x_adv),), -1, dtype=torch.int64, device=x_adv.device)
        self.done = self._found
        self.checks = 0  # iterates checked so far: the next one is after this many steps
        self._last = None  # the last iterates not yet checked (see finish)

    def record(self, rows: _Rows, flipped: torch.Tensor) -> None:
        new = flipped & ~self.done
        self._copy(rows, new)
        self._mark(rows.idx, new)
        self.done |= flipped
        self.checks += 1

    def _mark(self, idx: torch.Tensor | None, new: torch.Tensor) -> None:
        """``found`` and ``at`` of the rows ``new`` (before gathering, ``done`` is
        ``found``), flipped at the iterate after ``checks`` steps."""
        if idx is None:
            self.at.masked_fill_(new, self.checks)
            return
        r = new.nonzero().squeeze(1)
        if len(r):
            self._found.index_fill_(0, idx[r], True)
            self.at.index_fill_(0, idx[r], self.checks)

    def left(self) -> int:
        return int((~self.done).sum())

    def gather(self) -> torch.Tensor:
        """The rows not yet flipped (indices into the current rows); they start afresh."""
        keep = (~self.done).nonzero().squeeze(1)
        self.done = torch.zeros(len(keep), dtype=torch.bool, device=keep.device)
        return keep

    def finish(self, rows: _Rows, model) -> None:
        """Inputs never flipped end at their last iterate, checked or not: whether it is
        misclassified changes no returned example, only ``found``, so that forward pass
        runs when ``found`` is first read (on the same rows as in the loop)."""
        self._copy(rows, ~self.done)
        if bool((~self.done).any()):
            self._last = (model, rows.xa, rows.y, rows.idx, self.done)

    @property
    def found(self) -> torch.Tensor:
        if self._last is not None:
            model, xa, y, idx, done = self._last
            self._last = None
            was = model.training
            model.eval()
            try:
                with torch.no_grad():
                    flipped = model(xa).argmax(1) != y
            finally:
                model.train(was)
            self._mark(idx, flipped & ~done)
            done |= flipped
        return self._found

    def _copy(self, rows: _Rows, which: torch.Tensor) -> None:
        if rows.idx is None:
            _keep(self.best, rows.xa, which)
        else:
            r = which.nonzero().squeeze(1)
            if len(r):
                self.best.index_copy_(0, rows.idx[r], rows.xa.index_select(0, r))


@register
class PGD(Attack):
    """Projected gradient ascent on the loss within the ε-ball (L∞: signed steps; L2:
    normalised gradient steps), random start in the ball, ``steps`` iterations of
    ``step_size`` (default 2.5·ε/steps, Madry's rule). Returns, per input, the first
    iterate that is misclassified (any step, the start included), else the last iterate.
    ``early_stop``: an input leaves the batch once flipped: the output is identical, only
    the work (``input_iterations``) and the time shrink. ``eps`` may be a tensor (N,) of
    per-input budgets (the bisection of ``MinimalPerturbation`` uses that).

    Hooks for a variant (``momentum.py`` is one): ``ascend`` (the update rule),
    ``init_state`` (per-input state it carries), ``step_for`` (the default step size) and
    ``start`` (the starting point)."""

    name = "pgd"
    norms = NORMS
    description = "projected gradient descent, random start, first adversarial kept " \
                  "(Madry et al. 2018)"

    def __init__(self, eps: float | torch.Tensor, norm: str = "linf", steps: int = 40,
                 step_size: float | None = None, random_start: bool = True, loss: str = "ce",
                 bounds: Bounds = (0.0, 1.0), seed: int = 0, early_stop: bool = False):
        per_input = isinstance(eps, torch.Tensor)
        check_attack(largest(eps), norm, loss, None if per_input else bounds)
        if not isinstance(steps, int) or steps < 1:
            raise UserError(f"{type(self).__name__} steps must be an integer ≥ 1, got {steps!r}")
        if step_size is not None and not step_size > 0:
            raise UserError(f"{type(self).__name__} step_size must be > 0, got {step_size}")
        self.eps, self.norm, self.steps, self.step_size = eps, norm, steps, step_size
        self.random_start, self.loss, self.bounds = random_start, loss, bounds
        self.seed, self.early_stop = seed, early_stop

    @classmethod
    def configure(cls, eps: float, norm: str, settings: AttackSettings) -> PGD:
        """Reads steps, step_size, loss, bounds, seed and early_stop."""
        s = settings
        return cls(eps, norm, s.steps, s.step_size, loss=s.loss, bounds=s.bounds, seed=s.seed,
                   early_stop=s.early_stop)

    # ------------------------------------------------------------------ the hooks
    def step_for(self, eps: torch.Tensor):
        """The step size: ``step_size``, or Madry's 2.5·ε/steps per input (eps (N, 1, ...))."""
        step = 2.5 * eps / self.steps if self.step_size is None else self.step_size
        return step

    def start(self, x: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """The first iterate: a uniform point of the L∞ ball, or a random direction at a
        uniform fraction of the L2 radius (torchattacks' L2 start), clipped; x without a
        random start. Never the caller's tensor (the loop updates it in place)."""
        if not self.random_start:
            return x.clone()
        g = torch.Generator(device=x.device).manual_seed(self.seed)
        if self.norm == "linf":  # in place: the same values as (u·2 − 1)·ε, one buffer
            d = torch.rand(x.shape, generator=g, device=x.device).mul_(2).sub_(1).mul_(eps)
        else:
            d = unit_l2(torch.randn(x.shape, generator=g, device=x.device))
            d.mul_(eps).mul_(view(torch.rand(len(x), generator=g, device=x.device), x))
        d.add_(x)
        return d if self.bounds is None else d.clamp_(self.bounds[0], self.bounds[1])

    def init_state(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-input tensors (N, ...) the update rule carries from step to step; the loop
        gathers their rows with the batch's. PGD carries none."""
        return {}

    def ascend(self, xa: torch.Tensor, g: torch.Tensor, step, state: dict) -> None:
        """The update rule: move the iterates xa (n, ...) in place along the loss's input
        gradient g (n, ...; it may be overwritten) by ``step`` (a number or (n, 1, ...));
        the projection follows. PGD: steepest ascent in the norm, sign(g) in L∞ and
        g/‖g‖₂ in L2."""
        if self.norm == "linf":
            if isinstance(step, torch.Tensor):
                xa.addcmul_(step, g.sign_())
            else:
                xa.add_(g.sign_(), alpha=step)
        else:
            xa.addcmul_(g, step / view(norms(g, "l2").clamp_min(1e-12), xa))

    # ------------------------------------------------------------------ the loop
    def forward(self, model, x, y):
        eps = self.eps if isinstance(self.eps, torch.Tensor) else torch.full(
            (len(x),), float(self.eps), device=x.device)
        if self.norm == "l2" and not isinstance(self.eps, torch.Tensor):
            check_l2_range(float(self.eps), x, self.bounds)
        eps = view(eps.to(x.device, x.dtype), x)
        step = self.step_for(eps)
        self.iterations = 0
        if not bool((eps > 0).any()):  # an empty ball: nothing to search, x is the answer
            self._first = _FirstAdversarial(x)
            with torch.no_grad():
                self._first.record(_Rows(x, x, y, None, None, eps, 0.0, {}),
                                   model(x).argmax(1) != y)
            return self._first.best
        x_adv = self.start(x, eps)
        lo = hi = None
        if self.norm == "linf":  # the ε-box ∩ the data bounds, once: one clamp per step
            lo, hi = x - eps, x + eps
            if self.bounds is not None:
                lo, hi = lo.clamp_(min=self.bounds[0]), hi.clamp_(max=self.bounds[1])
        best = self._first = _FirstAdversarial(x_adv)
        rows = _Rows(x_adv, x, y, lo, hi, eps, step, self.init_state(x))
        grad = gradient_fn(model, self.loss, len(x), x)
        diff = torch.empty_like(x) if self.norm == "l2" else None
        work = 0
        for _ in range(self.steps):
            flipped, g = grad(rows.xa, rows.y)
            best.record(rows, flipped)
            if self.early_stop:
                left = best.left()
                if left == 0:
                    break
                if left <= 0.875 * len(rows):  # gather the rows still in play
                    keep = best.gather()
                    rows.keep(keep)
                    g = g.index_select(0, keep)
            work += len(rows)
            self.ascend(rows.xa, g, rows.step, rows.state)
            self._project(rows, diff)
            self.iterations += 1
        best.finish(rows, model)
        self._work = work
        return best.best

    @property
    def found(self) -> torch.Tensor:
        """(N,) bool: misclassified at some iterate of the last call, the start included.
        The last iterate is checked when this is first read (a forward pass that no
        returned example needs, so a call that does not read it skips it)."""
        return self._first.found

    @property
    def steps_to_success(self) -> torch.Tensor:
        """(N,) int64: per input, the steps taken before its first misclassified iterate in
        the last call (0: the random start already was; -1: none was). A weaker update
        (a smaller step, a worse direction) needs more of them even where it still
        succeeds in the end."""
        _ = self._first.found  # the last iterate is checked first
        return self._first.at

    def _project(self, rows: _Rows, diff: torch.Tensor | None) -> None:
        """The iterates back onto the ε-ball ∩ the bounds, in place: one clamp in L∞; in
        L2, x + (xa − x)·min(1, ε/‖xa − x‖₂), then the bounds."""
        xa = rows.xa
        if self.norm == "linf":
            xa.clamp_(rows.lo, rows.hi)
            return
        d = torch.sub(xa, rows.x, out=diff[:len(xa)])
        torch.addcmul(rows.x, d, torch.clamp(
            rows.eps / view(norms(d, "l2"), xa).clamp_min(1e-12), max=1.0), out=xa)
        if self.bounds is not None:
            xa.clamp_(self.bounds[0], self.bounds[1])
