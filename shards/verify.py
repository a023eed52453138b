"""Check a whole dataset directory in one streaming pass: digests, shards, manifest and refecg.h5 agree."""

from __future__ import annotations

import csv
import tarfile
from collections import Counter
from collections.abc import Callable, Iterator
from itertools import zip_longest
from pathlib import Path
from typing import NamedTuple

import h5py
from tqdm import tqdm

from .card import HashingReader, file_digest, is_multi_label, read_card
from .errors import DatasetError
from .layout import (
    IMAGES,
    MANIFEST,
    REFECG,
    SPLITS,
    check_shard_end,
    is_dataset_file,
    shard_name,
    shard_paths,
    shard_split,
)
from .manifest import SEPARATOR, Window, iter_manifest, multi_label_row_problem, window_row
from .reader import MEMBER_DECODERS, member_name, png_header, sample_members_problem
from .remote import open_stream, remote_base, shard_location

_H5_BLOCK = 8192


class _Sample(NamedTuple):
    shard: str  # path relative to the dataset root
    key: str
    target: int | str  # the .cls label id, or the .hot multi-hot string
    row: dict
    png: tuple  # (width, height, bit depth, colour type) from the IHDR chunk, () if not a PNG


class _Problems(list):
    """Problems found so far; `once(tag, text)` records only the first problem of a kind."""

    def __init__(self) -> None:
        super().__init__()
        self._tags: set = set()

    def once(self, tag, text: str) -> None:
        if tag not in self._tags:
            self._tags.add(tag)
            self.append(text)


def _digest_problem(rel: str, expected: dict, sha: str, size: int) -> str | None:
    if size != expected["bytes"]:
        return f"{rel}: {size} bytes, dataset.json says {expected['bytes']}: truncated or replaced; re-download it"
    if sha != expected["sha256"]:
        return f"{rel}: sha256 differs from dataset.json: the file is corrupt; re-download or rebuild it"
    return None


def _check_listing(root: Path, files: dict, problems: _Problems) -> None:
    """Listed files present; no unlisted file in images/; shards of each split numbered 0..n-1. A dataset opened
    from a URL: the listed shards numbered 0..n-1 (each is found or not when it is streamed; a server's other
    files cannot be listed)."""
    if remote_base(root) is not None:
        for split in SPLITS:
            names = sorted(rel for rel in files if shard_split(rel) == split)
            if names != [shard_name(split, i) for i in range(len(names))]:
                problems.append(f"dataset.json: its {split} shards are not numbered 0..{len(names) - 1}")
        return
    for rel in files:
        if not (root / rel).is_file():
            problems.append(f"{rel}: listed in dataset.json but missing: re-download it")
    for rel in (MANIFEST, REFECG):
        if rel not in files:
            problems.append(f"{rel}: not listed in dataset.json: the dataset is incomplete; rebuild it")
    images = root / IMAGES
    for path in sorted(images.rglob("*")) if images.is_dir() else []:
        rel = path.relative_to(root).as_posix()
        if path.is_file() and is_dataset_file(rel) and rel not in files:
            problems.append(f"{rel}: not listed in dataset.json: remove it or rebuild the dataset")
    for split in SPLITS:
        names = [p.relative_to(root).as_posix() for p in shard_paths(root, split)]
        expected = [shard_name(split, i) for i in range(len(names))]
        if names != expected:
            gap = next(e for n, e in zip_longest(names, expected) if n != e)
            problems.append(f"{gap}: {split} shards are not numbered 0..{len(names) - 1}: a shard is missing")


def _manifest_rows(path: Path) -> Iterator[tuple[int, dict]]:
    """(line, row as a dict) of manifest.csv, streamed; DatasetError on missing columns or bad values."""
    return ((line, window_row(row)) for line, row in iter_manifest(path))


def _label_problem(row: dict, classes: list, multi: bool) -> str | None:
    """What is wrong with a manifest row's label, label id and targets against the card's classes and kind."""
    if multi:
        return multi_label_row_problem(Window(**{"targets": "", **row}), classes)
    if "targets" in row:
        return "a targets column in a single-label dataset"
    label, label_id = row["label"], row["label_id"]
    if not (0 <= label_id < len(classes) and classes[label_id] == label):
        return f"label {label!r} with id {label_id} disagrees with the card's classes"
    return None


def class_counts(counts: Counter, multi: bool) -> Counter:
    """Windows per (split, class) from windows per (split, label): a multi-label row counts for each of its classes."""
    if not multi:
        return counts
    out: Counter = Counter()
    for (split, label), n in counts.items():
        for c in label.split(SEPARATOR):
            out[split, c] += n
    return out


