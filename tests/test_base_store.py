"""The PR gate's store of base sides (qbtools.gate.base_store) and how compare reads a stored
base's timings (``--base-stored``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from qbtools.gate import base_store as bs
from quirkbench.metrics import HIGHER, TIMING, Metric
from quirkbench.tasks import TaskOutput
from quirkbench.tracking import results
from quirkbench.tracking.compare import compare, failing

ROOT = Path(__file__).resolve().parents[1]
ARGS = dict(commit="c" * 40, suite="pr", seeds="0", tasks=[], sets=[], jobs="auto", noise=None)


def test_the_key_covers_commit_environment_settings_and_noise_model(tmp_path):
    noise = tmp_path / "pr.json"
    noise.write_text("{}")
    key = bs.record(**ARGS)["key"]
    assert bs.record(**ARGS)["key"] == key  # the same inputs, the same key
    changed = [dict(commit="d" * 40), dict(seeds="0,1"), dict(tasks=["memorization"]),
               dict(sets=["memorization.n_train=200"]), dict(jobs="1"), dict(noise=str(noise))]
    keys = {bs.record(**{**ARGS, **c})["key"] for c in changed}
    assert key not in keys and len(keys) == len(changed)
    env = bs.record(**ARGS)["environment"]
    assert env["packages"]["torch"] and env["torch_threads"] >= 1 and env["processor"]


def _side(folder: Path, seeds=(0,)) -> Path:
    folder.mkdir(parents=True)
    for s in seeds:
        (folder / f"seed{s}.json").write_text(json.dumps({"seed": s}))
    return folder


def test_get_returns_only_a_matching_entry_and_put_keeps_the_first(tmp_path):
    store, rec = tmp_path / "store", bs.record(**ARGS)
    assert not bs.get(store, rec, tmp_path / "nothing")  # an empty store
    where = bs.put(store, rec, _side(tmp_path / "a"))
    assert where == store / rec["commit"] / rec["key"]
    assert bs.get(store, rec, tmp_path / "got") and (tmp_path / "got" / "seed0.json").is_file()
    bs.put(store, rec, _side(tmp_path / "b", seeds=(0, 1)))  # a second run of the commit
    assert not (where / "seed1.json").exists()  # the stored one stays
    # an entry whose record disagrees (a collision, an edit) is not used
    other = {**rec, "environment": {**rec["environment"], "python": "2.7"}}
    assert not bs.get(store, other, tmp_path / "not")


def test_a_bad_key_record_is_one_line_and_exit_2(tmp_path):
    bad = tmp_path / "key.json"
    bad.write_text("[]")
    r = subprocess.run([sys.executable, "-m", "qbtools.gate.base_store", "get",
                        str(tmp_path), str(bad), str(tmp_path / "x")], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "is not a key record" in r.stderr


def _doc(path: Path, speed: float, ratio: float) -> Path:
    doc = results.new_document(suite="pr", seeds=[0], datasets=["mnist5k"],
                               tasks=["throughput"], device="cpu", argv=["run"])
    out = TaskOutput([
        Metric("samples_per_s", 1000.0 * speed, "samples/s", HIGHER, headline=True,
               kind=TIMING),
        Metric("speedup_vs_naive", ratio, "×", HIGHER, headline=True, kind=TIMING,
               baseline="samples_per_s[variant=naive]"),
        Metric("samples_per_s", 500.0 * speed, "samples/s", HIGHER, {"variant": "naive"},
               kind=TIMING)])
    doc["units"][results.unit_key("throughput", "mnist5k", 0)] = results.unit_record(
        "throughput", "mnist5k", 0, {}, None, 1.0, out)
    doc["meta"].update(status="done", ended=results.now())
    results.write_atomic(path, doc)
    return path


def test_a_stored_base_judges_timing_ratios_and_not_raw_timings(tmp_path):
    # the engine's ratio to the naive loop fell 2 → 1.4; the raw rates as they were
    base, head = _doc(tmp_path / "b.json", 1.0, 2.0), _doc(tmp_path / "h.json", 1.0, 1.4)
    df = compare(base, head, base_stored=True).set_index("key")
    assert df.loc["samples_per_s", "verdict"] == "not judged"
    assert "base stored from another run" in df.loc["samples_per_s", "note"]
    assert df.loc["samples_per_s[variant=naive]", "verdict"] == "not judged"
    assert df.loc["speedup_vs_naive", "verdict"] == "regressed beyond noise"  # inside one run
    assert list(failing(df.reset_index())["key"]) == ["speedup_vs_naive"]
    # the stored base ran on a machine twice as fast: raw rates halved, within one run a
    # regression; against a stored base not judged, and the ratio whose denominator moved
    # is not judged (what it divides by is not the code's alone): nothing fails
    base, head = _doc(tmp_path / "b2.json", 2.0, 2.0), _doc(tmp_path / "h2.json", 1.0, 1.4)
    assert compare(base, head).set_index("key").loc["samples_per_s", "verdict"] == \
        "regressed beyond noise"
    df = compare(base, head, base_stored=True).set_index("key")
    assert df.loc["samples_per_s", "verdict"] == "not judged"
    assert df.loc["speedup_vs_naive", "verdict"] == "not judged"
    assert df.loc["speedup_vs_naive", "note"].startswith("its baseline")
    assert failing(df.reset_index()).empty


@pytest.mark.parametrize("flag", [["--base-stored"], []])
def test_compare_command_takes_the_flag(tmp_path, run_cli, flag):
    base, head = _doc(tmp_path / "b.json", 2.0, 2.0), _doc(tmp_path / "h.json", 1.0, 2.0)
    code, out, _ = run_cli("compare", base, head, *flag)
    assert code == (0 if flag else 1), out  # raw samples/s halved: judged only within a run
    assert ("base stored from another run" in out) == bool(flag)
    # not judged rows are summed up in one line, not listed as changes
    assert ("other changes" in out) != bool(flag)
