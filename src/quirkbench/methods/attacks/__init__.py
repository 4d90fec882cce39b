"""Adversarial attacks: one module per family, each a small object configured once and
called on (model, x, y), registered by name (``base.py`` says how; ``quirkbench list
attacks`` lists them with their norms).

* ``fgsm``     ``FGSM``                one signed-gradient step (Goodfellow et al. 2015).
* ``pgd``      ``PGD``                 projected gradient descent in L∞ or L2 with random
                                       start (Madry et al. 2018); keeps, per input, the first
                                       adversarial found at ANY step. Its update rule is a
                                       hook (``PGD.ascend``).
* ``mi-fgsm``  ``MomentumPGD``         PGD with momentum (Dong et al. 2018): the example of
                                       adding an attack as one file.
* ``minimal``  ``MinimalPerturbation`` per input, the smallest successful distortion:
                                       a batched bisection over a per-input ε, PGD at every
                                       probe (Szegedy's "minimum distortion", from above).
* ``noise``    ``RandomNoise``         the control: random sign (L∞) or random direction
                                       (L2) of the same ε.

Not registered: ``fool_from_noise`` (gradient ascent from noise to a confident target
class, Nguyen 2015) and the measures ``success_rate`` and ``szegedy_distortion``.
``references.py`` holds other libraries' versions of these attacks.

Distances are raw norms of x_adv − x unless named ``szegedy``: √(Σ(x′−x)²/n), n = inputs'
feature count. Every attack counts its gradient iterations of the last call in
``iterations``, and ``input_iterations``, the inputs × iterations it actually did (the unit
of attack throughput).
"""

from .base import (
    LOSSES,
    NORMS,
    REGISTRY,
    Attack,
    AttackSettings,
    Bounds,
    check_attack,
    clip,
    get,
    labels,
    make,
    register,
    resolve,
    success_rate,
    szegedy_distortion,
    unit_l2,
)
from .fgsm import FGSM
from .fooling import fool_from_noise
from .gradients import MLPGradient, attack_loss, input_gradient
from .minimal import MinimalPerturbation
from .momentum import MomentumPGD
from .noise import RandomNoise
from .pgd import PGD

__all__ = [
    "FGSM", "LOSSES", "NORMS", "PGD", "REGISTRY", "Attack", "AttackSettings", "Bounds",
    "MLPGradient", "MinimalPerturbation", "MomentumPGD", "RandomNoise", "attack_loss",
    "check_attack", "clip", "fool_from_noise", "get", "input_gradient", "labels", "make",
    "register", "resolve", "success_rate", "szegedy_distortion", "unit_l2",
]
