"""`ecgtrain compare`: the Table I view with balanced accuracy, macro-F1, majority baseline and interval unit
from report.json, and `--paired` differences from predictions.csv (on hand-made run directories)."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from ecgtrain.cli import main
from ecgtrain.compare import compare_table
from ecgtrain.models import get_model, model_names
from ecgtrain.predictions import write_predictions

CLASSES = ["N", "AFIB"]


def _report(run, model, database, split_by, acc):
    run.mkdir()
    metrics = {"accuracy": acc, "accuracy_ci95": [acc - 0.01, acc + 0.01], "balanced_accuracy": 0.7,
               "balanced_accuracy_ci95": [0.6, 0.8], "macro_f1": 0.65, "macro_f1_ci95": [0.55, 0.75],
               "majority_accuracy": 0.89, "ci_unit": "patient", "ci_groups": 22}
    (run / "report.json").write_text(json.dumps({"model": model, "database": database, "split_by": split_by,
                                                 "metrics": metrics}))
    return run


def _predictions(run, y_true, y_pred, keys=None, patients=None):
    """A run directory holding only predictions.csv (records of 5 windows)."""
    run.mkdir()
    n = len(y_true)
    keys = keys or [f"w{i}" for i in range(n)]
    records = [f"r{i // 5}" for i in range(n)]
    write_predictions(run / "predictions.csv", CLASSES, keys, records, patients or records, y_true,
                      np.eye(2)[y_pred] * 0.9 + 0.05)
    return run


def _compare(*args):
    return CliRunner().invoke(main, ["compare", *map(str, args)])


def test_compare_table_like_table_one(tmp_path):
    runs = [_report(tmp_path / "a", "refecg", "ptbdb", "window", 0.8804),
            _report(tmp_path / "b", "imecgnet", "ptbdb", "window", 0.9791),
            _report(tmp_path / "c", "imecgnet", "mitdb", "patient", 0.9)]
    table = compare_table(runs).splitlines()
    assert table[0] == "| model | mitdb (split by patient) | ptbdb (split by window) |"
    assert table[2] == "| ImECGnet | 90.00 (89.00-91.00) | 97.91 (96.91-98.91) |"
    assert table[3] == "| Ref-ECG | - | 88.04 (87.04-89.04) |"


def test_compare_shows_balanced_accuracy_macro_f1_baseline_and_unit(tmp_path):
    result = _compare(_report(tmp_path / "a", "imecgnet", "mitdb", "patient", 0.9), "--out", tmp_path / "t.md")
    assert result.exit_code == 0, result.output
    assert ("| ImECGnet | mitdb (split by patient) | 90.00 (89.00-91.00) | 70.00 (60.00-80.00) | "
            "0.6500 (0.5500-0.7500) | 89.00 | 22 patients |") in result.output
    assert "cluster bootstrap over the test groups" in result.output
    assert (tmp_path / "t.md").read_text() == result.output


def test_compare_rows_follow_the_registry(tmp_path):
    names = model_names()
    runs = [_report(tmp_path / name, name, "mitdb", "patient", 0.5) for name in reversed(names)]
    rows = compare_table(runs).splitlines()[2:2 + len(names)]
    assert [row.split(" | ")[0].removeprefix("| ") for row in rows] == [get_model(n).display for n in names]


def test_compare_refuses_an_older_report(tmp_path):
    run = tmp_path / "old"
    run.mkdir()
    (run / "report.json").write_text(json.dumps({"model": "refecg", "database": "mitdb", "split_by": "patient",
                                                 "metrics": {"accuracy": 0.9, "accuracy_ci95": [0.8, 0.95]}}))
    result = _compare(run)
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
    assert "balanced_accuracy" in result.output and f"ecgtrain evaluate {run}" in result.output


def test_paired_compare_of_a_run_with_itself_is_zero(tmp_path):
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 2, 40)
    run = _predictions(tmp_path / "a", y_true, rng.integers(0, 2, 40))
    result = _compare("--paired", run, run)
    assert result.exit_code == 0, result.output
    assert "over the 8 test records (1000 resamples" in result.output
    diffs = [line for line in result.output.splitlines() if line.startswith(f"| {run} |")]
    assert len(diffs) == 3
    for line in diffs:
        assert line.endswith("(+0.00 to +0.00) | no |") or line.endswith("(+0.0000 to +0.0000) | no |"), line


def test_paired_compare_finds_a_consistent_gain(tmp_path):
    y_true = np.array([0, 1] * 50)
    y_a = np.where(np.arange(100) % 5 == 0, 1 - y_true, y_true)  # one window wrong in each of 20 records
    a = _predictions(tmp_path / "a", y_true, y_a)
    b = _predictions(tmp_path / "b", y_true, y_true)
    result = _compare("--paired", a, b)
    assert result.exit_code == 0, result.output
    assert f"| {b} | accuracy | 100.00 | +20.00 (+20.00 to +20.00) | yes |" in result.output


def test_paired_compare_aligns_windows_by_key(tmp_path):
    y_true = np.array([0, 1] * 10)
    a = _predictions(tmp_path / "a", y_true, y_true)
    b = _predictions(tmp_path / "b", y_true[::-1], y_true[::-1], keys=[f"w{i}" for i in range(19, -1, -1)])
    result = _compare("--paired", a, b)
    assert result.exit_code == 0, result.output
    assert f"| {b} | accuracy | 100.00 | +0.00 (+0.00 to +0.00) | no |" in result.output


@pytest.mark.parametrize("case", ["other windows", "other labels", "no predictions", "one run", "not predictions"])
def test_paired_compare_refuses(tmp_path, case):
    y = np.array([0, 1] * 5)
    a = _predictions(tmp_path / "a", y, y)
    if case == "other windows":
        b = _predictions(tmp_path / "b", y, y, keys=[f"x{i}" for i in range(10)])
        args, match = [a, b], f"runs {a} and {b} were evaluated on different test windows"
    elif case == "other labels":
        b = _predictions(tmp_path / "b", 1 - y, y)
        args, match = [a, b], "other classes or labels"
    elif case == "no predictions":
        (tmp_path / "b").mkdir()
        args, match = [a, tmp_path / "b"], f"run `ecgtrain evaluate {tmp_path / 'b'}`"
    elif case == "one run":
        args, match = [a], "at least two runs"
    else:
        (tmp_path / "b").mkdir()
        (tmp_path / "b" / "predictions.csv").write_text("key,label\nw0,1\n")
        args, match = [a, tmp_path / "b"], "is not a predictions file"
    result = _compare("--paired", *args)
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: ") and len(result.output.strip().splitlines()) == 1
    assert match in result.output
