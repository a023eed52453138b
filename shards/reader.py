"""Read a dataset's image shards: the card's shard list per split, and samples decoded with explicit decoders.

A shard is untrusted data. Readers take exactly the shards the card lists, accept only regular
members named `{key}.cls`, `{key}.json`, `{key}.png`, and decode each type with its own decoder
(`MEMBER_DECODERS`): nothing else is decoded, so nothing in a shard can run code (webdataset's
default decoders would unpickle a `.pyd` member).
"""

from __future__ import annotations

import io
import json
import struct
import tarfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import webdataset as wds
from PIL import Image
from zlib_ng import zlib_ng

from .card import HashingReader, read_card
from .errors import DatasetError
from .layout import SAMPLE_EXTENSIONS, TARGET_EXTENSIONS, check_shard_end, check_split, shard_paths, shard_split
from .remote import is_url, open_stream, remote_base, shard_location
from .writer import PNG_SIGNATURE, check_key

try:  # libspng decodes the format's PNGs about twice as fast as Pillow (docs/format.md); Pillow where no wheel
    import pyspng
except ImportError:  # a platform without a pyspng wheel (see the pyspng line in pyproject.toml)
    pyspng = None

_FIX = "run `ecgrender verify` on the dataset, then re-download or rebuild that shard"


def split_shards(root: str | Path, split: str) -> list[tuple[str, int]]:
    """(absolute path or URL, number of samples) of each shard of `split`, in order, as dataset.json lists them
    (URLs for a dataset opened from a URL: `remote.open_dataset`).

    Requires the card (a dataset without one is incomplete) and the shards it lists to be exactly those
    on disk: an unlisted shard or a listed one that is missing is a DatasetError naming it. An empty
    list means the split holds no windows.
    """
    check_split(split)
    root = Path(root).resolve()
    files = read_card(root)["files"]
    listed = sorted(rel for rel in files if shard_split(rel) == split)
    if remote_base(root) is not None:  # a dataset opened from a URL: its shards are streamed from there
        return [(shard_location(root, rel), files[rel]["samples"]) for rel in listed]
    on_disk = {p.relative_to(root).as_posix() for p in shard_paths(root, split)}
    unlisted, missing = sorted(on_disk - set(listed)), sorted(set(listed) - on_disk)
    if unlisted:
        raise DatasetError(
            f"{root}: {unlisted[0]} is on disk but not listed in dataset.json: it is not part of the dataset; "
            f"remove it (or re-download the dataset), then run `ecgrender verify`"
        )
    if missing:
        raise DatasetError(
            f"{root}: {missing[0]} is listed in dataset.json but missing: re-download or rebuild the dataset"
        )
    return [(str(root / rel), files[rel]["samples"]) for rel in listed]


def split_urls(root: str | Path, split: str) -> list[str]:
    """Absolute paths of the shards of `split`, in order, for a webdataset pipeline (see split_shards)."""
    return [url for url, _ in split_shards(root, split)]


def _usable_key(key: str) -> bool:
    try:
        check_key(key)
    except DatasetError:
        return False
    return True


def member_name(member: tarfile.TarInfo, shard: str) -> tuple[str, str]:
    """(key, extension) of a shard member; DatasetError naming the shard and the member unless it is a
    regular file `{key}.{ext}` with a usable key and ext one of SAMPLE_EXTENSIONS."""
    key, _, ext = member.name.partition(".")
    if not (member.isreg() and ext in SAMPLE_EXTENSIONS and _usable_key(key)):
        raise DatasetError(
            f"shard {shard}: unexpected member {member.name!r} (a shard holds only regular files "
            f"KEY.{'/.'.join(SAMPLE_EXTENSIONS)}): do not use this shard; re-download or rebuild it"
        )
    return key, ext


_COLOUR_TYPES = {0: "grey", 2: "RGB", 3: "palette", 4: "grey and alpha", 6: "RGBA"}


def png_header(data: bytes) -> tuple:
    """(width, height, bit depth, colour type) from a PNG's IHDR chunk, () if `data` does not start as a PNG."""
    if not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR" or len(data) < 26:
        return ()
    return struct.unpack(">IIBB", data[16:26])


