"""Domain exceptions: messages a user can act on; the CLI prints them as one line."""


class CdrError(Exception):
    """An expected failure with a message meant for the user.

    ``exit_code`` is what the CLI exits with: 2 for bad input (nothing was done),
    1 for a failure while working.
    """

    exit_code = 1


class UsageError(CdrError):
    """Bad input from the user: nothing was fetched or written."""

    exit_code = 2
