"""Errors meant for the user: each names the bad value, what was expected, and what to do."""


class BenchError(Exception):
    """An error caused by input or environment, reported without a traceback by the command line."""


class UnknownNameError(BenchError, KeyError):
    """A registry look-up failed; the message lists the valid names and a near miss."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class DatasetError(BenchError):
    """A dataset's files are missing or unreadable."""


class ConfigError(BenchError, ValueError):
    """A hyperparameter or option is outside the range that makes sense."""


class StoreError(BenchError):
    """A stored checkpoint does not match what was asked for, or is unreadable."""
