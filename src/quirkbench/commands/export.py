"""``quirkbench export RESULTS``: metrics as TensorBoard scalars and MLflow runs.

* ``--tensorboard DIR``: one TensorBoard run per suite (the folder ``DIR/SUITE``: runs of
  different suites are never one line), one scalar series per metric (tag
  ``task/dataset/name[/tag_value...]``), the value averaged over seeds, one step per results
  document in the order the runs started (step 0 = the oldest run of the suite), so a folder
  of nightly documents becomes a history chart and two runs of one commit are two points.
  Each step's commit and document are its ``run`` text. Exporting again into ``DIR`` replaces
  what an earlier export wrote there (the writer purges from step 0), never doubling a
  point. Written with ``torch.utils.tensorboard.SummaryWriter``.
* ``--mlflow [URI]``: one MLflow run per results document, named after it, with the metrics
  (same names, mean over seeds, same step as in TensorBoard) and params (the run's metadata
  and every task's settings as ``task.key``), tagged with the commit. The default URI is the
  local folder ``mlruns/`` (MLflow's file store); any tracking URI works
  (``sqlite:///mlflow.db``, ``http://host:5000``). A document already exported there is
  skipped.

Both need the ``export`` extra: ``pip install 'quirkbench[export]'``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from datetime import datetime
from pathlib import Path

from ..errors import UserError

EXPERIMENT = "quirkbench"
DOC_TAG = "quirkbench.document"  # MLflow tag: which document a run came from (skip re-exports)


def metric_name(task: str, dataset: str, name: str, tags: dict[str, str]) -> str:
    """``task/dataset/name/k_v/...``: a name MLflow and TensorBoard both accept."""
    parts = [task, dataset, name] + [f"{k}_{v}" for k, v in sorted(tags.items())]
    return "/".join(re.sub(r"[^A-Za-z0-9_.\- ]", "_", str(p)) for p in parts)


def run_name(suite) -> str:
    """The TensorBoard run (sub-folder) of a suite: a name without path separators."""
    name = re.sub(r"[^A-Za-z0-9_.\-]", "_", str(suite or "no-suite")).strip(".")
    return name or "no-suite"


def collect(paths: list[str]) -> list[dict]:
    """One record per results document: its path, meta, run (its suite's TensorBoard run),
    step, and metrics (name → mean over seeds), the documents in the order they started;
    step = the document's index among its suite's documents in that order."""
    from ..metrics import Metric
    from ..tracking.results import find_documents, read

    docs = []
    for p in paths:
        for file in find_documents(p):
            doc = read(file)
            values: dict[str, list[float]] = {}
            for u in doc["units"].values():
                if u.get("status") != "done":
                    continue
                for md in u.get("metrics", []):
                    m = Metric.from_dict(md)
                    if m.value == m.value and abs(m.value) != float("inf"):  # finite only
                        key = metric_name(u["task"], u["dataset"], m.name, m.tags)
                        values.setdefault(key, []).append(m.value)
            docs.append({"path": file, "meta": doc["meta"], "units": doc["units"],
                         "metrics": {k: sum(v) / len(v) for k, v in values.items()}})
    if not docs:
        raise UserError("no results documents to export")
    docs.sort(key=lambda d: (str(d["meta"].get("started") or ""), str(d["path"])))
    steps: dict[str, int] = {}
    for d in docs:
        d["run"] = run_name(d["meta"].get("suite"))
        d["step"] = steps[d["run"]] = steps.get(d["run"], -1) + 1
    return docs


def _walltime(meta: dict) -> float | None:
    try:
        return datetime.fromisoformat(str(meta.get("started"))).timestamp()
    except ValueError:
        return None


def to_tensorboard(docs: list[dict], logdir: str | Path) -> int:
    from ..tracking import results

    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise UserError("--tensorboard needs TensorBoard: pip install 'quirkbench[export]'") \
            from None
    n = 0
    for run in dict.fromkeys(d["run"] for d in docs):
        # purge_step=0: TensorBoard drops what an earlier export wrote into this run
        w = SummaryWriter(log_dir=str(Path(logdir) / run), purge_step=0)
        try:
            for d in (d for d in docs if d["run"] == run):
                wall = _walltime(d["meta"])
                w.add_text("run", f"commit {results.run_commit(d['meta']) or 'unknown'}"
                                  f"{' (dirty)' if results.run_dirty(d['meta']) else ''}: "
                                  f"{d['path']}", global_step=d["step"], walltime=wall)
                for key, value in d["metrics"].items():
                    w.add_scalar(key, value, global_step=d["step"], walltime=wall)
                    n += 1
        finally:
            w.close()
    return n


def _params(d: dict) -> dict[str, str]:
    meta = d["meta"]
    out = {k: meta[k] for k in ("suite", "commit", "dirty", "quirkbench", "torch", "device",
                                "device_name", "seeds", "datasets", "tasks") if k in meta}
    out |= {f"project_{k}": v for k, v in (meta.get("project") or {}).items()}
    for u in d["units"].values():
        for k, v in (u.get("config") or {}).items():
            out[f"{u['task']}.{k}"] = v
    return {re.sub(r"[^A-Za-z0-9_.\- /]", "_", k)[:250]:
            (v if isinstance(v, str) else json.dumps(v, sort_keys=True))[:500]
            for k, v in out.items()}


def to_mlflow(docs: list[dict], uri: str) -> tuple[int, int]:
    """(runs written, runs skipped as already exported)."""
    from ..tracking import results

    if "://" not in uri and not uri.startswith(("sqlite:", "databricks")):
        path = Path(uri).resolve()
        path.mkdir(parents=True, exist_ok=True)
        uri = path.as_uri()
        # MLflow 3 keeps its file store in maintenance mode and asks for this opt-in
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    try:
        from mlflow.entities import Metric, Param, RunTag
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise UserError("--mlflow needs MLflow: pip install 'quirkbench[export]'") from None
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(EXPERIMENT)
    exp_id = exp.experiment_id if exp else client.create_experiment(EXPERIMENT)
    written = skipped = 0
    for d in docs:
        ident = f"{d['path'].name}@{d['meta'].get('started')}"
        found = client.search_runs([exp_id], filter_string=f"tags.`{DOC_TAG}` = '{ident}'",
                                   max_results=1)
        if found:
            skipped += 1
            continue
        tags = {DOC_TAG: ident, "commit": str(results.run_commit(d["meta"])),
                "suite": str(d["meta"].get("suite"))}
        run = client.create_run(exp_id, run_name=d["path"].stem, tags=tags)
        rid = run.info.run_id
        wall = int(1000 * (_walltime(d["meta"]) or 0))
        metrics = [Metric(k, float(v), wall, d["step"]) for k, v in d["metrics"].items()]
        params = [Param(k, v) for k, v in _params(d).items()]
        for i in range(0, max(len(metrics), len(params)), 100):
            client.log_batch(rid, metrics=metrics[i:i + 100], params=params[i:i + 100],
                             tags=[RunTag("quirkbench.step", str(d["step"]))] if i == 0 else [])
        client.set_terminated(rid)
        written += 1
    return written, skipped


def run(results: list[str], tensorboard: str | None = None, mlflow: str | None = None) -> int:
    if not tensorboard and not mlflow:
        raise UserError("export needs a target: --tensorboard DIR and/or --mlflow [URI]")
    docs = collect(results)
    if tensorboard:
        n = to_tensorboard(docs, tensorboard)
        runs = ", ".join(dict.fromkeys(d["run"] for d in docs))
        print(f"tensorboard: {n} scalars from {len(docs)} document(s) → {tensorboard} "
              f"(runs: {runs}; tensorboard --logdir {tensorboard})")
    if mlflow:
        w, s = to_mlflow(docs, mlflow)
        print(f"mlflow: {w} run(s) written, {s} already there → {mlflow} "
              f"(experiment {EXPERIMENT!r})")
    return 0


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("export", help="write metrics as TensorBoard scalars or MLflow runs")
    p.add_argument("results", nargs="+", metavar="RESULTS",
                   help="results documents or folders of them")
    p.add_argument("--tensorboard", metavar="DIR",
                   help="write scalars into DIR: one run per suite, one step per document "
                        "in start order")
    p.add_argument("--mlflow", nargs="?", const="mlruns", metavar="URI",
                   help="one MLflow run per document (default: the local folder mlruns/)")
    p.set_defaults(func=run)
    return p
