"""What every database adapter hands to the window planner."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Span:
    """Samples [start, end) of a record that carry one label (a multi-label database: its classes joined with
    ';'); windows are drawn inside one span."""

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
    fold: int | None = None  # the database's own fold (PTB-XL's strat_fold), for --split-by fold


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
    default_classes: tuple[str, ...] = ()  # label-id order without --classes (an adapter may set its own per task)
    multi_label: bool = False  # spans carry class sets joined with ';' (docs/databases.md)

    @abc.abstractmethod
    def scan(self) -> Scan:
        """Read headers, annotations and labels of every selected record."""

    @abc.abstractmethod
    def read_signal(self, name: str) -> np.ndarray:
        """Whole record as float32 (n_samples, n_leads) in physical units, lead order as in scan."""
