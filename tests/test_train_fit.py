"""End to end on a tiny dataset: fit one epoch, resume to two, evaluate, predict one WFDB record."""

import json
import subprocess
import sys

import pytest
import torch
from _train_data import make_dataset, write_record
from click.testing import CliRunner

from ecgtrain.cli import main


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("fit") / "ds", counts={"train": 24, "val": 8, "test": 12}, per_shard=8)


@pytest.fixture(scope="module")
def record(tmp_path_factory):
    return write_record(tmp_path_factory.mktemp("rec"), seconds=10.0, label=1)


def invoke(*args):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_fit_resume_evaluate_predict_refecg(dataset, record, tmp_path):
    run = tmp_path / "run"
    common = ["--model", "refecg", "--out", run, "--batch-size", "8", "--workers", "0", "--no-progress", "--seed", "7", "--lr-step", "1"]
    out = invoke("fit", dataset, *common, "--epochs", "1", "--no-report")
    assert "report:" not in out
    ckpt = torch.load(run / "checkpoint.pt", weights_only=False)
    assert {"model", "optimizer", "lr_scheduler", "epoch", "args", "card_sha256"} <= set(ckpt)
    assert ckpt["epoch"] == 0 and ckpt["args"]["seed"] == 7 and ckpt["args"]["lr"] == 1e-3
    assert json.loads((run / "args.json").read_text())["card_sha256"] == ckpt["card_sha256"]

    out = invoke("fit", dataset, *common, "--epochs", "3", "--resume")
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [0, 1, 2]
    assert [r["lr"] for r in rows] == pytest.approx([1e-3, 1e-4, 1e-5])  # StepLR state survived the resume
    for r in rows:
        assert r["images_per_s"] > 0 and 0 <= r["data_wait"] <= 1 and r["val_samples"] == 8
    assert f"report: {run / 'report.md'}" in out
    report = json.loads((run / "report.json").read_text())
    assert report["split_by"] == "record" and report["metrics"]["n_windows"] == 12 and report["epoch"] == 2
    for name in ("report.md", "confusion.csv", "confusion.png", "curves.png", "dataset.json"):
        assert (run / name).is_file(), name

    out = invoke("evaluate", run, "--split", "val", "--workers", "0", "--no-progress")
    assert "val accuracy" in out and (run / "report-val.json").is_file()

    out = invoke("predict", run, record, "--max-windows", "3")
    lines = out.strip().splitlines()
    assert len(lines) == 2 + 3 + 1 and lines[-1].startswith("record-level (majority vote): ")
    result = json.loads(invoke("predict", run, record, "--max-windows", "2", "--json"))
    assert [w["start"] for w in result["windows"]] == [0, 2000] and result["record_label"] in ("slow", "fast")


def test_fit_and_predict_image_model(dataset, record, tmp_path):
    run = tmp_path / "img"
    out = invoke("fit", dataset, "--model", "imresnet34", "--weights", "none", "--out", run, "--epochs", "1",
                 "--batch-size", "12", "--workers", "2", "--no-progress")
    assert "report:" in out
    report = json.loads((run / "report.json").read_text())
    assert report["model"] == "imresnet34" and report["metrics"]["n_records"] == 4
    out = invoke("predict", run, record, "--max-windows", "2")  # renders with the card's (small) render settings
    assert out.count("\n") == 2 + 2 + 1


def test_torchrun_ddp_two_ranks_on_cpu(dataset, tmp_path):
    # Two gloo ranks: shards split between ranks, DDP join for uneven batches, rank 0 writes the run.
    # --standalone: torchrun's rendezvous takes a free port (no fixed port to collide with).
    run = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "ecgtrain.cli", "fit", str(dataset), "--model", "imresnet34", "--weights", "none", "--out", str(run),
           "--epochs", "1", "--batch-size", "4", "--workers", "1", "--device", "cpu", "--no-progress"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("report:") == 1
    row = json.loads((run / "metrics.jsonl").read_text())
    assert row["val_samples"] == 8  # the val windows of both ranks, gathered
    assert json.loads((run / "args.json").read_text())["world_size"] == 2
    assert json.loads((run / "report.json").read_text())["metrics"]["n_windows"] == 12
