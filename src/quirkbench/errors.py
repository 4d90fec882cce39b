"""The one error type a user sees: a one-line message, exit status 2, no traceback."""


class UserError(Exception):
    """Bad input from the user (an unknown name, a wrong value, a missing file).

    The CLI prints ``str(err)`` on one line and exits with status 2.
    """


def choices(valid) -> str:
    """Format the valid choices for an error message."""
    return ", ".join(str(v) for v in valid)


def did_you_mean(name, valid) -> str:
    """``" (did you mean 'x'?)"`` for the valid names closest to a misspelt ``name``
    (difflib's ratio ≥ 0.6, at most three), else "": put right after the name, before the
    list of valid ones: ``unknown task 'memorisation' (did you mean 'memorization'?); valid:
    ...``."""
    import difflib

    close = difflib.get_close_matches(str(name), [str(v) for v in valid], n=3, cutoff=0.6)
    if not close:
        return ""
    return " (did you mean " + " or ".join(repr(c) for c in close) + "?)"


class DivergenceError(RuntimeError):
    """Training diverged: a non-finite loss or parameters, or a finite loss that exploded
    (``reason`` says which); the unit fails with this message."""

    def __init__(self, step: int, what: str = "loss", reason: str | None = None):
        super().__init__(f"diverged at step {step} ({reason or f'non-finite {what}'})")
        self.step = step


class DidNotTrainError(RuntimeError):
    """Training that aims for a target accuracy is still at chance past its budget (a dead
    network: its metrics would describe nothing); the unit fails with this message."""

    def __init__(self, step: int, reason: str):
        super().__init__(f"did not train: after {step} steps {reason}")
        self.step = step


class UnitBudgetExceeded(RuntimeError):
    """A unit ran past its wall-clock budget (``--unit-budget``); it fails with this message."""

    def __init__(self, seconds: float):
        super().__init__(f"ran past its wall-clock budget of {seconds:g} s (--unit-budget)")
        self.seconds = seconds


class Terminated(KeyboardInterrupt):
    """The process received SIGTERM: stop like Ctrl-C (the CLI exits with status 143)."""
