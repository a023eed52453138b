"""`ecgrender card`: a dataset described as Croissant 1.0 JSON-LD and as a Hugging Face dataset card."""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
from pathlib import Path

import pytest
import yaml  # PyYAML comes with the test extra (dask depends on it)
from buildutil import ecgrender, refused, tree_bytes
from shards_helpers import edit_card, make_dataset

from shards.card import file_digest, read_card
from shards.layout import SPLITS, shard_split
from shards.manifest import COLUMNS, read_manifest
from shards.metadata import (
    CROISSANT_1_0,
    croissant,
    hf_card,
    hf_license,
    size_category,
    spdx_url,
)

pytestmark = pytest.mark.filterwarnings("ignore:ConjunctiveGraph is deprecated:DeprecationWarning")  # rdflib's

# The @context keys of Croissant 1.0 (the specification's examples; mlcroissant warns when one is missing).
CONTEXT_KEYS = {
    "@language", "@vocab", "citeAs", "column", "conformsTo", "cr", "data", "dataType", "dct", "extract", "field",
    "fileProperty", "fileObject", "fileSet", "format", "includes", "isLiveDataset", "jsonPath", "key", "md5",
    "parentField", "path", "recordSet", "references", "regex", "repeated", "replace", "sc", "separator", "source",
    "subField", "transform",
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    """A tiny single-label demo dataset (read-only)."""
    out = tmp_path_factory.mktemp("meta-demo") / "demo-set"
    result = ecgrender("build", "--db", "demo", "--per-class", "3", "--split-by", "window", "--jobs", "1",
                       "--creator", "Ada Lovelace", "--description", "A test set.", "--out", out)
    assert result.exit_code == 0, result.output + result.stderr
    return out


@pytest.fixture(scope="module")
def ptbxl(synth_ptbxl, tmp_path_factory) -> Path:
    """A multi-label dataset of the synthetic PTB-XL tree (read-only)."""
    out = tmp_path_factory.mktemp("meta-ptbxl") / "ptbxl-set"
    result = ecgrender("build", "--db", "ptbxl", "--source", synth_ptbxl, "--split-by", "fold",
                       "--allow-missing-classes", "--jobs", "1", "--out", out)
    assert result.exit_code == 0, result.output + result.stderr
    return out


@pytest.fixture(scope="module")
def mlc(tmp_path_factory):
    """mlcroissant, with its download/extract cache in a temporary folder (skip when it is not installed)."""
    os.environ["CROISSANT_CACHE"] = str(tmp_path_factory.mktemp("croissant-cache"))  # read when it is imported
    return pytest.importorskip("mlcroissant")


def published(root: Path, tmp_path: Path, meta: dict) -> Path:
    """A copy of the dataset with the Croissant file next to dataset.json, as it would be published."""
    copy = tmp_path / root.name
    shutil.copytree(root, copy)
    (copy / "croissant.json").write_text(json.dumps(meta))
    return copy / "croissant.json"


def by_id(nodes: list[dict]) -> dict[str, dict]:
    return {n["@id"]: n for n in nodes}


def text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


# --- Croissant --------------------------------------------------------------------------------------------------


def test_croissant_describes_the_dataset_from_its_card(demo):
    card, meta = read_card(demo), croissant(demo)
    assert CONTEXT_KEYS <= set(meta["@context"]) and meta["@context"]["cr"] == "http://mlcommons.org/croissant/"
    assert meta["@type"] == "sc:Dataset" and meta["conformsTo"] == CROISSANT_1_0
    assert meta["name"] == "demo-set"
    assert meta["description"].startswith("A test set.\n\n")
    assert f"{card['total']} ECG windows of 1000 samples at 360 Hz" in meta["description"]
    assert meta["license"] == "https://spdx.org/licenses/ODC-By-1.0.html"
    assert meta["citeAs"] == card["source"]["citation"] and meta["citeAs"].startswith("@article{moody2001mitbih")
    assert meta["url"] == card["source"]["url"]
    assert meta["isBasedOn"]["identifier"] == "https://doi.org/10.13026/C2F305"
    assert meta["creator"] == [{"@type": "sc:Person", "name": "Ada Lovelace"}]
    assert "datePublished" not in meta and "version" not in meta  # the card records neither: nothing invented


def test_croissant_distribution_has_every_file_with_the_cards_sha256(demo):
    card, meta = read_card(demo), croissant(demo)
    files = by_id([n for n in meta["distribution"] if n["@type"] == "cr:FileObject"])
    assert set(files) == set(card["files"]) | {"dataset.json"}
    for rel, entry in card["files"].items():
        assert files[rel]["sha256"] == entry["sha256"] and files[rel]["contentSize"] == f"{entry['bytes']} B"
        assert files[rel]["contentUrl"] == rel
    assert files["dataset.json"]["sha256"] == file_digest(demo / "dataset.json")[0]
    assert files["manifest.csv"]["encodingFormat"] == "text/csv"
    assert files["refecg.h5"]["encodingFormat"] == "application/x-hdf5"
    assert all(s in files["refecg.h5"]["description"] for s in ("/{split}/x float32 (N, window)", "/{split}/y",
                                                                 "/{split}/key"))
    shards = [rel for rel in files if shard_split(rel)]
    assert shards and all(files[rel]["encodingFormat"] == "application/x-tar" for rel in shards)
    sets = by_id([n for n in meta["distribution"] if n["@type"] == "cr:FileSet"])
    assert sets["image-shards"]["includes"] == "images/*.tar"
    assert sets["image-shards"]["encodingFormat"] == "application/x-tar"
    assert sorted(c["@id"] for c in sets["png-images"]["containedIn"]) == sorted(shards)


def test_croissant_windows_record_set_has_the_manifest_columns(demo, ptbxl):
    for root, columns in ((demo, COLUMNS), (ptbxl, (*COLUMNS, "targets"))):
        windows = by_id(croissant(root)["recordSet"])["windows"]
        assert [f["name"] for f in windows["field"]] == list(columns)
        assert all(f["source"] == {"fileObject": {"@id": "manifest.csv"}, "extract": {"column": f["name"]}}
                   for f in windows["field"])
        types = {f["name"]: f["dataType"] for f in windows["field"]}
        assert types["start"] == types["length"] == types["label_id"] == "sc:Integer" and types["fs"] == "sc:Float"


def test_croissant_loads_in_mlcroissant_and_reads_the_manifest_and_images(demo, mlc, tmp_path):
    path = published(demo, tmp_path, croissant(demo))
    dataset = mlc.Dataset(jsonld=path)
    rows = read_manifest(demo / "manifest.csv")
    records = list(dataset.records("windows"))
    assert [text(r["windows/key"]) for r in records] == [w.key for w in rows]
    for record, w in zip(records, rows):
        assert (text(record["windows/label"]), record["windows/label_id"], text(record["windows/split"])) == (
            w.label, w.label_id, w.split)
        assert (record["windows/start"], record["windows/length"], record["windows/fs"]) == (w.start, w.length, w.fs)
    assert [(r["classes/label_id"], text(r["classes/label"])) for r in dataset.records("classes")] == list(
        enumerate(read_card(demo)["classes"]))
    assert [text(r["splits/name"]) for r in dataset.records("splits")] == list(SPLITS)
    images = {text(r["images/key"]): r["images/image"] for r in dataset.records("images")}
    assert set(images) == {w.key for w in rows}
    assert {(im.mode, im.size) for im in images.values()} == {("L", (384, 314))}


def test_mlcroissant_refuses_a_file_that_does_not_match_its_sha256(demo, mlc, tmp_path):
    meta = croissant(demo)
    manifest = by_id(meta["distribution"])["manifest.csv"]
    manifest["sha256"] = "0" * 64
    dataset = mlc.Dataset(jsonld=published(demo, tmp_path, meta))
    with pytest.raises(Exception) as raised:
        list(dataset.records("windows"))
    assert "Hash of downloaded file" in str(raised.value.__cause__), raised.value.__cause__


def test_croissant_of_a_multi_label_dataset_loads_in_mlcroissant(ptbxl, mlc, tmp_path):
    card, meta = read_card(ptbxl), croissant(ptbxl)
    assert meta["license"] == "https://spdx.org/licenses/CC-BY-4.0.html"
    assert "multi-label" in meta["keywords"] and "creator" not in meta
    fields = by_id(by_id(meta["recordSet"])["windows"]["field"])
    assert "references" not in fields["windows/label_id"]  # always -1: the classes are in targets
    dataset = mlc.Dataset(jsonld=published(ptbxl, tmp_path, meta))
    rows = read_manifest(ptbxl / "manifest.csv")
    records = list(dataset.records("windows"))
    assert [text(r["windows/key"]) for r in records] == [w.key for w in rows]
    # mlcroissant 1.1 reads CSV with pandas' type inference, so "00010" comes back as 10 (docs/format.md)
    n = len(card["classes"])
    assert [text(r["windows/targets"]).zfill(n) for r in records] == [w.targets for w in rows]
    assert [text(r["windows/label"]) for r in records] == [w.label for w in rows]


def test_croissant_of_a_card_without_provenance_leaves_it_out(tmp_path):
    make_dataset(tmp_path / "bare")  # a card without licence, citation, url, command
    meta = croissant(tmp_path / "bare")
    assert not {"license", "citeAs", "url", "creator"} & set(meta)
    assert meta["isBasedOn"] == {"@type": "sc:Dataset", "name": "mitdb", "version": "1.0.0"}


# --- Hugging Face -----------------------------------------------------------------------------------------------


def header_and_body(readme: str) -> tuple[dict, str]:
    assert readme.startswith("---\n")
    head, _, body = readme[4:].partition("\n---\n")
    return yaml.safe_load(head), body


def test_hf_card_header(demo):
    header, _ = header_and_body(hf_card(demo))
    assert header["license"] == "odc-by"
    assert header["task_categories"] == ["image-classification"]
    assert header["task_ids"] == ["multi-class-image-classification"]
    assert header["size_categories"] == ["n<1K"]
    assert header["pretty_name"].startswith("demo (mitdb 1.0.0 excerpts (bundled)) rendered ECG images")
    (config,) = header["configs"]
    assert config["config_name"] == "default"
    files = read_card(demo)["files"]
    assert [d["split"] for d in config["data_files"]] == ["train", "validation", "test"]
    for entry, split in zip(config["data_files"], SPLITS):
        assert entry["path"] == f"images/{split}-*.tar"
        assert sorted(fnmatch.filter(files, entry["path"])) == sorted(f for f in files if shard_split(f) == split)


def test_hf_card_body(demo):
    card = read_card(demo)
    _, body = header_and_body(hf_card(demo))
    counts = card["counts"]
    for label in card["classes"]:
        row = [counts[s][label] for s in SPLITS]
        assert f"| {label} | {' | '.join(map(str, row))} | {sum(row)} |" in body
    assert f"| **windows** | {' | '.join(str(sum(counts[s].values())) for s in SPLITS)} | {card['total']} |" in body
    assert "A test set." in body and "Made by Ada Lovelace." in body
    assert "- leads (2): MLII, V1" in body and "- window: 1000 samples at 360 Hz" in body
    assert f"```\n{card['command']}\n```" in body and "renderer: fast" in body
    assert "ODC-By-1.0 (https://spdx.org/licenses/ODC-By-1.0.html)" in body
    assert f"```bibtex\n{card['source']['citation']}\n```" in body


def test_hf_card_of_a_multi_label_dataset(ptbxl):
    card = read_card(ptbxl)
    header, body = header_and_body(hf_card(ptbxl))
    assert header["license"] == "cc-by-4.0" and header["task_ids"] == ["multi-label-image-classification"]
    assert "Windows **with** each class per split" in body and "`KEY.hot`" in body
    windows = card["split_windows"]
    assert f"| **windows** | {' | '.join(str(windows[s]) for s in SPLITS)} | {card['total']} |" in body
    for label in card["classes"]:
        row = [card["counts"][s][label] for s in SPLITS]
        assert f"| {label} | {' | '.join(map(str, row))} | {sum(row)} |" in body


def test_hf_card_of_a_card_without_provenance(tmp_path):
    make_dataset(tmp_path / "bare")
    header, body = header_and_body(hf_card(tmp_path / "bare"))
    assert header["license"] == "unknown" and "## Citation" not in body
    assert "(the card does not record the command)" in body


def test_hf_card_shards_load_with_datasets(demo, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    datasets = pytest.importorskip("datasets")  # not a dependency of the project: too heavy
    rows = read_manifest(demo / "manifest.csv")
    readme = hf_card(demo)
    header, _ = header_and_body(readme)
    data_files = {d["split"]: str(demo / d["path"]) for d in header["configs"][0]["data_files"]}
    loaded = datasets.load_dataset("webdataset", data_files=data_files, cache_dir=str(tmp_path / "cache-1"))
    assert sorted(loaded["train"]["__key__"]) == sorted(w.key for w in rows if w.split == "train")
    copy = tmp_path / "published"  # the repository: the dataset with README.md next to dataset.json
    shutil.copytree(demo, copy)
    (copy / "README.md").write_text(readme, encoding="utf-8")
    loaded = datasets.load_dataset(str(copy), cache_dir=str(tmp_path / "cache-2"))
    for split, name in zip(SPLITS, ("train", "validation", "test")):
        expected = [w for w in rows if w.split == split]
        assert loaded[name]["__key__"] == [w.key for w in expected]  # shards in name order: manifest order
        assert loaded[name]["cls"] == [w.label_id for w in expected]
    assert loaded["test"][0]["png"].size == (384, 314)


def test_licence_ids_and_size_categories():
    assert hf_license("ODC-By-1.0") == "odc-by" and hf_license("CC-BY-4.0") == "cc-by-4.0"
    assert hf_license("ODbL-1.0") == "odbl" and hf_license("") == "unknown"
    assert hf_license("PhysioNet Credentialed Health Data License 1.5.0") == "other"
    assert spdx_url("CC-BY-4.0") == "https://spdx.org/licenses/CC-BY-4.0.html"
    assert spdx_url("PhysioNet Credentialed Health Data License 1.5.0").startswith("PhysioNet")
    assert [size_category(n) for n in (0, 999, 1000, 9999, 10_000, 2_000_000)] == [
        "n<1K", "n<1K", "1K<n<10K", "1K<n<10K", "10K<n<100K", "1M<n<10M"]


# --- the command --------------------------------------------------------------------------------------------


def test_card_command_writes_to_stdout_or_a_file_and_leaves_the_dataset_alone(demo, tmp_path):
    before = tree_bytes(demo)
    for fmt, name in (("croissant", "croissant.json"), ("hf", "README.md")):
        out = ecgrender("card", demo, "--format", fmt)
        assert out.exit_code == 0, out.stderr
        written = ecgrender("card", demo, "--format", fmt, "-o", tmp_path / name)
        assert written.exit_code == 0 and str(tmp_path / name) in written.output
        assert (tmp_path / name).read_text(encoding="utf-8") == out.stdout
    assert json.loads((tmp_path / "croissant.json").read_text()) == croissant(demo)
    assert (tmp_path / "README.md").read_text(encoding="utf-8") == hf_card(demo)
    assert tree_bytes(demo) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README.md", "croissant.json"]  # no temp file left


def test_card_command_bad_input(demo, tmp_path):
    refused(ecgrender("card", tmp_path, "--format", "croissant"), "dataset.json not found")
    refused(ecgrender("card", demo, "--format", "hf", "-o", tmp_path / "missing" / "README.md"),
            "does not exist")
    refused(ecgrender("card", demo, "--format", "hf", "-o", demo / "README.md"), "inside the dataset directory")
    assert not (demo / "README.md").exists()
    unknown = ecgrender("card", demo, "--format", "xml")
    assert unknown.exit_code == 2 and "Invalid value for '--format'" in unknown.stderr
    edited = tmp_path / "edited"
    shutil.copytree(demo, edited)
    edit_card(edited, lambda c: c.update(seed=99), resign=False)
    refused(ecgrender("card", edited, "--format", "croissant"), "dataset.json was edited after it was written")
    refused(ecgrender("card", edited, "--format", "hf", "-o", tmp_path / "README.md"), "was edited")
    assert not (tmp_path / "README.md").exists()
    edit_card(edited, lambda c: c["files"].pop("manifest.csv"))  # re-signed: only the description notices
    refused(ecgrender("card", edited, "--format", "croissant"), "lists no manifest.csv")
