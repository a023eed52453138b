"""shards.card: dataset.json lists every file with its digest, reads back, refuses bad cards, summarizes."""

import hashlib
import json
import tarfile

import pytest
from shards_helpers import card_fields, edit_card, make_dataset

from shards import FORMAT_VERSION, SINGLE_LABEL_VERSION
from shards.card import (
    CARD_DIGEST,
    ShardDigest,
    card_digest,
    file_digest,
    read_card,
    shard_digest,
    summarize_card,
    write_card,
)
from shards.errors import DatasetError


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("ds")
    rows = make_dataset(root)
    return root, rows


def test_card_lists_every_file_with_its_sha256_and_size(dataset):
    root, _ = dataset
    card = read_card(root)
    on_disk = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert sorted(card["files"]) == [f for f in on_disk if f != "dataset.json"]
    assert "manifest.csv" in card["files"] and "refecg.h5" in card["files"]
    assert "images/train-000002.tar" in card["files"] and "images/test-000000.tar" in card["files"]
    for rel, entry in card["files"].items():
        data = (root / rel).read_bytes()
        digest = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
        if rel.startswith("images/"):
            with tarfile.open(root / rel) as tar:
                digest["samples"] = len(tar.getnames()) // 3
        assert entry == digest
    assert [card["files"][f"images/train-00000{i}.tar"]["samples"] for i in range(3)] == [3, 3, 1]
    assert card["format_version"] == SINGLE_LABEL_VERSION  # what a version-2 reader reads: nothing new in it


def test_write_card_skips_temp_and_hidden_files_and_is_deterministic(tmp_path):
    rows = make_dataset(tmp_path)
    first = (tmp_path / "dataset.json").read_bytes()
    (tmp_path / "images" / "train-000009.tar.tmp").write_bytes(b"unfinished")
    (tmp_path / ".build").mkdir()
    (tmp_path / ".build" / "params.json").write_text("{}")
    (tmp_path / "images" / ".DS_Store").write_text("")
    card = write_card(tmp_path, card_fields(rows))
    assert not [f for f in card["files"] if f.endswith(".tmp") or "/." in f or f.startswith(".")]
    assert (tmp_path / "dataset.json").read_bytes() == first
    assert json.loads(first) == card == read_card(tmp_path)


def test_write_card_takes_the_digests_of_shards_hashed_as_written(tmp_path):
    rows = make_dataset(tmp_path)
    from_disk = read_card(tmp_path)["files"]
    written = {"images/train-000000.tar": shard_digest(tmp_path / "images/train-000000.tar")}
    assert write_card(tmp_path, card_fields(rows), written)["files"] == from_disk
    stale = {"images/train-000000.tar": ShardDigest("0" * 64, 1, 1)}  # not read again: taken as given
    assert write_card(tmp_path, card_fields(rows), stale)["files"]["images/train-000000.tar"] == {
        "sha256": "0" * 64, "bytes": 1, "samples": 1}


def test_file_digest_streams_and_reports_progress(tmp_path):
    data = bytes(range(256)) * 9000  # > 2 chunks of 1 MiB
    (tmp_path / "f").write_bytes(data)
    seen = []
    assert file_digest(tmp_path / "f", seen.append) == (hashlib.sha256(data).hexdigest(), len(data))
    assert sum(seen) == len(data) and len(seen) == 3


