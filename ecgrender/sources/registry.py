"""The database registry: every adapter registers its `Source` class here with a `DatabaseSpec`."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import EcgError


@dataclass(frozen=True)
class DatabaseSpec:
    """What the toolkit knows about one database besides how to read it (`source`)."""

    name: str  # the --db value, and `database` in the manifest and card
    title: str  # human name, e.g. "MIT-BIH Arrhythmia Database"
    version: str  # the release whose layout and conventions the adapter reads (and `fetch` downloads)
    default_classes: tuple[str, ...]  # label-id order when --classes is not given
    annotators: tuple[str, ...]  # annotation files `fetch` downloads per record, e.g. ("atr",)
    fetchable: bool  # False for data that ships with the toolkit (the demo)
    leads: tuple[str, ...]  # canonical lead order: these leads first, in this order, then the record's others
    source: type  # the Source subclass: `source(root, records=..., labels=..., **options)`
    physionet: str = ""  # folder name on PhysioNet (https://physionet.org/files/NAME/VERSION/); default: name
    fetch_files: tuple[str, ...] = ()  # files `fetch` downloads besides the records (e.g. metadata tables)
    options: tuple[str, ...] = ()  # database-specific build options the Source takes as keywords (e.g. "fs")
    multi_label: bool = False  # windows carry a set of classes (multi-hot targets), not exactly one


_DATABASES: dict[str, DatabaseSpec] = {}


def register_database(name: str, *, title: str, version: str, default_classes, leads, annotators=(), fetchable=True,
                      physionet: str = "", fetch_files=(), options=(), multi_label: bool = False):
    """Class decorator: register a `Source` subclass as database `name` (it gets `database`, `version`,
    `canonical_leads` (the leads every record of it is stored with first, in that order), `default_classes`
    and `multi_label`)."""

    def add(cls):
        if name in _DATABASES:
            raise ValueError(f"database {name!r} is registered twice")
        cls.database, cls.version, cls.canonical_leads = name, version, tuple(leads)
        cls.default_classes, cls.multi_label = tuple(default_classes), multi_label
        _DATABASES[name] = DatabaseSpec(name, title, version, tuple(default_classes), tuple(annotators), fetchable,
                                        tuple(leads), cls, physionet or name, tuple(fetch_files), tuple(options),
                                        multi_label)
        return cls

    return add


def database_names(fetchable: bool = False) -> tuple[str, ...]:
    """Registered database names in registration order (only those `fetch` can download, if asked)."""
    return tuple(name for name, spec in _DATABASES.items() if spec.fetchable or not fetchable)


def database_spec(name: str) -> DatabaseSpec:
    """The spec of database `name`; EcgError naming the choices when it is unknown."""
    spec = _DATABASES.get(name)
    if spec is None:
        raise EcgError(f"unknown database {name!r}: choose one of {', '.join(_DATABASES)}")
    return spec


def database_help() -> str:
    """'name (title)' for every database, for the CLI's --help."""
    return "; ".join(f"{s.name}: {s.title}" for s in _DATABASES.values())
