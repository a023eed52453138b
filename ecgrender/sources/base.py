"""What every database adapter hands to the window planner."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Span:
    """Samples [start, end) of a record that carry one label; windows are drawn inside one span."""

    start: int
    end: int
    label: str


@dataclass
class RecordInfo:
    """A usable record: identity, geometry and labelled spans (no signal)."""

    name: str  # path relative to the source dir without extension, e.g. "101", "patient001/s0010_re"
    patient: str  # patient id; records of one patient never straddle splits
    leads: list[str]
    fs: float
    n_samples: int
    spans: list[Span] = field(default_factory=list)


@dataclass
class Scan:
    """Result of scanning a source: usable records and the ones left out, with why."""

    database: str
    records: list[RecordInfo]
    excluded: list[tuple[str, str]]  # (record name, reason)


class Source(abc.ABC):
    """A WFDB database on disk, read with wfdb.

    Subclasses implement `scan` (headers, annotations, labels) and `read_signal`.
    """

    database: str = ""  # set by @register_database (registry.py) from the database's spec
    version: str = ""
    canonical_leads: tuple[str, ...] = ()

    @abc.abstractmethod
    def scan(self) -> Scan:
        """Read headers, annotations and labels of every selected record."""

    @abc.abstractmethod
    def read_signal(self, name: str) -> np.ndarray:
        """Whole record as float32 (n_samples, n_leads) in physical units, lead order as in scan."""
