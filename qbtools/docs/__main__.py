"""Rebuild the generated pages of the docs: ``python -m qbtools.docs [PAGE ...]``.

Every file in ``docs/generated/`` (and the screenshots in ``docs/images/``) has one entry in
``PAGES`` below: the files it writes, the generator that writes them and what it needs.

- A page whose generator makes its own short run (a smoke run, a profile) is rebuilt.
- A page that comes from a long measurement run (calibration over 20 seeds, the nightly
  simulation, the performance goals) is rebuilt from that run's data when the data is here,
  and otherwise skipped, saying which run it needs and how long that run takes.
- A page written by its self-check while it runs (A/A pairs, the planted matrix) is skipped
  with the command that rebuilds it: rerunning is the only way to rebuild it.

    python -m qbtools.docs               # every page that can be rebuilt here and now
    python -m qbtools.docs power samples # only these pages
    python -m qbtools.docs --list        # what each page needs, and whether it is here
    python -m qbtools.docs --dry-run     # what would run and what would be skipped, and why

The generators run with this checkout's ``src/`` first on ``PYTHONPATH``. Exit 1 when a
generator failed, 2 on an unknown page name, 0 otherwise (skipped pages are not failures).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from qbtools import ROOT

GENERATED = ROOT / "docs" / "generated"
RESULTS = ROOT / "results"
PY = [sys.executable, "-m"]


@dataclass(frozen=True)
class Page:
    """One generator and the files under ``docs/`` it writes."""

    name: str
    files: tuple[str, ...]  # paths relative to docs/
    command: tuple[str, ...]  # argv that rebuilds the files, run from the repository root
    cost: str  # how long the command takes, in words
    data: tuple[Path, ...] = ()  # a long run's output the command rebuilds from
    made_by: str = ""  # the long run that makes ``data`` (or the page itself)
    needs: Callable[[], str | None] = field(default=lambda: None)  # other requirement


def _tool(name: str) -> Callable[[], str | None]:
    return lambda: None if shutil.which(name) or shutil.which(f"{name}-browser") \
        else f"needs headless {name.capitalize()} (apt-get install -y {name})"


def _env_path(var: str, default: str) -> Path:
    return Path(os.environ.get(var, default))


def _calibration(stem: str, suite: str, seeds: str, tasks: tuple[str, ...] = ()) -> Page:
    out = RESULTS / "calibration" / stem
    args = ("quirkbench", "calibrate", "--suite", suite, "--seeds", seeds,
            *(("--tasks", *tasks) if tasks else ()), "--out", str(out.relative_to(ROOT)),
            "--markdown", f"docs/generated/{stem}.md")
    return Page(stem, (f"generated/{stem}.md",), (*PY, *args, "--no-run"),
                "seconds (the table from the stored documents)", data=(out,),
                made_by=f"`{' '.join(args)} --jobs 2` (hours: "
                f"{'these tasks' if tasks else 'every task'} over the seeds)")


def _seed_swap(suite: str, cost: str, calibration_cost: str = "") -> Page:
    """The seed-swap null of a suite's noise model, from that suite's calibration run (pr's
    page is the generator's default ``--md``)."""
    page = "seed-swap" if suite == "pr" else f"seed-swap-{suite}"
    run = f"results/calibration/calibration-{suite}"
    md = () if suite == "pr" else ("--md", f"docs/generated/{page}.md")
    return Page(page, (f"generated/{page}.md",),
                (*PY, "qbtools.gate.seed_swap", run, "--model", f"bench/noise/{suite}.json",
                 "--unordered", "--in-sample", *md),
                f"{cost} (2 × 190 comparisons of one seed against another)",
                data=(ROOT / run,),
                made_by=f"the {suite} calibration (`quirkbench calibrate --suite {suite} --seeds "
                f"100-119 --out {run} --noise-model bench/noise/{suite}.json --jobs 2`"
                f"{calibration_cost})")


def _nightly_sim(name: str, plan: str, sim: Path, made_by: str) -> Page:
    def needs() -> str | None:
        found = json.loads((sim / "sim.json").read_text()).get("plan")
        return None if found == plan else f"{sim} holds a run of plan {found!r}, not {plan!r}"

    page = "nightly_sim_aa" if plan == "aa" else "nightly_sim"
    return Page(name, (f"generated/{page}.md",), (*PY, "qbtools.docs.nightly_sim", str(sim)),
                "seconds (from the run's folder)", data=(sim / "sim.json",), made_by=made_by,
                needs=needs)


SIM = _env_path("QB_SIM_DIR", "/tmp/qb-nightly-sim")
SIM_AA = _env_path("QB_SIM_AA_DIR", "/tmp/qb-nightly-sim-aa")
CAL = _env_path("QB_CAL_DIR", "/tmp/qb-bench-cal")
POWER_RUN = RESULTS / "docs" / "power-smoke.json"

PAGES: tuple[Page, ...] = (
    Page("reference", ("generated/cli.md", "generated/config.md", "generated/tasks.md"), (),
         "every `mkdocs build`", made_by="the MkDocs hook docs/hooks/reference.py"),
    Page("data-hashes", ("generated/data-hashes.md",), (*PY, "qbtools.docs.data_hashes"),
         "a second (read from the code)"),
    Page("samples", ("generated/sample-run.md", "generated/sample-compare.md"),
         (*PY, "qbtools.docs.examples"), "about a minute (two smoke runs and a compare)"),
    Page("running", ("generated/running.md",), (*PY, "qbtools.docs.running"),
         "about a minute (small runs interrupted and resumed)"),
    Page("profiling", ("generated/sample-profiling.md",), (*PY, "qbtools.docs.profiling"),
         "seconds (one profiled training step)"),
    Page("report", ("generated/sample-report-compare.md", "images/report-compare.png",
                    "images/report-compare-figures.png", "images/report-history.png"),
         (*PY, "qbtools.docs.report_screenshots"), "about a minute", needs=_tool("chromium")),
    Page("site-screenshot", ("images/site-task-page.png",),
         (*PY, "qbtools.docs.site_screenshot"), "about a minute (builds the site)",
         needs=_tool("chromium")),
    Page("power", ("generated/power.md",),
         (*PY, "qbtools.docs.power", str(POWER_RUN.relative_to(ROOT))), "seconds",
         data=(POWER_RUN,), made_by="`quirkbench run --suite smoke --seeds 0,1 --jobs 2 "
         f"--no-report --out {POWER_RUN.relative_to(ROOT)}` (about a minute)"),
    Page("compression-attacks", ("generated/compressed_robustness.md",
                                 "generated/attack_agreement.md"),
         (*PY, "qbtools.docs.compression_attacks"),
         "seconds when its documents are complete (it resumes them)",
         data=(RESULTS / "docs" / "compressed_robustness.json",
               RESULTS / "docs" / "attack_agreement.json"),
         made_by="`python -m qbtools.docs.compression_attacks` (hours: the quick suite's "
         "compressed_robustness and attack_agreement over seeds 0-4)"),
    Page("performance", ("generated/performance.md",),
         (*PY, "qbtools.docs.performance", "--render-from", "results/performance.json"),
         "seconds (rendered from the raw numbers)", data=(RESULTS / "performance.json",),
         made_by="`python -m qbtools.docs.performance` (20-30 minutes on a busy 2-core box)"),
    Page("bench-calibration", ("generated/bench_calibration.md",),
         (*PY, "qbtools.docs.bench_calibration", str(CAL)), "seconds",
         data=(CAL / "out-planted",),
         made_by="`qbtools/gate/bench_calibrate.sh` (about 30 minutes: five A/A gate runs "
         "and a planted one; QB_CAL_DIR)"),
    _nightly_sim("nightly-sim", "plants", SIM, "`qbtools/nightly/sim.sh` (5 nights, about 5 "
                 "minutes on a quiet 2-core box; QB_SIM_DIR)"),
    _nightly_sim("nightly-sim-aa", "aa", SIM_AA, "`QB_SIM_PLAN=aa QB_SIM_NIGHTS=8 "
                 "QB_SIM_DIR=$QB_SIM_AA_DIR qbtools/nightly/sim.sh` (8 nights)"),
    Page("aa", ("generated/aa.md",), (), "",
         made_by="`python -m qbtools.gate.aa` (pairs of runs, hours), which rewrites the "
         "page after every pair (docs/gate.md says how each section was made)"),
    Page("planted", ("generated/planted.md",), (), "",
         made_by="`python -m qbtools.gate.planted --suite pr --seeds 0` (one seed a side as "
         "the PR gate runs it; 15-30 minutes), which writes the page at its end"),
    Page("planted-burn", ("generated/planted-burn.md",), (), "",
         made_by="`python -m qbtools.gate.planted --suite pr --plants none --burn 2 --seeds 0 "
         "--md docs/generated/planted-burn.md` (the A/A of the whole pr suite with two "
         "CPU burners beside it; 20-30 minutes), which writes the page at its end"),
    Page("harmless", ("generated/harmless.md",), (), "",
         made_by="`python -m qbtools.gate.harmless --suite pr --seed 0` (seven pr runs of "
         "one seed, one of them under another torch; about 15 minutes), which writes the "
         "page at its end"),
    _seed_swap("pr", "10-50 minutes on a busy 2-core box"),
    _seed_swap("smoke", "about 6 minutes on a busy 2-core box", ", 3 minutes"),
    _seed_swap("quick", "about 12 minutes on a 2-core box", ", about 17 minutes"),
    Page("power-one-seed", ("generated/power-one-seed.md",),
         (*PY, "qbtools.docs.power_one_seed", "bench/noise/pr.json"),
         "seconds (from the committed noise model)"),
    Page("install", ("generated/install.md",),
         (*PY, "qbtools.docs.install", "--render-from", "results/docs/install.json"),
         "seconds (rendered from the raw numbers)", data=(RESULTS / "docs" / "install.json",),
         made_by="`python -m qbtools.docs.install` (about 10 minutes: two fresh environments "
         "and the extras resolved against the package registry)"),
    Page("first-run", ("generated/first-run.md", "report.png"),
         (*PY, "qbtools.docs.first_run", "--render-from", "results/docs/first-run.json"),
         "seconds (the page and the quoted times from the stored replay)",
         data=(RESULTS / "docs" / "first-run.json",),
         made_by="`python -m qbtools.docs.first_run` (a fresh clone and venv, the README's "
         "install, run and test commands: 15-40 minutes on a shared 2-core box; it also "
         "takes docs/report.png)"),
    _calibration("calibration-smoke", "smoke", "100-119"),
    _calibration("calibration-smoke-200", "smoke", "200-204"),
    _calibration("calibration-pr", "pr", "100-119"),
    _calibration("calibration-quick", "quick", "100-119"),
    _calibration("calibration-quick-200", "quick", "200-204"),
    _calibration("calibration-quick-adversarial", "quick", "100-119", ("adversarial",)),
    _calibration("calibration-quick-compression", "quick", "100-119", ("compression",)),
    _calibration("calibration-quick-memorization", "quick", "100-119", ("memorization",)),
)


def why_not(page: Page) -> str | None:
    """None when ``page`` can be rebuilt here and now, else the reason in one line."""
    if not page.command:
        return f"made by {page.made_by}" + ("" if page.cost else "; rerun that to rebuild it")
    missing = [p for p in page.data if not p.exists()]
    if missing:
        return f"needs {missing[0]}, made by {page.made_by}"
    return page.needs()


def _select(names: list[str]) -> list[Page]:
    by = {p.name: p for p in PAGES}
    unknown = [n for n in names if n not in by]
    if unknown:
        print(f"qbtools.docs: unknown page {unknown[0]!r}; valid: {', '.join(by)}",
              file=sys.stderr)
        raise SystemExit(2)
    return [by[n] for n in names] if names else list(PAGES)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m qbtools.docs",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("pages", nargs="*", help="page names (default: all); see --list")
    ap.add_argument("--list", action="store_true", help="list the pages and what each needs")
    ap.add_argument("--dry-run", action="store_true", help="say what would run; run nothing")
    a = ap.parse_args(argv)
    pages = _select(a.pages)
    if a.list:
        for p in pages:
            reason = why_not(p)
            state = f"ready: {p.cost}" if reason is None else reason
            print(f"{p.name}: {', '.join(p.files)}\n  {state}")
        return 0
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT / "src"), str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    failed = []
    for p in pages:
        reason = why_not(p)
        if reason is not None:
            print(f"{p.name}: skipped: {reason}")
            continue
        shown = " ".join(["python", *p.command[1:]])
        print(f"{p.name}: {'would run' if a.dry_run else 'running'} {shown}: {p.cost}",
              flush=True)
        if not a.dry_run and subprocess.run(p.command, cwd=ROOT, env=env).returncode != 0:
            failed.append(p.name)
    if failed:
        print(f"qbtools.docs: failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
