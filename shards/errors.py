"""The error raised for a dataset directory that is missing, incomplete or inconsistent."""


class DatasetError(Exception):
    """One-line message: which file is wrong, how, and what to do next."""
