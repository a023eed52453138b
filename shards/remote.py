"""Datasets at a URL: `http(s)://` (read with requests) or any other fsspec URL (`s3://`, `gs://`, `memory://`,
`file://`; their fsspec back ends installed).

`open_dataset(location)` gives every reader a local directory: for a URL, the card, manifest.csv and
refecg.h5 are fetched once into a cache directory named after the sha256 of the card and of the URL
(each file checked against the card's sha256 and written under a temporary name, so a half-written
cache file is never taken for a complete one: it is fetched again; `fresh=True` fetches them again in
any case, as `verify` does), and a `REMOTE` file there names the URL the shards are streamed from
(`shard_location`): they are never downloaded as a whole, and a reader checks each shard's sha256 as it
streams it. `open_stream(url)` opens one file for reading with timeouts and retries with backoff on
connection errors and HTTP 5xx/429 answers; a connection that breaks, or trickles slower than
MIN_RATE bytes/s for a minute, while a file is read is an OSError naming the URL.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from .card import HashingReader, file_digest, read_card
from .errors import DatasetError
from .layout import CARD, MANIFEST, REFECG, atomic_path

REMOTE = "REMOTE"  # in a cache directory: the URL of the dataset (its shards are read from there)
CACHE_ENV = "IMECGNET_CACHE"  # where cached datasets go (default: ~/.cache/imecgnet-toolkit)
TIMEOUT_S = (10, 60)  # connect, read: no read waits longer for the next bytes
RETRIES = 4  # further tries of a request that failed to connect or got a 5xx/429 answer
BACKOFF_S = 0.5  # wait before the first retry, doubled after each
MIN_RATE = 1024  # bytes/s: a transfer slower than this over its first minute (or later) counts as stalled
SLOW_AFTER_S = 60.0
_CHUNK = 1 << 20
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_url(location) -> bool:
    """True for `scheme://...` (a local path, even one with a colon, is not a URL)."""
    return bool(_URL.match(str(location)))


def cache_root() -> Path:
    """The cache directory for datasets read from URLs ($IMECGNET_CACHE, else ~/.cache/imecgnet-toolkit)."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "imecgnet-toolkit") / "datasets"


class _Stream:
    """A remote file's byte stream whose failures are OSErrors naming the URL (a dropped connection, a timeout)."""

    def __init__(self, raw, url: str, close: Callable[[], None]):
        self.raw, self.url, self._close = raw, url, close
        self.start, self.received = time.monotonic(), 0

    def read(self, n: int = -1) -> bytes:
        """Up to `n` bytes as soon as some have come (all to the end for n < 0); b"" at the end."""
        if n is None or n < 0:
            parts = []
            while part := self.read(_CHUNK):
                parts.append(part)
            return b"".join(parts)
        read = getattr(self.raw, "read1", self.raw.read)  # read1: what has arrived, so a trickle is noticed
        try:
            data = read(n)
        except Exception as exc:  # urllib3 / fsspec / socket errors: the connection broke or timed out
            raise OSError(f"reading {self.url} failed ({type(exc).__name__}: {exc})") from None
        self.received += len(data)
        elapsed = time.monotonic() - self.start
        if data and elapsed > SLOW_AFTER_S and self.received < MIN_RATE * elapsed:
            raise OSError(f"reading {self.url} stalled ({self.received} bytes in {elapsed:.0f} s, under "
                          f"{MIN_RATE} bytes/s)")
        return data

    def close(self) -> None:
        self._close()

    def __enter__(self) -> _Stream:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _open_http(url: str) -> _Stream:
    """GET `url` as a stream; retried with backoff while it cannot connect or the server answers 5xx/429."""
    import requests

    problem = ""
    for attempt in range(RETRIES + 1):
        if attempt:
            time.sleep(BACKOFF_S * 2 ** (attempt - 1))
        try:
            response = requests.get(url, stream=True, timeout=TIMEOUT_S)
        except requests.ConnectTimeout:
            problem = f"cannot connect (no connection within {TIMEOUT_S[0]} s)"
            continue
        except requests.Timeout:
            problem = f"no answer within {TIMEOUT_S[1]} s"
            continue
        except requests.ConnectionError as exc:
            problem = f"cannot connect ({type(exc).__name__})"
            continue
        if response.status_code == 200:
            response.raw.decode_content = True
            return _Stream(response.raw, url, response.close)
        response.close()
        if response.status_code == 404:
            raise FileNotFoundError(f"{url} not found (HTTP 404)")
        problem = f"answered HTTP {response.status_code}"
        if response.status_code < 500 and response.status_code != 429:
            raise OSError(f"{url} {problem}")
    raise OSError(f"{url}: {problem} after {RETRIES + 1} tries")


