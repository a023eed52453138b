"""`ecgtrain` on bad inputs: one-line `error: ...` messages and a non-zero exit, never a traceback."""

import subprocess
import sys

import pytest
from _train_data import make_dataset
from click.testing import CliRunner

from ecgtrain.cli import main
from ecgtrain.models import get_model, model_names


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("cli") / "ds", counts={"train": 8, "val": 4, "test": 4}, per_shard=4)


def fails(*args, match):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert any(match in line for line in lines), result.output
    return result.output


def test_help_explains_every_option():
    import click

    for name, command in main.commands.items():
        for param in command.params:
            if isinstance(param, click.Option):
                assert param.help, f"ecgtrain {name} {param.opts[0]} has no help text"
        out = CliRunner().invoke(main, [name, "--help"]).output
        assert out.startswith("Usage: main " + name) or f"{name} [OPTIONS]" in out


def test_not_a_dataset(tmp_path):
    (tmp_path / "empty").mkdir()
    out = fails("fit", tmp_path / "empty", "--model", "refecg", "--out", tmp_path / "run", match="error:")
    assert "dataset.json" in out


def test_bad_settings(dataset, tmp_path):
    fails("fit", dataset, "--model", "refecg", "--out", tmp_path / "r", "--batch-size", "1", match="--batch-size")
    fails("fit", dataset, "--model", "nosuch", "--out", tmp_path / "r", match="nosuch")
    fails("fit", dataset, "--model", "refecg", "--out", tmp_path / "r", "--device", "cuda:7", match="error: --device")


def test_run_directory_rules(dataset, tmp_path):
    run = tmp_path / "run"
    fails("fit", dataset, "--model", "refecg", "--out", run, "--resume", match="--resume")
    CliRunner().invoke(main, ["fit", str(dataset), "--model", "refecg", "--out", str(run), "--epochs", "1",
                              "--batch-size", "4", "--workers", "0", "--no-progress", "--no-report"], catch_exceptions=False)
    fails("fit", dataset, "--model", "refecg", "--out", run, "--batch-size", "4", match="already holds a run")
    fails("fit", dataset, "--model", "refecg", "--out", run, "--batch-size", "4", "--lr", "0.1", "--resume",
          match="--lr 0.001")
    fails("predict", run, tmp_path / "missing_record", match="header")
    fails("evaluate", tmp_path, match="not a training run")
    fails("compare", run, match="report.json")


def test_damaged_shard_with_worker_processes(tmp_path):
    root = make_dataset(tmp_path / "ds", counts={"train": 8, "val": 4, "test": 4}, per_shard=4)
    bad = root / "images" / "train-000001.tar"
    bad.write_bytes(bad.read_bytes()[:3000])
    result = subprocess.run([sys.executable, "-m", "ecgtrain.cli", "fit", str(root), "--model", "imresnet34",
                             "--weights", "none", "--out", str(tmp_path / "run"), "--batch-size", "4",
                             "--workers", "2", "--no-progress"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: shard ") and "train-000001.tar" in last
    assert "Traceback" not in result.stderr


def test_a_dataset_with_an_empty_split_is_refused_before_training(tmp_path):
    root = make_dataset(tmp_path / "ds", counts={"train": 8, "val": 4, "test": 0}, per_shard=4)
    result = CliRunner().invoke(main, ["fit", str(root), "--model", "refecg", "--out", str(tmp_path / "run"),
                                       "--device", "cpu", "--workers", "0", "--epochs", "1"])
    assert result.exit_code == 2
    assert "no test windows" in result.stderr and result.stderr.count("\n") == 1
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_model_choices_come_from_the_registry():
    option = next(p for p in main.commands["fit"].params if p.name == "model")
    assert tuple(option.type.choices) == model_names()
    help_text = CliRunner().invoke(main, ["fit", "--help"]).output
    assert all(get_model(name).display in help_text for name in model_names())
