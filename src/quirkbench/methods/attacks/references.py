"""Other libraries' versions of the registered attacks (torchattacks, Foolbox, IBM's ART),
built with our settings: the yardsticks of attack_agreement (success) and throughput (speed).

A reference is a builder ``(model, x, y, *, eps, norm, steps, step_size, bounds) -> run``
where ``run()`` returns the library's x_adv (N, ...), or None where that library's version
cannot run with these settings (another norm, other bounds). ``@reference(attack, library)``
registers one beside the attack it mirrors (``momentum.py`` registers torchattacks' MI-FGSM).
Builders import their library when called; peers that draw a random start use torch's
global RNG, so a caller that wants them repeatable seeds it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ... import peers
from .base import REGISTRY

LIBRARIES = ("torchattacks", "foolbox", "art")
EXTRA = {"torchattacks": "attacks", "foolbox": "attacks", "art": "art"}  # pip extras
MODULE = {"torchattacks": "torchattacks", "foolbox": "foolbox", "art": "art"}

Run = Callable[[], torch.Tensor]
Builder = Callable[..., Run | None]
_BUILDERS: dict[tuple[str, str], Builder] = {}


def reference(attack: str, library: str) -> Callable[[Builder], Builder]:
    """Decorator: the builder is ``library``'s version of the registered ``attack``."""
    def add(build: Builder) -> Builder:
        _BUILDERS[(attack, library)] = build
        return build

    return add


def installed(library: str) -> bool:
    """Whether ``library`` imports here; any failure to import it (not installed, or
    installed but broken) makes it unavailable, the reason in ``peers.unavailable``."""
    return peers.load(library) is not None


def reference_run(library: str, attack: str, model, x: torch.Tensor, y: torch.Tensor, *,
                  eps: float, norm: str, steps: int, step_size: float,
                  bounds=(0.0, 1.0)) -> Run | None:
    """``run() -> x_adv`` of ``library``'s version of ``attack`` with these settings (random
    start where the attack has one), or None: no such reference, the library is not
    installed, or its version cannot run here. ``step_size`` is absolute (input units)."""
    REGISTRY.load()  # the attack modules, and the references they register
    build = _BUILDERS.get((attack, library))
    if build is None or not installed(library):
        return None
    try:
        return build(model, x, y, eps=eps, norm=norm, steps=steps, step_size=step_size,
                     bounds=bounds)
    except ImportError as e:  # a part of the library that fails to import
        peers.broken(library, e)
        return None


# --------------------------------------------------------------------------- torchattacks

@reference("fgsm", "torchattacks")
def _torchattacks_fgsm(model, x, y, *, eps, norm, steps, step_size, bounds):
    import torchattacks

    if bounds != (0.0, 1.0):
        return None  # torchattacks clips to [0, 1]
    atk = torchattacks.FGSM(model, eps=eps)
    return lambda: atk(x, y)


@reference("pgd", "torchattacks")
def _torchattacks_pgd(model, x, y, *, eps, norm, steps, step_size, bounds):
    import torchattacks

    if bounds != (0.0, 1.0):
        return None
    cls = torchattacks.PGD if norm == "linf" else torchattacks.PGDL2
    atk = cls(model, eps=eps, alpha=step_size, steps=steps, random_start=True)
    return lambda: atk(x, y)


# --------------------------------------------------------------------------- Foolbox 3

@reference("fgsm", "foolbox")
def _foolbox_fgsm(model, x, y, *, eps, norm, steps, step_size, bounds):
    import foolbox

    fmodel = foolbox.PyTorchModel(model, bounds=bounds)
    atk = foolbox.attacks.FGSM()
    return lambda: atk(fmodel, x, y, epsilons=eps)[1]  # the clipped adversarials


@reference("pgd", "foolbox")
def _foolbox_pgd(model, x, y, *, eps, norm, steps, step_size, bounds):
    import foolbox

    fmodel = foolbox.PyTorchModel(model, bounds=bounds)
    cls = foolbox.attacks.LinfPGD if norm == "linf" else foolbox.attacks.L2PGD
    atk = cls(abs_stepsize=step_size, steps=steps, random_start=True)
    return lambda: atk(fmodel, x, y, epsilons=eps)[1]


# --------------------------------------------------------------------------- ART

def _art_classifier(model, x, bounds):
    from art.estimators.classification import PyTorchClassifier

    with torch.no_grad():
        classes = int(model(x[:1]).shape[1])
    return PyTorchClassifier(model, loss=torch.nn.CrossEntropyLoss(),
                             input_shape=tuple(x.shape[1:]), nb_classes=classes,
                             clip_values=bounds, device_type="gpu" if x.is_cuda else "cpu")


def _art_run(atk, x, y) -> Run:
    xs, ys = x.cpu().numpy(), y.cpu().numpy()
    return lambda: torch.as_tensor(atk.generate(xs, y=ys), device=x.device, dtype=x.dtype)


@reference("fgsm", "art")
def _art_fgsm(model, x, y, *, eps, norm, steps, step_size, bounds):
    import numpy as np
    from art.attacks.evasion import FastGradientMethod

    return _art_run(FastGradientMethod(_art_classifier(model, x, bounds), norm=np.inf,
                                       eps=eps), x, y)


@reference("pgd", "art")
def _art_pgd(model, x, y, *, eps, norm, steps, step_size, bounds):
    import numpy as np
    from art.attacks.evasion import ProjectedGradientDescentPyTorch

    atk = ProjectedGradientDescentPyTorch(
        _art_classifier(model, x, bounds), norm=np.inf if norm == "linf" else 2, eps=eps,
        eps_step=step_size, max_iter=steps, num_random_init=1, batch_size=len(x),
        verbose=False)
    return _art_run(atk, x, y)