def check_png_chunks(data: bytes) -> None:
    """ValueError unless every chunk of the PNG `data`, up to IEND, is whole and matches its CRC. libspng
    ignores checksums, so a damaged PNG is caught here rather than decoded into wrong pixels."""
    view, at = memoryview(data), len(PNG_SIGNATURE)
    while True:
        if at + 12 > len(data):
            raise ValueError("the PNG ends before its IEND chunk")
        (length,) = struct.unpack_from(">I", data, at)
        end = at + 8 + length
        kind = bytes(view[at + 4 : at + 8])
        if end + 4 > len(data) or zlib_ng.crc32(view[at + 4 : end]) != struct.unpack_from(">I", data, end)[0]:
            raise ValueError(f"PNG chunk {kind!r} at byte {at} is cut short or fails its CRC")
        if kind == b"IEND":
            return
        at = end + 4


def _png(data: bytes) -> np.ndarray:
    header = png_header(data)
    if not header:
        raise ValueError("not a PNG (no PNG signature and IHDR chunk)")
    depth, colour = header[2:]
    if (depth, colour) != (8, 0):
        raise ValueError(f"{depth}-bit {_COLOUR_TYPES.get(colour, f'colour type {colour}')}, not 8-bit grey (L)")
    check_png_chunks(data)
    if pyspng is not None:
        return pyspng.load(data)
    with Image.open(io.BytesIO(data), formats=["PNG"]) as image:
        return np.asarray(image, dtype=np.uint8)


def _cls(data: bytes) -> int:
    return int(data.decode("ascii"))


def _hot(data: bytes) -> np.ndarray:
    text = data.decode("ascii")
    if not text or set(text) - {"0", "1"}:
        raise ValueError(f"{text[:40]!r} is not a string of 0 and 1")
    return np.frombuffer(data, dtype=np.uint8) - ord("0")


def _json(data: bytes) -> dict:
    row = json.loads(data)
    if not isinstance(row, dict):
        raise ValueError(f"a JSON {type(row).__name__}, not an object")
    return row


# The format's member types and their decoders; no other member is ever decoded.
MEMBER_DECODERS: dict[str, Callable[[bytes], Any]] = {"cls": _cls, "hot": _hot, "json": _json, "png": _png}


def sample_members_problem(exts) -> str | None:
    """What a sample with members `exts` lacks or has too much of (None: .json, .png and one of .cls/.hot)."""
    missing = [ext for ext in ("json", "png") if ext not in exts]
    targets = [ext for ext in TARGET_EXTENSIONS if ext in exts]
    if missing or len(targets) != 1:
        return (f"lacks {missing}" if missing else
                "has no .cls or .hot target" if not targets else "has both a .cls and a .hot target")
    return None


def _one_line(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())


def decode_sample(sample: dict) -> tuple[str, np.ndarray, Any, dict]:
    """A raw webdataset sample (bytes per member) -> (key, grey uint8 (H, W) image, target, manifest row); the
    target is the label id (int, from `.cls`) or the multi-hot vector (uint8 (C,), from `.hot`).

    Decodes `.png` with libspng (pyspng; Pillow where it has no wheel) after checking it is an 8-bit grey PNG
    whose chunks match their CRCs, `.cls` with int, `.hot` as '0'/'1' characters, `.json`
    with json.loads; a missing or undecodable member is a one-line DatasetError naming the shard and the member.
    """
    url, key = sample.get("__url__", "?"), sample.get("__key__", "?")
    problem = sample_members_problem([ext for ext in SAMPLE_EXTENSIONS if ext in sample])
    if problem:
        raise DatasetError(f"shard {url}: sample {key} {problem}: {_FIX}")
    decoded = {}
    for ext, decode in MEMBER_DECODERS.items():
        if ext not in sample:
            continue
        try:
            decoded[ext] = decode(sample[ext])
        except Exception as exc:  # PIL, unicode, int and JSON errors alike mean a damaged member
            raise DatasetError(f"shard {url}: member {key}.{ext} is damaged ({_one_line(exc)}): {_FIX}") from None
    target = decoded["cls"] if "cls" in decoded else decoded["hot"]
    return key, decoded["png"], target, decoded["json"]


