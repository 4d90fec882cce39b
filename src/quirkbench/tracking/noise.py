"""The noise model: how much each metric of a suite moves when only the seed changes.

Committed as data (``bench/noise/SUITE.json``), written by ``quirkbench calibrate
--noise-model FILE`` from a calibration's run documents, read by ``quirkbench compare``. The
gate treats a change of behaviour on a fixed seed as at most as variable as a change of
seed: a one-seed head value is weighed against the seed-to-seed spread stored here.

Layout (``FORMAT``; every number strict JSON, ``null`` where undefined)::

    {"format": "quirkbench.noise/1",
     "stamp": {"suite": "pr", "seeds": [100, ..., 119], "device_class": "cpu",
               "versions": {"torch": "2.13.0+cpu", "python": "3.11.7", "quirkbench": "0.1.0"},
               "commit": "48e25f0...", "dirty": false, "created": "2026-...",
               "command": "quirkbench calibrate --suite pr ... --noise-model bench/noise/pr.json",
               "settings": {"memorization/mnist5k": "3f2a...", ...}},
     "metrics": {"memorization/mnist5k/test_acc[condition=random-labels]": {
         "task": "memorization", "dataset": "mnist5k", "key": "test_acc[condition=...]",
         "unit": "%", "direction": "none", "kind": "exact", "headline": true,
         "values": {"100": 10.3, ...},   # per seed; null where the unit failed
         "n": 20, "mean": 10.2, "sd": 0.61,
         "log_sd": null,                 # sd of ln(value), for × ratios and metrics declared
                                         # on the log scale (all values > 0; else null)
         "floor": 0.1,                   # least sd the gate assumes (see ``floor_of``)
         "holds": {"held": 20, "of": 20}  # a holds check: on how many seeds it held; or null
     }, ...}}

Timings are not stored: their noise is the machine's, not the seed's.

Staleness (``NoiseModel.stale``): a task whose settings digest differs from the stamp's
(a settings change stales only that task's metrics), or another device class (``cpu`` or a
GPU's name: the whole model), makes those metrics "not judged (noise model stale: ...)".
Library versions that differ are noted, not stale: the seed-to-seed spread is the task's
property, and a torch upgrade is exactly the change the model must judge.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..metrics import LOG, TIMING

FORMAT = "quirkbench.noise/1"
VERSIONS = ("torch", "python", "quirkbench")
LOG_UNITS = frozenset({"×"})  # ratios: their spread is judged on the log scale (as is a
#   metric declared so where it is made: ``Metric.scale``)
LAST_RESORT_FLOOR = 0.005  # × |mean|: a constant metric with no resolution known


def settings_digest(configs: list[Any]) -> str:
    """A short digest of a task's resolved settings (the ``config`` of its units): canonical
    JSON, so key order and tuple-versus-list do not matter; several distinct configs (a side
    mixing settings) digest as their sorted list."""
    texts = sorted({json.dumps(c, sort_keys=True, ensure_ascii=False, default=str)
                    for c in configs})
    text = texts[0] if len(texts) == 1 else json.dumps(texts)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def device_class(meta: dict[str, Any]) -> str:
    """``cpu``, or the GPU's name (``NVIDIA H100 80GB HBM3``): what decides the numbers'
    noise beyond the seed."""
    device = str(meta.get("device") or "cpu")
    if device.startswith("cpu"):
        return "cpu"
    return str(meta.get("device_name") or device)


def metric_id(task: str, dataset: str, key: str) -> str:
    return f"{task}/{dataset}/{key}"


@dataclass(frozen=True)
class MetricNoise:
    """One metric's seed-to-seed spread."""

    task: str
    dataset: str
    key: str
    unit: str
    direction: str
    kind: str
    headline: bool
    values: dict[str, float | None]
    n: int
    mean: float
    sd: float
    log_sd: float | None
    floor: float
    holds: dict[str, int] | None

    @property
    def log_scale(self) -> bool:
        """Judge this metric's changes as ratios (× metrics and those declared on the log
        scale, whose values are all > 0)."""
        return self.log_sd is not None

    def spread(self) -> float:
        """The sd the gate assumes for one seed: the measured one, at least the floor (on
        the log scale for × ratios)."""
        if self.log_scale:
            rel_floor = self.floor / abs(self.mean) if self.mean else 0.0
            return max(self.log_sd or 0.0, rel_floor)
        return max(self.sd if math.isfinite(self.sd) else 0.0, self.floor)


