"""Report metrics, curves and the comparison table (on hand-made predictions), figures without pyplot,
and reports on another dataset kept apart from the run's own."""

import hashlib
import json
import subprocess
import sys

import numpy as np
import pytest
from _train_data import make_dataset
from click.testing import CliRunner

from ecgtrain.cli import main
from ecgtrain.compare import compare_table
from ecgtrain.models import get_model, model_names
from ecgtrain.report import (
    bootstrap_accuracy,
    compute_metrics,
    plot_curves,
    record_votes,
)


def test_metrics_on_known_predictions():
    y_true = [0, 0, 0, 0, 1, 1, 2, 2]
    y_pred = [0, 0, 0, 1, 1, 1, 2, 0]
    records = ["a", "a", "b", "b", "c", "c", "d", "d"]
    m = compute_metrics(y_true, y_pred, ["N", "AFIB", "B"], records)
    assert m["accuracy"] == pytest.approx(6 / 8)
    assert m["confusion"] == [[3, 1, 0], [0, 2, 0], [1, 0, 1]]
    pc = m["per_class"]
    assert pc["N"]["precision"] == pytest.approx(3 / 4) and pc["N"]["recall"] == pytest.approx(3 / 4)
    assert pc["AFIB"]["precision"] == pytest.approx(2 / 3) and pc["AFIB"]["recall"] == 1.0
    assert pc["B"]["precision"] == 1.0 and pc["B"]["recall"] == 0.5
    f1 = [2 * p * r / (p + r) for p, r in [(0.75, 0.75), (2 / 3, 1.0), (1.0, 0.5)]]
    assert m["macro_f1"] == pytest.approx(np.mean(f1))
    # record votes: a -> N (N), b -> tie N/AFIB -> N (N), c -> AFIB (AFIB), d -> tie B/N -> N (true B)
    assert m["record_accuracy"] == pytest.approx(3 / 4) and m["n_records"] == 4
    lo, hi = m["accuracy_ci95"]
    assert 0 <= lo <= m["accuracy"] <= hi <= 1 and hi - lo > 0.1


def test_absent_class_is_left_out_of_macro_f1():
    m = compute_metrics([0, 0, 1, 1], [0, 0, 1, 0], ["a", "b", "c"], ["r1", "r1", "r2", "r2"])
    assert m["per_class"]["c"]["support"] == 0
    assert m["macro_f1"] == pytest.approx(np.mean([2 * (2 / 3) / (2 / 3 + 1), 2 * 0.5 / 1.5]))


def test_bootstrap_interval_narrows_with_more_windows():
    rng = np.random.default_rng(0)
    small = bootstrap_accuracy((rng.random(50) < 0.8).astype(float))
    large = bootstrap_accuracy((rng.random(5000) < 0.8).astype(float))
    assert small[1] - small[0] > 3 * (large[1] - large[0])
    assert large[0] < 0.8 < large[1]


def test_record_vote_uses_window_majority():
    acc, n = record_votes([1, 1, 1], [1, 0, 1], ["r", "r", "r"])
    assert (acc, n) == (1.0, 1)


def test_curves_png(tmp_path):
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text("".join(json.dumps({"epoch": e, "train_loss": 1 / (e + 1), "val_accuracy": 0.5 + e / 10}) + "\n" for e in range(3)))
    assert plot_curves(metrics, tmp_path / "curves.png")
    assert (tmp_path / "curves.png").read_bytes().startswith(b"\x89PNG")
    assert not plot_curves(tmp_path / "missing.jsonl", tmp_path / "other.png")


def _report(run, model, database, split_by, acc):
    run.mkdir()
    (run / "report.json").write_text(json.dumps({"model": model, "database": database, "split_by": split_by,
                                                  "metrics": {"accuracy": acc, "accuracy_ci95": [acc - 0.01, acc + 0.01]}}))
    return run


def test_compare_table_like_table_one(tmp_path):
    runs = [_report(tmp_path / "a", "refecg", "ptbdb", "window", 0.8804),
            _report(tmp_path / "b", "imecgnet", "ptbdb", "window", 0.9791),
            _report(tmp_path / "c", "imecgnet", "mitdb", "patient", 0.9),]
    table = compare_table(runs).splitlines()
    assert table[0] == "| model | mitdb (split by patient) | ptbdb (split by window) |"
    assert table[2] == "| ImECGnet | 90.00 (89.0-91.0) | 97.91 (96.9-98.9) |"
    assert table[3] == "| Ref-ECG | - | 88.04 (87.0-89.0) |"


