"""Momentum iterative FGSM (Dong et al. 2018, "Boosting adversarial attacks with momentum"):
PGD whose steps follow a running sum of normalised gradients instead of the last gradient.

The whole attack is this file: the loop, the projection, the early stop and the kept first
adversarial are PGD's; only the update rule (``ascend``), the state it carries
(``init_state``) and the paper's defaults differ. ``@register`` makes it ``mi-fgsm`` for
every task; ``@reference`` names torchattacks' version for the attack_agreement task.
"""

from __future__ import annotations

import torch

from ...errors import UserError
from .base import register, view
from .pgd import PGD
from .references import reference


@register
class MomentumPGD(PGD):
    """v ← μ·v + ∇/‖∇‖₁ per input, then PGD's step along v: α·sign(v) in L∞ (MI-FGSM),
    α·v/‖v‖₂ in L2 (Dong et al.'s L2 variant), then the projection. The paper's defaults:
    μ = 1, α = ε/steps, 10 steps, no random start. ``pgd``: PGD's other settings (loss,
    bounds, seed, early_stop)."""

    name = "mi-fgsm"
    description = "momentum iterative FGSM: PGD along a running sum of L1-normalised " \
                  "gradients (Dong et al. 2018)"

    def __init__(self, eps, norm: str = "linf", steps: int = 10, step_size: float | None = None,
                 random_start: bool = False, decay: float = 1.0, **pgd):
        super().__init__(eps, norm, steps, step_size, random_start, **pgd)
        if not decay >= 0:
            raise UserError(f"mi-fgsm decay must be ≥ 0, got {decay}")
        self.decay = decay

    def step_for(self, eps):
        return eps / self.steps if self.step_size is None else self.step_size

    def init_state(self, x):
        return {"velocity": torch.zeros_like(x)}

    def ascend(self, xa, g, step, state):
        v = state["velocity"]
        v.mul_(self.decay).add_(g / view(g.flatten(1).abs().sum(1).clamp_min(1e-12), g))
        super().ascend(xa, v.clone(), step, state)


@reference("mi-fgsm", "torchattacks")
def _torchattacks(model, x, y, *, eps, norm, steps, step_size, bounds):
    import torchattacks

    if norm != "linf" or bounds != (0.0, 1.0):
        return None  # torchattacks has the L∞ version only, on [0, 1] images
    atk = torchattacks.MIFGSM(model, eps=eps, alpha=step_size, steps=steps, decay=1.0)
    return lambda: atk(x, y)
