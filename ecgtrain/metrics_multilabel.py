"""Multi-label classification metrics as in the PTB-XL benchmark (Strodthoff et al., 2021), with the cluster bootstrap.

Every window has a 0/1 target and a score per class. The metrics:

- AUROC per class: P(score of a positive > score of a negative) + 0.5 P(tie), over (weighted) pairs; its macro
  mean over the classes where it is defined (both a positive and a negative) is the benchmark's headline.
- AUPRC per class: average precision as sklearn's `average_precision_score` defines it,
  AP = sum_n (R_n - R_{n-1}) P_n over the distinct scores in decreasing order (equal scores are one threshold).
- F-max, the benchmark's sample-centric maximum F1 (CAFA style; `F_max` and `eval_prrc_parallel` in
  ecg_ptbxl_benchmarking code/utils/utils.py): at threshold t a sample predicts the classes with score >= t;
  precision(t) = mean over samples predicting at least one class of |predicted & true| / |predicted|,
  recall(t) = mean over samples with at least one true class of |predicted & true| / |true|,
  F(t) = 2 precision recall / (precision + recall), 0 where undefined, and F-max = max over the thresholds
  0.00, 0.01, ..., 1.00 (the benchmark's grid, written i / 100). The benchmark averages recall over all samples,
  every PTB-XL sample having a label; leaving unlabelled samples out of the recall is the CAFA definition it cites.
  (`F_max` is in the repository's first release, commit ff776de; later versions of utils.py dropped it.)

Sample weights (R, N), one row per bootstrap resample, turn each mean and count into a weighted one, so the
point estimate and all resamples are the same code: AUROC and AUPRC sort each class once and sum the weights
per block of equal scores; F-max tabulates per-sample precision and recall at every threshold once, and a
resample is a matrix product. Resamples draw groups (patients) with replacement, as in `metrics`; unlike the
benchmark, which draws records and redraws any resample missing a class, a resample's macro mean covers the
classes defined in it.
"""

from __future__ import annotations

import numpy as np

from .metrics import N_BOOTSTRAP, percentile_ci, resample_weights

MULTILABEL_INTERVAL_METRICS = ("auroc_macro", "auprc_macro", "fmax")

FMAX_THRESHOLDS = np.arange(101) / 100


def _arrays(targets, scores) -> tuple[np.ndarray, np.ndarray]:
    """Targets as booleans and scores as floats, both (N, C)."""
    y, s = np.asarray(targets) != 0, np.asarray(scores, dtype=float)
    if y.ndim != 2 or y.shape != s.shape:
        raise ValueError(f"targets {y.shape} and scores {s.shape} must both be (N, C)")
    if not np.isfinite(s).all():
        raise ValueError("scores must be finite")
    return y, s


def _weights(weights, n: int) -> np.ndarray:
    """(R, N) sample weights; one row of ones without weights."""
    w = np.ones((1, n)) if weights is None else np.asarray(weights, dtype=float)
    if w.ndim != 2 or w.shape[1] != n:
        raise ValueError(f"weights {w.shape} must be (R, {n})")
    return w


def _class_blocks(y: np.ndarray, s: np.ndarray, w_pad: np.ndarray) -> tuple[np.ndarray, ...] | None:
    """For each block of equal scores holding a positive (K of them, scores increasing): the weight (R, K) of its
    positives, of the negatives scoring below it and of the negatives tied with it; and the negatives' weight (R,).
    `w_pad` is the (R, N + 1) weights with a zero last column. None without positives."""
    order = np.argsort(s, kind="stable")
    sorted_s = s[order]
    block = np.cumsum(np.r_[True, sorted_s[1:] != sorted_s[:-1]])  # block of each window, in score order
    pos_at, neg_at = np.flatnonzero(y[order]), np.flatnonzero(~y[order])
    if not len(pos_at):
        return None
    pos_block = block[pos_at]
    first = np.flatnonzero(np.r_[True, pos_block[1:] != pos_block[:-1]])
    pos = np.add.reduceat(np.take(w_pad, order[pos_at], axis=1), first, axis=1)
    # sorted negatives cut before and after each positive block: segments [0, lo_0) [lo_0, hi_0) [hi_0, lo_1) ...
    lo, hi = (np.searchsorted(block[neg_at], pos_block[first], side=side) for side in ("left", "right"))
    cuts = np.r_[0, np.stack([lo, hi], 1).ravel()]
    negatives = np.take(w_pad, np.r_[order[neg_at], w_pad.shape[1] - 1], axis=1)  # the zero column keeps cuts in range
    segments = np.add.reduceat(negatives, cuts, axis=1)
    segments[:, np.flatnonzero(cuts[:-1] == cuts[1:])] = 0  # reduceat gives an empty segment its first element
    below = np.cumsum(segments, axis=1)
    return pos, below[:, 0:-1:2], segments[:, 1::2], below[:, -1]


