"""Progress and the time left inside a long unit (quirkbench.progress)."""

from __future__ import annotations

import json

from quirkbench import progress


def test_a_line_after_every_s_then_one_per_every_s(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(progress, "_now", lambda: clock[0])
    lines: list[str] = []
    with progress.reporting(lines.append, every_s=10):
        bar = progress.phase("training run", 800, "or 100% train")
        for step in range(1, 801):
            clock[0] += 1 / 16  # 50 s in all: lines at 10, 20, 30, 40, 50 s
            bar.update(step)
        progress.phase("training run", 10).update(5)  # the throttle spans phases
    assert len(lines) == 5, lines
    assert lines[0].startswith("training run 1 (or 100% train):  20%|")
    assert "160/800 [00:10<00:40," in lines[0] and "step/s]" in lines[0]
    progress.phase("training run", 10).update(10)  # outside a run: nothing, no error
    assert len(lines) == 5


def test_a_long_unit_reports_its_training_and_the_metrics_stay_the_same(run_cli, tmp_path,
                                                                        monkeypatch):
    """Through the runner (one unit, in this process): every training run of the unit says
    where it is; with the reporter silent the metrics are identical."""
    argv = ["run", "--suite", "smoke", "--tasks", "memorization", "--seeds", "0",
            "--jobs", "1", "--no-report"]
    monkeypatch.setattr(progress, "EVERY_S", 0.0)
    code, out, _ = run_cli(*argv, "--out", tmp_path / "a.json")
    assert code == 0
    lines = [s for s in out.splitlines() if "training run" in s]
    assert any(s.startswith("  memorization/mnist5k/0: training run 2 (or 100% train): ")
               for s in lines), out
    assert all("|" in s and "step/s]" in s for s in lines)
    monkeypatch.setattr(progress, "EVERY_S", 1e9)
    code, out, _ = run_cli(*argv, "--out", tmp_path / "b.json")
    assert code == 0 and "training run" not in out

    def metrics(p):
        doc = json.loads(p.read_text())
        return {(k, m["name"], json.dumps(m["tags"])): m["value"]
                for k, u in doc["units"].items() for m in u["metrics"] if m["kind"] != "timing"}

    assert metrics(tmp_path / "a.json") == metrics(tmp_path / "b.json")
