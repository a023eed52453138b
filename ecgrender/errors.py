"""The one error type the CLIs turn into a one-line message and a non-zero exit."""

import functools
import sys

import click

from shards.errors import DatasetError


class EcgError(Exception):
    """Bad input or a failed check: the message says what, which file or record, and what to do."""


def one_line_errors(command):
    """CLI decorator: EcgError / DatasetError -> `error: ...` on stderr and exit status 2."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except (EcgError, DatasetError) as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)

    return wrapper
