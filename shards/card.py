"""dataset.json: what a dataset is (source, classes, counts, parameters) and the digest of every file."""

from __future__ import annotations

import hashlib
import json
import tarfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import NamedTuple

from . import FORMAT_VERSION, OLDEST_READABLE_VERSION, SINGLE_LABEL_VERSION
from .errors import DatasetError
from .layout import CARD, SPLITS, is_dataset_file, shard_split, write_atomic

_CHUNK = 1 << 20
CARD_DIGEST = "card_sha256"  # sha256 of the card's own content (card_digest), written last
# Fields the caller supplies, with their JSON types; write_card adds format_version, files and card_sha256.
FIELDS = {
    "software_version": str,
    "source": dict,  # at least {"database": str, "version": str}
    "classes": list,  # class labels; position = label_id
    "counts": dict,  # {split: {label: windows}}
    "window": dict,  # at least {"length": int}
    "n_leads": int,  # leads per window (ImECGnet's width-wise partitions)
    "leads": list,  # lead names by position
    "split_by": str,  # patient | record | window | time | fold: which split scheme produced train/val/test
    "render": dict,
    "seed": int,
    "renderer": str,
}
LABEL_TYPES = ("single-label", "multi-label")  # `label_type` (format 3; absent: single-label)


class ShardDigest(NamedTuple):
    """A shard's sha256 (hex), size in bytes and number of samples: its entry in the card's `files`."""

    sha256: str
    bytes: int
    samples: int


def is_multi_label(card: dict) -> bool:
    """True for a multi-label dataset's card (`label_type`; cards before format 3 are single-label)."""
    return card.get("label_type") == "multi-label"


class HashingReader:
    """Binary reader that hashes and counts every byte read through it (one read serves parsing and sha256)."""

    def __init__(self, file, update: Callable[[int], None] | None = None):
        self.file, self.update = file, update
        self.sha, self.size = hashlib.sha256(), 0

    def read(self, n: int = -1) -> bytes:
        data = self.file.read(n)
        self.sha.update(data)
        self.size += len(data)
        if self.update and data:
            self.update(len(data))
        return data

    def drain(self) -> tuple[str, int]:
        """Read to the end; return (sha256 hex, size) of the whole file."""
        while self.read(_CHUNK):
            pass
        return self.sha.hexdigest(), self.size


def file_digest(path: str | Path, update: Callable[[int], None] | None = None) -> tuple[str, int]:
    """(sha256 hex, size in bytes) of a file, read in 1 MiB chunks; `update(n)` is told each chunk's size."""
    with open(path, "rb") as f:
        return HashingReader(f, update).drain()


def shard_digest(path: str | Path) -> ShardDigest:
    """(sha256 hex, size, number of samples) of a shard, in one read; DatasetError if it is not a tar."""
    with open(path, "rb") as f:
        reader = HashingReader(f)
        keys, last = 0, None
        try:
            with tarfile.open(fileobj=reader, mode="r|") as tar:  # type: ignore[call-overload]  # a stream needs only read()
                for member in tar:
                    key = member.name.partition(".")[0]
                    keys += key != last
                    last = key
        except (tarfile.TarError, EOFError) as exc:
            raise DatasetError(f"shard {path} is not a readable tar ({exc}): rebuild it") from exc
        sha, size = reader.drain()
    return ShardDigest(sha, size, keys)


def card_digest(card: dict) -> str:
    """sha256 hex of a card's canonical content: compact JSON with sorted keys, ASCII, without card_sha256."""
    rest = {k: v for k, v in card.items() if k != CARD_DIGEST}
    return hashlib.sha256(json.dumps(rest, sort_keys=True, separators=(",", ":")).encode("ascii")).hexdigest()