def open_stream(location) -> IO[bytes] | _Stream:
    """Open a local file, an http(s) URL (timeouts, retries with backoff) or another fsspec URL for reading."""
    location = str(location)
    if not is_url(location):
        return open(location, "rb")
    if location.startswith(("http://", "https://")):
        return _open_http(location)
    import fsspec

    try:
        handle = fsspec.open(location, "rb").open()
    except FileNotFoundError:
        raise FileNotFoundError(f"{location} not found") from None
    except (ImportError, ValueError) as exc:  # a back end not installed, a scheme fsspec does not know
        raise DatasetError(f"cannot read {location}: {exc} (check the URL's scheme; install the fsspec back end "
                           "for it)") from None
    return _Stream(handle, location, handle.close)


def _fetch(url: str, path: Path, expected: dict | None = None) -> None:
    """Download `url` to `path` (atomically); with `expected` ({sha256, bytes} from the card), refuse other bytes."""
    with atomic_path(path) as tmp, open(tmp, "wb") as out, open_stream(url) as stream:
        reader = HashingReader(stream)
        while chunk := reader.read(_CHUNK):
            out.write(chunk)
        if expected is not None and (reader.size, reader.sha.hexdigest()) != (expected["bytes"], expected["sha256"]):
            raise DatasetError(f"{url} differs from the dataset card ({reader.size} bytes, sha256 "
                               f"{reader.sha.hexdigest()[:12]}; the card says {expected['bytes']} bytes, "
                               f"{expected['sha256'][:12]}): the server holds another file; ask its owner to republish")


def _cached(path: Path, expected: dict) -> bool:
    """True when `path` holds exactly the file the card describes (a damaged or half-written one does not)."""
    return path.is_file() and path.stat().st_size == expected["bytes"] and file_digest(path)[0] == expected["sha256"]


def open_dataset(location, fresh: bool = False) -> Path:
    """A local directory to read the dataset at `location` from: the path itself, or for a URL its cache
    directory (module docstring; `fresh`: fetch the small files again even when the cache holds them).
    DatasetError naming the URL when it holds no dataset or other files."""
    if not is_url(location):
        return Path(location)
    base = str(location).rstrip("/") + "/"
    try:
        with open_stream(base + CARD) as stream:
            card_bytes = stream.read()
    except FileNotFoundError:
        raise DatasetError(f"{base}{CARD} not found: {base} is not a dataset (or its upload did not finish)") from None
    except OSError as exc:
        raise DatasetError(f"cannot read the dataset at {base}: {exc}") from None
    key = hashlib.sha256(card_bytes).hexdigest()[:32] + "-" + hashlib.sha256(base.encode()).hexdigest()[:8]
    root = cache_root() / key  # one per card and URL: a cache always streams from the URL it was filled from
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatasetError(f"cannot make the dataset cache {root} ({exc.strerror}): set {CACHE_ENV} to a writable "
                           "folder") from None
    if not (root / CARD).is_file() or (root / CARD).read_bytes() != card_bytes:
        with atomic_path(root / CARD) as tmp:
            tmp.write_bytes(card_bytes)
    files = read_card(root)["files"]  # checks the card's format and its own checksum
    for rel in (MANIFEST, REFECG):
        if rel not in files:
            raise DatasetError(f"{base}{CARD} lists no {rel}: the dataset is incomplete; ask its owner to republish")
        if fresh or not _cached(root / rel, files[rel]):
            try:
                _fetch(base + rel, root / rel, files[rel])
            except OSError as exc:
                raise DatasetError(f"cannot fetch {base}{rel}: {exc}") from None
    if not (root / REMOTE).is_file() or (root / REMOTE).read_text() != base:
        with atomic_path(root / REMOTE) as tmp:
            tmp.write_text(base)
    return root


def remote_base(root) -> str | None:
    """The URL a cached dataset's shards are read from (None for a local dataset)."""
    path = Path(root) / REMOTE
    return path.read_text().strip() if path.is_file() else None


def shard_location(root, rel: str) -> str:
    """Where shard `rel` (e.g. images/train-000000.tar) of the dataset in `root` is read from: its URL for a
    dataset opened from a URL, else its absolute local path."""
    base = remote_base(root)
    return base + rel if base else str(Path(root).resolve() / rel)
