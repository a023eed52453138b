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
    licence: str = ""  # SPDX identifier of the database's licence, e.g. "ODC-By-1.0"
    url: str = ""  # the release's page
    doi: str = ""  # the release's DOI
    citation: str = ""  # BibTeX of what to cite when using the database (PhysioNet's own entry is added)
    mains_hz: float = 50  # power-line frequency where it was recorded (`--noise pl`): 60 in North America


_DATABASES: dict[str, DatabaseSpec] = {}


def register_database(name: str, *, title: str, version: str, default_classes, leads, annotators=(), fetchable=True,
                      physionet: str = "", fetch_files=(), options=(), multi_label: bool = False, licence: str = "",
                      url: str = "", doi: str = "", citation: str = "", mains_hz: float = 50):
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
                                        multi_label, licence, url, doi, citation, mains_hz)
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


# PhysioNet's citation, which every PhysioNet database asks for besides its own.
PHYSIONET_CITATION = """@article{goldberger2000physionet,
  author = {Goldberger, Ary L. and Amaral, Luis A. N. and Glass, Leon and Hausdorff, Jeffrey M. and Ivanov, Plamen Ch.
            and Mark, Roger G. and Mietus, Joseph E. and Moody, George B. and Peng, Chung-Kang and Stanley, H. Eugene},
  title = {{PhysioBank}, {PhysioToolkit}, and {PhysioNet}: Components of a New Research Resource for Complex
           Physiologic Signals},
  journal = {Circulation}, volume = {101}, number = {23}, pages = {e215--e220}, year = {2000},
  doi = {10.1161/01.CIR.101.23.e215}
}"""


def provenance(name: str) -> dict[str, str]:
    """What a dataset card records about where database `name` comes from: url, doi, licence (SPDX) and
    citation (BibTeX: the database's own entry, then PhysioNet's); empty values are left out."""
    spec = database_spec(name)
    citation = "\n\n".join(c for c in (spec.citation, PHYSIONET_CITATION if spec.url.startswith(
        "https://physionet.org/") else "") if c)
    values = {"url": spec.url, "doi": spec.doi, "licence": spec.licence, "citation": citation}
    return {k: v for k, v in values.items() if v}


def database_help() -> str:
    """'name (title)' for every database, for the CLI's --help."""
    return "; ".join(f"{s.name}: {s.title}" for s in _DATABASES.values())
