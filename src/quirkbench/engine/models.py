"""Model zoo, created by name.

* ``mlp-W1-W2-...``  fully connected ReLU net with hidden widths W1, W2, ...
  (``mlp`` alone: no hidden layer, softmax regression; ``softmax`` is an alias).
* ``lenet-300-100``  the MLP of LeCun et al. 1998 and Han et al. 2015 (266,610 weights on MNIST).
* ``lenet5``         LeNet-5 (conv 6@5×5, pool, conv 16@5×5, pool, 120, 84), inputs ≥ 12×12.
* ``convnet``        a small VGG-style convnet for 32×32×3 (works on any image ≥ 8×8).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..errors import UserError

ALIASES = {"lenet-300-100": "mlp-300-100", "softmax": "mlp"}
NAMES = ("mlp-W1-W2-...", "lenet-300-100", "softmax", "lenet5", "convnet")


class MLP(nn.Module):
    """x: (B, *input_shape) → logits (B, num_classes); ReLU between linear layers."""

    def __init__(self, input_shape, num_classes: int, widths=(512,)):
        super().__init__()
        dims = [math.prod(input_shape), *widths, num_classes]
        layers: list[nn.Module] = [nn.Flatten()]
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
            layers.append(nn.Linear(a, b))
            if i < len(dims) - 2:
                layers.append(nn.ReLU())
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)

    def features(self, x):
        """Activations of the last hidden layer, (B, widths[-1])."""
        return self.net[:-1](x)


class LeNet5(nn.Module):
    """LeNet-5 for 1×28×28-like inputs (channels and size taken from ``input_shape``)."""

    def __init__(self, input_shape, num_classes: int):
        super().__init__()
        if len(input_shape) != 3 or min(input_shape[1:]) < 12:
            raise UserError(f"lenet5 needs C×H×W images at least 12×12, got "
                            f"{'×'.join(map(str, input_shape))}; use an mlp for this data set")
        c = input_shape[0]
        self.conv = nn.Sequential(
            nn.Conv2d(c, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten())
        n = self.conv(torch.zeros(1, *input_shape)).shape[1]
        self.fc = nn.Sequential(nn.Linear(n, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU())
        self.head = nn.Linear(84, num_classes)

    def features(self, x):
        return self.fc(self.conv(x))

    def forward(self, x):
        return self.head(self.features(x))


class ConvNet(nn.Module):
    """Three conv blocks (32, 64, 128 channels, BN, ReLU, pool), global pool, linear head."""

    def __init__(self, input_shape, num_classes: int, width: int = 32):
        super().__init__()
        if len(input_shape) != 3 or min(input_shape[1:]) < 8:
            raise UserError("convnet needs C×H×W images at least 8×8, got "
                            f"{'×'.join(map(str, input_shape))}")
        c = input_shape[0]
        blocks = []
        for w in (width, 2 * width, 4 * width):
            blocks += [nn.Conv2d(c, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(),
                       nn.MaxPool2d(2)]
            c = w
        self.body = nn.Sequential(*blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(c, num_classes)

    def features(self, x):
        return self.body(x)

    def forward(self, x):
        return self.head(self.features(x))


def make_model(name: str, input_shape, num_classes: int = 10, seed: int | None = None) -> nn.Module:
    """Build a model by name, its weights drawn from ``seed`` when given."""
    key = ALIASES.get(name, name)
    if seed is not None:
        torch.manual_seed(seed)
    if key == "mlp" or key.startswith("mlp-"):
        parts = key.split("-")[1:]
        try:
            widths = tuple(int(p) for p in parts)
        except ValueError:
            widths = ()
        if any(w <= 0 for w in widths) or (parts and not widths):
            raise UserError(f"bad MLP name {name!r}: widths must be positive integers, "
                            "e.g. mlp-512 or mlp-300-100")
        return MLP(input_shape, num_classes, widths)
    if key == "lenet5":
        return LeNet5(input_shape, num_classes)
    if key == "convnet":
        return ConvNet(input_shape, num_classes)
    raise UserError(f"unknown model {name!r}; valid: {', '.join(NAMES)}")


def count_params(model: nn.Module, nonzero: bool = False) -> int:
    """Number of parameters (``nonzero=True``: those not exactly zero, for pruned models)."""
    if nonzero:
        return int(sum((p != 0).sum().item() for p in model.parameters()))
    return sum(p.numel() for p in model.parameters())