def dataset_files(root: str | Path) -> list[str]:
    """Relative POSIX paths of the files the card lists (see layout.is_dataset_file), sorted."""
    root = Path(root)
    found = (p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    return sorted(rel for rel in found if is_dataset_file(rel))


def _positive(value, kind) -> bool:
    return isinstance(value, kind) and not isinstance(value, bool) and value > 0


def check_card(card: dict, where: str) -> None:
    """Raise DatasetError unless `card` has every field of FIELDS with the right type and shape."""

    def bad(what: str) -> DatasetError:
        return DatasetError(f"{where}: {what}; see docs/format.md for the card's fields")

    for name, kind in FIELDS.items():
        if name not in card:
            raise bad(f"field {name!r} is missing")
        if not isinstance(card[name], kind) or isinstance(card[name], bool):
            raise bad(f"field {name!r} must be of type {kind.__name__}, not {type(card[name]).__name__}")
    if not all(isinstance(card["source"].get(k), str) for k in ("database", "version")):
        raise bad("source needs string 'database' and 'version'")
    classes = card["classes"]
    if not classes or not all(isinstance(c, str) for c in classes) or len(set(classes)) != len(classes):
        raise bad("classes must be a non-empty list of distinct labels")
    if card.get("label_type", LABEL_TYPES[0]) not in LABEL_TYPES:
        raise bad(f"label_type must be one of {', '.join(LABEL_TYPES)}")
    if is_multi_label(card) and any(";" in c for c in classes):
        raise bad("multi-label classes cannot contain ';' (it joins a window's classes)")
    if is_multi_label(card) and card.get("format_version", FORMAT_VERSION) < 3:
        raise bad(f"a multi-label dataset is format version 3, not {card.get('format_version')}")
    if len(card["leads"]) != card["n_leads"]:
        raise bad(f"n_leads is {card['n_leads']} but leads names {len(card['leads'])}")
    if not _positive(card["window"].get("length"), int):
        raise bad("window needs a positive integer 'length'")
    if "fs" in card["window"] and not _positive(card["window"]["fs"], (int, float)):
        raise bad("window 'fs' must be a positive number")
    if not all(_positive(card["render"][k], int) for k in ("out_h", "out_w") if k in card["render"]):
        raise bad("render 'out_h' and 'out_w' must be positive integers")
    for split, per_class in card["counts"].items():
        if split not in SPLITS or not isinstance(per_class, dict):
            raise bad(f"counts must map splits {SPLITS} to {{label: count}}, got {split!r}")
        for label, n in per_class.items():
            if label not in classes or not isinstance(n, int) or isinstance(n, bool) or n < 0:
                raise bad(f"counts[{split!r}][{label!r}] = {n!r}: labels must be classes and counts >= 0")


def write_card(root: str | Path, card: dict, shards: Mapping[str, ShardDigest] | None = None) -> dict:
    """Write root/dataset.json: `card` plus format_version, the sha256 and size of every other file, and
    card_sha256 (the digest of the card's own content, see card_digest).

    Shard entries also give their number of samples (what a loader needs for exact epochs). `shards` holds
    the digests of shards hashed as they were written (`writer.write_shard`), by relative path: those are
    not read again; every other file is.

    Call it last: a dataset directory without a card is incomplete. Written through a temp file, with
    sorted keys, so the same dataset gives the same bytes. Returns the card as written.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"dataset directory {root} not found: write the card after the dataset's files")
    check_card(card, f"card for {root}")
    files = {}
    for rel in dataset_files(root):
        if shard_split(rel) is not None:
            sha, size, samples = (shards or {}).get(rel) or shard_digest(root / rel)
            files[rel] = {"sha256": sha, "bytes": size, "samples": samples}
        else:
            sha, size = file_digest(root / rel)
            files[rel] = {"sha256": sha, "bytes": size}
    version = FORMAT_VERSION if is_multi_label(card) else SINGLE_LABEL_VERSION
    full = {**card, "format_version": version, "files": files}
    try:
        full[CARD_DIGEST] = card_digest(full)
        text = json.dumps(full, indent=2, sort_keys=True) + "\n"
    except (TypeError, ValueError) as exc:
        raise DatasetError(f"card for {root} cannot be stored as JSON ({exc}): pass plain Python values") from exc
    write_atomic(root / CARD, text)
    return full


def _check_version(card: dict, path: Path) -> None:
    """DatasetError unless the card is of this toolkit's format version."""
    version = card.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise DatasetError(f"{path} has no valid format_version: it is not a dataset card of this toolkit")
    if version > FORMAT_VERSION:
        raise DatasetError(
            f"{path} has format version {version}, this toolkit reads up to {FORMAT_VERSION}: upgrade imecgnet-toolkit"
        )
    if version < OLDEST_READABLE_VERSION:
        raise DatasetError(
            f"{path} has format version {version}, this toolkit reads versions {OLDEST_READABLE_VERSION}-"
            f"{FORMAT_VERSION} (cards that check themselves): rebuild the dataset with `ecgrender build`, or get a "
            f"newer copy"
        )


def _check_digest(card: dict, path: Path) -> None:
    """DatasetError unless card_sha256 is the digest of the rest of the card."""
    if card.get(CARD_DIGEST) != card_digest(card):
        raise DatasetError(
            f"dataset.json was edited after it was written: {path} does not match its {CARD_DIGEST}; "
            f"re-download the dataset or rebuild it with `ecgrender build`"
        )


def read_card(root: str | Path) -> dict:
    """Read and check root/dataset.json; DatasetError if missing, unparsable, of another format version,
    edited after it was written (card_sha256), or incomplete."""
    path = Path(root) / CARD
    if not path.is_file():
        raise DatasetError(
            f"{path} not found: not a dataset directory, or its build did not finish (rerun ecgrender build)"
        )
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(
            f"{path} is not valid JSON ({exc}): re-download the dataset or rerun ecgrender build"
        ) from exc
    if not isinstance(card, dict):
        raise DatasetError(f"{path} is not a JSON object: re-download the dataset or rerun ecgrender build")
    _check_version(card, path)
    _check_digest(card, path)
    check_card(card, str(path))
    files = card.get("files")
    if not isinstance(files, dict) or not all(
        isinstance(v, dict)
        and isinstance(v.get("sha256"), str)
        and isinstance(v.get("bytes"), int)
        and (isinstance(v.get("samples"), int) or shard_split(rel) is None)
        for rel, v in files.items()
    ):
        raise DatasetError(
            f"{path}: 'files' must map paths to {{sha256, bytes}} (+ samples for shards); re-download the dataset"
        )
    return card


def _size(n: float) -> str:
    if n < 1000:
        return f"{n:.0f} B"
    for unit in ("kB", "MB", "GB"):
        n /= 1000
        if n < 1000 or unit == "GB":
            break
    return f"{n:.1f} {unit}"


def _text(value) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={_text(v)}" for k, v in sorted(value.items())) or "-"
    if isinstance(value, list):
        return "[" + ", ".join(_text(v) for v in value) + "]"
    return str(value)


def _counts_table(card: dict) -> list[str]:
    classes = card["classes"]
    counts = {split: card["counts"].get(split, {}) for split in SPLITS}
    header = ["class", *SPLITS, "total"]
    rows = [[c, *(counts[s].get(c, 0) for s in SPLITS)] for c in classes]
    rows = [[*r, sum(r[1:])] for r in rows]
    windows = card.get("split_windows")
    if is_multi_label(card) and isinstance(windows, dict):  # a window counts for each class
        rows.append(["windows", *(windows.get(s, 0) for s in SPLITS), sum(windows.get(s, 0) for s in SPLITS)])
    else:
        rows.append(["total", *(sum(r[i] for r in rows) for i in range(1, len(header)))])
    table = [header, *[[str(v) for v in r] for r in rows]]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    cells = [[v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths))] for r in table]
    return ["  " + "  ".join(r) for r in cells]


