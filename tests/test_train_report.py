"""Report metrics, curves and the comparison table, on hand-made predictions."""

import json

import numpy as np
import pytest

from ecgtrain.compare import compare_table
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
