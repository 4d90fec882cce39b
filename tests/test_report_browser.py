"""The report in a real browser: headless Chromium loads the page from a file, offline, and
takes a screenshot at a laptop's width (1366 px)."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
from report_docs import write_doc

from quirkbench.report import render_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
         "--disable-dev-shm-usage"]

pytestmark = [pytest.mark.browser, pytest.mark.skipif(
    CHROMIUM is None, reason="headless Chromium is not installed "
                             "(apt-get install -y chromium chromium-driver)")]


def screenshot(page, png, profile, width=1366, height=2000) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}",
                           f"--window-size={width},{height}", f"--screenshot={png}",
                           page.resolve().as_uri()], capture_output=True, text=True, timeout=120)


def test_report_screenshot(tmp_path):
    from matplotlib.image import imread

    head = write_doc(tmp_path / "head.json")
    base = write_doc(tmp_path / "base.json", speed=2.0, commit="b" * 40)
    page = render_report([head], out=tmp_path / "report.html", baseline=base)
    png = tmp_path / "report.png"
    run = screenshot(page, png, tmp_path / "profile")
    assert run.returncode == 0, run.stderr[-2000:]
    assert png.is_file() and png.stat().st_size > 50_000
    img = imread(png)  # (H, W, channels) floats in [0, 1]
    assert img.shape[:2] == (2000, 1366)
    ink = (img[..., :3].mean(axis=2) < 0.9).mean()  # share of non-white pixels
    assert 0.02 < ink < 0.6, ink  # text, tables and plots drawn, not a blank or error page
    # the content column (max 1200 px, centred) leaves the right margin blank: nothing overflows
    assert np.all(img[:, -60:, :3] > 0.95)
