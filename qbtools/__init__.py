"""The repository's own tools, apart from the product: run from the repository root as
``python -m qbtools.<module>`` (the root is then on the import path; nothing here edits it).

- ``qbtools.gate``: the gate's helpers and self-checks: the store of base sides the PR
  gate reuses (``base_store``), A/A pairs (``aa``), the planted-regression matrix
  (``planted``), the pytest-benchmark gate's control check and its calibration
  (``bench_control``, ``bench_calibrate.sh``);
- ``qbtools.nightly``: the nightly pipeline simulated on a CPU (``sim.sh``), the changes it
  plants (``plant``) and its asv record (``sim_asv``);
- ``qbtools.docs``: the generators of ``docs/generated/``, behind one command
  (``python -m qbtools.docs``).

The workflow steps that CI runs (the PR gate, the nightly, the benchmark gate) stay in
``scripts/``.
"""

from __future__ import annotations

import sys
from pathlib import Path

#: the repository checkout these tools belong to
ROOT = Path(__file__).resolve().parents[1]


def require_checkout() -> None:
    """Exit 2 unless ``import quirkbench`` gives this checkout's ``src/``: a tool that
    measured another install would label its numbers with this commit."""
    import quirkbench

    where = Path(quirkbench.__file__).resolve().parent
    if where != (ROOT / "src" / "quirkbench").resolve():
        print(f"qbtools: python imports quirkbench from {where}, not this checkout's "
              f"{ROOT / 'src'}; run from the repository root with PYTHONPATH=src "
              f"(or pip install -e .)", file=sys.stderr)
        raise SystemExit(2)