def _scan_manifest(root: Path, card: dict, problems: _Problems) -> Counter | None:
    """Check every manifest row against the card (splits, classes or multi-hot targets, window, unique keys,
    counts).

    Returns the windows per (split, label), or None when the manifest cannot be read.
    """
    classes, length, fs = card["classes"], card["window"]["length"], card["window"].get("fs")
    multi = is_multi_label(card)
    counts: Counter = Counter()
    keys: set[str] = set()
    try:
        for line, row in _manifest_rows(root / MANIFEST):
            where = f"{MANIFEST} line {line}"
            if row["split"] not in SPLITS:
                problems.once("split", f"{where}: split {row['split']!r} is not one of {SPLITS}: rebuild the dataset")
                continue
            if row["key"] in keys:
                problems.once("dup", f"{where}: key {row['key']} appears twice: rebuild the dataset")
            keys.add(row["key"])
            label = row["label"]
            problem = _label_problem(row, classes, multi)
            if problem:
                problems.once("label", f"{where}: {problem} ({card.get('label_type', 'single-label')} dataset)")
            if row["length"] != length:
                problems.once("length", f"{where}: window length {row['length']}, dataset.json says {length}")
            if fs is not None and row["fs"] != fs:
                problems.once("fs", f"{where}: fs {row['fs']} Hz, dataset.json's window.fs says {fs}: re-download or rebuild the dataset")
            counts[row["split"], label] += 1
    except DatasetError as exc:
        problems.append(str(exc))
        return None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        problems.append(f"{MANIFEST}: cannot read ({exc}): re-download or rebuild it")
        return None
    windows = card.get("split_windows")
    if multi and isinstance(windows, dict):
        found_windows = {s: sum(n for (split, _), n in counts.items() if split == s) for s in SPLITS}
        if {s: windows.get(s, 0) for s in SPLITS} != found_windows:
            problems.append(f"dataset.json: split_windows {windows} differ from {MANIFEST}'s {found_windows}: "
                            "re-download or rebuild the dataset")
    total = card.get("total")
    if total is not None and total != counts.total():
        problems.append(f"dataset.json: total is {total}, {MANIFEST} has {counts.total()} rows: re-download or rebuild the dataset")
    declared = Counter({(s, c): n for s, per in card["counts"].items() for c, n in per.items() if n})
    found = class_counts(counts, multi)
    if declared != found:
        diff = sorted(set(declared.items()) ^ set(found.items()))[0]
        problems.append(
            f"dataset.json: counts per split and class differ from {MANIFEST} (first: {diff[0][0]}/{diff[0][1]}: "
            f"card {declared[diff[0]]}, manifest {found[diff[0]]}): rebuild the card"
        )
    return counts


def _tar_samples(tar: tarfile.TarFile, rel: str, report: Callable[[str], None]) -> Iterator[_Sample]:
    """Complete samples of one shard; an incomplete or malformed sample is reported, not yielded."""
    key: str | None = None
    members: dict[str, bytes] = {}

    def finish(key: str) -> _Sample | None:
        problem = sample_members_problem(members)
        if problem:
            report(f"{rel}: sample {key} {problem}: re-download or rebuild the shard")
            return None
        try:
            target: int | str = MEMBER_DECODERS["cls"](members["cls"]) if "cls" in members else \
                "".join(map(str, MEMBER_DECODERS["hot"](members["hot"])))
            row = MEMBER_DECODERS["json"](members["json"])
        except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError included
            report(f"{rel}: sample {key} has an unreadable .cls, .hot or .json ({exc}): rebuild the shard")
            return None
        return _Sample(rel, key, target, row, png_header(members["png"]))

    for member in tar:
        try:
            name_key, ext = member_name(member, rel)
        except DatasetError as exc:
            report(str(exc))
            continue
        if name_key != key:
            if key is not None and (sample := finish(key)):
                yield sample
            key, members = name_key, {}
        if ext in members:
            report(f"{rel}: sample {key} has two .{ext} members: rebuild the shard")
        file = tar.extractfile(member)
        assert file is not None  # member_name let only a regular file through
        members[ext] = file.read(26 if ext == "png" else -1)
    if key is not None and (sample := finish(key)):
        yield sample


