"""What every attack shares: the base class, the registry, the settings a task gives, the
checks of ε/norm/loss/bounds, the per-input norms and the success measure.

An attack is a small object (torchattacks' shape): the constructor holds its
hyperparameters, ``forward(model, x, y)`` its algorithm, and ``Attack.__call__`` switches the
model to eval mode, freezes its parameters, runs ``forward`` with gradients on and restores
both. Shapes: x (N, *input_shape) on the model's device, y (N,) int64 class indices; the
returned x_adv has x's shape and lies inside ``bounds`` (``None``: unbounded, e.g.
standardised mnist1d) and inside the ε-ball around x.

Attacks register by name in ``REGISTRY`` (``@register`` on the class); other packages add
theirs through the entry-point group ``quirkbench.attacks``. A task never names an attack
class: it looks a name up (``get`` / ``resolve``) and builds it with
``cls.configure(eps, norm, AttackSettings(...))``.
"""

from __future__ import annotations

import importlib
import math
import pkgutil
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from ...engine.train import predict
from ...errors import UserError, choices, did_you_mean
from ...registry import Registry

NORMS = ("linf", "l2")
LOSSES = ("ce", "margin")
Bounds = tuple[float, float] | None


# --------------------------------------------------------------------------- checks

def check_attack(eps: float, norm: str, loss: str, bounds: Bounds) -> None:
    """ε, norm, loss and bounds an attack may be built with; a ``UserError`` otherwise."""
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


def check_l2_range(eps: float, x: torch.Tensor, bounds: Bounds) -> None:
    """An L2 ε above the diagonal of the input box cannot mean anything: a user error."""
    if bounds is None:
        return
    diag = (bounds[1] - bounds[0]) * math.sqrt(x[0].numel())
    if eps > diag:
        raise UserError(f"L2 eps {eps} exceeds the data range: the largest L2 distance between "
                        f"inputs is {diag:.4g}; valid: 0 ≤ eps ≤ {diag:.4g}")


def largest(eps: float | torch.Tensor) -> float:
    """The largest of a budget given as a number or as per-input budgets (N,)."""
    if isinstance(eps, torch.Tensor):
        return float(eps.max()) if eps.numel() else 0.0
    return eps


# --------------------------------------------------------------------------- tensors

