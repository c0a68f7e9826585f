"""The errors sgan raises for things a user can fix.

Library code raises these with a sentence that says what is wrong and how to fix it; only the
CLI turns them into a one-line message and an exit code (1).  Anything else is a bug and shows
a traceback.
"""


class SganError(Exception):
    """A mistake the user can fix: the message is shown as it is, on one line."""

    exit_code = 1


class UsageError(SganError):
    """Options that contradict each other or values out of range."""

    exit_code = 2


class DataError(SganError):
    """A dataset, image or latent file that cannot be used."""


class CheckpointError(SganError):
    """A checkpoint that is missing, foreign, truncated or too new."""


class DetectorError(SganError):
    """Missing or wrong weights for a metric network."""