def _auroc_from_blocks(pos: np.ndarray, below: np.ndarray, tied: np.ndarray, n_neg: np.ndarray) -> np.ndarray:
    """(R,) weighted pairs won by the positive (ties count half) over all pairs; NaN without both sides."""
    won = (pos * (below + 0.5 * tied)).sum(1)
    pairs = pos.sum(1) * n_neg
    return np.divide(won, pairs, out=np.full(len(won), np.nan), where=pairs > 0)


def _auprc_from_blocks(pos: np.ndarray, below: np.ndarray, tied: np.ndarray, n_neg: np.ndarray) -> np.ndarray:
    """(R,) average precision: the recall gained at each positive block times the precision at its score."""
    tp = np.cumsum(pos[:, ::-1], axis=1)[:, ::-1]  # positives scoring at least the block's score
    fp = n_neg[:, None] - below
    precision = np.divide(tp, tp + fp, out=np.zeros_like(tp), where=pos > 0)
    n_pos = pos.sum(1)
    return np.divide((pos * precision).sum(1), n_pos, out=np.full(len(n_pos), np.nan), where=n_pos > 0)


def _rank_metrics(y: np.ndarray, s: np.ndarray, w: np.ndarray, auroc: bool = True,
                  auprc: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(R, C) AUROC and AUPRC of each class under each row of weights (NaN where not asked or undefined)."""
    out_roc, out_pr = np.full((len(w), y.shape[1]), np.nan), np.full((len(w), y.shape[1]), np.nan)
    w_pad = np.zeros((len(w), w.shape[1] + 1))  # C order: fast column gathers
    w_pad[:, :-1] = w
    for c in range(y.shape[1]):
        blocks = _class_blocks(y[:, c], s[:, c], w_pad)
        if blocks is None:
            continue
        if auroc:
            out_roc[:, c] = _auroc_from_blocks(*blocks)
        if auprc:
            out_pr[:, c] = _auprc_from_blocks(*blocks)
    return out_roc, out_pr


def _squeeze(values: np.ndarray, weights) -> np.ndarray:
    """Drop the single row of an unweighted result."""
    return values[0] if weights is None else values


def auroc_per_class(targets, scores, weights=None) -> np.ndarray:
    """AUROC of each class, (C,); (R, C) with `weights` (R, N). NaN without a positive or a negative."""
    y, s = _arrays(targets, scores)
    return _squeeze(_rank_metrics(y, s, _weights(weights, len(y)), auprc=False)[0], weights)


def auprc_per_class(targets, scores, weights=None) -> np.ndarray:
    """Average precision of each class, (C,); (R, C) with `weights` (R, N). NaN without a positive."""
    y, s = _arrays(targets, scores)
    return _squeeze(_rank_metrics(y, s, _weights(weights, len(y)), auroc=False)[1], weights)


def _fmax_tables(y: np.ndarray, s: np.ndarray, thresholds: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per sample and threshold (N, T): predicts any class, its precision and its recall (0 where undefined);
    and (N,) whether the sample has a true class. Thresholds sorted increasing."""
    n, t = len(y), len(thresholds)
    above = np.searchsorted(thresholds, s, side="right")  # a class is predicted at the first `above` thresholds
    cell = (np.arange(n)[:, None] * (t + 1) + above).ravel()

    def predicted_at(mask: np.ndarray) -> np.ndarray:
        """(N, T) how many classes of `mask` each sample predicts at each threshold."""
        hist = np.bincount(cell, weights=mask.ravel().astype(float), minlength=n * (t + 1)).reshape(n, t + 1)
        return np.cumsum(hist[:, ::-1], axis=1)[:, ::-1][:, 1:]

    n_pred, tp, n_true = predicted_at(np.ones_like(y)), predicted_at(y), y.sum(1).astype(float)[:, None]
    precision = np.divide(tp, n_pred, out=np.zeros_like(tp), where=n_pred > 0)
    recall = np.divide(tp, n_true, out=np.zeros_like(tp), where=n_true > 0)
    return (n_pred > 0).astype(float), precision, recall, (n_true[:, 0] > 0).astype(float)


def _fmax_weighted(y: np.ndarray, s: np.ndarray, w: np.ndarray, thresholds) -> tuple[np.ndarray, np.ndarray]:
    """(R,) F-max and the lowest threshold reaching it under each row of weights."""
    grid = np.sort(np.asarray(FMAX_THRESHOLDS if thresholds is None else thresholds, dtype=float))
    if not len(y):
        return np.zeros(len(w)), np.full(len(w), grid[0])
    any_pred, precision, recall, any_true = _fmax_tables(y, s, grid)
    n_pred, n_true = w @ any_pred, (w @ any_true)[:, None]
    p = np.divide(w @ precision, n_pred, out=np.zeros_like(n_pred), where=n_pred > 0)
    r = np.divide(w @ recall, n_true, out=np.zeros_like(n_pred), where=n_true > 0)
    f = np.divide(2 * p * r, p + r, out=np.zeros_like(p), where=(n_pred > 0) & (n_true > 0) & (p + r > 0))
    best = np.argmax(f, axis=1)
    return f[np.arange(len(f)), best], grid[best]


def fmax(targets, scores, weights=None, thresholds=None) -> tuple:
    """Sample-centric F-max and its threshold (module docstring): floats; (R,) arrays with `weights` (R, N).
    `thresholds` defaults to 0.00, 0.01, ..., 1.00; ties go to the lowest threshold."""
    y, s = _arrays(targets, scores)
    values, best = _fmax_weighted(y, s, _weights(weights, len(y)), thresholds)
    return (float(values[0]), float(best[0])) if weights is None else (values, best)


def _macro(per_class: np.ndarray) -> np.ndarray:
    """Mean over the last axis of the defined (non-NaN) values; NaN where none is."""
    defined = ~np.isnan(per_class)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(defined, per_class, 0).sum(-1) / defined.sum(-1)


def _optional(value) -> float | None:
    """Plain float, None for NaN."""
    return None if np.isnan(value) else float(value)


def multilabel_metrics(targets, scores) -> dict:
    """Point estimates: macro and per-class AUROC and AUPRC (None where undefined), F-max and its threshold,
    and the number of positive windows per class; plain Python values, JSON-serialisable."""
    y, s = _arrays(targets, scores)
    w = _weights(None, len(y))
    roc, pr = (m[0] for m in _rank_metrics(y, s, w))
    f, threshold = _fmax_weighted(y, s, w, None)
    return {"auroc_macro": _optional(_macro(roc)), "auprc_macro": _optional(_macro(pr)),
            "fmax": float(f[0]), "fmax_threshold": float(threshold[0]),
            "auroc": [_optional(v) for v in roc], "auprc": [_optional(v) for v in pr],
            "positives": [int(v) for v in y.sum(0)]}


def _resampled(y: np.ndarray, s: np.ndarray, w: np.ndarray) -> dict[str, np.ndarray]:
    """(R,) value of each metric in MULTILABEL_INTERVAL_METRICS under each row of weights."""
    roc, pr = _rank_metrics(y, s, w)
    return {"auroc_macro": _macro(roc), "auprc_macro": _macro(pr), "fmax": _fmax_weighted(y, s, w, None)[0]}


def _window_weights(groups, n: int, seed: int) -> np.ndarray:
    """(n, N) weight of each window in each resample: the draw count of its group."""
    _, inverse = np.unique(np.asarray(groups, dtype=str), return_inverse=True)
    return resample_weights(int(inverse.max()) + 1, n, seed)[:, inverse.ravel()]


def _interval(values: np.ndarray) -> list[float]:
    """95 % percentile interval over the resamples where the metric is defined."""
    return percentile_ci(values[~np.isnan(values)])


def multilabel_bootstrap(targets, scores, groups, n: int = N_BOOTSTRAP, seed: int = 0) -> dict[str, list[float]]:
    """95 % interval of each metric in MULTILABEL_INTERVAL_METRICS over `n` resamples of the groups (patients)
    with replacement, `groups` naming each window's group; a resample's macro means the classes defined in it."""
    y, s = _arrays(targets, scores)
    if not len(y):
        return {name: percentile_ci(np.zeros(0)) for name in MULTILABEL_INTERVAL_METRICS}
    values = _resampled(y, s, _window_weights(groups, n, seed))
    return {name: _interval(values[name]) for name in MULTILABEL_INTERVAL_METRICS}


def paired_multilabel_bootstrap(targets, scores_a, scores_b, groups, n: int = N_BOOTSTRAP,
                                seed: int = 0) -> dict[str, tuple[float, list[float]]]:
    """Difference B - A of each metric in MULTILABEL_INTERVAL_METRICS and its 95 % interval, both runs
    resampled with the same groups."""
    y, s_a = _arrays(targets, scores_a)
    s_b = _arrays(targets, scores_b)[1]
    if not len(y):
        return {name: (float("nan"), percentile_ci(np.zeros(0))) for name in MULTILABEL_INTERVAL_METRICS}
    ones = _weights(None, len(y))
    point_a, point_b = _resampled(y, s_a, ones), _resampled(y, s_b, ones)
    w = _window_weights(groups, n, seed)
    boot_a, boot_b = _resampled(y, s_a, w), _resampled(y, s_b, w)
    return {name: (float(point_b[name][0] - point_a[name][0]), _interval(boot_b[name] - boot_a[name]))
            for name in MULTILABEL_INTERVAL_METRICS}
