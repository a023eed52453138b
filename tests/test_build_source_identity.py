"""A build is tied to the bytes of its source: resuming, or re-running a finished build, against other
source data is refused; the card lists the sha256 of every source file the build read."""

from __future__ import annotations

import json
import shutil

import pytest
import synth
from buildutil import ecgrender, tree_bytes

from ecgrender import build as build_module
from ecgrender.build import BuildConfig, build_dataset
from ecgrender.sources import demo_dir
from shards.card import file_digest

OPTIONS = ["--db", "mitdb", "--records", "119,201", "--per-class", "3", "--renderer", "fast", "--jobs", "1",
           "--allow-missing-classes"]


@pytest.fixture
def source(tmp_path):
    """A copy of the demo's MIT-BIH excerpts, as a mitdb --source."""
    return shutil.copytree(demo_dir() / "mitdb", tmp_path / "src")


def _unfinished_build(source, out, monkeypatch):
    """Run a build up to the render stage and stop it there: manifest, refecg.h5 and .build/ are written."""

    def stop(*_args, **_kwargs):
        raise RuntimeError("stopped before rendering")

    with monkeypatch.context() as patch:
        patch.setattr(build_module, "render_shards", stop)
        cfg = BuildConfig(db="mitdb", source=source, out=out, records=["119", "201"], per_class=3, renderer="fast",
                          jobs=1, allow_missing_classes=True)
        with pytest.raises(RuntimeError, match="stopped"):
            build_dataset(cfg, echo=lambda _line: None, progress=False)
    assert (out / ".build" / "params.json").is_file() and not (out / "dataset.json").exists()


def _flip_one_sample_bit(dat):
    data = bytearray(dat.read_bytes())
    data[3 * (len(data) // 6)] ^= 1  # the low byte of one 212 sample: that sample changes by one unit
    dat.write_bytes(bytes(data))


def _refused(result, what):
    assert result.exit_code == 2, result.output
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("error:") and what in message and "other source data" in message, message


def test_resume_with_another_source_is_refused(source, tmp_path, monkeypatch):
    out = tmp_path / "o"
    _unfinished_build(source, out, monkeypatch)
    before = tree_bytes(out)
    other = synth.write_mitdb(tmp_path / "other", records={k: synth.MITDB_RECORDS[k] for k in ("119", "201")})
    _refused(ecgrender("build", *OPTIONS, "--source", other, "--out", out), "unfinished build")
    assert tree_bytes(out) == before


def test_resume_after_one_byte_of_a_dat_changed_is_refused(source, tmp_path, monkeypatch):
    out = tmp_path / "o"
    _unfinished_build(source, out, monkeypatch)
    _flip_one_sample_bit(source / "119.dat")
    _refused(ecgrender("build", *OPTIONS, "--source", source, "--out", out), "unfinished build")
    _flip_one_sample_bit(source / "119.dat")  # the same bytes again, now in another folder: it resumes
    moved = shutil.move(source, tmp_path / "moved")
    result = ecgrender("build", *OPTIONS, "--source", moved, "--out", out)
    assert result.exit_code == 0, result.output
    assert "resuming" in result.output


def test_finished_dataset_rerun_against_changed_annotations_is_refused(source, tmp_path):
    out = tmp_path / "o"
    assert ecgrender("build", *OPTIONS, "--source", source, "--out", out).exit_code == 0
    (source / "201.atr").write_bytes((source / "201.atr").read_bytes() + b"\0\0")
    _refused(ecgrender("build", *OPTIONS, "--source", source, "--out", out), "finished dataset")


def test_card_lists_the_sha256_of_every_file_the_build_read(source, tmp_path):
    out = tmp_path / "o"
    assert ecgrender("build", *OPTIONS, "--source", source, "--out", out).exit_code == 0
    card = json.loads((out / "dataset.json").read_text())
    expected = {f"{r}.{ext}": file_digest(source / f"{r}.{ext}")[0] for r in ("119", "201") for ext in ("hea", "dat", "atr")}
    assert card["source"]["files"] == expected
    assert len(card["build"]["source_sha256"]) == 64
