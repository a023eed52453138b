"""Metric functions on hand-made predictions: balanced and majority accuracy, AUROC with ties, and the
cluster bootstrap (groups of correlated windows drawn together) against hand-computed cases."""

import numpy as np
import pytest

from ecgtrain.metrics import (
    auroc_ovr,
    balanced_accuracy,
    cluster_bootstrap,
    cluster_groups,
    confusion,
    group_confusions,
    macro_f1,
    majority_accuracy,
    paired_bootstrap,
)


def test_balanced_accuracy_sees_through_the_majority_class():
    y_true = [0] * 8 + [1] * 2
    always_a = [0] * 10
    cm = confusion(y_true, always_a, 2)
    assert np.trace(cm) / cm.sum() == pytest.approx(0.8)
    assert balanced_accuracy(cm) == pytest.approx(0.5)  # recall 1 for a, 0 for b
    assert majority_accuracy(y_true, {"a": 80, "b": 20}, ["a", "b"]) == pytest.approx(0.8)
    assert majority_accuracy(y_true, {"a": 20, "b": 80}, ["a", "b"]) == pytest.approx(0.2)
    assert majority_accuracy(y_true, {"a": 5, "b": 5}, ["a", "b"]) == pytest.approx(0.8)  # tie: lowest id


def test_class_absent_from_test_is_left_out_of_balanced_accuracy():
    cm = confusion([0, 0, 1, 1], [0, 0, 1, 0], 3)  # class 2 has no test window
    assert balanced_accuracy(cm) == pytest.approx((1 + 0.5) / 2)
    assert macro_f1(cm) == pytest.approx(np.mean([2 * (2 / 3) / (2 / 3 + 1), 2 * 0.5 / 1.5]))


def test_auroc_perfect_constant_and_ties():
    y = [0, 0, 1, 1]
    perfect = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.1, 0.9]])
    assert auroc_ovr(y, perfect) == [1.0, 1.0]
    assert auroc_ovr(y, np.full((4, 2), 0.5)) == [0.5, 0.5]
    # positives 0.9 and 0.5, negatives 0.5, 0.2, 0.1: pairs won 3 + (0.5 tie + 2) = 5.5 of 6
    s = np.array([0.9, 0.5, 0.5, 0.2, 0.1])
    assert auroc_ovr([1, 1, 0, 0, 0], np.stack([1 - s, s], 1)) == pytest.approx([5.5 / 6, 5.5 / 6])


def test_auroc_undefined_without_positives():
    scores = np.array([[0.6, 0.3, 0.1], [0.2, 0.7, 0.1]])
    assert auroc_ovr([0, 1], scores)[2] is None


def test_two_correlated_groups_give_a_wider_interval_than_windows():
    # 10 windows of one patient all right, 10 of another all wrong: accuracy 0.5 either way, but a
    # resample of the 2 patients is {a, a} (1.0), {a, b} (0.5) or {b, b} (0.0), so the interval is 0-1
    y_true, y_pred = np.zeros(20, int), np.array([0] * 10 + [1] * 10)
    patients = ["a"] * 10 + ["b"] * 10
    by_patient = cluster_bootstrap(group_confusions(y_true, y_pred, patients, 2))["accuracy"]
    by_window = cluster_bootstrap(group_confusions(y_true, y_pred, [str(i) for i in range(20)], 2))["accuracy"]
    assert by_patient == [0.0, 1.0]
    assert 0.2 < by_window[0] < 0.5 < by_window[1] < 0.8


def test_one_window_per_group_is_the_window_bootstrap():
    rng = np.random.default_rng(1)
    n = 4000
    y_true = rng.integers(0, 2, n)
    y_pred = np.where(rng.random(n) < 0.8, y_true, 1 - y_true)
    acc = float(np.mean(y_true == y_pred))
    lo, hi = cluster_bootstrap(group_confusions(y_true, y_pred, [f"w{i}" for i in range(n)], 2))["accuracy"]
    assert lo < acc < hi
    assert hi - lo == pytest.approx(2 * 1.96 * np.sqrt(acc * (1 - acc) / n), rel=0.15)  # binomial standard error


def test_bootstrap_is_seeded():
    cms = group_confusions([0, 1, 1, 0, 1], [0, 1, 0, 0, 0], list("aabbc"), 2)
    assert cluster_bootstrap(cms, seed=3) == cluster_bootstrap(cms, seed=3)


def test_paired_bootstrap_of_a_run_with_itself_is_zero():
    rng = np.random.default_rng(2)
    y_true, y_pred = rng.integers(0, 3, 300), rng.integers(0, 3, 300)
    cms = group_confusions(y_true, y_pred, [str(i // 10) for i in range(300)], 3)
    for diff, ci in paired_bootstrap(cms, cms).values():
        assert diff == 0.0 and ci == [0.0, 0.0]


def test_paired_bootstrap_sees_a_consistent_gain():
    # run b fixes one wrong window in each of 20 patients: the difference is +1/10 in every resample
    y_true = np.zeros(200, int)
    y_a = np.array(([1, 1] + [0] * 8) * 20)
    y_b = np.array(([1, 0] + [0] * 8) * 20)
    groups = [str(i // 10) for i in range(200)]
    diff, (lo, hi) = paired_bootstrap(group_confusions(y_true, y_a, groups, 2), group_confusions(y_true, y_b, groups, 2))["accuracy"]
    assert diff == pytest.approx(0.1) and lo == pytest.approx(0.1) and hi == pytest.approx(0.1)


def test_groups_are_patients_unless_patients_are_unknown():
    assert cluster_groups(["r1", "r2"], ["", ""]) == ("record", ["r1", "r2"])
    assert cluster_groups(["r1", "r2"], ["r1", "r2"]) == ("record", ["r1", "r2"])
    assert cluster_groups(["201", "202", "100"], ["201", "201", ""]) == ("patient", ["201", "201", "100"])
