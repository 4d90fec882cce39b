"""HTML reports: one self-contained page per run, and a history page across commits.

Jinja2 templates (autoescaped) in ``templates/``; plots in ``plots.py`` rendered to inline
SVG; CSS inline. A page makes no external request and opens offline. The report reads
results documents and never recomputes a metric.

    render_report(["results/run.json"], out="reports/run.html", baseline="results/base.json")
    render_history("results/", out="reports/history.html")
"""

from __future__ import annotations

from pathlib import Path

from ..errors import UserError
from ..tracking.results import find_documents

__all__ = ["render_report", "render_history"]


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

    ``baseline``: a results document (or a folder of them) to compare against: the page then
    opens with the verdict (counts, both sides' commits, dates, machines and seeds, and a
    table of every metric that did not stay unchanged, regressions first), and the tables
    and plots below show the baseline too. Returns ``out``.
    """
    from .view import report_context

    paths = [p for r in results for p in find_documents(r)]
    if not paths:
        raise UserError("no results documents to report on")
    base = find_documents(baseline) if baseline is not None else None
    out = Path(out)
    html = _env().get_template("report.html").render(**report_context(paths, out, base))
    return _write(out, html)


def render_history(results_dir: Path | str, *, out: Path | str) -> Path:
    """Render every results document in ``results_dir`` into a history page at ``out``."""
    from .history import history_context

    html = _env().get_template("history.html").render(**history_context(Path(results_dir)))
    return _write(Path(out), html)
