"""Report of a run on one split: metrics with cluster-bootstrap intervals, confusion matrix, curves, report.md/json, predictions.csv.

On the run's own dataset the files go into the run directory (report.md for the test split,
report-{split}.md for others). On another dataset they go into RUN/eval-{dataset dir name}-{first 8
hex digits of the sha256 of its dataset.json}/, so the run's own report is never overwritten.
Figures are drawn on `matplotlib.figure.Figure` with an Agg canvas, never with pyplot.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from shards import layout
from shards.card import read_card
from shards.manifest import Window, read_manifest
from shards.remote import open_dataset

from .data import card_info, make_batches
from .errors import TrainError
from .inference import is_main, load_run, predict_batches, setup_device
from .metrics import (
    INTERVAL_METRICS,
    N_BOOTSTRAP,
    auroc_ovr,
    cluster_bootstrap,
    cluster_groups,
    confusion,
    group_confusions,
    majority_accuracy,
    majority_class,
    per_class,
)
from .metrics_multilabel import multilabel_bootstrap, multilabel_metrics
from .model_card import write_model_card
from .predictions import write_predictions
from .rundir import ARGS, METRICS, card_sha256, read_metrics_rows


def record_votes(y_true, y_pred, records: list[str]) -> tuple[float, int]:
    """Record-level accuracy: majority vote of each record's window predictions (ties -> lowest class id).

    The record's true label is the majority of its window labels (one label per record for
    ptbdb/incartdb; mitdb records can hold several rhythms).
    """
    pred, true = defaultdict(list), defaultdict(list)
    for t, p, r in zip(y_true, y_pred, records):
        pred[r].append(int(p))
        true[r].append(int(t))

    def vote(values):
        counts = Counter(values)
        best = max(counts.values())
        return min(v for v, c in counts.items() if c == best)

    hits = [vote(pred[r]) == vote(true[r]) for r in pred]
    return (float(np.mean(hits)) if hits else float("nan")), len(hits)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Class probabilities from logits (N, C)."""
    e = np.exp(logits - logits.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def compute_metrics(y_true, scores, classes: list[str], records: list[str], patients: list[str] | None = None,
                    train_counts: dict | None = None, seed: int = 0) -> dict:
    """Everything report.json holds about one split's predictions.

    `scores`: (N, C) class probabilities (the prediction is their argmax); `patients`: each window's
    patient ('' unknown); `train_counts`: windows per class of the training split (majority baseline).
    Intervals are a cluster bootstrap over patients, or records where patients are unknown.
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    scores = np.asarray(scores, dtype=float).reshape(len(y_true), len(classes))
    y_pred = scores.argmax(1)
    cm = confusion(y_true, y_pred, len(classes))
    precision, recall, f1 = per_class(cm)
    auroc = auroc_ovr(y_true, scores)
    defined = [a for a in auroc if a is not None]
    unit, groups = cluster_groups(records, patients or [""] * len(records))
    group_cms = group_confusions(y_true, y_pred, groups, len(classes))
    ci = cluster_bootstrap(group_cms, seed=seed)
    rec_acc, n_records = record_votes(y_true, y_pred, records)
    point = {name: float(fn(cm)) for name, fn in INTERVAL_METRICS.items()}
    majority = majority_class(train_counts or {}, classes)
    return {
        "n_windows": int(len(y_true)),
        "accuracy": point["accuracy"],
        "accuracy_ci95": ci["accuracy"],
        "balanced_accuracy": point["balanced_accuracy"],
        "balanced_accuracy_ci95": ci["balanced_accuracy"],
        "macro_f1": point["macro_f1"],
        "macro_f1_ci95": ci["macro_f1"],
        "ci_unit": unit,
        "ci_groups": len(group_cms),
        "ci_resamples": N_BOOTSTRAP,
        "majority_class": None if majority is None else classes[majority],
        "majority_accuracy": majority_accuracy(y_true, train_counts or {}, classes),
        "auroc_macro": float(np.mean(defined)) if defined else None,
        "record_accuracy": rec_acc,
        "n_records": n_records,
        "per_class": {c: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                          "sensitivity": float(recall[i]), "ppv": float(precision[i]), "auroc": auroc[i],
                          "support": int(cm[i].sum())} for i, c in enumerate(classes)},
        "confusion": cm.tolist(),
    }


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Independent class probabilities of a multi-label model from its logits (N, C)."""
    return 1.0 / (1.0 + np.exp(-np.clip(logits, -60, 60)))


def compute_multilabel_metrics(targets, scores, classes: list[str], records: list[str],
                               patients: list[str] | None = None, seed: int = 0) -> dict:
    """What report.json holds about one split of a multi-label run: macro AUROC (the PTB-XL benchmark's headline),
    macro AUPRC and F-max with cluster-bootstrap intervals over patients (records where patients are unknown), and
    per class AUROC, AUPRC, positives, and sensitivity / PPV at probability 0.5. `scores`: (N, C) sigmoid
    probabilities; `targets`: (N, C) 0/1."""
    y = np.asarray(targets, dtype=np.int64).reshape(-1, len(classes))
    p = np.asarray(scores, dtype=float).reshape(len(y), len(classes))
    point = multilabel_metrics(y, p)
    unit, groups = cluster_groups(records, patients or [""] * len(records))
    ci = multilabel_bootstrap(y, p, groups, seed=seed)
    predicted = p >= 0.5
    tp, pos, flagged = (predicted & (y == 1)).sum(0), y.sum(0), predicted.sum(0)

    def ratio(a, b) -> list[float | None]:  # undefined (None) without a denominator
        return [float(x / n) if n else None for x, n in zip(a, b)]

    sensitivity, ppv = ratio(tp, pos), ratio(tp, flagged)
    return {
        "label_type": "multi-label",
        "n_windows": int(len(y)),
        **{name: point[name] for name in ("auroc_macro", "auprc_macro", "fmax", "fmax_threshold")},
        **{f"{name}_ci95": ci[name] for name in ci},
        "ci_unit": unit,
        "ci_groups": len(set(groups)),
        "ci_resamples": N_BOOTSTRAP,
        "n_records": len(set(records)),
        "per_class": {c: {"auroc": point["auroc"][i], "auprc": point["auprc"][i], "positives": point["positives"][i],
                          "prevalence": float(pos[i] / len(y)) if len(y) else float("nan"),
                          "sensitivity": sensitivity[i], "ppv": ppv[i]} for i, c in enumerate(classes)},
    }


def plot_roc(targets: np.ndarray, scores: np.ndarray, classes: list[str], path: Path, title: str) -> None:
    """roc.png: one ROC curve per class with a positive and a negative window (legend: class and AUROC)."""
    fig, ax = new_figure(5.5, 5)
    for i, c in enumerate(classes):
        y = targets[:, i] == 1
        if y.all() or not y.any():
            continue
        order = np.argsort(-scores[:, i], kind="stable")
        tpr = np.concatenate([[0], np.cumsum(y[order]) / y.sum()])
        fpr = np.concatenate([[0], np.cumsum(~y[order]) / (~y).sum()])
        auc = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))  # trapezoids (ties drawn as steps)
        ax.plot(fpr, tpr, lw=1, label=f"{c} ({auc:.3f})")
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("sensitivity")
    ax.set_title(title, fontsize=9)
    if len(classes) <= 15 and ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="lower right")
    save_png(fig, path)


