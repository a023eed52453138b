"""Report metrics and curves (on hand-made predictions), figures without pyplot, the report's keys,
predictions.csv and report.md after `fit`, and reports on another dataset kept apart from the run's own."""

import csv
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
from ecgtrain.report import compute_metrics, plot_curves, record_votes


def _scores(y_pred, n_classes):
    """Probabilities whose argmax is `y_pred`."""
    return np.eye(n_classes)[y_pred] * 0.8 + 0.2 / n_classes


def test_metrics_on_known_predictions():
    y_true = [0, 0, 0, 0, 1, 1, 2, 2]
    y_pred = [0, 0, 0, 1, 1, 1, 2, 0]
    records = ["a", "a", "b", "b", "c", "c", "d", "d"]
    m = compute_metrics(y_true, _scores(y_pred, 3), ["N", "AFIB", "B"], records, train_counts={"N": 50, "AFIB": 30, "B": 20})
    assert m["accuracy"] == pytest.approx(6 / 8)
    assert m["confusion"] == [[3, 1, 0], [0, 2, 0], [1, 0, 1]]
    pc = m["per_class"]
    assert pc["N"]["ppv"] == pc["N"]["precision"] == pytest.approx(3 / 4)
    assert pc["N"]["sensitivity"] == pc["N"]["recall"] == pytest.approx(3 / 4)
    assert pc["AFIB"]["ppv"] == pytest.approx(2 / 3) and pc["AFIB"]["sensitivity"] == 1.0
    assert pc["B"]["ppv"] == 1.0 and pc["B"]["sensitivity"] == 0.5
    f1 = [2 * p * r / (p + r) for p, r in [(0.75, 0.75), (2 / 3, 1.0), (1.0, 0.5)]]
    assert m["macro_f1"] == pytest.approx(np.mean(f1))
    assert m["balanced_accuracy"] == pytest.approx(np.mean([0.75, 1.0, 0.5]))
    assert m["majority_class"] == "N" and m["majority_accuracy"] == pytest.approx(4 / 8)
    # both AFIB windows score as high as the N window predicted AFIB (a tie) and above the 5 others
    assert pc["AFIB"]["auroc"] == pytest.approx(5.5 / 6)
    assert m["auroc_macro"] == pytest.approx(np.mean([pc[c]["auroc"] for c in pc]))
    # record votes: a -> N (N), b -> tie N/AFIB -> N (N), c -> AFIB (AFIB), d -> tie B/N -> N (true B)
    assert m["record_accuracy"] == pytest.approx(3 / 4) and m["n_records"] == 4
    assert (m["ci_unit"], m["ci_groups"], m["ci_resamples"]) == ("record", 4, 1000)
    for name in ("accuracy", "balanced_accuracy", "macro_f1"):
        lo, hi = m[f"{name}_ci95"]
        assert 0 <= lo <= m[name] <= hi <= 1 and hi - lo > 0.1, name


def test_intervals_resample_patients_when_known():
    y_true = [0, 1] * 6
    records = [f"r{i // 2}" for i in range(12)]  # 6 records of 2 windows
    patients = [f"p{i // 4}" for i in range(12)]  # 3 patients of 2 records
    m = compute_metrics(y_true, _scores(y_true, 2), ["a", "b"], records, patients)
    assert (m["ci_unit"], m["ci_groups"], m["n_records"]) == ("patient", 3, 6)
    assert m["accuracy_ci95"] == [1.0, 1.0] and m["majority_accuracy"] != m["majority_accuracy"]  # no counts: NaN


def test_record_vote_uses_window_majority():
    acc, n = record_votes([1, 1, 1], [1, 0, 1], ["r", "r", "r"])
    assert (acc, n) == (1.0, 1)


def test_curves_png(tmp_path):
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text("".join(json.dumps({"epoch": e, "train_loss": 1 / (e + 1), "val_accuracy": 0.5 + e / 10}) + "\n" for e in range(3)))
    assert plot_curves(metrics, tmp_path / "curves.png")
    assert (tmp_path / "curves.png").read_bytes().startswith(b"\x89PNG")
    assert not plot_curves(tmp_path / "missing.jsonl", tmp_path / "other.png")


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
    own = {name: (run / name).read_bytes()
           for name in ("report.md", "report.json", "confusion.csv", "confusion.png", "predictions.csv")}
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


def test_fit_writes_the_honest_metrics_and_predictions(trained_run):
    run, dataset = trained_run
    m = json.loads((run / "report.json").read_text())["metrics"]
    for key in ("accuracy", "accuracy_ci95", "balanced_accuracy", "balanced_accuracy_ci95", "macro_f1", "macro_f1_ci95",
                "majority_accuracy", "auroc_macro", "ci_unit", "ci_groups"):
        assert key in m, key
    assert all({"sensitivity", "ppv", "auroc"} <= set(v) for v in m["per_class"].values())
    # _train_data: 8 test windows, 4 per record, patient = record; training counts balanced -> majority 'slow'
    assert (m["ci_unit"], m["ci_groups"], m["majority_class"], m["majority_accuracy"]) == ("record", 2, "slow", 0.5)
    with open(run / "predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["key", "record", "patient", "label_id", "predicted", "p_slow", "p_fast"]
    assert len(rows) == 8 and {r["record"] for r in rows} == {"test-slow-0", "test-fast-0"}
    assert all(r["patient"] == r["record"] for r in rows)
    assert all(abs(float(r["p_slow"]) + float(r["p_fast"]) - 1) < 1e-4 for r in rows)
    assert np.mean([int(r["label_id"]) == int(r["predicted"]) for r in rows]) == pytest.approx(m["accuracy"])
    text = (run / "report.md").read_text()
    assert "| balanced accuracy (mean recall) |" in text and "majority-class baseline (always `slow`" in text
    assert "cluster bootstrap over the 2 test records" in text
    paired = CliRunner().invoke(main, ["compare", "--paired", str(run), str(run)])  # evaluate's file is compare's input
    assert paired.exit_code == 0 and "(+0.00 to +0.00) | no |" in paired.output, paired.output


def test_evaluating_on_the_runs_own_dataset_rewrites_its_report(trained_run):
    run, dataset = trained_run
    before = json.loads((run / "report.json").read_text())
    result = CliRunner().invoke(main, ["evaluate", str(run), "--dataset", str(dataset), "--workers", "0", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert f"report: {run / 'report.md'}" in result.output
    assert "balanced accuracy" in result.output and "cluster bootstrap over 2 records" in result.output
    after = json.loads((run / "report.json").read_text())
    assert after["metrics"] == before["metrics"] and after["card_sha256"] == after["trained_card_sha256"]
    assert not list(run.glob(f"eval-*-{after['card_sha256'][:8]}"))
