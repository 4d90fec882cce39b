"""Synthetic results documents for the report tests: every agreed series, two seeds, and a
task and metric whose names contain ``<script>`` (must come out escaped)."""

from __future__ import annotations

import json
from pathlib import Path

from quirkbench.metrics import HIGHER, LOWER, NONE, TIMING, Anchor, Goal, Metric
from quirkbench.tasks import TaskOutput
from quirkbench.tracking import results

EVIL = "<script>alert('x')</script>"


def outputs(seed: int, speed: float, extra: bool = False) -> dict[str, TaskOutput]:
    """task → output; ``speed`` scales throughput (a baseline run uses another).

    ``extra``: also the tasks whose figures came later (sharpness, attack_agreement,
    compressed_robustness) and two goals (one met, one missed), left out by default so the
    comparison tests' counts stay put."""
    out = _outputs(seed, speed)
    if extra:
        out.update(_later(seed))
        out["throughput"].metrics.extend([
            Metric("speedup_vs_naive", 1.6, "×", HIGHER, {"model": "mlp"}, goal=Goal(1.5),
                   kind=TIMING),  # met
            Metric("matmul_share", 40.0, "%", HIGHER, {"model": "mlp"}, goal=Goal(70.0),
                   kind=TIMING)])  # missed
    return out


def _later(seed: int) -> dict[str, TaskOutput]:
    s = 0.1 * seed
    return {
        "sharpness": TaskOutput(
            [Metric("sharpness_ratio", 4.5 + s, "×", NONE, {"measure": "hessian"}, holds=True,
                    headline=True)],
            series={"sharpness": [{"batch": b, "batch_size": n, "train_acc": 99.0,
                                   "test_acc": a, "top_hessian_eigenvalue": lam,
                                   "eps_sharpness": phi}
                                  for b, n, a, lam, phi in (("small", 10, 86.0, 1.4, 2.9),
                                                            ("large", 50, 83.5, 6.6, 11.3))]}),
        "attack_agreement": TaskOutput(
            [Metric("worst_gap", -0.5, "pp", HIGHER, holds=True, headline=True)],
            series={"attack_agreement": [
                {"attack": a, "eps": e, "reference": ref, "ours": o, "theirs": o + d,
                 "gap_pp": -d, "disagreement_pct": 1.0}
                for a, e, o in (("fgsm", 0.1, 88.0), ("pgd-linf", 0.1, 90.0),
                                ("pgd-l2", 1.0, 68.0))
                for ref, d in (("torchattacks", 0.5), ("foolbox", -0.25))]}),
        "compressed_robustness": TaskOutput(
            [Metric("distortion_ratio", 1.4, "×", NONE, {"model": "pruned"}, headline=True)],
            series={"compressed_robustness": [
                {"model": m, "norm": n, "eps": e, "success": min(100.0, k * e * f)}
                for m, f in (("dense", 1.0), ("pruned", 0.8), ("int8", 1.0), ("distilled", 1.2))
                for n, k, grid in (("linf", 700, (0.05, 0.1)), ("l2", 50, (0.5, 1.0)))
                for e in grid]}),
    }