def new_figure(width: float, height: float, cols: int = 1, rows: int = 1, squeeze: bool = True):
    """A matplotlib Figure on its own Agg canvas (no pyplot: no global figure registry, no GUI backend)."""
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig, fig.subplots(rows, cols, squeeze=squeeze)


def save_png(fig: Figure, path: Path) -> None:
    fig.tight_layout()
    with layout.atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")


def plot_confusion(cm: np.ndarray, classes: list[str], path: Path, title: str) -> None:
    """confusion.png: counts, true class rows, predicted class columns."""
    size = 2.5 + 0.6 * len(classes)
    fig, ax = new_figure(size, size)
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, str(v), ha="center", va="center", color="white" if v > cm.max() / 2 else "black", fontsize=8)
    save_png(fig, path)


def plot_curves(metrics_path: Path, path: Path) -> bool:
    """Training loss and validation accuracy (multi-label: macro AUROC) per epoch from metrics.jsonl; False when
    there is none."""
    rows = read_metrics_rows(metrics_path)
    if not rows:
        return False
    epochs = [r["epoch"] for r in rows]
    metric = "val_auroc" if "val_auroc" in rows[0] else "val_accuracy"
    fig, (a, b) = new_figure(9, 3.5, cols=2)
    a.plot(epochs, [r["train_loss"] for r in rows], marker="o")
    a.set_xlabel("epoch")
    a.set_ylabel("train loss")
    b.plot(epochs, [r[metric] for r in rows], marker="o", color="C1")
    b.set_xlabel("epoch")
    b.set_ylabel("val macro AUROC" if metric == "val_auroc" else "val accuracy")
    save_png(fig, path)
    return True