class _ShardStream:
    """Samples of a split's shards in order, hashing each shard as it is parsed (one read per shard)."""

    def __init__(self, root: Path, split: str, files: dict, update, problems: _Problems):
        self.root, self.split, self.files, self.update, self.problems = root, split, files, update, problems
        self.damaged = False  # set once a shard is unreadable or holds a broken sample

    def _report(self, text: str) -> None:
        self.damaged = True
        self.problems.append(text)

    def _shards(self) -> list[tuple[str, str]]:
        """(relative path, location) of the split's shards: those on disk, or for a dataset opened from a URL the
        ones its card lists, at their URLs."""
        if remote_base(self.root) is not None:
            return [(rel, shard_location(self.root, rel)) for rel in sorted(self.files) if shard_split(rel) == self.split]
        return [(p.relative_to(self.root).as_posix(), str(p)) for p in shard_paths(self.root, self.split)]

    def __iter__(self) -> Iterator[_Sample]:
        remote = remote_base(self.root) is not None
        for rel, location in self._shards():
            if not remote:  # a stream has no end to look at first; its digest and sample count catch a cut one
                try:
                    check_shard_end(location)
                except DatasetError:
                    self._report(f"{rel}: truncated (no tar end marker): re-download or rebuild it")
            samples = 0
            try:
                file = open_stream(location)
            except (OSError, DatasetError) as exc:
                self._report(f"{rel}: cannot be read ({exc}): re-download or rebuild it")
                continue
            with file:
                reader = HashingReader(file, self.update)
                try:
                    with tarfile.open(fileobj=reader, mode="r|") as tar:  # type: ignore[call-overload]  # a stream needs only read()
                        for sample in _tar_samples(tar, rel, self._report):
                            samples += 1
                            yield sample
                except (tarfile.TarError, EOFError, OSError) as exc:
                    self._report(f"{rel}: not a readable tar ({exc}): re-download or rebuild it")
                try:
                    sha, size = reader.drain()
                except OSError as exc:  # a connection that broke: no digest to compare
                    self._report(f"{rel}: cannot be read to its end ({exc}): try again, or re-download it")
                    continue
            if rel in self.files:
                expected = self.files[rel]
                problem = _digest_problem(rel, expected, sha, size)
                if problem:
                    self.problems.append(problem)
                if samples != expected["samples"]:
                    self._report(f"{rel}: {samples} complete samples, dataset.json says {expected['samples']}")


def _h5_rows(group: h5py.Group) -> Iterator[tuple[str, int | str]]:
    keys, labels = group["key"].asstr(), group["y"]
    for start in range(0, len(labels), _H5_BLOCK):
        block = labels[start : start + _H5_BLOCK]
        targets = block.tolist() if block.ndim == 1 else ["".join(map(str, r)) for r in block.tolist()]
        yield from zip(keys[start : start + _H5_BLOCK], targets)


def _h5_split(h5: h5py.File | None, split: str, n: int, length: int, problems: _Problems,
              n_classes: int | None = None) -> Iterator:
    """(key, label id or multi-hot string) rows of refecg.h5's split after checking its datasets' shapes and
    types (y is (n,) single-label, (n, n_classes) multi-label); empty if unusable."""
    if h5 is None:
        return iter(())
    try:
        group = h5[split]
        x, y, key = group["x"], group["y"], group["key"]
    except KeyError as exc:
        problems.append(f"{REFECG}: /{split} lacks x, y or key ({exc}): rebuild refecg.h5")
        return iter(())
    y_shape = (n,) if n_classes is None else (n, n_classes)
    if x.dtype != "float32" or x.shape != (n, length) or y.dtype != "int64" or y.shape != y_shape or key.shape != (n,):
        problems.append(
            f"{REFECG}: /{split} has x {x.dtype}{x.shape}, y {y.dtype}{y.shape}, key {key.shape}; "
            f"the manifest needs x float32({n}, {length}), y int64{y_shape}: rebuild refecg.h5"
        )
        return iter(())
    return _h5_rows(group)


def _split_rows(root: Path, split: str) -> Iterator[dict]:
    return (row for _, row in _manifest_rows(root / MANIFEST) if row["split"] == split)


def _cross_check(root: Path, card: dict, counts: Counter, update, h5, problems: _Problems) -> None:
    """Shards and refecg.h5 hold the manifest's rows of each split, in manifest order, with the same labels."""
    length = card["window"]["length"]
    n_classes = len(card["classes"]) if is_multi_label(card) else None
    check_image = _ImageCheck(problems, card["render"])
    for split in SPLITS:
        n = sum(v for (s, _), v in counts.items() if s == split)
        stream = _ShardStream(root, split, card["files"], update, problems)
        rows = zip_longest(_split_rows(root, split), stream, _h5_split(h5, split, n, length, problems, n_classes))
        shards_ok, h5_ok = True, h5 is not None
        for i, (expected, sample, h5_row) in enumerate(_guarded(rows, problems, split)):
            shards_ok &= not stream.damaged
            if shards_ok:
                shards_ok = _compare_sample(split, i, expected, sample, problems)
                if shards_ok:
                    check_image(sample)
            if h5_ok and h5_row is not None:
                if expected is None or h5_row != (expected["key"], _target(expected)):
                    want = "no row" if expected is None else f"{expected['key']} label {_target(expected)}"
                    problems.append(
                        f"{REFECG}: /{split} row {i} is {h5_row[0]} label {h5_row[1]}, {MANIFEST} has {want}: "
                        f"rebuild refecg.h5"
                    )
                    h5_ok = False