def floor_of(values: list[float], same_unit_resolutions: list[float], mean: float) -> float:
    """The least sd the gate assumes for a metric: its resolution (the smallest gap between
    two distinct seed values: one test example's worth for an accuracy, one step for a
    step count) or, for a metric constant over the seeds, the median resolution of the
    task's other metrics in the same unit (the same test set), else ``LAST_RESORT_FLOOR``
    of |mean| (1e-12 at 0)."""
    own = resolution(values)
    if own is not None:
        return own
    if same_unit_resolutions:
        s = sorted(same_unit_resolutions)
        return s[len(s) // 2]
    return max(LAST_RESORT_FLOOR * abs(mean), 1e-12)


def resolution(values: list[float]) -> float | None:
    """The smallest gap between two distinct values (float noise below 1e-9 relative is
    not a gap); None when there are fewer than two distinct values."""
    v = sorted(set(values))
    gaps = [b - a for a, b in zip(v, v[1:], strict=False)
            if b - a > 1e-9 * max(1.0, abs(a), abs(b))]
    return min(gaps) if gaps else None


def _stats(values: list[float], log: bool) -> tuple[float, float, float | None]:
    import numpy as np

    v = np.array(values, dtype=float)
    mean = float(v.mean()) if len(v) else math.nan
    sd = float(v.std(ddof=1)) if len(v) > 1 else math.nan
    log_sd = None
    if log and len(v) > 1 and (v > 0).all():
        log_sd = float(np.log(v).std(ddof=1))
    return mean, sd, log_sd


def build(units: list[dict[str, Any]], meta: dict[str, Any], command: str,
          created: str) -> dict[str, Any]:
    """The model (a JSON-ready dict) from a calibration's unit records and the meta of its
    documents: every non-timing metric of every task × data set."""
    from .calibration import by_task, per_metric

    metrics: dict[str, dict[str, Any]] = {}
    settings: dict[str, str] = {}
    for (task, dataset), us in by_task(units).items():
        done = [u for u in us if u.get("status") == "done"]
        if done:
            settings[f"{task}/{dataset}"] = settings_digest([u.get("config") for u in done])
        seeds = sorted({u["seed"] for u in us})
        recs = {k: e for k, e in per_metric(us).items() if e["kind"] != TIMING}
        res_by_unit: dict[str, list[float]] = {}
        for e in recs.values():
            r = resolution([v for v in e["values"].values() if math.isfinite(v)])
            if r is not None:
                res_by_unit.setdefault(e["unit"], []).append(r)
        for k, e in recs.items():
            vals = [e["values"].get(s, math.nan) for s in seeds]
            finite = [v for v in vals if math.isfinite(v)]
            mean, sd, log_sd = _stats(finite, e["unit"] in LOG_UNITS or e.get("scale") == LOG)
            metrics[metric_id(task, dataset, k)] = {
                "task": task, "dataset": dataset, "key": k, "unit": e["unit"],
                "direction": e["direction"], "kind": e["kind"], "headline": e["headline"],
                "values": {str(s): (v if math.isfinite(v) else None)
                           for s, v in zip(seeds, vals, strict=True)},
                "n": len(finite), "mean": mean, "sd": sd, "log_sd": log_sd,
                "floor": floor_of(finite, res_by_unit.get(e["unit"], []), mean),
                "holds": ({"held": sum(1 for s in seeds if e["holds"].get(s) is True),
                           "of": len(seeds)} if e["holds"] else None)}
    stamp = {"suite": meta.get("suite"), "seeds": sorted({u["seed"] for u in units}),
             "device_class": device_class(meta),
             "versions": {k: meta.get(k) for k in VERSIONS},
             "commit": meta.get("commit"), "dirty": bool(meta.get("dirty")),
             "created": created, "command": command, "settings": settings}
    return {"format": FORMAT, "stamp": stamp, "metrics": metrics}


def write(model: dict[str, Any], path: str | Path) -> None:
    """Write ``model`` as strict JSON (NaN → null), atomically, keys sorted so that a
    regenerated model diffs line by line."""
    from .calibration import _strict, _write_text

    _write_text(Path(path), json.dumps(_strict(model), indent=1, sort_keys=True,
                                       ensure_ascii=False) + "\n")


@dataclass
class NoiseModel:
    """A model read back: its stamp and ``MetricNoise`` per ``task/dataset/key``."""

    path: str
    stamp: dict[str, Any]
    metrics: dict[str, MetricNoise]

    @property
    def suite(self) -> str:
        return str(self.stamp.get("suite"))

    def get(self, task: str, dataset: str, key: str) -> MetricNoise | None:
        return self.metrics.get(metric_id(task, dataset, key))

    def stale(self, metas: list[dict[str, Any]], configs: dict[str, list[Any]]
              ) -> tuple[str | None, dict[str, str], list[str]]:
        """(why the whole model is stale or None, {task/dataset: why it is stale},
        notes) for the documents of both sides (``metas``) and their configs per
        ``task/dataset``."""
        classes = sorted({device_class(m) for m in metas})
        mine = self.stamp.get("device_class")
        whole = None
        if classes and classes != [mine]:
            whole = f"made on {mine}, these runs on {', '.join(classes)}"
        tasks = {}
        known = self.stamp.get("settings") or {}
        for td, cfgs in sorted(configs.items()):
            if td in known and settings_digest(cfgs) != known[td]:
                tasks[td] = f"{td.split('/')[0]} settings differ from the model's"
        notes = []
        for k in VERSIONS:
            seen = sorted({str(m.get(k)) for m in metas if m.get(k) is not None})
            want = (self.stamp.get("versions") or {}).get(k)
            if seen and want is not None and seen != [str(want)]:
                notes.append(f"{k} {want} (model) vs {', '.join(seen)} (runs)")
        return whole, tasks, notes


def _metric(key: str, d: Any, where: str) -> MetricNoise:
    if not isinstance(d, dict):
        raise UserError(f"{where}: metric {key!r} is not an object")
    try:
        def num(x):
            return math.nan if x is None else float(x)
        return MetricNoise(
            task=str(d["task"]), dataset=str(d["dataset"]), key=str(d["key"]),
            unit=str(d.get("unit") or ""), direction=str(d.get("direction") or "none"),
            kind=str(d.get("kind") or "exact"), headline=bool(d.get("headline")),
            values={str(s): (None if v is None else float(v))
                    for s, v in (d.get("values") or {}).items()},
            n=int(d["n"]), mean=num(d["mean"]), sd=num(d["sd"]),
            log_sd=None if d.get("log_sd") is None else float(d["log_sd"]),
            floor=float(d["floor"]),
            holds=({"held": int(d["holds"]["held"]), "of": int(d["holds"]["of"])}
                   if d.get("holds") else None))
    except (KeyError, TypeError, ValueError) as e:
        raise UserError(f"{where}: metric {key!r} lacks or mistypes a field ({e}); valid: "
                        "task, dataset, key, n, mean, sd, floor, ...") from None


def read(path: str | Path) -> NoiseModel:
    """The model at ``path``; a one-line ``UserError`` naming what is wrong otherwise."""
    path = Path(path)
    where = f"noise model {path}"
    try:
        d = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{where} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"{where} is not readable JSON ({type(e).__name__})") from None
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        got = d.get("format") if isinstance(d, dict) else type(d).__name__
        raise UserError(f"{where}: format {got!r}; valid: {FORMAT!r} (written by quirkbench "
                        "calibrate --noise-model)")
    stamp, metrics = d.get("stamp"), d.get("metrics")
    if not isinstance(stamp, dict) or not isinstance(metrics, dict):
        raise UserError(f"{where}: needs a \"stamp\" object and a \"metrics\" object")
    return NoiseModel(str(path), stamp, {k: _metric(k, m, where) for k, m in metrics.items()})


