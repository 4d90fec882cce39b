"""The one error type a user sees: a one-line message, exit status 2, no traceback."""


class UserError(Exception):
    """Bad input from the user (an unknown name, a wrong value, a missing file).

    The CLI prints ``str(err)`` on one line and exits with status 2.
    """


def choices(valid) -> str:
    """Format the valid choices for an error message."""
    return ", ".join(str(v) for v in valid)