def _members(url: str, stream, expected: int) -> Iterator[dict]:
    """The members of one opened shard as {fname, data, __url__}, checked (names, duplicates, sample count)."""
    keys: set[str] = set()
    key: str | None = None
    exts: set[str] = set()
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        for member in tar:
            name_key, ext = member_name(member, url)
            if name_key != key:
                if name_key in keys:
                    raise DatasetError(f"shard {url}: sample key {name_key} appears twice: {_FIX}")
                keys.add(name_key)
                key, exts = name_key, set()
            if ext in exts:
                raise DatasetError(f"shard {url}: sample {key} has two .{ext} members: {_FIX}")
            exts.add(ext)
            file = tar.extractfile(member)
            assert file is not None  # member_name let only a regular file through
            yield {"fname": member.name, "data": file.read(), "__url__": url}
    if len(keys) != expected:  # a damaged tar header makes tarfile stop without an error
        raise DatasetError(f"shard {url} holds {len(keys)} samples, dataset.json says {expected}: {_FIX}")


def _shard_files(sources: Iterable[dict], samples: dict[str, int], digests: dict[str, str]) -> Iterator[dict]:
    """webdataset stage: opened shards {url, stream} -> their checked members, then {} at each shard's end; a
    shard named in `digests` is hashed as it is read and must have that sha256."""
    for source in sources:
        url, stream = source["url"], source["stream"]
        expected = digests.get(url)
        reader = HashingReader(stream) if expected else stream
        try:
            if not is_url(url):  # a stream has no end to look at first; the sample count catches a cut one
                check_shard_end(url)
            yield from _members(url, reader, samples[url])
            sha = reader.drain()[0] if isinstance(reader, HashingReader) else None
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise DatasetError(f"shard {url} is unreadable ({_one_line(exc)}): {_FIX}") from None
        finally:
            stream.close()
        if expected and sha != expected:
            raise DatasetError(f"shard {url} is not the one dataset.json describes (sha256 {str(sha)[:12]}, the card "
                               f"says {expected[:12]}): {_FIX}")
        yield {}


def _open_shards(src: Iterable[dict]) -> Iterator[dict]:
    """Shard URLs or paths {url} -> {url, stream} (remote.open_stream: timeouts, retries); a shard that cannot be
    opened is a DatasetError naming it."""
    for source in src:
        url = source["url"]
        try:
            stream = open_stream(url)
        except (OSError, DatasetError) as exc:
            raise DatasetError(f"shard {url} cannot be opened ({_one_line(exc)}): {_FIX}") from None
        yield {**source, "stream": stream}


def _shard_samples(src: Iterable[dict], samples: dict[str, int], digests: dict[str, str]) -> Iterator[dict]:
    return wds.tariterators.group_by_keys(_shard_files(_open_shards(src), samples, digests))


def shard_digests(root: str | Path, split: str) -> dict[str, str]:
    """{URL: sha256} of the shards of `split` of a dataset opened from a URL (streamed shards are checked against
    their card as they are read); {} for a local dataset (checked by `ecgrender verify`)."""
    if remote_base(root) is None:
        return {}
    files = read_card(root)["files"]
    return {shard_location(root, rel): files[rel]["sha256"] for rel in files if shard_split(rel) == split}


def shard_samples(samples: dict[str, int], digests: dict[str, str] | None = None):
    """webdataset pipeline stage: shard URLs {url} -> raw samples (bytes per member), in place of
    `tarfile_to_samples`; follow it with `wds.map(decode_sample)`.

    `samples` is the card's {url: number of samples} (dict(split_shards(...))); `digests` (shard_digests) the
    sha256 a shard must have. A member other than the format's, a truncated or unreadable shard, a sample count
    or sha256 other than the card's raise a DatasetError naming the shard.
    """
    return wds.filters.pipelinefilter(_shard_samples)(samples=samples, digests=digests or {})


def iter_samples(root: str | Path, split: str) -> Iterator[tuple[str, np.ndarray, Any, dict]]:
    """Decoded samples of `split` in shard order: (key, grey uint8 (H, W) image, target, manifest row); the
    target is a label id or a multi-hot uint8 vector (`decode_sample`).

    Reads exactly the card's shards (split_shards) through `shard_samples` and `decode_sample`.
    """
    shards = split_shards(root, split)
    if not shards:  # webdataset refuses an empty shard list
        return
    yield from wds.DataPipeline(
        wds.SimpleShardList([url for url, _ in shards]), shard_samples(dict(shards), shard_digests(root, split)),
        wds.map(decode_sample)
    )
