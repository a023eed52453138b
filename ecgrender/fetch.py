"""`ecgrender fetch`: download a PhysioNet database (all records or a subset) with wfdb's downloader.

wfdb's `dl_database` looks the version up on physionet.org's web pages, so it cannot be pointed at a
mirror or a test server; this module takes the PhysioNet folder, the release, the annotation files and
the database's other files (metadata tables such as PTB-XL's CSVs) from the database's registered spec
(sources/registry.py), then uses wfdb's own pieces (`RECORDS`, remote headers, `dl_pn_file`) against
`base_url`, one file at a time with a progress bar. When the adapter has a `fetch_records` method (PTB-XL,
whose RECORDS lists both sampling rates), the listed records are narrowed through it with the `fs` option.
A rerun skips complete files and resumes partial ones (wfdb compares sizes).
"""

from __future__ import annotations

import contextlib
import posixpath
import urllib.request
from pathlib import Path

import wfdb
from tqdm import tqdm
from wfdb.io import download

from shards.layout import write_atomic

from .errors import EcgError
from .sources import DatabaseSpec, database_names, database_spec

PHYSIONET_URL = download.PN_INDEX_URL  # https://physionet.org/files/
PROBE_TIMEOUT_S = 30  # wfdb's own requests have no timeout: check the server answers first


@contextlib.contextmanager
def _index_url(base_url: str):
    """Point wfdb's downloader at `base_url` for the duration of the block."""
    previous = download.config.db_index_url
    wfdb.set_db_index_url(base_url.rstrip("/") + "/")
    try:
        yield
    finally:
        wfdb.set_db_index_url(previous)


def _files_of(pn_dir: str, record: str, annotators: tuple[str, ...]) -> list[tuple[str, bool]]:
    """(path relative to the database, required) for a record: header, signal files, annotations."""
    subdir, base = posixpath.split(record)
    header = wfdb.rdheader(base, pn_dir=posixpath.join(pn_dir, subdir) if subdir else pn_dir)
    files = [(f"{record}.hea", True)]
    files += [(posixpath.join(subdir, f), True) for f in dict.fromkeys(header.file_name or [])]
    files += [(f"{record}.{ext}", False) for ext in annotators]
    return files


def _download(rel: str, pn_dir: str, dest: Path) -> None:
    """One file of the database (path relative to it) into the same place under `dest`; resumes."""
    subdir, name = posixpath.split(rel)
    (dest / subdir).mkdir(parents=True, exist_ok=True)
    download.dl_pn_file((name, subdir, pn_dir, str(dest), True, False))


def _fetch_options(spec: DatabaseSpec, fs: int | None) -> dict[str, int]:
    """The options `fetch` passes to the adapter's `fetch_records`; EcgError for one the database lacks."""
    options = {"fs": fs} if fs is not None else {}
    for name in options:
        if name not in spec.options:
            owners = [n for n in database_names(True) if name in database_spec(n).options]
            raise EcgError(f"--{name} applies to --db {' or '.join(owners) or '(none)'}, not to --db {spec.name}: drop it")
    fetch_records = getattr(spec.source, "fetch_records", None)
    if fetch_records is not None:
        fetch_records([], **options)  # checks the values (e.g. PTB-XL's rates) before any download
    return options


def fetch_database(db: str, dest: Path | str, records: list[str] | None = None,
                   base_url: str | None = None, progress: bool = True, fs: int | None = None) -> Path:
    """Download registered database `db` (its spec's release, annotators and other files) into `dest`;
    returns `dest`.

    `records` restricts the download to those record names; `base_url` replaces
    https://physionet.org/files/ (a mirror); `fs` picks the sampling rate for databases stored at several
    (PTB-XL: 100, the default, or 500 Hz; an error for the others). `dest` gets the database's files in
    the published layout and a RECORDS file listing the records fetched (added to those an earlier fetch
    into `dest` listed), so it can be given to `ecgrender build --source`.
    """
    spec = database_spec(db)
    if not spec.fetchable:
        raise EcgError(f"cannot fetch {db!r}: it ships with the toolkit; fetch one of {', '.join(database_names(True))}")
    options = _fetch_options(spec, fs)
    fetch_records = getattr(spec.source, "fetch_records", None)
    base_url = base_url or PHYSIONET_URL
    pn_dir = f"{spec.physionet}/{spec.version}"
    url = posixpath.join(base_url.rstrip("/"), pn_dir) + "/"
    dest = Path(dest)
    try:
        with urllib.request.urlopen(url + "RECORDS", timeout=PROBE_TIMEOUT_S) as response:
            response.read(1)
        with _index_url(base_url):
            listed = download.get_record_list(pn_dir)
            available = fetch_records(listed, **options) if fetch_records is not None else listed
            chosen = f"--fs {fs}" if fs is not None else "the default --fs"
            if not available:
                raise EcgError(f"{url}RECORDS lists no {db} records"
                               f"{f' for {chosen}' if fetch_records is not None else ''}: check --mirror")
            if records is not None:
                unknown = [r for r in records if r not in available]
                if unknown and unknown[0] in listed:  # a record the adapter left out, e.g. PTB-XL's other rate
                    raise EcgError(f"record {unknown[0]!r} is not among the {db} records of {chosen}: fix --records "
                                   f"or --fs (e.g. {available[0]!r})")
                if unknown:
                    raise EcgError(f"record {unknown[0]!r} is not in {db} at {url}: fix --records "
                                   f"(e.g. {available[0]!r})")
            wanted = list(dict.fromkeys(records)) if records is not None else available
            for rel in tqdm(spec.fetch_files, desc=f"{db}: tables", unit="file",
                            disable=not progress or not spec.fetch_files):
                try:
                    _download(rel, pn_dir, dest)
                except FileNotFoundError:
                    raise EcgError(f"{url}{rel} not found: {db} {spec.version} needs {rel} next to its records; "
                                   "check --mirror") from None
            files = [f for rec in tqdm(wanted, desc=f"{db}: headers", unit="record", disable=not progress)
                     for f in _files_of(pn_dir, rec, spec.annotators)]
            dest.mkdir(parents=True, exist_ok=True)
            for rel, required in tqdm(files, desc=f"{db}: files", unit="file", disable=not progress):
                try:
                    _download(rel, pn_dir, dest)
                except FileNotFoundError:
                    if required:
                        raise
    except EcgError:
        raise
    except Exception as exc:  # requests' connection errors, HTTP errors, wfdb's NetFileError, ...
        detail = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        raise EcgError(f"cannot download {db} from {url} ({type(exc).__name__}: {detail}); check the network, "
                       f"or use a local copy of the database with --source") from None
    write_atomic(dest / "RECORDS", "".join(f"{r}\n" for r in _merged_records(dest / "RECORDS", wanted)))
    return dest


def _merged_records(path: Path, fetched: list[str]) -> list[str]:
    """What dest's RECORDS lists after a fetch: the records an earlier fetch into it listed, then the new ones
    (a second fetch, e.g. the other PTB-XL rate or more records, adds to the folder rather than hiding it)."""
    earlier = [line.strip() for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []
    return list(dict.fromkeys([*earlier, *fetched]))
