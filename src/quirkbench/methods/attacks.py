"""Adversarial attacks, each a small object configured once and called on (model, x, y).

* ``FGSM``                 one signed-gradient step (Goodfellow et al. 2015).
* ``PGD``                  projected gradient descent in L∞ or L2 with random start (Madry et
                           al. 2018); keeps, per input, the first adversarial found at ANY step,
                           so an input counts as flipped if any iterate flipped it.
* ``MinimalPerturbation``  per input, the smallest successful distortion: a batched bisection
                           over a per-input ε, PGD at every probe (Szegedy's "minimum
                           distortion", measured from above).
* ``RandomNoise``          the control: random sign (L∞) or random direction (L2) of the same ε.
* ``fool_from_noise``      gradient ascent from noise to a confident target class (Nguyen 2015).

Shapes: x (N, *input_shape) on the model's device, y (N,) int64 class indices; the returned
x_adv has x's shape and lies inside ``bounds`` (``None``: unbounded, e.g. standardised
mnist1d) and inside the ε-ball around x. Distances are raw norms of x_adv − x unless named
``szegedy``: √(Σ(x′−x)²/n), n = inputs' feature count. Every attack counts its gradient
iterations of the last call in ``iterations`` (``input_iterations`` = inputs × iterations,
the unit of attack throughput).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..engine.train import predict
from ..errors import UserError, choices

NORMS = ("linf", "l2")
LOSSES = ("ce", "margin")
Bounds = tuple[float, float] | None


def _check(eps: float, norm: str, loss: str, bounds: Bounds) -> None:
    if norm not in NORMS:
        raise UserError(f"unknown norm {norm!r}; valid: {choices(NORMS)}")
    if loss not in LOSSES:
        raise UserError(f"unknown attack loss {loss!r}; valid: {choices(LOSSES)}")
    if not isinstance(eps, (int, float)) or isinstance(eps, bool) or not math.isfinite(eps):
        raise UserError(f"eps must be a finite number, got {eps!r}")
    if eps < 0:
        raise UserError(f"eps must be ≥ 0, got {eps}")
    if bounds is not None:
        lo, hi = bounds
        if not hi > lo:
            raise UserError(f"bounds must be (low, high) with low < high, got {bounds}")
        if norm == "linf" and eps > hi - lo:
            raise UserError(f"L∞ eps {eps} exceeds the data range {hi - lo:g} "
                            f"(bounds {lo:g}..{hi:g}); valid: 0 ≤ eps ≤ {hi - lo:g}")


def _check_l2_range(eps: float, x: torch.Tensor, bounds: Bounds) -> None:
    """An L2 ε above the diagonal of the input box cannot mean anything: a user error."""
    if bounds is None:
        return
    diag = (bounds[1] - bounds[0]) * math.sqrt(x[0].numel())
    if eps > diag:
        raise UserError(f"L2 eps {eps} exceeds the data range: the largest L2 distance between "
                        f"inputs is {diag:.4g}; valid: 0 ≤ eps ≤ {diag:.4g}")


def attack_loss(logits: torch.Tensor, y: torch.Tensor, kind: str = "ce") -> torch.Tensor:
    """Summed loss the attacker ascends: cross-entropy, or the logit margin
    max_{j≠y} z_j − z_y (no softmax, so a saturated softmax cannot zero its gradient)."""
    if kind == "ce":
        return F.cross_entropy(logits, y, reduction="sum")
    true = logits.gather(1, y[:, None])[:, 0]
    other = logits.masked_fill(F.one_hot(y, logits.shape[1]).bool(), float("-inf")).amax(1)
    return (other - true).sum()


def _view(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """(N,) → (N, 1, 1, ...) to broadcast against x."""
    return t.reshape(-1, *([1] * (x.dim() - 1)))


def _norms(d: torch.Tensor, norm: str) -> torch.Tensor:
    """Per-input norm of d (N, ...) → (N,)."""
    flat = d.flatten(1)
    return flat.abs().amax(1) if norm == "linf" else flat.norm(dim=1)


def szegedy_distortion(x_adv: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """√(Σ(x′−x)²/n) per input (N,): Szegedy et al.'s unit, an RMS pixel change."""
    return (x_adv - x).flatten(1).pow(2).mean(1).sqrt()


def _clip(x: torch.Tensor, bounds: Bounds) -> torch.Tensor:
    return x if bounds is None else x.clamp(bounds[0], bounds[1])


