"""Screenshots for the docs: the built site's task page, taken by headless Chromium.

    python -m qbtools.docs.site_screenshot      # → docs/images/site-task-page.png

Builds the site into a temporary folder (``mkdocs build``), opens the adversarial task page
from a file URL at a laptop's width (1366 px) and saves the screenshot. The report's own
screenshots are made by the report's scripts.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from qbtools import ROOT

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
         "--disable-dev-shm-usage"]


def main() -> int:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("needs headless Chromium (apt-get install -y chromium)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "site"
        subprocess.run([sys.executable, "-m", "mkdocs", "build", "--site-dir", str(site)],
                       cwd=ROOT, check=True, capture_output=True)
        page = site / "tasks" / "adversarial" / "index.html"
        out = ROOT / "docs" / "images" / "site-task-page.png"
        out.parent.mkdir(exist_ok=True)
        subprocess.run([chromium, *FLAGS, f"--user-data-dir={tmp}/profile",
                        "--window-size=1366,900", f"--screenshot={out}", page.as_uri()],
                       check=True, capture_output=True, timeout=120)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
