"""Train/val/test assignment by patient, record or window, stratified by class as far as groups allow.

In patient and record mode every window of a group goes to one split (no leakage); groups are
placed greedily, those holding the largest share of the classes first, each into the split whose
class deficit it fills best. Window mode splits each class's windows at random (the paper's
setting). The rules are documented in docs/windows.md.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from shards.layout import SPLITS

from .errors import EcgError
from .windows import Candidate, WindowPlan, seeded_rng

SPLIT_BY = ("patient", "record", "window")


class SplitResult(NamedTuple):
    """`splits[i]` is the split of window i of the plan; `warnings` are one-line messages."""

    splits: list[str]
    warnings: list[str]


def _fractions(test_fraction: float, val_fraction: float) -> np.ndarray:
    for name, f in (("test", test_fraction), ("val", val_fraction)):
        if not 0 <= f < 1:
            raise EcgError(f"{name} fraction {f!r} must be in [0, 1): fix --{name}-fraction")
    if test_fraction + val_fraction >= 1:
        raise EcgError(
            f"test fraction {test_fraction} + val fraction {val_fraction} leave nothing for train: lower them"
        )
    return np.array([1 - test_fraction - val_fraction, val_fraction, test_fraction])  # in SPLITS order


def _by_groups(labels, keys, classes, fractions, seed, split_by) -> tuple[dict[str, int], np.ndarray]:
    """Greedy placement of whole groups; returns (group -> split index, group x class counts)."""
    groups = sorted(set(keys))
    g_index = {g: i for i, g in enumerate(groups)}
    c_index = {c: i for i, c in enumerate(classes)}
    counts = np.zeros((len(groups), len(classes)))
    for key, label in zip(keys, labels):
        counts[g_index[key], c_index[label]] += 1
    totals = counts.sum(axis=0)
    share = counts / totals  # each group's share of each class
    size = share.sum(axis=1)
    order = sorted(seeded_rng(seed, "splits", split_by).permutation(len(groups)).tolist(), key=lambda g: -size[g])
    target = fractions[:, None] * totals[None, :]
    filled = np.zeros_like(target)
    placed = np.zeros(len(groups), dtype=np.int64)
    used = fractions > 0
    for g in order:
        # growth of the chi-square distance sum_c sum_s (filled - target)^2 / (target * total_c)
        deficit = (target[used] - filled[used]) / totals
        cost = np.full(3, np.inf)
        cost[used] = ((share[g] - 2 * deficit) @ share[g]) / fractions[used]
        s = int(np.argmin(cost))  # ties go to the earlier split: train, val, test
        placed[g] = s
        filled[s] += counts[g]
    for s, least_groups in ((2, 2), (1, 3)):  # test needs 2 groups in all, val 3
        if fractions[s] > 0 and len(groups) >= least_groups and not (placed == s).any():
            held = [int((placed == d).sum()) for d in range(3)]
            # a split keeps its last group, except val giving it up for an empty test
            donors = [d for d in range(3) if held[d] >= 2 or (s == 2 and d == 1 and held[d] == 1)]
            donor = max(donors, key=lambda d: (held[d], -d))
            movable = [g for g in reversed(order) if placed[g] == donor]  # smallest first
            placed[movable[0]] = s
    _cover_classes(placed, counts, fractions)
    return {g: int(placed[g_index[g]]) for g in groups}, counts


def _cover_classes(placed: np.ndarray, counts: np.ndarray, fractions: np.ndarray) -> None:
    """Move groups so that a class carried by >= 2 groups reaches test (>= 3: val too), taking the
    carrier with the fewest windows of it from the split holding most carriers, never a group that
    is the last carrier of any class in its split."""
    for s, least in ((2, 2), (1, 3)):
        if fractions[s] == 0:
            continue
        for c in np.argsort(counts.sum(axis=0)):  # rarest class first
            carriers = np.flatnonzero(counts[:, c] > 0)
            if len(carriers) < least or (placed[carriers] == s).any():
                continue
            held = np.bincount(placed[carriers], minlength=3)
            donor = int(np.argmax(held))
            if held[donor] < 2:
                continue
            for g in sorted((g for g in carriers if placed[g] == donor), key=lambda g: (counts[g, c], g)):
                others = (placed == donor) & (np.arange(len(placed)) != g)
                if all(counts[others, k].any() for k in np.flatnonzero(counts[g] > 0)):
                    placed[g] = s
                    break


def _window_counts(n: int, test_fraction: float, val_fraction: float) -> tuple[int, int]:
    """Test and val windows out of a class's `n`: rounded fractions, at least one each when the class
    has 2 (test) or 3 (val) windows, and always one left for train."""
    least_test = 1 if test_fraction > 0 and n >= 2 else 0
    least_val = 1 if val_fraction > 0 and n >= 3 else 0
    n_test = max(math.floor(n * test_fraction + 0.5), least_test)
    n_val = max(math.floor(n * val_fraction + 0.5), least_val)
    while n_test + n_val > max(n - 1, 0):
        if n_val > least_val:
            n_val -= 1
        elif n_test > least_test:
            n_test -= 1
        elif n_val > 0:
            n_val -= 1
        else:
            n_test -= 1
    return n_test, n_val


def assign_splits(
    plan_or_candidates: WindowPlan | Sequence[Candidate],
    split_by: str = "patient",
    test_fraction: float = 0.2,
    val_fraction: float = 0.1,
    seed: int = 0,
) -> SplitResult:
    """Split name per window (aligned with the plan's windows), plus warnings for classes missing
    from a split. Deterministic: the same windows and seed give the same result in any input order."""
    if split_by not in SPLIT_BY:
        raise EcgError(f"--split-by {split_by!r} is not one of {', '.join(SPLIT_BY)}")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise EcgError(f"seed {seed!r} must be a non-negative integer: fix --seed")
    fractions = _fractions(test_fraction, val_fraction)
    candidates = list(plan_or_candidates.windows if isinstance(plan_or_candidates, WindowPlan) else plan_or_candidates)
    if not candidates:
        raise EcgError("no windows to split: the window plan is empty")
    labels = [c.label for c in candidates]
    present = set(labels)
    order = getattr(plan_or_candidates, "classes", None) or sorted(present)
    classes = [c for c in order if c in present] + sorted(present - set(order))
    result = [""] * len(candidates)
    warnings = []
    if split_by == "window":
        canonical = sorted(range(len(candidates)), key=lambda i: (candidates[i].record, candidates[i].start))
        for c in classes:
            mine = [i for i in canonical if labels[i] == c]
            n_test, n_val = _window_counts(len(mine), test_fraction, val_fraction)
            perm = seeded_rng(seed, "splits", "window", c).permutation(len(mine))
            for rank, k in enumerate(perm):
                result[mine[k]] = "test" if rank < n_test else "val" if rank < n_test + n_val else "train"
        group_word, advice = "windows", "draw more windows of it (--per-class, --spacing)"
        carriers = {c: labels.count(c) for c in classes}
        n_groups = len(candidates)
    else:
        keys = [c.patient if split_by == "patient" else c.record for c in candidates]
        placed, counts = _by_groups(labels, keys, classes, fractions, seed, split_by)
        result = [SPLITS[placed[k]] for k in keys]
        group_word, advice = f"{split_by}s", "use more records or --split-by window"
        carriers = {c: int((counts[:, i] > 0).sum()) for i, c in enumerate(classes)}
        n_groups = len(placed)
    nonempty = set(result)
    for s, split in enumerate(SPLITS):
        if fractions[s] > 0 and split not in nonempty:
            warnings.append(f"split {split} is empty: only {n_groups} {group_word} to share; {advice}")
    filled = {(split, label) for split, label in zip(result, labels)}
    for c in classes:
        for s, split in enumerate(SPLITS):
            if fractions[s] > 0 and split in nonempty and (split, c) not in filled:
                warnings.append(f"class {c} has no window in {split}: only {carriers[c]} {group_word} carry it; {advice}")
    got = np.array([result.count(split) for split in SPLITS]) / len(result)
    for s, split in enumerate(SPLITS):
        if split in nonempty and not 0.5 * fractions[s] <= got[s] <= 1.5 * fractions[s]:
            warnings.append(f"split {split} holds {got[s]:.0%} of the windows, not {fractions[s]:.0%}: "
                            f"whole {group_word} of very different sizes; {advice}")
    return SplitResult(result, warnings)