def _pct(x) -> str:
    return f"{100 * x:.2f} %"


def _interval(ci: list[float], percent: bool) -> str:
    return f"{100 * ci[0]:.2f} - {100 * ci[1]:.2f} %" if percent else f"{ci[0]:.4f} - {ci[1]:.4f}"


def _auroc(x) -> str:
    return "-" if x is None else f"{x:.4f}"


def interval_note(m: dict) -> str:
    """One sentence saying what the intervals resample."""
    return (f"95 % intervals: percentile cluster bootstrap over the {m['ci_groups']} test {m['ci_unit']}s "
            f"({m['ci_resamples']} resamples; all windows of a {m['ci_unit']} are drawn together, as they are correlated).")


def _header(r: dict) -> list[str]:
    m = r["metrics"]
    return [
        f"# Report: {r['display']} on {r['database']} ({r['split']} split)",
        "",
        f"- dataset: `{r['dataset']}` (dataset.json sha256 `{r['card_sha256'][:12]}`)",
        f"- split scheme: **split by {r['split_by']}**"
        + (" (windows of one patient can be in train and test: optimistic, the paper's setting)" if r["split_by"] == "window" else ""),
        f"- checkpoint: epoch {r['epoch'] + 1} of {r['epochs']}"
        + ("" if r["trained_card_sha256"] == r["card_sha256"]
           else f", trained on another dataset (dataset.json sha256 `{r['trained_card_sha256'][:12]}`)"),
        f"- windows: {m['n_windows']}, records: {m['n_records']}"
        + (f", patients: {m['ci_groups']}" if m["ci_unit"] == "patient" else ""),
        "",
    ]


