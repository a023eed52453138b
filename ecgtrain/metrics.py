"""Classification metrics on confusion matrices, one-vs-rest AUROC and the cluster bootstrap.

Every metric takes a stack of confusion matrices (..., C, C) (true class rows, predicted columns) and
returns one value per matrix, so a point estimate and 1,000 bootstrap resamples are the same code.
The bootstrap resamples groups (patients or records) with replacement: each group's confusion matrix
is a sufficient statistic, so a resample is a weighted sum of them (one matrix product for all).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

N_BOOTSTRAP = 1000

Metric = Callable[[np.ndarray], np.ndarray]


def confusion(y_true, y_pred, n_classes: int) -> np.ndarray:
    """Counts (true class rows, predicted class columns)."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    return cm


def per_class(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision (PPV), recall (sensitivity) and F1 per class along the last axis (0 where undefined)."""
    tp = np.diagonal(cm, axis1=-2, axis2=-1).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.nan_to_num(tp / cm.sum(-2))
        recall = np.nan_to_num(tp / cm.sum(-1))
        f1 = np.nan_to_num(2 * precision * recall / (precision + recall))
    return precision, recall, f1


def _mean_over_present(values: np.ndarray, cm: np.ndarray) -> np.ndarray:
    """Mean of per-class `values` over the classes with test windows (NaN when there are none)."""
    present = cm.sum(-1) > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(present, values, 0).sum(-1) / present.sum(-1)


def accuracy(cm: np.ndarray) -> np.ndarray:
    """Fraction of windows on the diagonal."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.trace(cm, axis1=-2, axis2=-1) / cm.sum((-2, -1))


def balanced_accuracy(cm: np.ndarray) -> np.ndarray:
    """Mean recall over the classes present."""
    return _mean_over_present(per_class(cm)[1], cm)


def macro_f1(cm: np.ndarray) -> np.ndarray:
    """Mean F1 over the classes present."""
    return _mean_over_present(per_class(cm)[2], cm)


INTERVAL_METRICS: dict[str, Metric] = {"accuracy": accuracy, "balanced_accuracy": balanced_accuracy, "macro_f1": macro_f1}


def majority_class(train_counts: dict[str, int], classes: list[str]) -> int | None:
    """Id of the training split's most frequent class (ties: lowest id); None without training counts."""
    counts = [int(train_counts.get(c, 0)) for c in classes]
    return int(np.argmax(counts)) if any(counts) else None


def majority_accuracy(y_true, train_counts: dict[str, int], classes: list[str]) -> float:
    """Accuracy of always predicting the training split's most frequent class."""
    majority, y_true = majority_class(train_counts, classes), np.asarray(y_true)
    return float(np.mean(y_true == majority)) if majority is not None and len(y_true) else float("nan")


def average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks of `x`, tied values sharing the mean of their ranks."""
    order = np.argsort(x, kind="stable")
    _, first, counts = np.unique(x[order], return_index=True, return_counts=True)
    ranks = np.empty(len(x))
    ranks[order] = np.repeat(first + (counts + 1) / 2, counts)
    return ranks


def auroc_ovr(y_true, scores: np.ndarray) -> list[float | None]:
    """One-vs-rest AUROC per class (Mann-Whitney: rank sum of the positives); None without both sides."""
    y_true = np.asarray(y_true)
    out: list[float | None] = []
    for c in range(scores.shape[1]):
        pos = y_true == c
        n_pos, n_neg = int(pos.sum()), int((~pos).sum())
        if n_pos == 0 or n_neg == 0:
            out.append(None)
            continue
        rank_sum = average_ranks(scores[:, c])[pos].sum()
        out.append(float((rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)))
    return out


def group_confusions(y_true, y_pred, groups, n_classes: int) -> np.ndarray:
    """(G, C, C) confusion matrix of each group, groups in sorted order."""
    names, inverse = np.unique(np.asarray(groups, dtype=str), return_inverse=True)
    cell = (inverse * n_classes + np.asarray(y_true, dtype=np.int64)) * n_classes + np.asarray(y_pred, dtype=np.int64)
    return np.bincount(cell, minlength=len(names) * n_classes**2).reshape(len(names), n_classes, n_classes)


def cluster_groups(records: list[str], patients: list[str]) -> tuple[str, list[str]]:
    """The bootstrap's unit and each window's group: its patient, or its record where patients are
    unknown (every patient empty or equal to its record)."""
    if all(p in ("", r) for r, p in zip(records, patients)):
        return "record", list(records)
    return "patient", [p or r for r, p in zip(records, patients)]


def resample_weights(n_groups: int, n: int = N_BOOTSTRAP, seed: int = 0) -> np.ndarray:
    """(n, G) how often each group is drawn in each of `n` resamples of G groups with replacement."""
    rng = np.random.default_rng(seed)
    weights = np.empty((n, n_groups))
    for row in weights:  # one resample at a time stays in cache: faster than one bincount over all
        row[:] = np.bincount(rng.integers(0, n_groups, n_groups), minlength=n_groups)
    return weights


def resampled_confusions(group_cms: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(n, C, C) confusion matrix of each resample: its groups' windows concatenated."""
    g, c, _ = group_cms.shape
    return (weights @ group_cms.reshape(g, c * c).astype(float)).reshape(-1, c, c)


def percentile_ci(values: np.ndarray) -> list[float]:
    """95 % percentile interval."""
    if not len(values):
        return [float("nan"), float("nan")]
    return [float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))]


def cluster_bootstrap(group_cms: np.ndarray, n: int = N_BOOTSTRAP, seed: int = 0) -> dict[str, list[float]]:
    """95 % interval of each metric in INTERVAL_METRICS over `n` resamples of the groups."""
    if not len(group_cms):
        return {name: percentile_ci(np.zeros(0)) for name in INTERVAL_METRICS}
    cms = resampled_confusions(group_cms, resample_weights(len(group_cms), n, seed))
    return {name: percentile_ci(fn(cms)) for name, fn in INTERVAL_METRICS.items()}


def paired_bootstrap(cms_a: np.ndarray, cms_b: np.ndarray, n: int = N_BOOTSTRAP,
                     seed: int = 0) -> dict[str, tuple[float, list[float]]]:
    """Difference B - A of each metric and its 95 % interval, both runs resampled with the same groups."""
    weights = resample_weights(len(cms_a), n, seed)
    boot_a, boot_b = resampled_confusions(cms_a, weights), resampled_confusions(cms_b, weights)
    return {name: (float(fn(cms_b.sum(0)) - fn(cms_a.sum(0))), percentile_ci(fn(boot_b) - fn(boot_a)))
            for name, fn in INTERVAL_METRICS.items()}