def summarize_card(card: dict) -> str:
    """Human-readable summary of a card (what `ecgrender info` prints)."""
    source = card["source"]
    cited = ("url", "doi", "licence", "citation")  # printed on lines of their own
    extra = {k: v for k, v in source.items() if k not in ("database", "version", "files", *cited)}
    if isinstance(source.get("files"), dict):  # the source files' checksums: their number, not each
        extra["files read"] = f"{len(source['files'])} (sha256 in dataset.json)"
    files = card.get("files", {})
    shards = {s: sum(1 for f in files if shard_split(f) == s) for s in SPLITS}
    others = {k: v for k, v in card.items() if k not in FIELDS and k not in ("format_version", "files", CARD_DIGEST)}
    where = ", ".join(str(source[k]) for k in ("url", "doi") if source.get(k))
    lines = [
        f"format       {card['format_version']}, written by {card['software_version']}",
        f"source       {source['database']} {source['version']}" + (f" ({_text(extra)})" if extra else ""),
        *([f"licence      {source.get('licence', 'not recorded')}" + (f" ({where})" if where else "")]
          if source.get("licence") or where else []),
        f"classes      {', '.join(f'{i}={c}' for i, c in enumerate(card['classes']))}",
        f"window       {_text(card['window'])}",
        f"leads        {card['n_leads']}: {', '.join(card['leads'])}",
        f"split by     {card['split_by']}",
        f"renderer     {card['renderer']}",
        f"render       {_text(card['render'])}",
        f"seed         {card['seed']}",
        *(f"{k:<12} {_text(v)}" for k, v in sorted(others.items())),
        f"files        {len(files)}, {_size(sum(f['bytes'] for f in files.values()))} "
        f"(shards: {', '.join(f'{s} {n}' for s, n in shards.items())})",
        "windows per split and class" + (" (a window counts for each of its classes):"
                                          if is_multi_label(card) else ":"),
        *_counts_table(card),
    ]
    if source.get("citation"):
        lines += ["cite the source database (BibTeX):", *("  " + line for line in str(source["citation"]).splitlines())]
    return "\n".join(lines)
