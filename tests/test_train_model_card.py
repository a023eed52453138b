"""A run's model card (model_card.json, MODEL_CARD.md): model, training, the data it was trained on (card
checksum, licence, classes, lead order, render settings) and its test metrics with intervals."""

import json

import pytest
import torch
from _train_data import CLASSES, LEADS, SMALL, make_dataset
from click.testing import CliRunner

from ecgtrain.cli import main
from ecgtrain.rundir import card_sha256


@pytest.mark.parametrize("multi_label", [False, True])
def test_fit_writes_a_model_card_that_matches_the_run(tmp_path, multi_label):
    dataset = make_dataset(tmp_path / "ds", counts={"train": 12, "val": 3, "test": 6}, per_shard=6,
                           multi_label=multi_label)
    run = tmp_path / "run"
    result = CliRunner().invoke(main, ["fit", str(dataset), "--model", "refecg", "--epochs", "1", "--batch-size", "6",
                                       "--workers", "0", "--device", "cpu", "--out", str(run), "--no-progress"])
    assert result.exit_code == 0, result.output
    card = json.loads((run / "model_card.json").read_text())
    report = json.loads((run / "report.json").read_text())["metrics"]
    assert card["model"] == "refecg" and card["training"]["epochs"] == 1 and card["training"]["seed"] == 0
    assert card["training"]["torch"] == torch.__version__ and card["training"]["device"] == "cpu"
    assert card["training"]["world_size"] == 1
    data = card["data"]
    assert data["card_sha256"] == card_sha256(dataset)
    assert data["classes"] == CLASSES and data["leads"] == LEADS and data["render"] == SMALL.as_dict()
    assert data["label_type"] == ("multi-label" if multi_label else "single-label")
    headline = ("auroc_macro", "auprc_macro", "fmax") if multi_label else ("accuracy", "balanced_accuracy", "macro_f1")
    for name in headline:
        assert card["test_metrics"][name] == report[name]
        assert card["test_metrics"][f"{name}_ci95"] == report[f"{name}_ci95"]
    assert ("sigmoid" in card["output"]) == multi_label
    text = (run / "MODEL_CARD.md").read_text()
    assert text.startswith("# Model card: Ref-ECG (refecg) on synthetic 0")
    assert f"dataset.json sha256 `{card_sha256(dataset)}`" in text and "not validated for clinical use" in text


def test_evaluating_another_split_leaves_the_model_card_alone(tmp_path):
    dataset = make_dataset(tmp_path / "ds", counts={"train": 12, "val": 3, "test": 6}, per_shard=6)
    run = tmp_path / "run"
    runner = CliRunner()
    assert runner.invoke(main, ["fit", str(dataset), "--model", "refecg", "--epochs", "1", "--batch-size", "6",
                                "--workers", "0", "--device", "cpu", "--out", str(run), "--no-progress"]).exit_code == 0
    before = (run / "model_card.json").read_bytes()
    assert runner.invoke(main, ["evaluate", str(run), "--split", "val", "--workers", "0", "--device", "cpu",
                                "--no-progress"]).exit_code == 0
    assert (run / "model_card.json").read_bytes() == before