def _multilabel_markdown(r: dict) -> str:
    m = r["metrics"]
    suffix = "" if r["split"] == "test" else f"-{r['split']}"
    lines = _header(r) + [
        "Multi-label: each class is predicted on its own (sigmoid probability); a window can have several.",
        "",
        "| metric | value | 95 % interval |",
        "| --- | --- | --- |",
        f"| macro AUROC (the PTB-XL benchmark's headline) | {_auroc(m['auroc_macro'])} | {_interval(m['auroc_macro_ci95'], False)} |",
        f"| macro AUPRC (average precision) | {_auroc(m['auprc_macro'])} | {_interval(m['auprc_macro_ci95'], False)} |",
        f"| F-max (sample-centric, best threshold {m['fmax_threshold']:.2f}) | {m['fmax']:.4f} | {_interval(m['fmax_ci95'], False)} |",
        "",
        interval_note(m) + " A model that ranks at random scores AUROC 0.5 and AUPRC equal to the class's prevalence.",
        "",
        "| class | AUROC | AUPRC | prevalence | sensitivity @0.5 | PPV @0.5 | positives |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for c, v in m["per_class"].items():
        lines.append(f"| {c} | {_auroc(v['auroc'])} | {_auroc(v['auprc'])} | {v['prevalence']:.4f} | "
                     f"{_auroc(v['sensitivity'])} | {_auroc(v['ppv'])} | {v['positives']} |")
    if m.get("non_finite_windows"):
        lines += ["", f"**Warning:** the model gave non-finite outputs (NaN) for {m['non_finite_windows']} windows "
                  "(its training diverged: lower --lr); they are scored as probability 0.5."]
    lines += ["", f"ROC curves: `roc{suffix}.png`. Per-window probabilities: `predictions{suffix}.csv`."]
    if r.get("curves"):
        lines.append("Training curves: `curves.png`.")
    return "\n".join(lines) + "\n"


def _markdown(r: dict) -> str:
    if r["metrics"].get("label_type") == "multi-label":
        return _multilabel_markdown(r)
    m = r["metrics"]
    lines = _header(r) + [
        "| metric | value | 95 % interval |",
        "| --- | --- | --- |",
        f"| accuracy | {_pct(m['accuracy'])} | {_interval(m['accuracy_ci95'], True)} |",
        f"| balanced accuracy (mean recall) | {_pct(m['balanced_accuracy'])} | {_interval(m['balanced_accuracy_ci95'], True)} |",
        f"| macro-F1 | {m['macro_f1']:.4f} | {_interval(m['macro_f1_ci95'], False)} |",
        "| majority-class baseline ("
        + (f"always `{m['majority_class']}`, the training split's most frequent" if m["majority_class"]
           else "the run's dataset.json has no training counts") + f") | {_pct(m['majority_accuracy'])} | |",
        f"| macro AUROC (one-vs-rest) | {_auroc(m['auroc_macro'])} | |",
        f"| record-level accuracy (majority vote) | {_pct(m['record_accuracy'])} ({m['n_records']} records) | |",
        "",
        interval_note(m),
        "",
        "| class | sensitivity (recall) | PPV (precision) | F1 | AUROC | support |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for c, v in m["per_class"].items():
        lines.append(f"| {c} | {v['sensitivity']:.4f} | {v['ppv']:.4f} | {v['f1']:.4f} | {_auroc(v['auroc'])} | {v['support']} |")
    stem = "confusion" + ("" if r["split"] == "test" else f"-{r['split']}")
    lines += ["", f"Confusion matrix (rows true, columns predicted): `{stem}.csv`, `{stem}.png`. "
              f"Per-window predictions: `predictions{stem.removeprefix('confusion')}.csv`."]
    if r.get("curves"):
        lines.append("Training curves: `curves.png`.")
    return "\n".join(lines) + "\n"


def _manifest_rows(dataset: Path, keys: list[str]) -> list[Window]:
    """The manifest row of each evaluated window (record and patient for votes and intervals)."""
    rows = {w.key: w for w in read_manifest(dataset / layout.MANIFEST)}
    missing = next((k for k in keys if k not in rows), None)
    if missing is not None:
        raise TrainError(f"sample {missing} of {dataset} is not in its {layout.MANIFEST}: the dataset is damaged; "
                         "check it with `ecgrender verify` and rebuild it")
    return [rows[k] for k in keys]


def report_dir(run: Path, dataset: Path, sha: str, trained_sha: str) -> Path:
    """Where the report of `run` on `dataset` goes: the run itself for its own dataset (same card),
    else RUN/eval-{dataset dir name}-{sha[:8]}."""
    if sha == trained_sha:
        return run
    return run / f"eval-{dataset.resolve().name}-{sha[:8]}"


def evaluate_run(run, dataset=None, split: str = "test", device: str = "auto", batch_size: int = 64,
                 workers: int = 4, progress: bool = True) -> Path:
    """Evaluate a run's last checkpoint on `split` and write report.md / report.json and plots; returns report.md.

    `dataset` defaults to the one the run was trained on; another dataset must have the same classes
    and its report goes to `report_dir` (module docstring). Reports for a split other than test are
    named report-{split}.md / .json.
    """
    run = Path(run)
    loaded = load_run(run, setup_device(device))
    args, ckpt = loaded.checkpoint["args"], loaded.checkpoint
    if dataset is None and args.get("dataset_url"):  # trained from a URL: read it again (a changed card is
        dataset = open_dataset(args["dataset_url"])  # another dataset, reported in RUN/eval-...)
    dataset = Path(dataset or args["dataset"])
    data_raw = read_card(dataset)
    data_card = card_info(data_raw)
    kinds = {True: "multi-label", False: "single-label"}
    if data_card.classes != loaded.card.classes or data_card.multi_label != loaded.card.multi_label:
        raise TrainError(f"dataset {dataset} has {kinds[data_card.multi_label]} classes {data_card.classes}, the run "
                         f"was trained on {kinds[loaded.card.multi_label]} classes {loaded.card.classes}: evaluate on a "
                         "dataset with the same classes")
    sha = card_sha256(dataset)
    out = report_dir(run, dataset, sha, ckpt["card_sha256"])
    batches = make_batches(dataset, split, loaded.spec.name, batch_size, workers,
                           pin_memory=loaded.device.type == "cuda")
    logits, labels, keys = predict_batches(loaded.model, loaded.standardize(), batches, loaded.device, loaded.amp,
                                           split, progress)
    suffix = "" if split == "test" else f"-{split}"
    report = out / f"report{suffix}.md"
    if not is_main():  # under torchrun every rank predicts its shards, rank 0 writes
        return report
    rows = _manifest_rows(dataset, keys)
    classes = loaded.card.classes
    records, patients = [w.record for w in rows], [w.patient for w in rows]
    title = f"{loaded.spec.display} / {data_card.database} / {split} (split by {data_card.split_by})"
    out.mkdir(exist_ok=True)
    if loaded.card.multi_label:
        proba = sigmoid(logits)
        diverged = int((~np.isfinite(proba)).any(axis=1).sum())  # a model whose training diverged outputs NaN
        proba = np.nan_to_num(proba, nan=0.5)  # ranks nothing: scored as the uninformative 0.5
        metrics = compute_multilabel_metrics(labels, proba, classes, records, patients, args["seed"])
        metrics["non_finite_windows"] = diverged
        plot_roc(np.asarray(labels, dtype=np.int64), proba, classes, out / f"roc{suffix}.png", title)
    else:
        proba = softmax(logits)
        metrics = compute_metrics(labels, proba, classes, records, patients,
                                  loaded.card_dict.get("counts", {}).get("train"), args["seed"])
        cm = np.asarray(metrics["confusion"])
        with layout.atomic_path(out / f"confusion{suffix}.csv") as tmp:
            np.savetxt(tmp, cm, fmt="%d", delimiter=",", header=",".join(classes), comments="")
        plot_confusion(cm, classes, out / f"confusion{suffix}.png", title)
    result = {
        "model": loaded.spec.name, "display": loaded.spec.display, "database": data_card.database,
        "dataset": str(dataset), "card_sha256": sha, "trained_card_sha256": ckpt["card_sha256"], "split": split,
        "split_by": data_card.split_by, "task": data_raw["source"].get("task"), "window_fs": data_card.fs,
        "epoch": ckpt["epoch"], "epochs": args["epochs"], "metrics": metrics,
        "curves": out == run and plot_curves(run / METRICS, run / "curves.png"),
    }
    write_predictions(out / f"predictions{suffix}.csv", classes, keys, records, patients, labels, proba)
    layout.write_atomic(report.with_suffix(".json"), json.dumps(result, indent=2) + "\n")
    layout.write_atomic(report, _markdown(result))
    if out == run and split == "test":  # the run's own test report: its model card
        recorded = json.loads((run / ARGS).read_text()) if (run / ARGS).is_file() else {}  # + torch, device used
        write_model_card(run, args | recorded | {"card_sha256": ckpt["card_sha256"]}, loaded.card_dict, result,
                         loaded.spec.display, loaded.spec.input)
    return report
