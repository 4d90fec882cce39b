"""HTML reports: one self-contained page per run, and a history page across commits.

Jinja2 templates (autoescaped) in ``templates/``; plots in ``plots.py`` rendered to inline
SVG; CSS inline. A page makes no external request and opens offline. The report reads
results documents and never recomputes a metric.

    render_report(["results/run.json"], out="reports/run.html", baseline="results/base.json")
    render_history("results/", out="reports/history.html")
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import UserError
from ..results import find_documents

__all__ = ["render_report", "render_history", "add_parser", "cmd_report"]


def _env():
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    return Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                       autoescape=True, undefined=StrictUndefined, trim_blocks=True,
                       lstrip_blocks=True)


def _write(out: Path, html: str) -> Path:
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(html, encoding="utf-8")
    except OSError as e:
        raise UserError(f"cannot write the report to {out}: {e.strerror}") from None
    return out


def render_report(results: list[Path | str], *, out: Path | str,
                  baseline: Path | str | None = None) -> Path:
    """Render the results documents (files or folders of them) into one HTML file at ``out``.

    ``baseline``: a results document to compare against (the "vs baseline" column and the
    baseline ticks in throughput plots). Returns ``out``.
    """
    from .view import report_context

    paths = [p for r in results for p in find_documents(r)]
    if not paths:
        raise UserError("no results documents to report on")
    base = find_documents(baseline)[0] if baseline is not None else None
    out = Path(out)
    html = _env().get_template("report.html").render(**report_context(paths, out, base))
    return _write(out, html)


def render_history(results_dir: Path | str, *, out: Path | str) -> Path:
    """Render every results document in ``results_dir`` into a history page at ``out``."""
    from .history import history_context

    html = _env().get_template("history.html").render(**history_context(Path(results_dir)))
    return _write(Path(out), html)


def _newest(folder: Path) -> Path:
    docs = find_documents(folder) if folder.is_dir() else []
    if not docs:
        raise UserError(f"no results documents in {folder}/; give RESULTS paths or run "
                        "`quirkbench run` first")
    return max(docs, key=lambda p: p.stat().st_mtime)


def cmd_report(results: list[str] | None = None, baseline: str | None = None,
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
        path = render_report(paths, out=Path(out or Path("reports") / f"{first.stem}.html"),
                             baseline=baseline)
    print(f"report: {path}")
    return 0


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``quirkbench report`` on the CLI's subparsers."""
    p = subparsers.add_parser("report", help="render results documents into an HTML report")
    p.add_argument("results", nargs="*", metavar="RESULTS",
                   help="results documents or folders of them (default: the newest in results/; "
                        "with --history: the folder, default results/)")
    p.add_argument("--baseline", help="results document to compare against (change vs baseline)")
    p.add_argument("--out", help="HTML file to write (default reports/<results name>.html, "
                                 "or reports/history.html)")
    p.add_argument("--history", action="store_true",
                   help="a history page: headline metrics over every run in the folder")
    p.set_defaults(func=cmd_report)
    return p