def _project(x_adv: torch.Tensor, x: torch.Tensor, eps: torch.Tensor, norm: str) -> torch.Tensor:
    """Nearest point of the ε-ball around x (eps broadcast as (N, 1, ...))."""
    d = x_adv - x
    if norm == "linf":
        d = torch.maximum(torch.minimum(d, eps), -eps)
    else:
        n = _view(_norms(d, "l2"), x)
        d = d * torch.clamp(eps / n.clamp_min(1e-12), max=1.0)
    return x + d


def _keep(dst: torch.Tensor, src: torch.Tensor, rows: torch.Tensor) -> None:
    """dst[rows] = src[rows] in place, rows (N,) bool. A CPU gathers the few rows (a
    broadcast ``torch.where`` over the whole batch costs more than the attack step's
    elementwise work); a GPU uses ``torch.where``, which needs no host sync."""
    if dst.device.type == "cpu":
        idx = rows.nonzero().squeeze(1)
        if len(idx):
            dst.index_copy_(0, idx, src.index_select(0, idx))
    else:
        dst.copy_(torch.where(_view(rows, dst), src, dst))


class _MLPGradient:
    """(flipped, ∇ₓ CE) for a plain ReLU MLP (``engine.models.MLP``: Flatten, then Linear and
    ReLU alternating, a Linear last), derived by hand instead of by autograd: the same ATen
    ops autograd would run (addmm forward, log-softmax and its backward at the logits,
    ``mm`` by each weight, ``threshold_backward`` at each ReLU), so the gradient is
    bit-identical, but into buffers allocated once per attack (rows ``[:n]`` of them as the
    batch shrinks), with no graph, no weight gradient and no per-step allocation of the
    (N, features) tensors. ``match`` returns None for anything else (autograd is used)."""

    def __init__(self, layers: list[nn.Linear], n: int, like: torch.Tensor):
        self.layers = layers
        kw = dict(device=like.device, dtype=like.dtype)
        self.acts = [torch.empty(n, lin.out_features, **kw) for lin in layers]
        self.grads = [torch.empty(n, lin.in_features, **kw) for lin in layers]
        classes = layers[-1].out_features
        self.onehot = torch.empty(n, classes, **kw)  # −onehot(y): ∂(sum CE)/∂ log_softmax
        self.logp = torch.empty(n, classes, **kw)
        self.dz = torch.empty(n, classes, **kw)

    @staticmethod
    def match(model: nn.Module, loss: str) -> list[nn.Linear] | None:
        from ..engine.models import MLP

        if (loss != "ce" or type(model) is not MLP or type(model).forward is not MLP.forward
                or any(p.requires_grad for p in model.parameters())):
            return None
        mods = list(model.net)
        if not mods or type(mods[0]) is not nn.Flatten or mods[0].start_dim != 1:
            return None
        layers = mods[1::2]
        if (any(type(m) is not nn.Linear for m in layers)
                or any(type(m) is not nn.ReLU for m in mods[2::2])
                or type(mods[-1]) is not nn.Linear
                or any(m._forward_hooks or m._forward_pre_hooks or m._backward_hooks
                       for m in [model, *mods])):
            return None
        return layers

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n, last = len(x), len(self.layers) - 1
        h = x.reshape(n, -1)
        for i, lin in enumerate(self.layers):
            out = self.acts[i][:n]
            if lin.bias is None:
                torch.mm(h, lin.weight.t(), out=out)
            else:
                torch.addmm(lin.bias, h, lin.weight.t(), out=out)
            if i < last:
                out.clamp_min_(0)
            h = out
        flipped = h.argmax(1) != y
        logp, g = self.logp[:n], self.dz[:n]
        torch.ops.aten._log_softmax.out(h, 1, False, out=logp)
        onehot = self.onehot[:n].zero_().scatter_(1, y[:, None], -1.0)
        torch.ops.aten._log_softmax_backward_data.out(onehot, logp, 1, h.dtype, out=g)
        for i in range(last, -1, -1):
            out = self.grads[i][:n]
            torch.mm(g, self.layers[i].weight, out=out)
            if i:
                torch.ops.aten.threshold_backward.grad_input(out, self.acts[i - 1][:n], 0,
                                                             grad_input=out)
            g = out
        return flipped, g.view(x.shape)


