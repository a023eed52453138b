"""checkpoint.pt is data, never code: plain tensors/numbers/strings/lists/dicts, loaded with weights_only=True.

A crafted run directory whose checkpoint.pt would run code when unpickled is refused by `evaluate`,
`predict` and `fit --resume` with one `error:` line naming the file, and the code never runs.
"""

import json
import os
import shutil

import pytest
import torch
from _train_data import make_dataset, write_record
from click.testing import CliRunner

from ecgtrain.cli import main


class SystemPayload:
    """Unpickling it runs a shell command that creates `marker`."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch '{self.marker}'",)


class OpenPayload(SystemPayload):
    """Unpickling it opens (creates) `marker` for writing."""

    def __reduce__(self):
        return open, (self.marker, "w")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("ckpt") / "ds", counts={"train": 8, "val": 4, "test": 4}, per_shard=4)


@pytest.fixture(scope="module")
def run(dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("ckpt") / "run"
    invoke("fit", dataset, *_fit_args(out), "--epochs", "1", "--no-report")
    return out


def _fit_args(out):
    return ["--model", "refecg", "--out", out, "--batch-size", "4", "--workers", "0", "--no-progress", "--device", "cpu"]


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def refused(result, path):
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(path) in lines[0], result.stderr
    return lines[0]


def test_checkpoint_holds_plain_data_and_resumes(run, dataset):
    ckpt = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert {"model", "optimizer", "lr_scheduler", "epoch", "args", "card_sha256", "classes"} == set(ckpt)
    assert ckpt["optimizer"]["state"] and all("momentum_buffer" in s for s in ckpt["optimizer"]["state"].values())
    assert ckpt["lr_scheduler"]["step_size"] == 3 and ckpt["classes"] == ["slow", "fast"]
    resumed = run.parent / "resumed"
    shutil.copytree(run, resumed)
    result = invoke("fit", dataset, *_fit_args(resumed), "--epochs", "2", "--resume", "--no-report")
    assert result.exit_code == 0, result.output
    assert torch.load(resumed / "checkpoint.pt", weights_only=True)["epoch"] == 1


@pytest.mark.parametrize("payload", [SystemPayload, OpenPayload])
@pytest.mark.parametrize("command", ["evaluate", "predict", "fit --resume"])
def test_a_checkpoint_that_would_run_code_is_refused(run, dataset, tmp_path, payload, command):
    crafted = tmp_path / "crafted"
    shutil.copytree(run, crafted)
    marker = tmp_path / "MARKER"
    ckpt = torch.load(run / "checkpoint.pt", weights_only=True)
    ckpt["model"] = payload(marker)
    torch.save(ckpt, crafted / "checkpoint.pt")
    args = {"evaluate": ["evaluate", crafted, "--workers", "0", "--no-progress"],
            "predict": ["predict", crafted, write_record(tmp_path / "rec")],
            "fit --resume": ["fit", dataset, *_fit_args(crafted), "--epochs", "2", "--resume"]}[command]
    line = refused(invoke(*args), crafted / "checkpoint.pt")
    assert "not an ecgtrain checkpoint" in line
    assert not marker.exists()


@pytest.mark.parametrize("content,why", [
    (b"not a torch file", "not an ecgtrain checkpoint"),
    ([torch.zeros(2)], "holds a list"),
    ({"model": {"w": torch.zeros(2)}, "epoch": 0}, "missing or mistyped: optimizer, lr_scheduler, args"),
])
def test_a_file_that_is_not_a_checkpoint_is_one_line_naming_it(run, tmp_path, content, why):
    crafted = tmp_path / "other"
    shutil.copytree(run, crafted)
    path = crafted / "checkpoint.pt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    assert why in refused(invoke("evaluate", crafted, "--workers", "0", "--no-progress"), path)


def test_checkpoint_of_another_shape_is_refused(run, tmp_path):
    crafted = tmp_path / "shape"
    shutil.copytree(run, crafted)
    ckpt = torch.load(run / "checkpoint.pt", weights_only=True)
    ckpt["model"]["classifier.7.weight"] = torch.zeros(3, 4096)
    torch.save(ckpt, crafted / "checkpoint.pt")
    assert "shape mismatch" in refused(invoke("evaluate", crafted, "--workers", "0"), crafted / "checkpoint.pt")


def test_the_runs_dataset_card_is_checked(run, tmp_path):
    edited = tmp_path / "edited"
    shutil.copytree(run, edited)
    card = json.loads((edited / "dataset.json").read_text())
    card["classes"] = ["fast", "slow"]
    (edited / "dataset.json").write_text(json.dumps(card))
    assert "edited" in refused(invoke("evaluate", edited, "--workers", "0"), edited / "dataset.json")


def test_metrics_rows_are_rewritten_whole_one_row_per_epoch(tmp_path):
    from ecgtrain.engine import write_metrics_row

    path = tmp_path / "metrics.jsonl"
    for epoch in (0, 1, 2):
        write_metrics_row(path, {"epoch": epoch, "train_loss": 1.0})
    # a run stopped after writing epoch 2's row but before its checkpoint resumes at epoch 2 again
    write_metrics_row(path, {"epoch": 2, "train_loss": 0.5})
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [0, 1, 2] and rows[-1]["train_loss"] == 0.5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.jsonl"]  # no temp file left
