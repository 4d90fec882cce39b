"""``quirkbench profile``: profile a training step or a PGD iteration; write traces."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from ..errors import UserError
from ..metrics import fmt_value


def run(model: str = "mlp-512", batch: int = 128, what: str = "train",
                out: str | None = None, device: str = "auto", wait: int = 1, warmup: int = 1,
                active: int = 3, eps: float = 0.1, seed: int = 0) -> int:
    """``quirkbench profile``: profile a training step or a PGD iteration on random data."""
    from ..engine.data import resolve_device
    from ..engine.models import is_reference, make_model, validate_model
    from ..engine.profiling import (
        WHATS,
        attack_step_fn,
        input_shape_for,
        profile_steps,
        random_data,
        train_step_fn,
    )

    if what not in WHATS:
        raise UserError(f"unknown --what {what!r}; valid: {', '.join(WHATS)}")
    if batch < 1:
        raise UserError(f"--batch must be ≥ 1, got {batch}")
    dev = resolve_device(device)
    shape = input_shape_for(model)
    if is_reference(model):  # a user's factory: one line if it cannot work here
        validate_model(model, shape, 10, dev)
    net = make_model(model, shape, 10, seed=seed).to(dev)
    x, y = random_data(shape, max(4 * batch, batch) if what == "train" else batch, dev, seed)
    step = (train_step_fn(net, x, y, batch, seed=seed) if what == "train"
            else attack_step_fn(net, x, y, eps))
    out_dir = Path(out) if out else Path("profiles") / (
        f"{datetime.now().strftime('%Y%m%d-%H%M%S')}-{model.replace(':', '_')}-{what}-b{batch}")
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--out {out_dir} is a file; give a folder")
    try:
        s = profile_steps(step, dev, wait=wait, warmup=warmup, active=active, out_dir=out_dir,
                          worker=f"{model}-{what}")
    except OSError as e:
        raise UserError(f"cannot write traces to {out_dir}: {e.strerror}") from None
    print(f"{what} step of {model} at batch {batch} on {s.device}, {s.steps} active steps:")
    for m in s.metrics():
        tag = f" {m.tags['op']}" if "op" in m.tags else ""
        print(f"  {m.name}{tag}: {fmt_value(m.value, m.unit)}")
    print(f"traces: {out_dir}/ (TensorBoard: tensorboard --logdir {out_dir.parent}; "
          f"Perfetto: open {out_dir / 'trace.json'} at https://ui.perfetto.dev; "
          f"Holistic Trace Analysis: TraceAnalysis(trace_dir=\"{out_dir / 'hta'}\"))")
    return 0


def add_parser(subparsers) -> None:
    """Register ``quirkbench profile`` on the CLI's subparsers."""
    p = subparsers.add_parser("profile", help="profile a training step or an attack iteration "
                                              "with torch.profiler; write traces")
    p.add_argument("--model", default="mlp-512",
                   help="model name or package.module:factory (default mlp-512)")
    p.add_argument("--batch", type=int, default=128, help="batch size (default 128)")
    p.add_argument("--what", default="train", help="train (default) | attack (PGD-L∞ iterations)")
    p.add_argument("--out", help="trace folder (default profiles/DATE-MODEL-WHAT-bBATCH)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--wait", type=int, default=1, help="steps skipped before recording")
    p.add_argument("--warmup", type=int, default=1, help="steps traced but discarded")
    p.add_argument("--active", type=int, default=3, help="steps recorded")
    p.add_argument("--eps", type=float, default=0.1, help="L∞ budget for --what attack")
    p.add_argument("--seed", type=int, default=0, help="weights and data seed")
    p.set_defaults(func=run)
