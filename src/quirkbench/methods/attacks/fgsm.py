"""The fast gradient sign method (Goodfellow et al. 2015): one signed-gradient step."""

from __future__ import annotations

from .base import Attack, AttackSettings, Bounds, check_attack, clip, register
from .gradients import input_gradient


@register
class FGSM(Attack):
    """x + ε·sign(∇ₓ loss), clipped to bounds. One gradient, no random start."""

    name = "fgsm"
    norms = ("linf",)
    description = "fast gradient sign method: one signed step of ε (Goodfellow et al. 2015)"

    def __init__(self, eps: float, loss: str = "ce", bounds: Bounds = (0.0, 1.0)):
        check_attack(eps, "linf", loss, bounds)
        self.eps, self.loss, self.bounds = float(eps), loss, bounds

    @classmethod
    def configure(cls, eps: float, norm: str, settings: AttackSettings) -> FGSM:
        """Reads loss and bounds (one step of ε: no steps, step size or seed)."""
        return cls(eps, settings.loss, settings.bounds)

    def forward(self, model, x, y):
        self.iterations = 1
        if self.eps == 0:
            return x.clone()
        _, g = input_gradient(model, x, y, self.loss)
        return clip(x + self.eps * g.sign(), self.bounds)
