"""The error ecgrender raises for bad input or a failed check (printed as one line by the CLI)."""

from shards.errors import ToolkitError


class EcgError(ToolkitError):
    """Bad input or a failed check: the message says what, which file or record, and what to do."""