def write_noise_model(folder: Path, path: str | Path, command: str) -> int:
    """Write the noise model of the documents in ``folder`` to ``path``;
    the number of metrics in it."""
    from .calibration import _meta, _metas, _units
    from .results import now

    units = _units(folder)
    meta = _meta(folder)
    classes = {device_class(m) for m in _metas(folder)}
    if len(classes) > 1:
        raise UserError(f"the documents in {folder} ran on {', '.join(sorted(classes))}; a "
                        "noise model is made on one device class")
    model = build(units, meta, command, now())
    write(model, path)
    return len(model["metrics"])


# --------------------------------------------------------------------------- in a comparison

@dataclass
class ModelUse:
    """The noise model as one comparison uses it: which metrics it may judge."""

    model: NoiseModel | None
    why_none: str  # why there is no usable model (the "not judged" reason)
    stale_tasks: dict[str, str]  # task/dataset → why that task's part is stale
    lines: list[str]  # the one-line notes compare prints
    summary: str  # one line: which model, or why none

    @property
    def family(self) -> int:
        """The headline metrics the model may judge: the Bonferroni family."""
        if self.model is None:
            return 0
        return sum(1 for m in self.model.metrics.values() if m.headline
                   and f"{m.task}/{m.dataset}" not in self.stale_tasks)

    def lookup(self, task: str, dataset: str, key: str) -> tuple[MetricNoise | None, str]:
        """(the metric's noise, or None and why it is not judged)."""
        if self.model is None:
            return None, self.why_none
        why = self.stale_tasks.get(f"{task}/{dataset}")
        if why:
            return None, f"noise model stale: {why}"
        m = self.model.get(task, dataset, key)
        if m is None:
            return None, "not in the noise model"
        if m.n < 2:
            return None, f"the noise model has {m.n} seed(s) of it"
        return m, ""


