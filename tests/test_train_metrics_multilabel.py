"""Multi-label metrics (PTB-XL benchmark): AUROC and average precision with ties, sample-centric F-max, weights
as repeated samples, and the patient-cluster bootstrap against hand-computed cases."""

import numpy as np
import pytest

from ecgtrain.metrics import auroc_ovr
from ecgtrain.metrics_multilabel import (
    MULTILABEL_INTERVAL_METRICS,
    auprc_per_class,
    auroc_per_class,
    fmax,
    multilabel_bootstrap,
    multilabel_metrics,
    paired_multilabel_bootstrap,
)


def _random_case(rng, n=40, c=3, decimals=1):
    """Targets with some signal, scores rounded so that many tie."""
    targets = (rng.random((n, c)) < 0.4).astype(int)
    scores = np.round(np.clip(0.3 * targets + rng.random((n, c)) * 0.7, 0, 1), decimals)
    return targets, scores


def _pairwise_auroc(target, score, weight):
    """Weighted pairs (positive, negative) won by the positive, ties half, over all pairs."""
    pos, neg = target == 1, target == 0
    diff = score[pos][:, None] - score[neg][None, :]
    pair_weight = weight[pos][:, None] * weight[neg][None, :]
    return (((diff > 0) + 0.5 * (diff == 0)) * pair_weight).sum() / pair_weight.sum()


def test_auroc_counts_ties_as_half_a_pair():
    targets = np.array([[1, 1], [1, 1], [0, 0], [0, 1], [0, 0]])
    scores = np.array([[0.9, 0.5], [0.5, 0.5], [0.5, 0.5], [0.2, 0.2], [0.1, 0.7]])
    # class 0: positives 0.9, 0.5 against negatives 0.5, 0.2, 0.1: 0.9 wins 3, 0.5 ties 1 (0.5) and wins 2 -> 5.5 / 6
    # class 1: positives 0.5, 0.5, 0.2 against negatives 0.5, 0.7: each 0.5 ties 0.5 (0.5) and loses to 0.7,
    #          0.2 loses both -> (0.5 + 0.5) / 6
    assert auroc_per_class(targets, scores) == pytest.approx([5.5 / 6, 1 / 6])


def test_auroc_is_the_pairwise_definition_on_random_data():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 200)
    scores = np.round(rng.dirichlet(np.ones(3), 200) + 0.3 * np.eye(3)[y], 1)  # rounded: many ties
    assert auroc_per_class(np.eye(3)[y], scores) == pytest.approx(auroc_ovr(y, scores))
    targets, scores = _random_case(rng, n=60)
    weights = rng.integers(0, 4, (5, 60)).astype(float)
    expected = [[_pairwise_auroc(targets[:, c], scores[:, c], w) for c in range(3)] for w in weights]
    got = auroc_per_class(targets, scores, weights)
    assert got.shape == (5, 3)
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_average_precision_takes_equal_scores_as_one_threshold():
    # scores 0.8 (pos), 0.8 (neg), 0.8 (pos), 0.1 (pos). Thresholds from the top:
    #   >= 0.8: tp 2, fp 1 -> precision 2/3, recall 2/3;  >= 0.1: tp 3, fp 1 -> precision 3/4, recall 1
    #   AP = 2/3 * 2/3 + 1/3 * 3/4 = 25/36 (positives first within the tie would give 11/12, negatives first 23/36)
    targets = np.array([[1], [0], [1], [1]])
    scores = np.array([[0.8], [0.8], [0.8], [0.1]])
    assert auprc_per_class(targets, scores) == pytest.approx([25 / 36])
    assert auprc_per_class(targets, np.array([[0.9], [0.2], [0.8], [0.7]])) == pytest.approx([1.0])
    # scores 0.9 (neg), 0.5 (pos), 0.1 (pos): precision 1/2 at recall 1/2, 2/3 at recall 1
    assert auprc_per_class(np.array([[0], [1], [1]]), np.array([[0.9], [0.5], [0.1]])) == pytest.approx([7 / 12])


FMAX_TARGETS = np.array([[1, 0], [0, 1], [1, 1]])
FMAX_SCORES = np.array([[0.9, 0.3], [0.6, 0.4], [0.7, 0.1]])