def test_compare_rows_follow_the_registry(tmp_path):
    names = model_names()
    runs = [_report(tmp_path / name, name, "mitdb", "patient", 0.5) for name in reversed(names)]
    rows = compare_table(runs).splitlines()[2:2 + len(names)]
    assert [row.split(" | ")[0].removeprefix("| ") for row in rows] == [get_model(n).display for n in names]


def test_figures_are_drawn_without_pyplot(tmp_path):
    code = (
        "import sys, json, numpy as np\n"
        "from pathlib import Path\n"
        "from ecgtrain.report import plot_confusion, plot_curves\n"
        f"out = Path({str(tmp_path)!r})\n"
        "(out / 'm.jsonl').write_text(json.dumps({'epoch': 0, 'train_loss': 1.0, 'val_accuracy': 0.5}) + '\\n')\n"
        "assert plot_curves(out / 'm.jsonl', out / 'curves.png')\n"
        "plot_confusion(np.array([[3, 1], [0, 2]]), ['a', 'b'], out / 'confusion.png', 'title')\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    for name in ("curves.png", "confusion.png"):
        assert (tmp_path / name).read_bytes().startswith(b"\x89PNG"), name


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A 1-epoch refecg run with its test report, and the dataset it was trained on."""
    root = tmp_path_factory.mktemp("report")
    dataset = make_dataset(root / "ds", counts={"train": 8, "val": 4, "test": 8}, per_shard=4)
    run = root / "run"
    result = CliRunner().invoke(main, ["fit", str(dataset), "--model", "refecg", "--out", str(run), "--epochs", "1",
                                       "--batch-size", "4", "--workers", "0", "--no-progress", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    return run, dataset


def test_evaluating_on_another_dataset_keeps_the_runs_own_report(trained_run, tmp_path):
    run, dataset = trained_run
    own = {name: (run / name).read_bytes() for name in ("report.md", "report.json", "confusion.csv", "confusion.png")}
    other = make_dataset(tmp_path / "other-ds", counts={"train": 4, "val": 4, "test": 6}, per_shard=4, seed=5)
    sha = hashlib.sha256((other / "dataset.json").read_bytes()).hexdigest()
    result = CliRunner().invoke(main, ["evaluate", str(run), "--dataset", str(other), "--workers", "0", "--no-progress"])
    assert result.exit_code == 0, result.output
    folder = run / f"eval-other-ds-{sha[:8]}"
    assert f"report: {folder / 'report.md'}" in result.output
    for name, content in own.items():
        assert (run / name).read_bytes() == content, f"{name} was overwritten"
        assert (folder / name).is_file(), name
    report = json.loads((folder / "report.json").read_text())
    assert report["dataset"] == str(other) and report["card_sha256"] == sha
    assert report["trained_card_sha256"] == json.loads(own["report.json"])["card_sha256"] != sha
    assert report["metrics"]["n_windows"] == 6
    assert sha[:12] in (folder / "report.md").read_text()
    own_report = json.loads(own["report.json"])
    assert own_report["metrics"]["n_windows"] == 8 and own_report["dataset"] == str(dataset.resolve())
    # compare reads the run's own test report, not the one on the other dataset
    table = compare_table([run])
    assert f"{100 * own_report['metrics']['accuracy']:.2f}" in table and "synthetic (split by record)" in table


def test_evaluating_on_the_runs_own_dataset_rewrites_its_report(trained_run):
    run, dataset = trained_run
    before = json.loads((run / "report.json").read_text())
    result = CliRunner().invoke(main, ["evaluate", str(run), "--dataset", str(dataset), "--workers", "0", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert f"report: {run / 'report.md'}" in result.output
    after = json.loads((run / "report.json").read_text())
    assert after["metrics"] == before["metrics"] and after["card_sha256"] == after["trained_card_sha256"]
    assert not list(run.glob(f"eval-*-{after['card_sha256'][:8]}"))