def default_path(suite: str) -> Path:
    """Where a suite's committed model lives: ``$QB_NOISE_DIR/SUITE.json``, by default
    ``bench/noise/SUITE.json`` in the working folder or the nearest folder above it that
    has one (the repository's root, from any folder inside the checkout); when none has,
    the path under the working folder, for the message that says it is missing."""
    import os

    if os.environ.get("QB_NOISE_DIR"):
        return Path(os.environ["QB_NOISE_DIR"]) / f"{suite}.json"
    here = Path.cwd()
    for folder in (here, *here.parents):
        if (folder / "bench" / "noise" / f"{suite}.json").is_file():
            return folder / "bench" / "noise" / f"{suite}.json"
    return Path("bench/noise") / f"{suite}.json"


def use_model(spec, suite: str | None, metas: list[dict[str, Any]],
              configs: dict[str, list[Any]]) -> ModelUse:
    """The model ``spec`` (a ``NoiseModel``, a path, ``"auto"`` or None) checked against a
    comparison of ``suite`` whose documents have ``metas`` and whose tasks ran with
    ``configs`` (task/dataset → settings)."""
    if spec is None or spec == "none":
        why = "no noise model given"
        return ModelUse(None, why, {}, [], why)
    if isinstance(spec, NoiseModel):
        model = spec
    else:
        path = default_path(suite or "?") if spec == "auto" else Path(spec)
        if spec == "auto" and not path.is_file():
            why = f"no noise model for the {suite} suite ({path})"
            return ModelUse(None, why, {}, [f"note: {why}: one-seed changes are not judged; "
                                            f"make one with quirkbench calibrate --suite "
                                            f"{suite} --noise-model {path}"], why)
        model = read(path)
    if suite and model.suite != suite:
        why = f"noise model stale: made for the {model.suite} suite, not {suite}"
        return ModelUse(None, why, {}, [f"note: {why}"], why)
    whole, tasks, versions = model.stale(metas, configs)
    if whole:
        why = f"noise model stale: {whole}"
        return ModelUse(None, why, {}, [f"note: {why}; its metrics are not judged"], why)
    lines = [f"note: noise model {model.path}: {', '.join(versions)}; seed spread is the "
             "task's own, so it still applies"] if versions else []
    if tasks:
        lines.append(f"note: noise model stale for {len(tasks)} task(s): "
                     f"{'; '.join(tasks.values())}: their one-seed changes are not judged")
    seeds = model.stamp.get("seeds") or []
    summary = (f"noise model {model.path} ({len(seeds)} seeds, {model.stamp.get('device_class')}"
               f", commit {str(model.stamp.get('commit') or '?')[:10]})")
    return ModelUse(model, "", tasks, lines, summary)