class Attack:
    """Base: ``__call__`` switches the model to eval (and back), enables grad, and runs
    ``forward``. Subclasses hold hyperparameters and put the algorithm in ``forward``."""

    iterations: int = 0  # gradient iterations in the last call
    input_iterations: int = 0  # inputs × iterations in the last call (throughput unit)

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        was = model.training
        model.eval()
        # parameters frozen for the call: no weight-gradient work, no weights kept for a
        # backward that only needs ∇ₓ (restored after, as the caller had them)
        trainable = [p for p in model.parameters() if p.requires_grad]
        for p in trainable:
            p.requires_grad_(False)
        self._work = None
        try:
            with torch.enable_grad():
                out = self.forward(model, x.detach(), y)
        finally:
            model.train(was)
            for p in trainable:
                p.requires_grad_(True)
        self.input_iterations = self.iterations * len(x) if self._work is None else self._work
        return out.detach()

    def forward(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _grad(self, model, x_adv, y, loss: str):
        x_adv = x_adv.detach().requires_grad_(True)
        logits = model(x_adv)
        (g,) = torch.autograd.grad(attack_loss(logits, y, loss), x_adv)
        return logits.detach(), g


class FGSM(Attack):
    """x + ε·sign(∇ₓ loss), clipped to bounds. One gradient, no random start."""

    def __init__(self, eps: float, loss: str = "ce", bounds: Bounds = (0.0, 1.0)):
        _check(eps, "linf", loss, bounds)
        self.eps, self.loss, self.bounds = float(eps), loss, bounds

    def forward(self, model, x, y):
        self.iterations = 1
        if self.eps == 0:
            return x.clone()
        _, g = self._grad(model, x, y, self.loss)
        return _clip(x + self.eps * g.sign(), self.bounds)


class PGD(Attack):
    """Projected gradient ascent on the loss within the ε-ball (L∞: signed steps; L2:
    normalised gradient steps), random start in the ball, ``steps`` iterations of
    ``step_size`` (default 2.5·ε/steps, Madry's rule). Returns, per input, the first
    iterate that is misclassified (any step, the start included), else the last iterate.
    ``early_stop``: an input leaves the batch once flipped (the rows still in play are
    gathered into a smaller batch as others leave, and the loop ends when none is left):
    the output is identical, only the work (``input_iterations``) and the time shrink.
    On a plain ReLU MLP with the CE loss the input gradient is derived by hand
    (``_MLPGradient``, bit-identical to autograd's); any other model uses autograd, with
    the parameters frozen for the call. ``eps`` may be a tensor (N,) of per-input
    budgets (used by the bisection of ``MinimalPerturbation``)."""

    def __init__(self, eps: float, norm: str = "linf", steps: int = 40,
                 step_size: float | None = None, random_start: bool = True, loss: str = "ce",
                 bounds: Bounds = (0.0, 1.0), seed: int = 0, early_stop: bool = False):
        if isinstance(eps, torch.Tensor):
            _check(float(eps.max()) if eps.numel() else 0.0, norm, loss, None)
        else:
            _check(eps, norm, loss, bounds)
        if not isinstance(steps, int) or steps < 1:
            raise UserError(f"PGD steps must be an integer ≥ 1, got {steps!r}")
        if step_size is not None and not step_size > 0:
            raise UserError(f"PGD step_size must be > 0, got {step_size}")
        self.eps, self.norm, self.steps, self.step_size = eps, norm, steps, step_size
        self.random_start, self.loss, self.bounds = random_start, loss, bounds
        self.seed, self.early_stop = seed, early_stop

    def _start(self, x, eps):
        if not self.random_start:
            return x.clone()
        g = torch.Generator(device=x.device).manual_seed(self.seed)
        if self.norm == "linf":
            d = (torch.rand(x.shape, generator=g, device=x.device) * 2 - 1) * eps
        else:  # a random direction, a uniform fraction of the radius (torchattacks' L2 start)
            d = torch.randn(x.shape, generator=g, device=x.device)
            d = d / _view(_norms(d, "l2").clamp_min(1e-12), x)
            d = d * eps * _view(torch.rand(len(x), generator=g, device=x.device), x)
        return _clip(x + d, self.bounds)

    def forward(self, model, x, y):
        eps = self.eps if isinstance(self.eps, torch.Tensor) else torch.full(
            (len(x),), float(self.eps), device=x.device)
        if self.norm == "l2" and not isinstance(self.eps, torch.Tensor):
            _check_l2_range(float(self.eps), x, self.bounds)
        eps = _view(eps.to(x.device, x.dtype), x)
        step = 2.5 * eps / self.steps if self.step_size is None else self.step_size
        self.iterations = 0
        if not bool((eps > 0).any()):  # an empty ball: nothing to search, x is the answer
            with torch.no_grad():
                self.found = model(x).argmax(1) != y
            return x.clone()
        x_adv = self._start(x, eps)
        lo = hi = None
        if self.norm == "linf":  # the ε-box ∩ the data bounds, once: one clamp per step
            lo, hi = x - eps, x + eps
            if self.bounds is not None:
                lo, hi = lo.clamp_(min=self.bounds[0]), hi.clamp_(max=self.bounds[1])
        best = x_adv.clone()
        found = torch.zeros(len(x), dtype=torch.bool, device=x.device)
        layers = _MLPGradient.match(model, self.loss)
        fast = _MLPGradient(layers, len(x), x) if layers else None
        diff = torch.empty_like(x) if self.norm == "l2" else None
        # the rows still attacked: all at first; with early_stop, flipped rows leave the
        # batch (gathered into a smaller one once enough have left), so no work is spent
        # on inputs whose answer is already kept
        idx, xa, x0, ya, lo_a, hi_a, eps_a, step_a = None, x_adv, x, y, lo, hi, eps, step
        done = found  # flipped, per active row
        work = 0
        for t in range(self.steps + 1):
            last = t == self.steps
            if last:  # the final iterate only needs checking, not a gradient
                with torch.no_grad():
                    flipped = model(xa).argmax(1) != ya
            elif fast is not None:
                flipped, g = fast(xa, ya)
            else:
                logits, g = self._grad(model, xa, ya, self.loss)
                flipped = logits.argmax(1) != ya
            new = flipped & ~done
            if idx is None:
                _keep(best, xa, new)
                found |= flipped
            else:
                r = new.nonzero().squeeze(1)
                if len(r):
                    best.index_copy_(0, idx[r], xa.index_select(0, r))
                    found.index_fill_(0, idx[r], True)
                done |= flipped
            if last:
                break
            if self.early_stop:
                left = int((~done).sum())
                if left == 0:
                    break
                if left <= 0.875 * len(xa):  # compact: gather the rows still in play
                    keep = (~done).nonzero().squeeze(1)
                    idx = keep if idx is None else idx[keep]
                    xa, x0, ya = xa.index_select(0, keep), x0.index_select(0, keep), ya[keep]
                    if lo_a is not None:
                        lo_a, hi_a = lo_a.index_select(0, keep), hi_a.index_select(0, keep)
                    if eps_a.shape[0] > 1:
                        eps_a = eps_a.index_select(0, keep)
                    if isinstance(step_a, torch.Tensor) and step_a.shape[0] > 1:
                        step_a = step_a.index_select(0, keep)
                    done = torch.zeros(left, dtype=torch.bool, device=x.device)
                    g = g.index_select(0, keep)
            work += len(xa)
            if self.norm == "linf":  # in place: the graph of this step is already freed
                if isinstance(step_a, torch.Tensor):
                    xa.addcmul_(step_a, g.sign_())
                else:
                    xa.add_(g.sign_(), alpha=step_a)
                xa.clamp_(lo_a, hi_a)
            else:  # x + (step/‖g‖)·g, projected onto the ε-ball, clipped: one pass each
                xa.addcmul_(g, step_a / _view(_norms(g, "l2").clamp_min(1e-12), xa))
                d = torch.sub(xa, x0, out=diff[:len(xa)])
                torch.addcmul(x0, d, torch.clamp(
                    eps_a / _view(_norms(d, "l2"), xa).clamp_min(1e-12), max=1.0), out=xa)
                if self.bounds is not None:
                    xa.clamp_(self.bounds[0], self.bounds[1])
            self.iterations += 1
        rest = ~done
        if idx is None:
            _keep(best, xa, rest)
        else:
            r = rest.nonzero().squeeze(1)
            if len(r):
                best.index_copy_(0, idx[r], xa.index_select(0, r))
        self._work = work
        self.found = found  # (N,) bool: misclassified at some iterate
        return best


class MinimalPerturbation(Attack):
    """Per-input smallest successful distortion in ``norm``, by bisection over a per-input ε
    in [0, eps_max] with PGD (``steps`` iterations) at every probe; ``search_steps``
    halvings give a resolution of eps_max / 2**search_steps. Returns the successful x_adv
    of smallest distortion (x itself where none was found); ``distances`` (N,) holds that
    distortion as a raw norm (``inf`` where PGD failed even at eps_max). The measured
    distortion is an upper bound on the true minimum (PGD is a heuristic)."""

    def __init__(self, norm: str = "l2", eps_max: float | None = None, steps: int = 20,
                 search_steps: int = 10, loss: str = "ce", bounds: Bounds = (0.0, 1.0),
                 seed: int = 0):
        _check(0.0 if eps_max is None else eps_max, norm, loss, bounds)
        if eps_max is None and bounds is None:
            raise UserError("MinimalPerturbation needs eps_max when the data are unbounded")
        if search_steps < 1 or steps < 1:
            raise UserError("MinimalPerturbation steps and search_steps must be ≥ 1")
        self.norm, self.eps_max, self.steps, self.search_steps = norm, eps_max, steps, search_steps
        self.loss, self.bounds, self.seed = loss, bounds, seed

    def forward(self, model, x, y):
        if self.eps_max is not None:
            hi_eps = float(self.eps_max)
        else:  # the whole input box: every L∞ / L2 distance between inputs fits
            span = self.bounds[1] - self.bounds[0]
            hi_eps = span if self.norm == "linf" else span * math.sqrt(x[0].numel())
        if self.norm == "l2":
            _check_l2_range(hi_eps, x, self.bounds)
        lo = torch.zeros(len(x), device=x.device)
        hi = torch.full((len(x),), hi_eps, device=x.device)
        best = x.clone()
        dist = torch.full((len(x),), math.inf, device=x.device)
        self.iterations = 0
        for k in range(self.search_steps + 1):
            mid = hi if k == 0 else (lo + hi) / 2  # probe eps_max first: who can be flipped at all
            pgd = PGD(mid, self.norm, self.steps, loss=self.loss, bounds=self.bounds,
                      seed=self.seed + k, early_stop=True)
            x_adv = pgd.forward(model, x, y)
            self.iterations += pgd.iterations
            d = _norms(x_adv - x, self.norm)
            better = pgd.found & (d < dist)
            best = torch.where(_view(better, x), x_adv, best)
            dist = torch.where(better, d, dist)
            hi = torch.where(pgd.found, torch.minimum(mid, d), hi)
            lo = torch.minimum(torch.where(pgd.found, lo, mid), hi)  # PGD is noisy: keep lo ≤ hi
        self.distances = dist
        return best


class RandomNoise(Attack):
    """The control: x + ε·(random sign) for L∞, x + ε·(random unit direction) for L2,
    clipped to bounds. Same budget as the attack it is compared with, no gradient."""

    def __init__(self, eps: float, norm: str = "linf", bounds: Bounds = (0.0, 1.0),
                 seed: int = 0):
        _check(eps, norm, "ce", bounds)
        self.eps, self.norm, self.bounds, self.seed = float(eps), norm, bounds, seed

    def forward(self, model, x, y):
        self.iterations = 0
        if self.norm == "l2":
            _check_l2_range(self.eps, x, self.bounds)
        g = torch.Generator(device=x.device).manual_seed(self.seed)
        if self.norm == "linf":
            d = torch.randint(0, 2, x.shape, generator=g, device=x.device).to(x.dtype) * 2 - 1
        else:
            d = torch.randn(x.shape, generator=g, device=x.device)
            d = d / _view(_norms(d, "l2").clamp_min(1e-12), x)
        return _clip(x + self.eps * d, self.bounds)


# --------------------------------------------------------------------------- measures

def success_rate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, x_adv: torch.Tensor) -> float:
    """% of the inputs that ``model`` classifies correctly on x whose prediction on x_adv is
    wrong (0 when none is classified correctly)."""
    correct = predict(model, x).argmax(1) == y
    if not bool(correct.any()):
        return 0.0
    flipped = predict(model, x_adv).argmax(1) != y
    return 100.0 * (flipped & correct).sum().item() / correct.sum().item()


