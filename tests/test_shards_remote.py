"""Datasets read from a URL (a local HTTP server in the test process) and published to fsspec destinations:
the same results as from the local directory, a cache filled once and refilled when damaged, retries of
transient server errors, a dropped connection or a changed shard named, publish with the card last."""

from __future__ import annotations

import json
import shutil
from collections import Counter

import fsspec
import pytest
from _train_data import make_dataset
from buildutil import ecgrender, error_lines, tree_bytes
from click.testing import CliRunner
from http_mirror import serve

from ecgtrain.cli import main as ecgtrain_main
from ecgtrain.data import make_batches
from shards import remote
from shards.errors import DatasetError
from shards.publish import publish_dataset
from shards.remote import open_dataset

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    """Each test its own cache, and quick retries."""
    monkeypatch.setenv(remote.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(remote, "BACKOFF_S", 0.01)
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def served_root(tmp_path_factory):
    """A folder holding `ds`: a small two-class dataset with 48 x 64 images (images train in seconds)."""
    root = tmp_path_factory.mktemp("served")
    make_dataset(root / "ds", counts={"train": 16, "val": 4, "test": 8}, per_shard=4)
    return root


def _fit(dataset, out, model="imresnet34"):
    result = CliRunner().invoke(ecgtrain_main, ["fit", str(dataset), "--model", model, "--weights", "none",
                                                "--epochs", "1", "--batch-size", "4", "--workers", "1",
                                                "--device", "cpu", "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    return json.loads((out / "report.json").read_text())["metrics"]


def test_verify_info_and_preview_from_a_url_match_the_local_dataset(served_root, tmp_path):
    local = served_root / "ds"
    with serve(served_root) as url:
        assert ecgrender("verify", url + "ds").exit_code == 0
        assert ecgrender("info", url + "ds").output == ecgrender("info", local).output
        assert ecgrender("preview", url + "ds", "-o", tmp_path / "remote.png").exit_code == 0
    assert ecgrender("preview", local, "-o", tmp_path / "local.png").exit_code == 0
    assert (tmp_path / "remote.png").read_bytes() == (tmp_path / "local.png").read_bytes()


def test_training_on_a_served_dataset_streams_its_shards_and_gives_the_local_result(served_root, tmp_path):
    hits: Counter = Counter()
    with serve(served_root, hits=hits) as url:
        remote_metrics = _fit(url + "ds", tmp_path / "remote")
    assert _fit(served_root / "ds", tmp_path / "local") == remote_metrics
    assert hits["/ds/images/train-000000.tar"] >= 1  # streamed from the server
    args = json.loads((tmp_path / "remote" / "args.json").read_text())
    assert args["dataset_url"] == url + "ds"


def test_cache_is_filled_once_and_a_damaged_file_is_fetched_again(served_root, cache):
    hits: Counter = Counter()
    with serve(served_root, hits=hits) as url:
        root = open_dataset(url + "ds")
        assert open_dataset(url + "ds/") == root and hits["/ds/refecg.h5"] == 1
        with open(root / "refecg.h5", "r+b") as f:  # half-written or damaged
            f.truncate(100)
        open_dataset(url + "ds")
        assert hits["/ds/refecg.h5"] == 2
        assert (root / "refecg.h5").read_bytes() == (served_root / "ds" / "refecg.h5").read_bytes()
    assert root.parent.parent == cache


def test_transient_server_errors_are_retried(served_root):
    faults = {"/ds/dataset.json": "error-2", "/ds/images/test-000000.tar": "error-2"}
    with serve(served_root, faults=faults) as url:
        assert ecgrender("verify", url + "ds").exit_code == 0


def test_a_server_failing_every_try_is_a_one_line_error(served_root):
    with serve(served_root, faults={"/ds/dataset.json": "error-99"}) as url:
        result = ecgrender("info", url + "ds")
    assert result.exit_code == 2
    assert error_lines(result.output) == [f"error: cannot read the dataset at {url}ds/: {url}ds/dataset.json: answered "
                                          f"HTTP 500 after {remote.RETRIES + 1} tries"]


def test_a_dropped_connection_names_the_url_and_the_shard(served_root):
    shard = "/ds/images/train-000001.tar"
    with serve(served_root, faults={shard: "drop-3000"}) as url:
        result = ecgrender("verify", url + "ds")
        assert result.exit_code == 1
        assert any("images/train-000001.tar" in line and "127.0.0.1" in line for line in error_lines(result.output))
        batches = make_batches(open_dataset(url + "ds"), "train", "imresnet34", batch_size=4, workers=0, train=True)
        with pytest.raises(DatasetError, match=f"shard {url}ds/images/train-000001.tar"):
            for _ in batches:
                pass


def test_a_changed_shard_on_the_server_is_named_by_verify(served_root, tmp_path):
    copy = tmp_path / "served"
    shutil.copytree(served_root / "ds", copy / "ds")
    shard = copy / "ds" / "images" / "val-000000.tar"
    data = bytearray(shard.read_bytes())
    data[-3000] ^= 0xFF  # inside the last sample's image
    shard.write_bytes(bytes(data))
    with serve(copy) as url:
        result = ecgrender("verify", url + "ds")
    assert result.exit_code == 1
    assert "error: images/val-000000.tar: sha256 differs from dataset.json: the file is corrupt; re-download or " \
           "rebuild it" in error_lines(result.output)


def test_a_url_without_a_dataset_is_a_one_line_error(served_root):
    with serve(served_root) as url:
        result = ecgrender("verify", url + "nothing")
    assert result.exit_code == 2
    assert error_lines(result.output) == [f"error: {url}nothing/dataset.json not found: {url}nothing/ is not a dataset "
                                          "(or its upload did not finish)"]


@pytest.mark.parametrize("scheme", ["file", "memory"])
def test_publish_then_verify_from_the_destination(served_root, tmp_path, scheme):
    dest = f"file://{tmp_path}/pub" if scheme == "file" else "memory://published/ds"
    result = ecgrender("publish", served_root / "ds", dest)
    assert result.exit_code == 0, result.output
    assert ecgrender("verify", dest).exit_code == 0
    if scheme == "file":
        assert tree_bytes(tmp_path / "pub") == tree_bytes(served_root / "ds")


def test_an_interrupted_publish_leaves_no_card(served_root, monkeypatch):
    fs = fsspec.filesystem("memory")
    real_open = fs.open

    def failing_open(path, mode="rb", **kwargs):
        if "wb" in mode and path.endswith("test-000001.tar"):
            raise OSError("disk full")
        return real_open(path, mode, **kwargs)

    monkeypatch.setattr(type(fs), "open", lambda self, path, mode="rb", **kw: failing_open(path, mode, **kw))
    with pytest.raises(DatasetError, match="failed at images/test-000001.tar .*the card was not written"):
        publish_dataset(served_root / "ds", "memory://half/ds")
    assert not fs.exists("/half/ds/dataset.json") and fs.exists("/half/ds/images/test-000000.tar")


def test_publish_refuses_http_and_unsound_datasets(served_root, tmp_path):
    result = ecgrender("publish", served_root / "ds", "http://example.org/ds")
    assert result.exit_code == 2 and "HTTP is read-only" in error_lines(result.output)[0]
    broken = tmp_path / "broken"
    shutil.copytree(served_root / "ds", broken)
    (broken / "manifest.csv").write_text("damaged")
    result = ecgrender("publish", broken, f"file://{tmp_path}/pub")
    assert result.exit_code == 2 and "does not verify" in error_lines(result.output)[0]
    assert not (tmp_path / "pub").exists()


def test_evaluate_on_a_served_dataset_gives_the_local_report(served_root, tmp_path):
    local = _fit(served_root / "ds", tmp_path / "run", model="refecg")
    with serve(served_root) as url:
        result = CliRunner().invoke(ecgtrain_main, ["evaluate", str(tmp_path / "run"), "--dataset", url + "ds",
                                                    "--workers", "0", "--device", "cpu", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "run" / "report.json").read_text())["metrics"] == local


def test_publish_refuses_the_dataset_itself_and_a_republish_first_removes_the_old_card(served_root, tmp_path):
    own = tmp_path / "own"
    shutil.copytree(served_root / "ds", own)
    before = tree_bytes(own)
    result = ecgrender("publish", own, f"file://{own}")
    assert result.exit_code == 2 and "that is the dataset itself" in error_lines(result.output)[0]
    result = ecgrender("publish", own, f"file://{own}/images/inner")
    assert result.exit_code == 2 and tree_bytes(own) == before
    dest = tmp_path / "pub"
    assert ecgrender("publish", own, f"file://{dest}").exit_code == 0
    (own / "images" / "val-000000.tar").unlink()  # the next publish cannot even start: it does not verify
    assert ecgrender("publish", own, f"file://{dest}").exit_code == 2 and (dest / "dataset.json").is_file()
    shutil.copy(served_root / "ds" / "images" / "val-000000.tar", own / "images")
    fs = fsspec.filesystem("file")
    real_open = type(fs).open

    def failing_open(self, path, mode="rb", **kw):
        if "wb" in mode and path.endswith("train-000001.tar"):
            raise OSError("disk full")
        return real_open(self, path, mode, **kw)

    type(fs).open = failing_open
    try:
        with pytest.raises(DatasetError, match="the card was not written"):
            publish_dataset(own, f"file://{dest}")
    finally:
        type(fs).open = real_open
    assert not (dest / "dataset.json").exists()  # the old dataset there is no longer taken for complete


def test_verify_reads_the_small_files_again_and_the_loader_checks_streamed_shards(served_root, tmp_path):
    copy = tmp_path / "served"
    shutil.copytree(served_root / "ds", copy / "ds")
    with serve(copy) as url:
        assert ecgrender("verify", url + "ds").exit_code == 0  # fills the cache
        manifest = copy / "ds" / "manifest.csv"
        manifest.write_text(manifest.read_text().replace("train", "trian", 1))
        result = ecgrender("verify", url + "ds")
        assert result.exit_code == 2
        assert error_lines(result.output)[0].startswith(f"error: {url}ds/manifest.csv differs from the dataset card")
        shard = copy / "ds" / "images" / "train-000000.tar"
        data = bytearray(shard.read_bytes())
        data[-3000] ^= 0xFF  # same samples, another image
        shard.write_bytes(bytes(data))
        batches = make_batches(open_dataset(url + "ds"), "train", "imresnet34", batch_size=4, workers=0, train=True)
        with pytest.raises(DatasetError, match="train-000000.tar is not the one dataset.json describes"):
            for _ in batches:
                pass


def test_each_url_has_its_own_cache(served_root, tmp_path):
    mirror = tmp_path / "mirror"
    shutil.copytree(served_root / "ds", mirror / "ds")
    with serve(served_root) as first, serve(mirror) as second:
        one, two = open_dataset(first + "ds"), open_dataset(second + "ds")
    assert one != two and (one / "REMOTE").read_text() == first + "ds/" and (two / "REMOTE").read_text() == second + "ds/"


def test_a_stalled_transfer_is_an_error_naming_the_url(served_root, monkeypatch):
    monkeypatch.setattr(remote, "SLOW_AFTER_S", 0.2)
    with serve(served_root, faults={"/ds/dataset.json": "slow-10"}) as url:  # 200 bytes/s
        result = ecgrender("info", url + "ds")
    assert result.exit_code == 2
    assert f"{url}ds/dataset.json stalled" in error_lines(result.output)[0]


@pytest.mark.parametrize("location,message", [
    ("foo://somewhere/ds", "check the URL's scheme"),
])
def test_bad_locations_are_one_line_errors(location, message):
    result = ecgrender("info", location)
    assert result.exit_code == 2 and message in error_lines(result.output)[0]


def test_a_cache_that_cannot_be_made_is_a_one_line_error(served_root, tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(remote.CACHE_ENV, str(blocker))
    with serve(served_root) as url:
        result = ecgrender("info", url + "ds")
    assert result.exit_code == 2 and f"set {remote.CACHE_ENV} to a writable folder" in error_lines(result.output)[0]
