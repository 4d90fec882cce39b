"""A model for quirkbench, registered by name (``--model example-cnn``) and usable by
reference too (``--model qb_example_plugin.models:small_cnn``)."""

from __future__ import annotations

import math

from torch import nn

from quirkbench.engine.models import register_model


class SmallCNN(nn.Module):
    """One 3×3 conv (8 channels), ReLU, 2×2 pool, then a linear head. Inputs C×H×W with
    H, W ≥ 2; 1-D inputs (e.g. mnist1d) fall back to a linear layer."""

    def __init__(self, input_shape, num_classes: int):
        super().__init__()
        if len(input_shape) == 3 and min(input_shape[1:]) >= 2:
            c, h, w = input_shape
            self.body = nn.Sequential(nn.Conv2d(c, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Flatten())
            n = 8 * (h // 2) * (w // 2)
        else:
            self.body, n = nn.Flatten(), math.prod(input_shape)
        self.head = nn.Linear(n, num_classes)

    def forward(self, x):
        return self.head(self.body(x))


def small_cnn(input_shape, num_classes: int) -> nn.Module:
    return SmallCNN(input_shape, num_classes)


register_model("example-cnn", small_cnn,
               description="example plugin: one 3×3 conv (8), pool, linear head")