def fool_from_noise(model: nn.Module, x0: torch.Tensor, targets: torch.Tensor, steps: int = 100,
                    step_size: float = 0.01, confidence: float = 0.99,
                    bounds: Bounds = (0.0, 1.0)) -> tuple[torch.Tensor, torch.Tensor]:
    """Signed gradient ascent on log p(target | x) from noise inputs x0 (N, ...).

    Returns (x (N, ...), steps_needed (N,) int64): the step at which each input first
    reached ``confidence`` for its target (0 = already at the start; -1 = never within
    ``steps``). Inputs stop moving once they reach the confidence.
    """
    was = model.training
    model.eval()
    x = x0.detach().clone()
    need = torch.full((len(x),), -1, dtype=torch.long, device=x.device)
    try:
        for t in range(steps + 1):
            with torch.enable_grad():
                xg = x.requires_grad_(True)
                logp = F.log_softmax(model(xg), 1).gather(1, targets[:, None])[:, 0]
                reached = (logp.detach().exp() >= confidence) & (need < 0)
                need[reached] = t
                if t == steps or bool((need >= 0).all()):
                    break
                (g,) = torch.autograd.grad(logp.sum(), xg)
            active = _view((need < 0).to(x.dtype), x)
            x = _clip(x.detach() + step_size * g.sign() * active, bounds)
    finally:
        model.train(was)
    return x.detach(), need
