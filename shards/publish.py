"""`ecgrender publish DATASET DEST`: upload a verified dataset to an fsspec destination, its card last.

Readers take a dataset to be complete only when its dataset.json is there (every reader starts from
the card), so a card already at DEST (an earlier publish) is removed first, every other file uploaded
next and the card last: a half-uploaded dataset is never seen as complete; a re-run uploads everything
again and ends the same. DEST may not be the dataset itself or a folder inside it.
"""

from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from .card import read_card
from .errors import DatasetError
from .layout import CARD
from .remote import is_url
from .verify import verify_dataset

_CHUNK = 1 << 20


def publish_dataset(dataset, dest: str, progress: bool = False) -> str:
    """Copy the dataset directory `dataset` to the fsspec URL `dest` (files, then the card); returns `dest`
    without a trailing slash. DatasetError when the dataset does not verify or `dest` cannot be written."""
    import fsspec
    from fsspec.implementations.local import LocalFileSystem

    root = Path(dataset)
    if not is_url(dest):
        raise DatasetError(f"publish destination {dest!r} is not a URL: give file:///path, s3://bucket/prefix, ...")
    if dest.startswith(("http://", "https://")):
        raise DatasetError(f"cannot publish to {dest}: HTTP is read-only here; upload to the server's storage "
                           "(e.g. file:// on it, or s3://) and serve that")
    problems = verify_dataset(root)
    if problems:
        raise DatasetError(f"{root} does not verify ({problems[0]}); publish only a sound dataset")
    card = read_card(root)
    dest = dest.rstrip("/")
    try:
        fs, base = fsspec.core.url_to_fs(dest)
    except (ImportError, ValueError) as exc:
        raise DatasetError(f"cannot publish to {dest}: {exc} (install the fsspec back end for its scheme)") from None
    if isinstance(fs, LocalFileSystem):
        where, source = Path(base).resolve(), root.resolve()
        if where == source or source in where.parents:
            raise DatasetError(f"cannot publish {root} to {dest}: that is the dataset itself or a folder inside it")
    files = [*sorted(card["files"]), CARD]  # the card last
    total = sum(card["files"][rel]["bytes"] for rel in files[:-1]) + (root / CARD).stat().st_size
    rel = CARD
    try:
        if fs.exists(f"{base}/{CARD}"):  # an earlier dataset there stops being one until the new card is written
            fs.rm(f"{base}/{CARD}")
        with tqdm(total=total, unit="B", unit_scale=True, desc="publish", disable=not progress) as bar:
            for rel in files:
                target = f"{base}/{rel}"
                fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
                with open(root / rel, "rb") as src, fs.open(target, "wb") as out:
                    while chunk := src.read(_CHUNK):
                        out.write(chunk)
                        bar.update(len(chunk))
    except OSError as exc:
        raise DatasetError(f"publishing to {dest} failed at {rel} ({exc}); the card was not written, so the copy "
                           "there is not a dataset: fix the destination and publish again") from None
    return dest
