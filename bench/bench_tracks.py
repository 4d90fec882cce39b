"""asv ``track_*`` benchmarks of every registered task's headline metrics, generated: one
class per task of the Registry (``quirkbench.tasks``), named after it (``attack_agreement``
→ ``AttackAgreement``). The tracks READ the night's results document (``QB_ASV_RESULTS``,
which ``scripts/nightly.sh`` sets to the document its suite run just wrote;
``quirkbench.tracking.tracks``): nothing trains here, so a night trains each phenomenon
once. Adding a task adds its tracks; no class is written by hand.

Each class has up to two tracks, parameterized by (metric, seed), each seed its own series:

* ``track_oriented``: metrics with a direction, oriented so that up = worse (asv's reading;
  the parameter says how: ``100 - test_acc[...] (%)``);
* ``track_undirected``: metrics without one, as they are; the nightly gate fails a move
  either way (``common.EITHER_WAY``).

With a results document, a class exists for each task it holds and a track for each kind
of metric it has. Without one (``asv check``, a plain ``asv run``), every registered task
gets both tracks with a placeholder parameter, and ``setup`` skips them saying why.
"""

from quirkbench.tasks import load_all
from quirkbench.tracking.tracks import RESULTS_ENV, night

NIGHT = night()
PLACEHOLDER = f"no results document ({RESULTS_ENV} unset)"


def _make(task: str) -> type | None:
    def setup(self, metric, seed):
        if NIGHT is None:
            raise NotImplementedError(f"{RESULTS_ENV} names no results document: the tracks "
                                      "read the nightly's (scripts/nightly.sh sets it)")

    def track(directed: bool):
        def read(self, metric, seed):
            return NIGHT.value(task, directed, metric, seed)

        read.params = NIGHT.params(task, directed) if NIGHT else ([PLACEHOLDER], ["-"])
        read.param_names = ["metric", "seed"]
        read.unit = "up = worse" if directed else "as measured"
        return read if read.params[0] else None

    methods = {"track_oriented": track(True), "track_undirected": track(False)}
    methods = {k: f for k, f in methods.items() if f is not None}
    if not methods:
        return None
    name = "".join(w.capitalize() for w in task.split("_"))
    return type(name, (), {"setup": setup, "timeout": 60, "__module__": __name__,
                           "__doc__": f"Headline metrics of the task ``{task}``.", **methods})


for _task in sorted(NIGHT.tasks() if NIGHT else load_all()):
    _cls = _make(_task)
    if _cls is not None:
        globals()[_cls.__name__] = _cls