@pytest.mark.parametrize("threshold, expected", [
    # predicted sets {0,1} {0,1} {0}: precision (1/2 + 1/2 + 1)/3 = 2/3, recall (1 + 1 + 1/2)/3 = 5/6 -> 20/27
    (0.2, 20 / 27),
    # {0} {0,1} {0}: precision (1 + 1/2 + 1)/3 = 5/6, recall (1 + 1 + 1/2)/3 = 5/6 -> 5/6
    (0.35, 5 / 6),
    # {0} {0} {0}: precision (1 + 0 + 1)/3 = 2/3, recall (1 + 0 + 1/2)/3 = 1/2 -> 4/7
    (0.5, 4 / 7),
    # {0} {} {}: precision over the one predicting sample 1, recall (1 + 0 + 0)/3 = 1/3 -> 1/2
    (0.8, 1 / 2),
    # nothing predicted: precision undefined -> 0
    (0.95, 0.0),
])
def test_fmax_hand_computed_at_each_threshold(threshold, expected):
    assert fmax(FMAX_TARGETS, FMAX_SCORES, thresholds=[threshold]) == pytest.approx((expected, threshold))


def test_fmax_is_the_best_threshold_of_the_grid():
    # F is 5/6 for thresholds in (0.3, 0.4], below the other values above; the grid's first point there is 0.31
    assert fmax(FMAX_TARGETS, FMAX_SCORES) == pytest.approx((5 / 6, 0.31))
    assert fmax(FMAX_TARGETS, FMAX_SCORES, thresholds=[0.95, 0.2, 0.35, 0.5]) == pytest.approx((5 / 6, 0.35))
    # a sample without a true class counts in precision where it predicts, never in recall: at 0.05 every
    # sample predicts both classes, precision (1/2 + 1/2 + 1 + 0)/4 = 1/2, recall 1 over the 3 labelled -> 2/3
    targets, scores = np.r_[FMAX_TARGETS, [[0, 0]]], np.r_[FMAX_SCORES, [[0.1, 0.1]]]
    assert fmax(targets, scores, thresholds=[0.05]) == pytest.approx((2 / 3, 0.05))
    assert fmax(targets, scores) == pytest.approx((5 / 6, 0.31))


def test_integer_weights_are_repeated_samples():
    rng = np.random.default_rng(3)
    targets, scores = _random_case(rng, n=30, c=3)
    weights = rng.integers(0, 4, (4, 30))
    roc, pr = auroc_per_class(targets, scores, weights), auprc_per_class(targets, scores, weights)
    f, threshold = fmax(targets, scores, weights)
    assert roc.shape == pr.shape == (4, 3) and f.shape == threshold.shape == (4,)
    for r, w in enumerate(weights):
        repeated_t, repeated_s = np.repeat(targets, w, axis=0), np.repeat(scores, w, axis=0)
        np.testing.assert_allclose(roc[r], auroc_per_class(repeated_t, repeated_s), rtol=1e-12)
        np.testing.assert_allclose(pr[r], auprc_per_class(repeated_t, repeated_s), rtol=1e-12)
        assert (f[r], threshold[r]) == pytest.approx(fmax(repeated_t, repeated_s), rel=1e-12)


def test_undefined_classes_are_none_and_left_out_of_the_macro_mean():
    targets = np.array([[1, 0, 1], [0, 0, 1], [1, 0, 1], [0, 0, 1]])
    scores = np.array([[0.9, 0.2, 0.3], [0.1, 0.4, 0.6], [0.8, 0.1, 0.5], [0.7, 0.3, 0.4]])
    m = multilabel_metrics(targets, scores)
    assert m["positives"] == [2, 0, 4]
    assert m["auroc"] == [1.0, None, None]  # class 1 has no positive, class 2 no negative
    assert m["auprc"] == [1.0, None, 1.0]
    assert m["auroc_macro"] == 1.0 and m["auprc_macro"] == 1.0
    assert np.isnan(auroc_per_class(targets, scores)[1:]).all() and np.isnan(auprc_per_class(targets, scores)[1])
    assert all(type(v) is float for v in (m["fmax"], m["fmax_threshold"]))
    none = multilabel_metrics(np.zeros((3, 2)), np.full((3, 2), 0.5))
    assert none["auroc_macro"] is None and none["auprc_macro"] is None


