"""Plant a known change in a checkout (for the nightly simulation and the benchmark checks).

    python -m qbtools.nightly.plant slowdown   [REPO]   # the engine's training step ~25% slower
    python -m qbtools.nightly.plant phenomenon [REPO]   # PGD with half its step size

``slowdown`` busy-waits, after each optimizer step of ``quirkbench.engine.train.train``,
until the process has spent a quarter more CPU time on that step: every training step
costs 25% more (in CPU time, and in wall time on a steady machine) and nothing else
changes (same numbers, same code path). A wait measured in wall time would cost less CPU
on a loaded machine, where the spin is often descheduled. ``phenomenon`` halves PGD's
default step size (2.5·ε/steps → 1.25·ε/steps): a weaker attack, so success rates move.
Each edit checks that the code it patches is still there and fails loudly otherwise.
"""

from __future__ import annotations

import sys
from pathlib import Path

PLANTS = {
    "slowdown": ("src/quirkbench/engine/train.py", [
        ("            xb, yb = x[idx], y[idx]\n            logits = model(xb)\n",
         "            t_plant = time.process_time()\n"
         "            xb, yb = x[idx], y[idx]\n            logits = model(xb)\n"),
        ("            opt.step()\n            if mask_list:\n"
         "                _apply_masks(mask_list)\n            step += 1\n",
         "            opt.step()\n"
         "            until = time.process_time() + 0.25 * (time.process_time() - t_plant)\n"
         "            while time.process_time() < until:  # planted: 25% slower\n"
         "                pass\n"
         "            if mask_list:\n                _apply_masks(mask_list)\n"
         "            step += 1\n"),
    ]),
    "phenomenon": ("src/quirkbench/methods/attacks/pgd.py", [
        ("step = 2.5 * eps / self.steps if", "step = 1.25 * eps / self.steps if"),
    ]),
}


def plant(name: str, repo: Path) -> Path:
    rel, edits = PLANTS[name]
    path = repo / rel
    text = path.read_text()
    for old, new in edits:
        if text.count(old) != 1:
            raise SystemExit(f"nightly_plant: {name}: the code to patch is not (once) in {rel}")
        text = text.replace(old, new)
    path.write_text(text)
    return path


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3) or sys.argv[1] not in PLANTS:
        raise SystemExit(f"usage: python -m qbtools.nightly.plant {{{','.join(PLANTS)}}} [REPO]")
    print(plant(sys.argv[1], Path(sys.argv[2] if len(sys.argv) == 3 else ".")))
