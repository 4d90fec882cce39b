"""``quirkbench report``: render results documents (or a folder's history) as HTML."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import UserError
from ..report import render_history, render_report
from ..tracking.results import find_documents, read


def _run_id(path: Path, doc: dict) -> str:
    import hashlib

    return doc["meta"].get("run_id") or hashlib.sha1(
        str(Path(path).resolve()).encode()).hexdigest()[:8]


def report_path(path: Path, doc: dict, baseline: Path | None = None,
                base_doc: dict | None = None) -> Path:
    """reports/<results name>-<run id>.html: two runs' reports never overwrite each other,
    even when their documents share a name (results/a/run.json, results/b/run.json).

    A comparison page (``baseline``: the baseline's first document and ``base_doc`` it read)
    is reports/<results name>-<run id>-vs-<baseline name>-<its run id>.html: it never
    overwrites the run's own report, nor another comparison of the same run."""
    name = f"{Path(path).stem}-{_run_id(path, doc)}"
    if baseline is not None:
        name += f"-vs-{Path(baseline).stem}-{_run_id(baseline, base_doc or {'meta': {}})}"
    return Path("reports") / f"{name}.html"


def _newest(folder: Path) -> Path:
    docs = find_documents(folder) if folder.is_dir() else []
    if not docs:
        raise UserError(f"no results documents in {folder}/; give RESULTS paths or run "
                        "`quirkbench run` first")
    return max(docs, key=lambda p: p.stat().st_mtime)


def run(results: list[str] | None = None, baseline: str | None = None,
               out: str | None = None, history: bool = False) -> int:
    """``quirkbench report``: the newest run in results/ by default; ``--history`` for a folder."""
    if history:
        if results and len(results) > 1:
            raise UserError("--history takes one folder of results documents")
        folder = Path(results[0] if results else "results")
        if not folder.is_dir():
            raise UserError(f"--history needs a folder of results documents; {folder} is not one")
        path = render_history(folder, out=Path(out or "reports/history.html"))
    else:
        paths = [Path(r) for r in results] if results else [_newest(Path("results"))]
        first = find_documents(paths[0])[0]
        if out is None:
            base = find_documents(baseline)[0] if baseline is not None else None
            out = report_path(first, read(first), base, read(base) if base else None)
        path = render_report(paths, out=Path(out), baseline=baseline)
    print(f"report: {path}")
    return 0


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``quirkbench report`` on the CLI's subparsers."""
    p = subparsers.add_parser("report", help="render results documents into an HTML report")
    p.add_argument("results", nargs="*", metavar="RESULTS",
                   help="results documents or folders of them (default: the newest in results/; "
                        "with --history: the folder, default results/)")
    p.add_argument("--baseline", help="results document to compare against (change vs baseline)")
    p.add_argument("--out", help="HTML file to write (default reports/<results name>-<run "
                                 "id>.html; with --baseline reports/<results name>-<run id>-vs-"
                                 "<baseline name>-<run id>.html; with --history "
                                 "reports/history.html)")
    p.add_argument("--history", action="store_true",
                   help="a history page: headline metrics over every run in the folder")
    p.set_defaults(func=run)
    return p
