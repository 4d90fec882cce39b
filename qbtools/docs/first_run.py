"""The first hour, replayed: a fresh clone, a fresh virtual environment, the README's
install, run and test commands exactly as written (install without ``--index-url``, as CI
runs it), timed; the README's screenshot and every time the docs quote come from it.

    python -m qbtools.docs.first_run                 # the whole replay (the tests: minutes)
    python -m qbtools.docs.first_run --skip-test     # install and run only
    python -m qbtools.docs.first_run --render-from results/docs/first-run.json

Writes ``results/docs/first-run.json`` (the raw transcript), ``docs/generated/first-run.md``
(the transcript with times and the machine's load), ``docs/report.png`` (the first screen
of the run's report, by headless Chromium) and rewrites the times marked
``<!-- time:smoke -->…<!-- /time -->`` in README.md and docs/getting-started.md. The commands
run with no extra environment variables (no ``OMP_NUM_THREADS``, no ``PYTHONPATH``).
Exit 1 when a command failed or a holds check printed NO.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from qbtools import ROOT

RAW = ROOT / "results" / "docs" / "first-run.json"
PAGE = ROOT / "docs" / "generated" / "first-run.md"
PNG = ROOT / "docs" / "report.png"
QUOTED = (ROOT / "README.md", ROOT / "docs" / "getting-started.md")
MARK = re.compile(r"(<!-- time:smoke -->)(.*?)(<!-- /time -->)")
DROP = ("PYTHONPATH", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "VIRTUAL_ENV", "PIP_CONSTRAINT")


def _load() -> str:
    return Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() \
        else "?"


def step(name: str, command: str, clone: Path, env: dict[str, str]) -> dict:
    """Run one README command as a user types it: (wall seconds, load before and after,
    exit status, output)."""
    print(f"first_run: {name}: {command}", flush=True)
    before, t0 = _load(), time.perf_counter()
    p = subprocess.run(["bash", "-c", command], cwd=clone, env=env, capture_output=True,
                       text=True)
    return {"name": name, "command": command, "seconds": time.perf_counter() - t0,
            "load_before": before, "load_after": _load(), "rc": p.returncode,
            "output": (p.stdout + p.stderr).rstrip()}


def _readme(name: str, clone: Path) -> str:
    args = [sys.executable, "scripts/readme_commands.py", name] + (["--ci"] if name == "install"
                                                                    else [])
    return subprocess.run(args, cwd=clone, capture_output=True, text=True,
                          check=True).stdout.strip()


def replay(skip_test: bool) -> dict:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                            capture_output=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="qb-first-run-") as tmp:
        clone = Path(tmp) / "quirkbench"
        subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
        subprocess.run([sys.executable, "-m", "venv", str(clone / ".venv")], check=True)
        env = {k: v for k, v in os.environ.items() if k not in DROP}
        env |= {"PATH": f"{clone / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}",
                "PIP_CACHE_DIR": str(Path(tmp) / "pip-cache"), "NO_MKDOCS_2_WARNING": "1"}
        steps = [step("install", _readme("install", clone), clone, env)]
        steps.append(step("run", _readme("run", clone), clone, env))
        reports = sorted((clone / "reports").glob("*.html"))
        if reports:
            screenshot(reports[-1])
        if not skip_test and all(s["rc"] == 0 for s in steps):
            # the clone's own docs first say what this replay measured (its tests check that
            # the quoted times match the page), then its tests run on them
            so_far = {"commit": commit, "machine": "", "when": "", "steps": steps}
            (clone / "docs" / "generated" / "first-run.md").write_text(render(so_far))
            quote_times(so_far, clone)
            steps.append(step("test", _readme("test", clone), clone, env))
        for s in steps:
            s["output"] = s["output"].replace(str(clone), ".")
    return {"commit": commit, "machine": f"{platform.machine()} {platform.system()}, "
            f"{os.cpu_count()} CPUs, Python {platform.python_version()}",
            "when": f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC", "steps": steps}


def screenshot(report: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("first_run: no headless Chromium: docs/report.png left as it was", file=sys.stderr)
        return
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                        "--hide-scrollbars", "--disable-dev-shm-usage", "--no-first-run",
                        f"--user-data-dir={profile}", "--window-size=1366,900",
                        f"--screenshot={PNG}", report.as_uri()], check=True,
                       capture_output=True, timeout=120)
    print(f"first_run: wrote {PNG}")


def verdicts(output: str) -> dict[str, int]:
    """How many headline rows of the run's summary say yes, NO, or not shown."""
    rows = [line for line in output.splitlines() if re.match(r"^\S+/\S+\s", line)]
    return {"yes": sum(bool(re.search(r"\s{2}yes(\s{2}|$)", r)) for r in rows),
            "NO": sum(bool(re.search(r"\s{2}NO(\s{2}|$)", r)) for r in rows),
            "not shown": sum("not shown at this budget" in r for r in rows)}


