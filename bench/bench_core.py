"""asv ``time_*`` / ``peakmem_*`` for the performance-critical core: one training epoch,
one PGD iteration batch, and the peak memory of a training epoch. Lower is better for all of them
(asv's own convention, so its table reads right as it is).

Sampling, set so asv's statistics resolve a 25% change on a loaded CPU (calibrated by A/A
runs of ``asv run --python=same``, see docs/benchmarks.md): each sample is ONE call
(``number = 1``: an epoch is ~40-200 ms, long enough for the clock), at least 15 and at most
40 samples per round (``repeat``), 2 rounds in separate processes (``rounds``), after
``warmup_time`` s of unrecorded calls. asv then compares medians with a 99% confidence
interval from the samples; ``quirkbench nightly`` adds asv's factor rule (1.1×). The clock
is ``common.TIMER``: wall time on the GPU runner, the process's CPU time on a shared CPU
(``QB_ASV_TIMER=process``; there the same epoch's wall time moved by more than 25%
between nights as the machine's load changed).
"""

from . import common

TIMING = dict(number=1, repeat=(15, 40, 30.0), rounds=2, warmup_time=1.0, min_run_count=15)


class TrainEpoch:
    """One epoch (``quirkbench.engine.train.train``, max_epochs=1, no target) over 1,000 mnist5k
    images, batch 128; per model and device."""

    params = (["mlp-512", "lenet5"], ["cpu", "cuda"])
    param_names = ["model", "device"]
    timeout = 300
    number, repeat, rounds = TIMING["number"], TIMING["repeat"], TIMING["rounds"]
    warmup_time, min_run_count = TIMING["warmup_time"], TIMING["min_run_count"]
    timer = staticmethod(common.TIMER)

    def setup(self, model, device):
        from quirkbench.engine.train import TrainConfig

        device = common.device_or_skip(device)
        self.ds = common.data(device=device)
        self.net = common.model(model, device=device)
        self.cfg = TrainConfig(max_epochs=1, target_train_acc=None, eval_test=False)
        self.device = device

    def time_epoch(self, model, device):
        from quirkbench.engine.train import train

        train(self.net, self.ds.x_train, self.ds.y_train, self.cfg)
        common.sync(self.device)


class TrainEpochPaired:
    """``TrainEpoch``'s epoch in units of a reference epoch timed beside it
    (``common.reference_epoch``: the textbook loop over the same model, data and batch):
    the median over 25 back-to-back pairs of engine time / reference time. Up = worse: 1.25
    after a change means the engine's epoch costs 25% more than it did *relative to the same
    work done by frozen code in the same minutes*. On a shared CPU the raw ``time_epoch``
    drifts between nights by up to ~20% on identical code (load, clock, cache); the drift
    slows both sides of a pair and cancels, so this track is what the nightly gate can trust
    there (its night-to-night A/A spread: docs/benchmarks.md). Sync'd on a GPU."""

    params = (["mlp-512", "lenet5"], ["cpu", "cuda"])
    param_names = ["model", "device"]
    timeout = 300
    unit = "x reference epoch"
    repeats = 25

    def setup(self, model, device):
        from quirkbench.engine.train import TrainConfig

        device = common.device_or_skip(device)
        self.ds = common.data(device=device)
        self.net = common.model(model, device=device)
        self.ref = common.model(model, device=device)
        self.cfg = TrainConfig(max_epochs=1, target_train_acc=None, eval_test=False)
        self.device = device

    def track_epoch_vs_reference(self, model, device):
        from quirkbench.engine.train import train

        x, y = self.ds.x_train, self.ds.y_train

        def engine():
            train(self.net, x, y, self.cfg)
            common.sync(self.device)

        def reference():
            common.reference_epoch(self.ref, x, y, batch=self.cfg.batch_size, lr=self.cfg.lr)
            common.sync(self.device)

        return common.paired_ratio(engine, reference, self.repeats)


class PGDBatch:
    """One PGD-L∞ iteration (ε = 0.1) on a batch of 256 test images, per device; skipped
    until ``quirkbench.methods.attacks`` exists."""

    params = (["cpu", "cuda"],)
    param_names = ["device"]
    timeout = 300
    number, repeat, rounds = TIMING["number"], TIMING["repeat"], TIMING["rounds"]
    warmup_time, min_run_count = TIMING["warmup_time"], TIMING["min_run_count"]
    timer = staticmethod(common.TIMER)

    def setup(self, device):
        try:
            from quirkbench.methods.attacks import PGD
        except ImportError:
            raise NotImplementedError("quirkbench.methods.attacks is not in this commit") from None
        device = common.device_or_skip(device)
        ds = common.data(n_test=256, device=device)
        self.net = common.model(device=device).eval()
        self.x, self.y = ds.x_test, ds.y_test
        self.attack = PGD(0.1, norm="linf", steps=1)
        self.device = device

    def time_pgd_iteration(self, device):
        self.attack(self.net, self.x, self.y)
        common.sync(self.device)


class TrainMemory:
    """Peak resident memory of a process that trains one epoch (``TrainEpoch``'s) on the CPU:
    the engine's own footprint, measured without running a phenomenon a second time."""

    params = (["mlp-512", "lenet5"],)
    param_names = ["model"]
    timeout = 300

    def setup(self, model):
        from quirkbench.engine.train import TrainConfig

        self.ds = common.data()
        self.net = common.model(model)
        self.cfg = TrainConfig(max_epochs=1, target_train_acc=None, eval_test=False)

    def peakmem_epoch(self, model):
        from quirkbench.engine.train import train

        train(self.net, self.ds.x_train, self.ds.y_train, self.cfg)
