"""Exceptions that carry an exit code to the command line."""


class DefintelError(Exception):
    """Base class: a failure the CLI reports as one line, with `exit_code`."""

    exit_code = 1


class UsageError(DefintelError):
    """Bad usage, bad configuration or unreadable input (exit 2)."""

    exit_code = 2


class DocumentError(DefintelError):
    """One document could not be processed; counted as failed, never fatal for a run."""

    exit_code = 2
