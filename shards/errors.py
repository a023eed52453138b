"""The toolkit's error base class, the dataset error, and the CLIs' one-line error wrapper."""

from __future__ import annotations

import functools
import sys


class ToolkitError(Exception):
    """Bad input or a failed check, said in one line: what, which file or record, what to do next.

    Each package raises its own subclass (DatasetError here, ecgrender's EcgError, ecgtrain's
    TrainError); the CLIs print any of them as one `error:` line and exit with status 2.
    """


class DatasetError(ToolkitError):
    """A dataset directory that is missing, incomplete or inconsistent."""


EXIT_ERROR = 2  # exit status of a command stopped by a ToolkitError


def one_line_errors(command):
    """CLI decorator: a ToolkitError becomes `error: ...` on stderr and exit status 2."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except ToolkitError as exc:
            print(f"error: {exc}", file=sys.stderr, flush=True)
            sys.exit(EXIT_ERROR)

    return wrapper
