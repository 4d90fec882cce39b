"""``quirkbench history RESULTS_DIR``: step changes of each tracked metric over commits."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import UserError


def run(results_dir: str, all_metrics: bool = False, markdown: str | None = None) -> int:
    """Print, per suite and tracked metric, the steps found in its history (first commit
    after each step, levels before → after, size). Exit 0 (informative)."""
    from ..tracking.changepoints import history_steps

    folder = Path(results_dir)
    if not folder.is_dir():
        raise UserError(f"history needs a folder of results documents; {folder} is not one")
    suites = history_steps(folder, all_metrics)
    if not suites:
        raise UserError(f"no quirkbench results documents in {folder}/")
    lines = []
    for s in suites:
        n_steps = sum(len(m["steps"]) for m in s["series"].values())
        lines.append(f"{s['suite']} suite: {len(s['commits'])} runs "
                     f"({s['commits'][0][:10]} … {s['commits'][-1][:10]}), "
                     f"{len(s['series'])} tracked metrics, {n_steps} steps")
        for (task, dataset, key), m in s["series"].items():
            for st in m["steps"]:
                lines.append(f"  {task}/{dataset} {key}: {st.describe(m['unit'])}")
        if not n_steps:
            lines.append("  no steps")
    text = "\n".join(lines)
    print(text)
    if markdown:
        try:
            Path(markdown).write_text("```\n" + text + "\n```\n")
        except OSError as e:
            raise UserError(f"cannot write --markdown {markdown}: {e.strerror}") from None
    return 0


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("history",
                              help="step changes of each tracked metric over a folder's runs")
    p.add_argument("results_dir", metavar="RESULTS_DIR",
                   help="folder of results documents (one per night/commit)")
    p.add_argument("--all", dest="all_metrics", action="store_true",
                   help="every metric, not only the tasks' headline metrics")
    p.add_argument("--markdown", metavar="FILE", help="also write the list to FILE")
    p.set_defaults(func=run)
    return p