def test_read_card_refuses_missing_unparsable_and_newer_cards(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        read_card(tmp_path)
    (tmp_path / "dataset.json").write_text("{not json")
    with pytest.raises(DatasetError, match="not valid JSON"):
        read_card(tmp_path)
    make_dataset(tmp_path)
    card = json.loads((tmp_path / "dataset.json").read_text())
    (tmp_path / "dataset.json").write_text(json.dumps({**card, "format_version": FORMAT_VERSION + 1}))
    with pytest.raises(DatasetError, match="upgrade"):
        read_card(tmp_path)
    (tmp_path / "dataset.json").write_text(json.dumps(card))
    edit_card(tmp_path, lambda c: c.pop("classes"))
    with pytest.raises(DatasetError, match="'classes' is missing"):
        read_card(tmp_path)


def test_card_holds_the_digest_of_its_own_canonical_content(dataset):
    root, _ = dataset
    card = json.loads((root / "dataset.json").read_text())
    rest = {k: v for k, v in card.items() if k != CARD_DIGEST}
    canonical = json.dumps(rest, sort_keys=True, separators=(",", ":")).encode("ascii")
    assert card[CARD_DIGEST] == hashlib.sha256(canonical).hexdigest() == card_digest(card)
    assert FORMAT_VERSION == 3  # 3: multi-label datasets (label_type, targets, .hot); 2 is still read


@pytest.mark.parametrize(
    "change",
    [
        lambda c: c["window"].update(fs=250.0),
        lambda c: c.update(n_leads=3),
        lambda c: c.update(seed=8),
        lambda c: c.pop(CARD_DIGEST),
        lambda c: c["files"]["manifest.csv"].update(bytes=1),
    ],
)
def test_card_edited_after_it_was_written_is_refused(tmp_path, change):
    make_dataset(tmp_path)
    edit_card(tmp_path, change, resign=False)
    with pytest.raises(DatasetError, match="^dataset.json was edited after it was written: .*ecgrender build") as info:
        read_card(tmp_path)
    assert "\n" not in str(info.value)


def test_version_1_card_is_refused_with_a_message_to_rebuild(tmp_path):
    make_dataset(tmp_path)
    edit_card(tmp_path, lambda c: (c.update(format_version=1), c.pop(CARD_DIGEST)), resign=False)
    with pytest.raises(DatasetError, match="format version 1, this toolkit reads versions 2-3 .*rebuild the dataset"):
        read_card(tmp_path)


def test_version_2_card_is_read_as_single_label(tmp_path):
    make_dataset(tmp_path)
    edit_card(tmp_path, lambda c: (c.update(format_version=2), c.pop("label_type", None)))
    card = read_card(tmp_path)
    assert card["format_version"] == 2 and card.get("label_type", "single-label") == "single-label"


def test_multi_label_cards_are_version_3_and_a_version_2_one_is_refused(tmp_path):
    make_dataset(tmp_path)
    edit_card(tmp_path, lambda c: c.update(label_type="multi-label", format_version=2))
    with pytest.raises(DatasetError, match="a multi-label dataset is format version 3, not 2"):
        read_card(tmp_path)


def test_card_whose_n_leads_disagrees_with_its_leads_is_refused(tmp_path):
    make_dataset(tmp_path)
    edit_card(tmp_path, lambda c: c.update(n_leads=3))  # re-signed: the self-checksum cannot see it
    with pytest.raises(DatasetError, match="n_leads is 3 but leads names 2"):
        read_card(tmp_path)
    with pytest.raises(DatasetError, match="n_leads is 1 but leads names 2"):
        write_card(tmp_path, {**card_fields([]), "n_leads": 1})


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda c: c.pop("seed"), "'seed' is missing"),
        (lambda c: c.update(seed="7"), "'seed' must be of type int"),
        (lambda c: c.update(source={"database": "mitdb"}), "version"),
        (lambda c: c.update(classes=["N", "N"]), "distinct"),
        (lambda c: c.update(window={"length": 0}), "length"),
        (lambda c: c.update(window={"length": 4, "fs": -1}), "fs"),
        (lambda c: c["render"].update(out_h=0), "out_h"),
        (lambda c: c["counts"].update(dev={}), "splits"),
        (lambda c: c["counts"]["train"].update(X=3), "labels must be classes"),
    ],
)
def test_write_card_refuses_incomplete_fields(tmp_path, change, message):
    fields = card_fields([])
    change(fields)
    with pytest.raises(DatasetError, match=message):
        write_card(tmp_path, fields)
    assert list(tmp_path.iterdir()) == []


def test_write_card_refuses_non_json_values_and_missing_directories(tmp_path):
    with pytest.raises(DatasetError, match="cannot be stored as JSON"):
        write_card(tmp_path, {**card_fields([]), "render": {"dpi": object()}})
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(DatasetError, match="not found"):
        write_card(tmp_path / "absent", card_fields([]))


def test_summary_shows_source_classes_counts_parameters_and_size(dataset):
    root, rows = dataset
    card = read_card(root)
    text = summarize_card({**card, "build": {"seed": 7}})
    assert "leads        2: MLII, V1" in text and "split by     patient" in text and "build        seed=7" in text
    assert "mitdb 1.0.0" in text and "0=N, 1=AFIB, 2=B" in text
    assert "length=40" in text and "seed         7" in text and "renderer     test" in text
    assert "written by 0.1.0" in text and "train 3, val 1, test 1" in text
    assert "total        12" in text  # the card's total (an extra field)
    total_line = [line for line in text.splitlines() if line.strip().startswith("total")][-1]
    assert total_line.split()[1:] == ["7", "3", "2", str(len(rows))]
    n_line = next(line for line in text.splitlines() if line.strip().startswith("N "))
    assert int(n_line.split()[-1]) == sum(r["label"] == "N" for r in rows)
    assert f"{len(card['files'])}, " in text