def _guarded(rows: Iterator, problems: _Problems, split: str) -> Iterator:
    """`rows`, ended (with a problem) when refecg.h5's data cannot be read: a damaged HDF5 file raises OSError
    from inside h5py."""
    try:
        yield from rows
    except OSError as exc:
        problems.append(f"{REFECG}: /{split} cannot be read ({' '.join(str(exc).split())}): rebuild or re-download it")


def _target(row: dict) -> int | str:
    """What a sample's .cls/.hot and a refecg.h5 y row hold for a manifest row: label id or multi-hot string."""
    return row.get("targets") or row["label_id"]


def _compare_sample(split: str, i: int, expected: dict | None, sample: _Sample | None, problems: _Problems) -> bool:
    """One shard sample against its manifest row; False (after recording the problem) on the first mismatch."""
    if sample is None:
        assert expected is not None  # refecg.h5's rows never outnumber the manifest's (_h5_split checks shapes)
        problems.append(
            f"{IMAGES}/: the {split} shards end after {i} samples, {MANIFEST} has more (next: {expected['key']}): "
            f"a shard is missing or truncated"
        )
        return False
    if expected is None:
        problems.append(f"{sample.shard}: sample {sample.key} is beyond the {i} {split} rows of {MANIFEST}")
        return False
    if sample.key != expected["key"]:
        problems.append(
            f"{sample.shard}: {split} sample {i} is {sample.key}, {MANIFEST} has {expected['key']}: "
            f"shards and manifest disagree"
        )
        return False
    if sample.target != _target(expected) or sample.row != expected:
        problems.append(f"{sample.shard}: sample {sample.key} has a label or .json row that differs from {MANIFEST}")
        return False
    return True


class _ImageCheck:
    """Every PNG is 8-bit grey and of the card's render size (out_w x out_h), or where the card gives none,
    of the size of the first one (each reported once)."""

    def __init__(self, problems: _Problems, render: dict):
        self.problems = problems
        size = (render.get("out_w"), render.get("out_h"))
        self.size: tuple | None
        self.size, self.where = (size, "dataset.json's render says") if None not in size else (None, "earlier ones are")

    def __call__(self, sample: _Sample) -> None:
        if sample.png[2:] != (8, 0):
            self.problems.once("png", f"{sample.shard}: sample {sample.key} is not an 8-bit grey PNG: rebuild it")
        elif self.size is None:
            self.size = sample.png[:2]
        elif sample.png[:2] != self.size:
            (w, h), (want_w, want_h) = sample.png[:2], self.size
            self.problems.once(
                "size", f"{sample.shard}: sample {sample.key} is {w}x{h} px (w x h), {self.where} {want_w}x{want_h}: "
                f"re-download or rebuild the dataset"
            )


def verify_dataset(root: str | Path, progress: bool = False) -> list[str]:
    """Problems found in a dataset directory, one line each naming the file; an empty list means sound.

    Checks: the card (self-checksum, fields); every listed file present with its size and sha256; no
    unlisted shard; every shard a readable tar of complete samples with no other member; the shards of
    each split hold exactly the manifest rows of that split in manifest order (keys, labels, .json
    rows), as PNGs of the card's render size; refecg.h5 holds the same keys and labels in the same
    order with x of shape (N, window); the card's counts, total and window.fs match the manifest. Files are
    streamed (each shard read once), with a tqdm bar over bytes when `progress`.
    """
    root = Path(root)
    try:
        card = read_card(root)
    except DatasetError as exc:
        return [str(exc)]
    problems = _Problems()
    files = card["files"]
    _check_listing(root, files, problems)
    with tqdm(total=sum(f["bytes"] for f in files.values()), unit="B", unit_scale=True, desc="verify",
              disable=not progress) as bar:
        for rel, expected in files.items():
            if shard_split(rel) is None and (root / rel).is_file():
                problem = _digest_problem(rel, expected, *file_digest(root / rel, bar.update))
                if problem:
                    problems.append(problem)
        counts = _scan_manifest(root, card, problems) if (root / MANIFEST).is_file() else None
        if counts is None:  # nothing to cross-check against: still check every shard and its digest
            for split in SPLITS:
                for _ in _ShardStream(root, split, files, bar.update, problems):
                    pass
            return list(problems)
        h5 = None
        try:
            h5 = h5py.File(root / REFECG, "r")
        except OSError as exc:
            problems.append(f"{REFECG}: cannot open ({exc}): rebuild or re-download it")
        try:
            _cross_check(root, card, counts, bar.update, h5, problems)
        finally:
            if h5 is not None:
                h5.close()
    return list(problems)