def view(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """(N,) → (N, 1, 1, ...) to broadcast against x."""
    return t.reshape(-1, *([1] * (x.dim() - 1)))


def norms(d: torch.Tensor, norm: str) -> torch.Tensor:
    """Per-input norm of d (N, ...) → (N,)."""
    flat = d.flatten(1)
    return flat.abs().amax(1) if norm == "linf" else flat.norm(dim=1)


def clip(x: torch.Tensor, bounds: Bounds) -> torch.Tensor:
    return x if bounds is None else x.clamp(bounds[0], bounds[1])


def unit_l2(d: torch.Tensor) -> torch.Tensor:
    """d (N, ...) scaled to unit L2 norm per input."""
    return d / view(norms(d, "l2").clamp_min(1e-12), d)


# --------------------------------------------------------------------------- settings

@dataclass(frozen=True)
class AttackSettings:
    """What a task sets once for whichever registered attack it runs; each attack's
    ``configure`` reads the fields it uses (and says which in its docstring)."""

    steps: int = 40  # gradient iterations of an iterative attack (Madry's MNIST budget)
    step_size: float | None = None  # per iteration, input units; None: the attack's own rule
    loss: str = "ce"  # ce or margin (the logit margin survives a saturated softmax)
    bounds: Bounds = (0.0, 1.0)  # the data's range; None: unbounded
    seed: int = 0  # random starts and noise draws
    early_stop: bool = False  # an input leaves the batch once flipped (same output, less work)
    search_steps: int = 10  # bisection halvings of a minimal-distortion attack


# --------------------------------------------------------------------------- the base class

class Attack:
    """Base: ``__call__`` switches the model to eval (and back), freezes its parameters,
    enables grad, and runs ``forward``. Subclasses hold hyperparameters and put the algorithm
    in ``forward``; a registered one also sets ``name``, ``norms`` and ``description`` and
    says how it is built from ``AttackSettings`` (``configure``)."""

    name: ClassVar[str] = ""  # the registry name: lower case, words joined by "-"
    norms: ClassVar[tuple[str, ...]] = ()  # the threat models it supports, among NORMS
    description: ClassVar[str] = ""  # one line for ``quirkbench list attacks``

    iterations: int = 0  # gradient iterations in the last call
    input_iterations: int = 0  # inputs × iterations actually done in the last call

    @classmethod
    def configure(cls, eps: float, norm: str, settings: AttackSettings) -> Attack:
        """The attack at budget ``eps`` in ``norm`` with a task's ``settings``."""
        raise NotImplementedError(f"{cls.__name__} does not say how it is configured")

    @classmethod
    def label(cls, norm: str) -> str:
        """Its name in one norm: ``fgsm`` (one norm), ``pgd-linf`` (several)."""
        return cls.name if len(cls.norms) == 1 else f"{cls.name}-{norm}"

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


# --------------------------------------------------------------------------- the registry

def _import_builtin_attacks() -> None:
    """Every module of this package registers its attacks when imported."""
    pkg = importlib.import_module(__package__)
    for mod in pkgutil.iter_modules(pkg.__path__):
        if not mod.name.startswith("_"):
            importlib.import_module(f"{__package__}.{mod.name}")


REGISTRY: Registry[type[Attack]] = Registry("attack", "quirkbench.attacks",
                                            builtins=_import_builtin_attacks)
register = REGISTRY.register


def get(name: str) -> type[Attack]:
    """The attack class registered as ``name``; an unknown name is a one-line ``UserError``."""
    return REGISTRY.lookup(name)


def labels() -> list[str]:
    """Every valid attack reference: each name, and each name in each of its norms."""
    out = []
    for cls in REGISTRY.values():
        out += [cls.name] + ([f"{cls.name}-{n}" for n in cls.norms] if len(cls.norms) > 1
                             else [])
    return out


def resolve(ref: str) -> tuple[type[Attack], tuple[str, ...]]:
    """An attack reference → (class, norms): ``pgd`` is PGD in every norm it supports,
    ``pgd-l2`` PGD in L2 only. Anything else is a ``UserError`` listing the valid ones."""
    if ref in REGISTRY:
        cls = REGISTRY[ref]
        return cls, cls.norms
    name, _, norm = ref.rpartition("-")
    if name in REGISTRY and norm in REGISTRY[name].norms and len(REGISTRY[name].norms) > 1:
        return REGISTRY[name], (norm,)
    raise UserError(f"unknown attack {ref!r}{did_you_mean(ref, labels())}; valid: "
                    f"{choices(labels())}")


def make(name: str, eps: float, norm: str, settings: AttackSettings) -> Attack:
    """The registered attack ``name`` at ``eps`` in ``norm``, configured by ``settings``."""
    cls = get(name)
    if norm not in cls.norms:
        raise UserError(f"attack {name!r} has no {norm} version; its norms: "
                        f"{choices(cls.norms)}")
    return cls.configure(eps, norm, settings)


# --------------------------------------------------------------------------- measures

def success_rate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, x_adv: torch.Tensor) -> float:
    """% of the inputs that ``model`` classifies correctly on x whose prediction on x_adv is
    wrong (0 when none is classified correctly)."""
    correct = predict(model, x).argmax(1) == y
    if not bool(correct.any()):
        return 0.0
    flipped = predict(model, x_adv).argmax(1) != y
    return 100.0 * (flipped & correct).sum().item() / correct.sum().item()


def szegedy_distortion(x_adv: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """√(Σ(x′−x)²/n) per input (N,): Szegedy et al.'s unit, an RMS pixel change."""
    return (x_adv - x).flatten(1).pow(2).mean(1).sqrt()
