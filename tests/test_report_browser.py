"""The report in a real browser: headless Chromium loads the pages from files, offline, at a
laptop's width (1366 × 768): a screenshot, and measurements taken in the page (every figure
within the viewport, its smallest text ≥ 10 px as drawn, the verdict and every regression
in the first screen)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import numpy as np
import pytest
from report_docs import write_doc, write_planted

from quirkbench.report import render_history, render_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
         "--disable-dev-shm-usage"]
WIDTH, HEIGHT = 1366, 768  # a laptop's first screen

pytestmark = [pytest.mark.browser, pytest.mark.skipif(
    CHROMIUM is None, reason="headless Chromium is not installed "
                             "(apt-get install -y chromium chromium-driver)")]

# Runs in the page (a copy: the report itself holds no script) and writes what it measured
# into the DOM, which --dump-dom prints.
MEASURE = """<script>
window.addEventListener("load", () => {
  const figs = [...document.querySelectorAll("figure svg")].map(svg => {
    const r = svg.getBoundingClientRect(), vb = svg.viewBox.baseVal;
    return {left: r.left, right: r.right, width: r.width, vbw: vb.width,
            font: parseFloat(svg.dataset.minFont), label: svg.closest("figure").ariaLabel};
  });
  const box = el => { if (!el) return null; const r = el.getBoundingClientRect();
                      return {top: r.top + scrollY, bottom: r.bottom + scrollY}; };
  const rows = [...document.querySelectorAll("#verdict table.changes tbody tr")]
    .filter(tr => tr.textContent.includes("regressed")).map(box);
  const out = {figs, rows, verdict: box(document.getElementById("verdict")),
               regressions: box(document.getElementById("regressions-1")),
               scrollWidth: document.documentElement.scrollWidth, innerWidth: innerWidth};
  const pre = document.createElement("pre");
  pre.id = "qb-measure"; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


def chromium(page, *args, profile, width=WIDTH, height=HEIGHT) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}",
                           f"--window-size={width},{height}", *args, page.resolve().as_uri()],
                          capture_output=True, text=True, timeout=180)


def measure(page, tmp_path) -> dict:
    probe = page.with_name(page.stem + "-probe.html")
    probe.write_text(page.read_text().replace("</body>", MEASURE + "</body>"))
    run = chromium(probe, "--dump-dom", "--virtual-time-budget=10000",
                   profile=tmp_path / "profile-m")
    assert run.returncode == 0, run.stderr[-2000:]
    found = re.search(r'<pre id="qb-measure">(.*?)</pre>', run.stdout, re.S)
    assert found, run.stdout[-2000:]
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    d = tmp_path_factory.mktemp("browser")
    runs = write_planted(d / "results", runs=3)
    compare_page = render_report([runs[-1]], out=d / "compare.html", baseline=runs[0])
    history_page = render_history(d / "results", out=d / "history.html")
    return d, compare_page, history_page


@pytest.mark.parametrize("which", ["compare", "history"])
def test_figures_fit_the_viewport_with_legible_text(which, planted):
    d, compare_page, history_page = planted
    m = measure(compare_page if which == "compare" else history_page, d)
    assert m["innerWidth"] == WIDTH and m["scrollWidth"] <= WIDTH  # no sideways scrolling
    assert len(m["figs"]) >= (6 if which == "compare" else 10)
    for f in m["figs"]:
        assert f["left"] >= 0 and f["right"] <= WIDTH, f
        px = f["font"] * f["width"] / f["vbw"]  # the smallest text as drawn, in CSS px
        assert px >= 9.95, (f["label"], px)


def test_every_regression_is_in_the_first_screen(planted):
    d, compare_page, _ = planted
    m = measure(compare_page, d)
    assert m["verdict"]["top"] < 120
    assert len(m["rows"]) == 13  # the planted regressions, all in the verdict table
    assert all(r["bottom"] <= HEIGHT for r in m["rows"]), m["rows"]


def test_history_regressions_in_the_first_screen(planted):
    d, _, history_page = planted
    html = history_page.read_text()
    assert html.count("▼ regressed</span>") >= 13
    m = measure(history_page, d)
    assert m["regressions"]["top"] < HEIGHT / 2  # the list of regressions opens the page


def test_report_screenshot(tmp_path):
    from matplotlib.image import imread

    head = write_doc(tmp_path / "head.json")
    base = write_doc(tmp_path / "base.json", speed=2.0, commit="b" * 40)
    page = render_report([head], out=tmp_path / "report.html", baseline=base)
    png = tmp_path / "report.png"
    run = chromium(page, f"--screenshot={png}", profile=tmp_path / "profile", height=2000)
    assert run.returncode == 0, run.stderr[-2000:]
    assert png.is_file() and png.stat().st_size > 50_000
    img = imread(png)  # (H, W, channels) floats in [0, 1]
    assert img.shape[:2] == (2000, WIDTH)
    ink = (img[..., :3].mean(axis=2) < 0.9).mean()  # share of non-white pixels
    assert 0.02 < ink < 0.6, ink  # text, tables and plots drawn, not a blank or error page
    # the content column (max 1320 px, centred) leaves the right margin blank: nothing overflows
    assert np.all(img[:, -20:, :3] > 0.95)
