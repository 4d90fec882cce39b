"""The nightly pipeline end to end on the CPU: qbtools/nightly/sim.sh over three local commits
(base; a 25% slower training step and a weaker PGD planted; the revert). Slow: three nights
of the smoke adversarial task and asv (the raw and the paired training-epoch timing), about
two minutes on a quiet 2-core machine and several on a loaded one: longer than CI can spend
on one check, so it runs only when asked: ``QB_SIM_TEST=1 pytest -m slow
tests/test_nightly_sim.py``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("QB_SIM_TEST") != "1",
                    reason="minutes of training and asv: set QB_SIM_TEST=1 to run the three-night "
                           "simulation")
def test_three_nights_red_only_while_the_plants_stand(tmp_path):
    if shutil.which("git") is None:
        pytest.skip("needs git")
    pytest.importorskip("asv")
    if subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"],
                      capture_output=True).returncode != 0:
        pytest.skip("needs a git checkout")
    env = {**os.environ, "QB_SIM_DIR": str(tmp_path / "sim"), "QB_SIM_NIGHTS": "3",
           "QB_SIM_DOC": "0", "PYTHON": sys.executable,
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    r = subprocess.run(["bash", str(ROOT / "qbtools" / "nightly" / "sim.sh")], env=env,
                       capture_output=True, text=True, timeout=3600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    store = tmp_path / "sim" / "store"
    nights = json.loads((store / "results" / "ledger" / "nightly.json").read_text())["nights"]
    assert [n["status"] for n in nights] == ["good", "red", "good"]
    assert (store / "site" / "history.html").is_file()  # built on the last night
    planted = nights[1]["commit"]
    failing = {f["metric"]: f for f in nights[1]["failures"]}
    # the weaker attack (quirkbench compare) and the slower epoch (asv) are both named,
    # with the planted commit as the first bad one
    assert any(m.startswith("adversarial/") for m in failing), failing
    # the paired track (engine epoch / a frozen reference epoch timed beside it) sees the
    # slower step whatever the machine's drift between nights
    assert any("TrainEpochPaired.track_epoch_vs_reference" in m for m in failing), failing
    # asv's headline tracks read each night's document: the weaker attack moves them too
    assert any(m.startswith("asv bench_tracks.Adversarial.") for m in failing), failing
    assert {f["first_bad_commit"] for f in failing.values()} == {planted}
    assert nights[2]["baseline_commit"] == nights[0]["commit"]  # judged against the last good
    assert (store / "site" / "asv" / "index.html").is_file()
    asv_files = [p for p in (store / "asv" / "nightly-sim").glob("*.json")
                 if p.name != "machine.json"]
    assert len(asv_files) == 3  # every night's asv record kept
