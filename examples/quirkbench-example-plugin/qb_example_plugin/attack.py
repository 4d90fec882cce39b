"""The attack ``example-fgm``: one L2-normalised gradient step of size ε (the fast gradient
method in L2, Foolbox's ``FGM``), registered from another package through the entry-point
group ``quirkbench.attacks``. Every task that takes an attack name can then run it, e.g.
``--set adversarial.attacks="['fgsm','pgd','example-fgm']"``."""

from __future__ import annotations

from quirkbench.methods.attacks import (
    Attack,
    AttackSettings,
    check_attack,
    clip,
    input_gradient,
    register,
    unit_l2,
)


@register
class OneStepL2(Attack):
    """x + ε·∇/‖∇‖₂, clipped to bounds: FGSM's L2 sibling. One gradient, no random start."""

    name = "example-fgm"
    norms = ("l2",)
    description = "one L2-normalised gradient step of ε (an example plugin's attack)"

    def __init__(self, eps: float, loss: str = "ce", bounds=(0.0, 1.0)):
        check_attack(eps, "l2", loss, bounds)
        self.eps, self.loss, self.bounds = float(eps), loss, bounds

    @classmethod
    def configure(cls, eps: float, norm: str, settings: AttackSettings) -> OneStepL2:
        return cls(eps, settings.loss, settings.bounds)

    def forward(self, model, x, y):
        self.iterations = 1
        _, g = input_gradient(model, x, y, self.loss)
        return clip(x + self.eps * unit_l2(g), self.bounds)
