"""The one error type the CLIs turn into a one-line message and a non-zero exit."""


class EcgError(Exception):
    """Bad input or a failed check: the message says what, which file or record, and what to do."""