def _outputs(seed: int, speed: float) -> dict[str, TaskOutput]:
    s = 0.1 * seed  # small seed-to-seed spread
    return {
        "memorization": TaskOutput(
            [Metric("steps_to_fit", 130 + seed, "steps", NONE, {"condition": "random-labels"},
                    Anchor("Zhang et al. 2017", None, "", "reaches 100%"), True, True),
             Metric("test_acc", 9.5 + s, "%", NONE, {"condition": "random-labels"},
                    Anchor("Zhang et al. 2017", 10.48, "%", "CIFAR-10 MLP"), True, True),
             Metric("slowdown", 2.4, "×", NONE, {"condition": "random-labels"}, headline=True)],
            series={"train_curve": [
                {"condition": c, "epoch": e, "step": 3 * e, "seconds": 0.1 * e,
                 "train_acc": min(1.0, e / (5 + 5 * (c == "random-labels"))),
                 "test_acc": 0.1 if c == "random-labels" else 0.8}
                for c in ("true-labels", "random-labels") for e in range(1, 11)]}),
        "adversarial": TaskOutput(
            [Metric("success_rate", 97.25, "%", HIGHER, {"attack": "pgd-linf", "eps": "0.1"},
                    headline=True, holds=True)],
            series={"success_curve": [{"attack": a, "norm": "linf", "eps": e,
                                       "success_rate": min(100.0, e * k), "noise_success_rate": e}
                                      for a, k in (("fgsm", 300), ("pgd-linf", 900))
                                      for e in (0.0, 0.05, 0.1, 0.2, 0.3)]}),
        "compression": TaskOutput(
            [Metric("compression_ratio", 12.5, "×", HIGHER, {"method": "magnitude-iterative"},
                    Anchor("Han et al. 2015", 12.0, "×", "LeNet-300-100"), True, True)],
            series={"accuracy_vs_ratio": [{"method": m, "ratio": r, "test_acc": 97 - d * r / 10}
                                          for m, d in (("magnitude-iterative", 0.2), ("random", 3))
                                          for r in (1, 2, 4, 8, 16)]}),
        "forgetting": TaskOutput(
            [Metric("forgetting_pct", 41.0 + seed, "%", LOWER, {"protocol": "permuted"},
                    headline=True, holds=True)],
            series={"accuracy_matrix": [{"protocol": "permuted", "strategy": st, "i": i, "j": j,
                                         "acc": 0.95 - (0.3 if st == "naive" else 0.05) * (i - j)}
                                        for st in ("naive", "ewc") for i in range(3)
                                        for j in range(i + 1)]}),
        "throughput": TaskOutput(
            [Metric("samples_per_s", 1000 * speed + seed, "samples/s", HIGHER, {"model": "mlp"},
                    headline=True, kind=TIMING)],
            series={"throughput": [{"model": "mlp", "batch": b, "variant": v,
                                    "samples_per_s": speed * b * (2 if v == "vmap" else 1)}
                                   for b in (64, 256) for v in ("eager", "vmap")]
                                  + [{"model": "lenet", "batch": 64, "variant": f"pgd-{n}-{w}",
                                      "samples_per_s": speed * k}  # attack speed: its own axis
                                     for n in ("linf", "l2")
                                     for w, k in (("ours", 9000), ("torchattacks", 6000))]},
            info={"trace_dir": "traces/throughput-mlp", "batch_note": "b64 and b256",
                  "profile": {"device": "cpu", "steps": 3, "step_ms": 1.25, "host_ms": 1.1,
                              "busy_ms": 0.9, "device_ms": None, "idle_fraction": 0.28,
                              "top_ops": [["aten::addmm", 0.456]],
                              "traces": ["traces/throughput-mlp/trace.json"]}}),
        "landscape": TaskOutput(
            [Metric("barrier_height", 0.02, "1", NONE, headline=True)],
            series={"interpolation": [{"path": "init→solution", "alpha": a / 10,
                                       "loss": 2.3 * (1 - a / 10), "acc": a / 10}
                                      for a in range(11)]}),
        "dimensionality": TaskOutput(
            [Metric("nearest_farthest_ratio", 0.9, "1", NONE, {"dim": "784"}, headline=True)],
            series={"concentration": [{"points": "uniform", "dim": d, "ratio": 1 - 1 / d ** 0.5,
                                       "distance": 0.408, "angle": 90 - 10 / d}
                                      for d in (2, 10, 100, 1000)]}),
        "sensitivity": TaskOutput(
            [Metric("test_acc_std", 0.35, "pp", NONE, {"varied": "init"}, headline=True)],
            series={"seed_accuracy": [{"group": g, "init_seed": k, "order_seed": 0, "scale": sc,
                                       "test_acc": a + k / 10}
                                      for g, sc, a in (("init", 1.0, 90), ("order", 1.0, 89),
                                                       ("bad-init", 0.01, 50)) for k in range(3)]}),
        "units": TaskOutput(
            [Metric("purity_difference", -1.5, "pp", NONE, headline=True)],
            series={"unit_purity": [{"basis": b, "direction": k,
                                     "purity": 50 + k + 3 * (b == "random")}
                                    for b in ("natural", "random") for k in range(16)]}),
        EVIL: TaskOutput([Metric(EVIL, 1.0, "%", NONE, {"cond": EVIL}, holds=False)],
                         series={EVIL: [{"x": 1}],
                                 "accuracy_matrix": [{"protocol": "p", "acc": 1.0}],  # no i, j
                                 "train_curve": [
                             {"condition": EVIL, "epoch": 1, "step": 1, "seconds": 0.1,
                              "train_acc": 0.5, "test_acc": 0.5}]},
                         info={"note": EVIL}),
    }