def _grouped_case(seed=4, n_groups=60, per_group=3, c=3):
    rng = np.random.default_rng(seed)
    targets, scores = _random_case(rng, n=n_groups * per_group, c=c, decimals=3)
    return targets, scores, [f"p{i // per_group}" for i in range(len(targets))]


def test_bootstrap_is_seeded():
    targets, scores, groups = _grouped_case()
    assert multilabel_bootstrap(targets, scores, groups, n=200, seed=3) == multilabel_bootstrap(
        targets, scores, groups, n=200, seed=3)
    assert multilabel_bootstrap(targets, scores, groups, n=200, seed=3) != multilabel_bootstrap(
        targets, scores, groups, n=200, seed=4)


def test_intervals_hold_the_point_estimate():
    targets, scores, groups = _grouped_case()
    targets[:, 2] = 0
    targets[0, 2] = 1  # a class with one positive window: undefined in the resamples that miss its patient
    point = multilabel_metrics(targets, scores)
    intervals = multilabel_bootstrap(targets, scores, groups)
    assert set(intervals) == set(MULTILABEL_INTERVAL_METRICS)
    for name, (lo, hi) in intervals.items():
        assert lo < point[name] < hi, name


def test_resamples_without_a_defined_class_are_left_out_of_the_interval():
    # the only positives are patient p0's: about a third of the resamples of 10 patients miss p0 and have no AUROC
    targets = np.array([[1]] * 2 + [[0]] * 18)
    scores = np.linspace(0.9, 0.1, 20)[:, None]
    groups = [f"p{i // 2}" for i in range(20)]
    assert multilabel_bootstrap(targets, scores, groups)["auroc_macro"] == [1.0, 1.0]


def test_bootstrap_draws_groups_not_windows():
    # every patient's 5 windows are copies of one: drawing patients, the copies only scale the weights, which no
    # metric sees, so the intervals are those of one window per patient; drawing windows they would be narrower
    targets, scores, groups = _grouped_case(per_group=1)
    copies = multilabel_bootstrap(np.repeat(targets, 5, 0), np.repeat(scores, 5, 0), np.repeat(groups, 5))
    single = multilabel_bootstrap(targets, scores, groups)
    for name in MULTILABEL_INTERVAL_METRICS:
        assert copies[name] == pytest.approx(single[name], rel=1e-12)
    windows = multilabel_bootstrap(np.repeat(targets, 5, 0), np.repeat(scores, 5, 0), [str(i) for i in range(300)])
    for name in MULTILABEL_INTERVAL_METRICS:
        assert windows[name][1] - windows[name][0] < 0.7 * (single[name][1] - single[name][0]), name


def test_paired_bootstrap_of_a_run_with_itself_is_zero():
    targets, scores, groups = _grouped_case()
    for diff, ci in paired_multilabel_bootstrap(targets, scores, scores, groups, n=200).values():
        assert diff == 0.0 and ci == [0.0, 0.0]


def test_paired_bootstrap_sees_a_consistent_gain():
    # run b ranks every class perfectly (AUROC 1), run a scores a constant (AUROC 0.5): +0.5 in every resample
    targets, _, groups = _grouped_case()
    constant, perfect = np.full(targets.shape, 0.5), targets * 0.6 + 0.2
    paired = paired_multilabel_bootstrap(targets, constant, perfect, groups, n=200)
    diff, (lo, hi) = paired["auroc_macro"]
    assert diff == pytest.approx(0.5) and lo == pytest.approx(0.5) and hi == pytest.approx(0.5)
    a, b = multilabel_metrics(targets, constant), multilabel_metrics(targets, perfect)
    for name in MULTILABEL_INTERVAL_METRICS:
        assert paired[name][0] == pytest.approx(b[name] - a[name])


def test_empty_input_gives_nan_intervals():
    empty = np.zeros((0, 3))
    for lo, hi in multilabel_bootstrap(empty, empty, []).values():
        assert np.isnan(lo) and np.isnan(hi)
    for diff, (lo, hi) in paired_multilabel_bootstrap(empty, empty, empty, []).values():
        assert np.isnan(diff) and np.isnan(lo) and np.isnan(hi)
