"""``quirkbench calibrate``: run a suite over many seeds and tabulate how often each check holds.

A ``holds`` check says a phenomenon reproduced. Its threshold is only trustworthy if it was
tuned on some seeds (0-9 by this project's rule) and then holds on seeds it never saw
(100-119). This command runs the suite on the given seeds through the ordinary runner (so an
interrupted calibration resumes and the executors work) and writes, per task × data set ×
metric:

- for every ``holds`` check: passes k/N over the seeds (a unit that failed counts as a
  failed check), whether k/N reaches the pass rate asked for (default 0.95 = 19/20);
- for every performance goal: met k/N;
- the value's median and its 5-95% range over the seeds;
- the coefficient of variation (std/|mean|, in %) of every headline metric.

Outputs in ``--out DIR``: ``results-SUITE[-TASKS]-sSEEDS.json`` (the run documents; every
``results-*.json`` of the folder feeds the table, so a calibration split over processes by
``--tasks`` shares one folder), ``calibration.csv``, ``calibration.json`` and
``calibration.md``; ``--markdown FILE`` also writes the Markdown page elsewhere (the docs'
generated table); ``--noise-model FILE`` writes the noise model ``quirkbench compare`` weighs
one-seed changes against (``tracking.noise``). ``--no-run`` rebuilds the table (and the
model) from the documents already there.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from ..errors import UserError
from ..tracking.calibration import PASS_RATE, seed_text, write_outputs
from ..tracking.noise import write_noise_model


def run(suite: str = "quick", seeds: str = "100-119", out: str | None = None,
        tasks: list[str] | None = None, datasets: list[str] | None = None,
        sets: list[str] | None = None, device: str = "auto", executor: str = "local",
        jobs: str | None = None, markdown: str | None = None, pass_rate: float = PASS_RATE,
        no_run: bool = False, quiet: bool = False, noise_model: str | None = None) -> int:
    """Run (or resume) the suite on ``seeds`` into ``out``, then write the table.

    Exit status 0 when every check meets the pass rate, 1 otherwise."""
    from ..runner.suite import parse_seeds, run_suite
    from .run import RUN_DEFAULTS, _overrides

    if not out:
        raise UserError("calibrate needs --out DIR (the folder for the runs and the table)")
    if not 0 < pass_rate <= 1:
        raise UserError(f"--pass-rate is a fraction in (0, 1], got {pass_rate}")
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"--out {folder} is a file; calibrate writes a folder")
    log = (lambda m: None) if quiet else (lambda m: print(m, flush=True))
    if not no_run:
        seed_list = parse_seeds(seeds)
        # one document per (tasks, seeds) call: calls split over processes never share one
        name = (f"results-{suite}" + ("-" + "-".join(sorted(tasks)) if tasks else "")
                + f"-s{seed_text(seed_list).replace(',', '_')}.json")
        run_suite(suite, tasks=tasks, datasets=datasets, seeds=seed_list, device=device,
                  out=folder / name, overrides=_overrides(sets), executor=executor,
                  argv=sys.argv[1:], log=log, jobs=jobs or RUN_DEFAULTS["jobs"])
    rows = write_outputs(folder, pass_rate, markdown)
    if noise_model:
        n = write_noise_model(folder, noise_model, _command(
            suite, seeds, out, tasks, datasets, sets, no_run, noise_model))
        print(f"noise model: {n} metrics over the seeds in {folder}, written to {noise_model}")
    checks = [r for r in rows if r["check"]]
    bad = [r for r in checks if not r["ok"]]
    for r in checks:
        log(f"{'ok   ' if r['ok'] else 'BELOW'} {r['passes']:>3}/{r['n_seeds']:<3} "
            f"{r['task']}/{r['dataset']} {r['metric']}")
    print(f"{len(checks) - len(bad)} of {len(checks)} checks hold on ≥ {pass_rate:.0%} of the "
          f"seeds; table: {folder / 'calibration.md'}"
          + (f", {markdown}" if markdown else ""))
    return 1 if bad else 0


def _command(suite, seeds, out, tasks, datasets, sets, no_run, noise_model) -> str:
    """The command that remakes this noise model (recorded in its stamp)."""
    args = ["quirkbench", "calibrate", "--suite", suite]
    args += [] if no_run else ["--seeds", str(seeds)]
    args += ["--out", str(out)] + (["--tasks", *tasks] if tasks else [])
    args += ["--dataset", *datasets] if datasets else []
    for s in sets or []:
        args += ["--set", s]
    return shlex.join([*args, *(["--no-run"] if no_run else []), "--noise-model",
                       str(noise_model)])


def add_parser(sub) -> None:
    from .run import add_jobs_argument

    c = sub.add_parser("calibrate", help="run a suite over many seeds; tabulate how often each "
                                         "holds check passes and each metric's spread")
    c.add_argument("--suite", default="quick", help="smoke | pr | quick (default) | nightly")
    c.add_argument("--seeds", default="100-119",
                   help="validation seeds, e.g. 100-119 (default); never the tuning seeds 0-9")
    c.add_argument("--out", required=True, metavar="DIR",
                   help="folder for the run documents and the table (an existing one resumes)")
    c.add_argument("--tasks", nargs="+", metavar="TASK", help="only these tasks")
    c.add_argument("--dataset", dest="datasets", nargs="+", metavar="NAME",
                   help="data set(s) (default: each task's own)")
    c.add_argument("--set", dest="sets", action="append", metavar="TASK.KEY=VALUE",
                   help="override a task setting (repeatable)")
    c.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    c.add_argument("--executor", default="local", help="local (default) | ray")
    add_jobs_argument(c)
    c.add_argument("--markdown", metavar="FILE",
                   help="also write the Markdown table here (e.g. docs/generated/"
                        "calibration-quick.md)")
    c.add_argument("--pass-rate", type=float, default=PASS_RATE,
                   help="fraction of seeds a check must hold on (default 0.95 = 19/20)")
    c.add_argument("--no-run", action="store_true",
                   help="only rebuild the table from the documents already in --out")
    c.add_argument("--noise-model", metavar="FILE",
                   help="also write the suite's noise model (each metric's seed-to-seed "
                        "spread, for quirkbench compare), e.g. bench/noise/pr.json")
    c.add_argument("-q", "--quiet", action="store_true", help="only the summary")
    c.set_defaults(func=run)
