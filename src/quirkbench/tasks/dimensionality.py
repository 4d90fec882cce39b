"""Dimensionality: distances concentrate in high dimension (the curse of dimensionality;
Beyer, Goldstein, Ramakrishnan & Shaft 1999, "When is nearest neighbor meaningful?").

For n points drawn uniformly from the unit cube [0, 1]^d, d ∈ ``dims``:

* the nearest/farthest ratio — for each point, its distance to its nearest other point over
  its distance to its farthest, averaged — rises towards 1: neighbours stop being "near";
* the mean pairwise distance over the cube's diagonal √d tends to 1/√6 ≈ 0.408
  (E|x − y|² = d/6 per pair);
* the mean angle between two points seen from the cube's centre tends to 90°.

The same three numbers for the data set's own inputs (flattened, angles seen from their
mean) show how far real data is from uniform at its dimension. No model is trained.
``holds`` when the uniform ratio rises with d.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..config import check, check_each
from ..methods.geometry import mean_pairwise_angle, mean_pairwise_distance, nearest_farthest_ratio
from ..metrics import NONE, Anchor, Metric
from . import Context, Figure, Task, TaskOutput, register

ESSAYS = "curse of dimensionality (seed essays)"
LIMIT = 1 / math.sqrt(6)  # mean distance / diagonal for uniform points as d → ∞


@dataclass(frozen=True)
class DimensionalityConfig:
    dims: tuple[int, ...] = (2, 10, 100, 1000)  # [coordinates] cube dimensions
    n_points: int = 500  # [points] uniform points per dimension (pairwise: n² distances)
    n_data: int = 1000  # [inputs] data-set inputs (training split) for the same measures

    def __post_init__(self):
        check_each(self.dims, "dims", lambda d: d >= 1, "positive integers")
        check(self.n_points >= 3, "n_points", "≥ 3 (a nearest and a farthest other)",
              self.n_points)


def measure(points: torch.Tensor, centre: torch.Tensor) -> dict[str, float]:
    """Ratio, mean distance over the bounding diagonal (√d), mean angle about ``centre``."""
    d = points.shape[1]
    return {"ratio": nearest_farthest_ratio(points),
            "distance": mean_pairwise_distance(points) / math.sqrt(d),
            "angle": mean_pairwise_angle(points - centre)}


def run(cfg: DimensionalityConfig, ctx: Context) -> TaskOutput:
    g = torch.Generator(device="cpu").manual_seed(ctx.seed)
    dims = sorted(set(cfg.dims))
    found = {d: measure(torch.rand(cfg.n_points, d, generator=g, dtype=torch.float64), 0.5)
             for d in dims}
    ds = ctx.load_data(n_train=cfg.n_data)
    x = ds.x_train.flatten(1).double().cpu()  # (n_data, D); the measures are cheap on a CPU
    data = measure(x, x.mean(0))
    side = (ds.bounds[1] - ds.bounds[0]) if ds.bounds else 1.0
    data["distance"] /= side  # over the diagonal of the data's bounding cube
    rd = x.shape[1]
    n_same = min(cfg.n_points, len(x))
    same_d = measure(torch.rand(n_same, rd, generator=g, dtype=torch.float64), 0.5)
    for d, m in found.items():
        ctx.log(f"uniform d={d:5d}: nearest/farthest {m['ratio']:.3f}, distance/diagonal "
                f"{m['distance']:.3f}, angle {m['angle']:.1f}°")
    ctx.log(f"{ds.name} d={rd}: nearest/farthest {data['ratio']:.3f} (uniform at d={rd}: "
            f"{same_d['ratio']:.3f})")

    ratios = [found[d]["ratio"] for d in dims]
    rising = len(dims) > 1 and all(a < b for a, b in zip(ratios, ratios[1:], strict=False))
    metrics: list[Metric] = []
    top = dims[-1]
    extra = [] if rd in found else [(rd, same_d)]  # uniform at the data's own dimension
    for d, m in [*found.items(), *extra]:
        t = {"points": "uniform", "dim": str(d)}
        metrics += [
            Metric("nearest_farthest_ratio", m["ratio"], "1", NONE, t,
                   headline=d == top, holds=rising if d == top else None),
            Metric("distance_over_diagonal", m["distance"], "1", NONE, t, headline=d == top,
                   anchor=Anchor(ESSAYS, round(LIMIT, 3), "1", "1/√6 as d → ∞")),
            Metric("mean_angle", m["angle"], "°", NONE, t,
                   anchor=Anchor(ESSAYS, 90.0, "°", "as d → ∞")),
        ]
    t = {"points": ds.name, "dim": str(rd)}
    metrics += [Metric("nearest_farthest_ratio", data["ratio"], "1", NONE, t, headline=True),
                Metric("distance_over_diagonal", data["distance"], "1", NONE, t),
                Metric("mean_angle", data["angle"], "°", NONE, t)]
    series = [{"points": "uniform", "dim": d, **m} for d, m in found.items()]
    series += [{"points": ds.name, "dim": rd, **data}]
    return TaskOutput(metrics, series={"concentration": series},
                      info={"dataset": ds.describe(), "n_points": cfg.n_points})


register(Task(
    name="dimensionality",
    description="distance concentration in the unit cube and in the data: nearest/farthest "
                "ratio, distance/diagonal → 0.41, angle → 90°",
    config=DimensionalityConfig,
    run=run,
    blurb="Distances concentrate in high dimension: neighbours stop being near and angles "
          "tend to 90° (Beyer et al. 1999); real data sits far from uniform.",
    figures=(Figure("concentration"),),
    cost={"smoke": 0.1, "pr": 0.2, "quick": 0.2},  # seconds a unit, one thread
    suites={
        "smoke": dict(n_points=200, n_data=200),
        "pr": {},
        "quick": {},
        "nightly": dict(dims=(2, 10, 100, 1000, 10000), n_points=2000, n_data=4000),
    },
))
