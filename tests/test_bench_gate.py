"""The pytest-benchmark gate's control check (qbtools/gate/bench_control.py, used by
scripts/bench_gate.sh): a run whose control benchmark (the same code on both sides) moved
beyond its limit between base and head is the machine's, and is run again."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _bench(path: Path, medians: dict[str, float]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"benchmarks": [{"name": n, "stats": {"median": m}}
                                               for n, m in medians.items()]}))


def _run(*args) -> str:
    r = subprocess.run([sys.executable, "-m", "qbtools.gate.bench_control", *args], cwd=ROOT,
                       capture_output=True, text=True, check=True)
    return r.stdout.strip()


def test_control_drift_decides_whether_the_ratios_are_the_codes(tmp_path):
    storage, out = tmp_path / "storage", tmp_path / "out"
    _bench(storage / "Linux-x" / "0001_base.json",
           {"test_reference_step[cpu]": 1.0, "test_train_step[mlp-512-cpu]": 2.0})
    # the engine 40% slower, the control steady: a real slowdown, believed
    _bench(out / "head-15.json", {"test_reference_step[cpu]": 1.04,
                                  "test_train_step[mlp-512-cpu]": 2.8})
    _bench(out / "head-30.json", {"test_reference_step[cpu]": 0.97})
    assert _run("drift", str(storage), str(out), "10") == "steady 1.040 0.970"
    # the control itself 25% slower in one head run: the machine moved, run again
    _bench(out / "head-30.json", {"test_reference_step[cpu]": 1.25})
    assert _run("drift", str(storage), str(out), "10").startswith("drifted")
    # ... and 25% faster too
    _bench(out / "head-30.json", {"test_reference_step[cpu]": 0.8})
    assert _run("drift", str(storage), str(out), "10").startswith("drifted")
    # no control measured at all: never "steady"
    assert _run("drift", str(storage), str(tmp_path / "none"), "10").startswith("drifted")


def test_thresholds_file_groups_and_settings():
    t = ROOT / "tests" / "bench" / "thresholds.json"
    lines = _run("groups", str(t)).splitlines()
    names = [ln.split("\t")[1] for ln in lines]
    assert any("test_train_step" in n for n in names) and any("test_pgd_step" in n for n in names)
    assert not any(n.startswith("_") or "_control" in n for n in names)  # settings are not groups
    assert float(_run("setting", str(t), "_control_drift")) > 0
    assert int(_run("setting", str(t), "_attempts")) >= 2


def test_paired_clock_times_a_round_in_units_of_the_control_just_before(monkeypatch):
    from bench import paired_clock

    now = [0.0]
    monkeypatch.setattr(paired_clock, "_base", lambda: now[0])
    monkeypatch.setattr(paired_clock, "_unit", [1.0])

    def round_(control_s, work_s):
        def control():
            now[0] += control_s
        paired_clock.calibrate(control)  # pytest-benchmark's setup, untimed
        start = paired_clock.clock()
        now[0] += work_s  # the timed call
        return paired_clock.clock() - start

    assert round_(0.10, 0.20) == pytest.approx(2.0)
    # the machine 40% slower for both: the same reading
    assert round_(0.14, 0.28) == pytest.approx(2.0)
    # the code 25% slower, the machine as before: the reading moves by 25%
    assert round_(0.10, 0.25) == pytest.approx(2.5)
