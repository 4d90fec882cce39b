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
    """Training produced a non-finite loss or parameters; the unit fails with this message."""

    def __init__(self, step: int, what: str = "loss"):
        super().__init__(f"diverged at step {step} (non-finite {what})")
        self.step = step


class Terminated(KeyboardInterrupt):
    """The process received SIGTERM: stop like Ctrl-C (the CLI exits with status 143)."""