def write_doc(path: Path, *, seeds=(0, 1), speed: float = 1.0, commit: str = "a" * 40,
              started: str = "2026-01-01T00:00:00+00:00", suite: str = "smoke",
              tasks: tuple[str, ...] | None = None, extra: bool = False) -> Path:
    tasks = list(tasks or outputs(0, speed, extra))
    doc = results.new_document(suite=suite, seeds=seeds, datasets=["mnist5k"], tasks=tasks,
                               device="cpu", argv=["run"])
    doc["meta"].update(commit=commit, dirty=False, started=started, status="done", seconds=12.5)
    for seed in seeds:
        for task, out in outputs(seed, speed, extra).items():
            if task not in tasks:
                continue
            doc["units"][results.unit_key(task, "mnist5k", seed)] = results.unit_record(
                task, "mnist5k", seed, {"delta_pp": 1.0}, started, 0.5, out)
    results.write_atomic(path, doc)
    return path


# names a PR comment or a page must show as text, never as markup (HTML and Markdown tests)
PAYLOADS = [EVIL, "a|b", "`rm -rf /`", "&amp; &lt;", "**bold** _it_ [x](http://e.x) ~~s~~",
            "@everyone #1", "back\\slash"]


# --------------------------------------------------------------------------- planted changes

JITTER = (0.0, 0.4, -0.3, 0.2, -0.1)  # seed-to-seed spread, as a fraction of ``spread``
PLANTED = [  # (task, name, unit, direction, tags, base value, head value, spread)
    *[("adversarial", "success_rate", "%", HIGHER, {"attack": a, "eps": e}, b, b - d, 0.6)
      for a, e, b, d in (("fgsm", "0.05", 41.0, 9.0), ("fgsm", "0.2", 88.0, 21.0),
                         ("pgd-linf", "0.05", 63.0, 12.0), ("pgd-linf", "0.2", 99.5, 6.5),
                         ("pgd-l2", "1.0", 71.0, 15.0), ("pgd-l2", "2.0", 95.0, 10.0))],
    *[("compression", "compression_ratio", "×", HIGHER, {"method": m}, b, h, 0.2)
      for m, b, h in (("magnitude-oneshot", 8.0, 5.5), ("lottery-ticket", 10.0, 6.0))],
    *[("forgetting", "forgetting_pct", "%", LOWER, {"protocol": p, "strategy": s}, b, h, 0.5)
      for p, s, b, h in (("split-task", "naive", 30.0, 42.0), ("split-class", "naive", 80.0, 91.0),
                         ("split-class", "replay", 35.0, 52.0),
                         ("split-task", "ewc", 22.0, 15.0))],  # the last one improves
    *[("throughput", "samples_per_s", "samples/s", HIGHER, {"model": m, "variant": "engine"}, b,
       h, 15.0) for m, b, h in (("lenet5", 2400.0, 1300.0), ("convnet", 900.0, 610.0),
                                ("mlp-512", 5200.0, 7100.0))],  # the last one improves
    ("memorization", "steps_to_fit", "steps", NONE, {"condition": "true-labels"}, 60.0, 84.0,
     1.0),  # a phenomenon value that moved: behaviour changed
]


def write_planted(folder: Path, *, runs: int = 2) -> list[Path]:
    """``runs`` documents of one smoke suite on 5 seeds, oldest first: the first is the
    baseline, the last has 13 planted regressions (and 2 improvements, 1 behaviour change)
    over the tasks' usual metrics; runs in between equal the baseline."""
    tasks = ("memorization", "adversarial", "compression", "forgetting", "throughput",
             "landscape")
    paths = []
    for k in range(runs):
        last = k == runs - 1
        path = write_doc(folder / f"run{k}.json", seeds=range(5), commit=f"{k:x}" * 40,
                         started=f"2026-01-0{k + 1}T02:00:00+00:00", tasks=tasks)
        doc = json.loads(path.read_text())
        for u in doc["units"].values():
            for recs in u["series"].values():  # seed-to-seed spread in the plotted series too
                for r in recs:
                    for key in ("samples_per_s", "success_rate", "test_acc", "loss"):
                        if isinstance(r.get(key), float | int):
                            r[key] = r[key] * (1 + 0.05 * JITTER[u["seed"]])
            for task, name, unit, direction, tags, base, head, spread in PLANTED:
                if u["task"] == task:
                    v = (head if last else base) + spread * JITTER[u["seed"]]
                    # seed-to-seed spread: judged over seeds, not value by value
                    u["metrics"].append(Metric(name, v, unit, direction, tags, headline=True,
                                               kind="stochastic").to_dict())
        path.write_text(json.dumps(doc, indent=1))
        paths.append(path)
    return paths
