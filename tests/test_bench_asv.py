"""The asv benchmarks: the generated headline tracks read a results document and never run
a task (no training here); the paired epoch track times the engine against the frozen
reference."""

from __future__ import annotations

import importlib
import math
import re
import sys
from pathlib import Path

import pytest
from report_docs import write_doc

from bench import common
from quirkbench.tasks import load_all
from quirkbench.tracking import tracks

ROOT = Path(__file__).resolve().parents[1]


def _bench_tracks(monkeypatch, doc: Path | None):
    """bench/bench_tracks.py imported afresh as asv would with ``QB_ASV_RESULTS`` = doc."""
    if doc is None:
        monkeypatch.delenv(tracks.RESULTS_ENV, raising=False)
    else:
        monkeypatch.setenv(tracks.RESULTS_ENV, str(doc))
    sys.modules.pop("bench.bench_tracks", None)  # reload() would keep the old classes
    return importlib.import_module("bench.bench_tracks")


def test_tracks_are_generated_per_task_and_read_the_document(tmp_path, monkeypatch):
    doc = write_doc(tmp_path / "night.json", seeds=(0, 1))
    bt = _bench_tracks(monkeypatch, doc)
    adv, mem, thr = bt.Adversarial(), bt.Memorization(), bt.Throughput()
    adv.setup("x", "0")  # a document is named: nothing to skip
    label = "mnist5k 100 - success_rate[attack=pgd-linf,eps=0.1] (%)"
    assert adv.track_oriented.params == ([label], ["0", "1"])
    assert adv.track_oriented(label, "0") == pytest.approx(100 - 97.25)  # up = worse
    assert not hasattr(adv, "track_undirected")  # its one headline metric has a direction
    # direction none: as measured, one series per seed; the gate judges them either way
    steps = "mnist5k steps_to_fit[condition=random-labels] (steps)"
    assert steps in mem.track_undirected.params[0]
    assert [mem.track_undirected(steps, s) for s in ("0", "1")] == [130, 131]
    # a higher-is-better value that is not a %: negated
    rate = "mnist5k -samples_per_s[model=mlp] (samples/s)"
    assert thr.track_oriented(rate, "1") == pytest.approx(-1001.0)
    assert math.isnan(thr.track_oriented(rate, "7"))  # a seed the run lacks: asv shows n/a
    assert {"Adversarial", "Compression", "Forgetting", "Memorization", "Throughput"} <= \
        {n for n in vars(bt) if isinstance(vars(bt)[n], type)}
    assert any(re.fullmatch(p.replace("*", ".*"), "bench_tracks.Memorization.track_undirected")
               for p in common.EITHER_WAY)


def test_without_a_document_every_registered_task_has_tracks_that_skip(monkeypatch):
    bt = _bench_tracks(monkeypatch, None)
    for task in load_all():
        cls = getattr(bt, "".join(w.capitalize() for w in task.split("_")))
        assert cls.track_oriented.params[0] == [bt.PLACEHOLDER]
        with pytest.raises(NotImplementedError, match="QB_ASV_RESULTS"):
            cls().setup(bt.PLACEHOLDER, "-")


def test_asv_discovers_the_generated_tracks(tmp_path, monkeypatch):
    discovery = pytest.importorskip("asv_runner.discovery")
    doc = write_doc(tmp_path / "night.json", seeds=(0,), tasks=("forgetting",))
    _bench_tracks(monkeypatch, doc)  # a fresh import, as in asv's own discovery process
    found = {b.name: b for b in discovery.disc_benchmarks(str(ROOT / "bench"))
             if b.name.startswith("bench_tracks.")}
    assert set(found) == {"bench_tracks.Forgetting.track_oriented"}
    assert found["bench_tracks.Forgetting.track_oriented"].params == \
        [["'mnist5k forgetting_pct[protocol=permuted] (%)'"], ["'0'"]]


def test_no_benchmark_runs_a_task_again():
    """A night trains each phenomenon once: its suite run. bench/ reads that run's document
    and times only the core."""
    for path in (ROOT / "bench").glob("*.py"):
        assert not re.search(r"run_suite|run_task|quirkbench\.runner", path.read_text()), path


def test_paired_ratio_times_the_two_back_to_back_and_takes_the_median():
    clock, calls = [0.0], []

    def timer():
        return clock[0]

    def run():  # 3 s, but 30 s in one repeat (a burst of load)
        calls.append("run")
        clock[0] += 30.0 if calls.count("run") == 4 else 3.0

    def reference():
        calls.append("ref")
        clock[0] += 2.0

    assert common.paired_ratio(run, reference, repeats=5, warmup=1, timer=timer) == 1.5
    assert calls == ["run", "ref"] * 6  # one warm-up pair, then run/reference alternating


def test_paired_epoch_track_times_the_engines_train_against_the_frozen_reference(monkeypatch):
    import quirkbench.engine.train as engine_train
    from bench import bench_core

    seen = []
    monkeypatch.setattr(engine_train, "train", lambda net, x, y, cfg: seen.append(cfg))
    monkeypatch.setattr(common, "paired_ratio",
                        lambda run, ref, repeats: (run(), ref(), repeats)[-1])
    b = bench_core.TrainEpochPaired()
    b.setup("mlp-512", "cpu")
    assert b.track_epoch_vs_reference("mlp-512", "cpu") == b.repeats
    assert len(seen) == 1 and seen[0].max_epochs == 1  # one epoch of the engine's train()
