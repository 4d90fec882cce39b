"""The one error type a user sees: a one-line message, exit status 2, no traceback."""


class UserError(Exception):
    """Bad input from the user (an unknown name, a wrong value, a missing file).

    The CLI prints ``str(err)`` on one line and exits with status 2.
    """


def choices(valid) -> str:
    """Format the valid choices for an error message."""
    return ", ".join(str(v) for v in valid)


class DivergenceError(RuntimeError):
    """Training produced a non-finite loss or parameters; the unit fails with this message."""

    def __init__(self, step: int, what: str = "loss"):
        super().__init__(f"diverged at step {step} (non-finite {what})")
        self.step = step


class Terminated(KeyboardInterrupt):
    """The process received SIGTERM: stop like Ctrl-C (the CLI exits with status 143)."""