def render(raw: dict) -> str:
    by = {s["name"]: s for s in raw["steps"]}
    lines = [
        "# The first hour: a fresh clone, as the README says",
        "",
        f"*Generated by `python -m qbtools.docs.first_run` at commit {raw['commit']}, "
        f"{raw['machine']}, {raw['when']}: a fresh clone and a fresh virtual environment, "
        "the README's commands typed as written (the install without `--index-url`, as CI "
        "runs it), no extra environment variables. Load is the 1-minute load average of "
        "this shared machine before and after each command.*",
        "",
        "| step | command | wall time | load before → after | exit status |",
        "| --- | --- | --- | --- | --- |",
    ]
    for s in raw["steps"]:
        lines.append(f"| {s['name']} | `{s['command']}` | {s['seconds']:.0f} s | "
                     f"{s['load_before']} → {s['load_after']} | {s['rc']} |")
    if "test" not in by:
        lines += ["", "The test command was not part of this replay."]
    if "run" in by:
        v = verdicts(by["run"]["output"])
        lines += ["", f"The run's summary: {v['yes']} holds checks yes, {v['NO']} NO, "
                  f"{v['not shown']} not shown at this budget.", "", "## The run", "",
                  "```console", f"$ {by['run']['command']}", by["run"]["output"], "```"]
    if "test" in by:
        tail = "\n".join(by["test"]["output"].splitlines()[-12:])
        lines += ["", "## The tests (last lines)", "", "```console",
                  f"$ {by['test']['command']}", "...", tail, "```"]
    return "\n".join(lines) + "\n"


def quote_times(raw: dict, root: Path = ROOT) -> None:
    """The docs' quoted time of the smoke run, from this replay's run step."""
    run = next((s for s in raw["steps"] if s["name"] == "run"), None)
    if run is None:
        return
    text = f"{run['seconds']:.0f} s here, load {run['load_before']}"
    for path in (root / p.relative_to(ROOT) for p in QUOTED):
        old = path.read_text(encoding="utf-8")
        new = MARK.sub(lambda m: f"{m.group(1)}{text}{m.group(3)}", old)
        if new != old:
            path.write_text(new, encoding="utf-8")
            print(f"first_run: {path.name}: the smoke run's time is {text}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m qbtools.docs.first_run",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--skip-test", action="store_true", help="install and run only")
    ap.add_argument("--render-from", metavar="JSON", help="only write the page and the times")
    a = ap.parse_args(argv)
    if a.render_from:
        raw = json.loads(Path(a.render_from).read_text())
    else:
        raw = replay(a.skip_test)
        RAW.parent.mkdir(parents=True, exist_ok=True)
        RAW.write_text(json.dumps(raw, indent=1))
    PAGE.write_text(render(raw))
    quote_times(raw)
    print(f"first_run: wrote {PAGE}")
    failed = [s["name"] for s in raw["steps"] if s["rc"] != 0]
    run = next((s for s in raw["steps"] if s["name"] == "run"), None)
    no = verdicts(run["output"])["NO"] if run else 0
    if failed or no:
        print(f"first_run: failed: {', '.join(failed) or ''}{' ' if failed and no else ''}"
              f"{f'{no} holds checks NO' if no else ''}", file=sys.stderr)
    return 1 if failed or no else 0


if __name__ == "__main__":
    sys.exit(main())
