"""The error ecgtrain raises for bad input or a failed check (printed as one line by the CLI)."""

from shards.errors import ToolkitError


class TrainError(ToolkitError):
    """Bad options, an unusable run directory or dataset: what, which file, and what to do next."""
