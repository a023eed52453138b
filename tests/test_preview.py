"""`ecgrender preview`: a labelled grid of stored samples per class, from a dataset written with `shards`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _train_data import CLASSES as ML_CLASSES
from _train_data import make_dataset as make_training_dataset
from click.testing import CliRunner
from PIL import Image

from ecgrender.cli import main
from ecgrender.errors import EcgError
from ecgrender.preview import pick_samples, write_preview
from shards.card import write_card
from shards.errors import DatasetError
from shards.layout import shard_name
from shards.writer import write_shard

CLASSES = ["N", "AFIB", "T"]


def _sample(i: int, label_id: int, split: str):
    key = f"rec{i:03d}_{i * 1000:09d}"
    image = np.full((314, 384), 255, np.uint8)
    image[100:110, : 10 * (i + 1)] = 100  # a bar whose length identifies the sample
    row = {
        "key": key, "database": "mitdb", "record": f"rec{i:03d}", "patient": f"p{i}", "start": i * 1000,
        "length": 1000, "fs": 360.0, "label": CLASSES[label_id], "label_id": label_id, "split": split,
    }
    return key, image, label_id, row


def make_dataset(root: Path, labels: dict[str, list[int]]) -> Path:
    """A tiny dataset: one shard per split holding samples with the given label ids (no T samples)."""
    (root / "images").mkdir(parents=True)
    counts, i = {}, 0
    for split, ids in labels.items():
        samples = []
        for label_id in ids:
            samples.append(_sample(i, label_id, split))
            i += 1
        if samples:
            write_shard(root / shard_name(split, 0), samples)
        counts[split] = {c: ids.count(k) for k, c in enumerate(CLASSES)}
    write_card(
        root,
        {
            "software_version": "test", "source": {"database": "mitdb", "version": "1.0.0"}, "classes": CLASSES,
            "counts": counts, "window": {"length": 1000}, "n_leads": 2, "leads": ["MLII", "V1"], "split_by": "patient",
            "render": {}, "seed": 0, "renderer": "matplotlib",
        },
    )
    return root


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("ds"), {"train": [0] * 6 + [1] * 3, "val": [], "test": [0, 1]})


def test_writes_one_row_per_class(dataset, tmp_path):
    out = write_preview(dataset, tmp_path / "grid.png", per_class=4)
    assert out == tmp_path / "grid.png" and not list(tmp_path.glob("*.tmp"))
    grid = np.asarray(Image.open(out).convert("L"))
    assert grid.shape == (round((1.9 * len(CLASSES) + 0.6) * 100), round((2.2 * 4 + 0.6) * 100))
    # The stored images appear: white cells with the dark bars drawn into the samples.
    assert (grid == 255).mean() > 0.5 and (grid < 140).any()


def test_pick_samples_is_seeded_uniform_and_bounded(dataset):
    picks = pick_samples(dataset, CLASSES, 2, ("train", "val", "test"), seed=0)
    assert [len(p) for p in picks] == [2, 2, 0]  # T has no samples
    assert all(row["label"] == CLASSES[k] for k, p in enumerate(picks) for _, _, row in p)
    assert all(img.dtype == np.uint8 and img.shape == (314, 384) for p in picks for _, img, _ in p)
    keys = lambda p: [[key for key, _, _ in cls] for cls in p]  # noqa: E731
    assert keys(pick_samples(dataset, CLASSES, 2, ("train", "val", "test"), seed=0)) == keys(picks)
    # Over seeds every N sample (7 of them) gets picked sometimes: a reservoir, not the first two.
    seen = {key for seed in range(40) for key in keys(pick_samples(dataset, CLASSES, 2, ("train", "test"), seed))[0]}
    assert len(seen) == 7
    # A class with fewer samples than asked keeps all of them.
    assert len(pick_samples(dataset, CLASSES, 10, ("train",), seed=1)[1]) == 3


def test_split_option(dataset, tmp_path):
    picks = pick_samples(dataset, CLASSES, 4, ("test",), seed=0)
    assert [len(p) for p in picks] == [1, 1, 0]
    assert write_preview(dataset, tmp_path / "test.png", per_class=2, split="test").is_file()


def test_empty_or_missing_dataset_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetError, match="dataset.json"):
        write_preview(tmp_path / "nothing", tmp_path / "grid.png")
    empty = make_dataset(tmp_path / "empty", {"train": [], "val": [], "test": []})
    with pytest.raises(EcgError, match="no samples"):
        write_preview(empty, tmp_path / "grid.png")
    assert not (tmp_path / "grid.png").exists()


def test_bad_arguments(dataset, tmp_path):
    with pytest.raises(EcgError, match="split"):
        write_preview(dataset, tmp_path / "g.png", split="holdout")
    with pytest.raises(EcgError, match="per_class"):
        write_preview(dataset, tmp_path / "g.png", per_class=0)
    with pytest.raises(EcgError, match="does not exist"):
        write_preview(dataset, tmp_path / "no" / "g.png")


def test_cli(dataset, tmp_path):
    result = CliRunner().invoke(main, ["preview", str(dataset), "-o", str(tmp_path / "g.png"), "--per-class", "2"])
    assert result.exit_code == 0, result.output
    assert str(tmp_path / "g.png") in result.output and (tmp_path / "g.png").is_file()
    result = CliRunner().invoke(main, ["preview", str(tmp_path / "missing"), "-o", str(tmp_path / "h.png")])
    assert result.exit_code == 2 and "dataset.json" in result.output


def test_multi_label_samples_appear_in_the_row_of_each_of_their_classes(tmp_path):
    root = make_training_dataset(tmp_path / "ml", counts={"train": 6, "val": 3, "test": 3}, multi_label=True)
    chosen = pick_samples(root, ML_CLASSES, per_class=10, splits=("train",), seed=0)
    slow, fast = ({key for key, _, _ in samples} for samples in chosen)
    assert len(slow) == len(fast) == 4  # train windows cycle slow, fast, both: 4 of 6 have each class
    assert len(slow & fast) == 2  # the windows with both classes are in both rows
    out = write_preview(root, tmp_path / "grid.png", per_class=2)
    assert Image.open(out).size[0] > 0
