"""Report of a run on one split: metrics, confusion matrix, bootstrap interval, curves, report.md/json.

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

from .data import card_info, make_batches, read_records
from .errors import TrainError
from .inference import is_main, load_run, predict_batches, setup_device
from .rundir import METRICS, card_sha256

N_BOOTSTRAP = 1000


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts (true class rows, predicted class columns)."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    return cm


def per_class(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall and F1 per class (0 where undefined)."""
    tp = np.diag(cm).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.nan_to_num(tp / cm.sum(0))
        recall = np.nan_to_num(tp / cm.sum(1))
        f1 = np.nan_to_num(2 * precision * recall / (precision + recall))
    return precision, recall, f1


def bootstrap_accuracy(correct: np.ndarray, n: int = N_BOOTSTRAP, seed: int = 0) -> tuple[float, float]:
    """95 % percentile interval of accuracy over `n` resamples of the test windows."""
    if len(correct) == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(correct), size=(n, len(correct)))
    accs = correct[idx].mean(1)
    return float(np.percentile(accs, 2.5)), float(np.percentile(accs, 97.5))


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


def compute_metrics(y_true, y_pred, classes: list[str], records: list[str], seed: int = 0) -> dict:
    """Everything report.json holds about one split's predictions."""
    y_true, y_pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    cm = confusion(y_true, y_pred, len(classes))
    precision, recall, f1 = per_class(cm)
    present = cm.sum(1) > 0
    correct = (y_true == y_pred).astype(float)
    lo, hi = bootstrap_accuracy(correct, seed=seed)
    rec_acc, n_records = record_votes(y_true, y_pred, records)
    return {
        "n_windows": int(len(y_true)),
        "accuracy": float(correct.mean()) if len(correct) else float("nan"),
        "accuracy_ci95": [lo, hi],
        "macro_f1": float(f1[present].mean()) if present.any() else float("nan"),
        "record_accuracy": rec_acc,
        "n_records": n_records,
        "per_class": {c: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                          "support": int(cm[i].sum())} for i, c in enumerate(classes)},
        "confusion": cm.tolist(),
    }


def _figure(width: float, height: float, cols: int = 1):
    """A matplotlib Figure on its own Agg canvas (no pyplot: no global figure registry, no GUI backend)."""
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig, fig.subplots(1, cols)


def _save_png(fig: Figure, path: Path) -> None:
    fig.tight_layout()
    with layout.atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")


def plot_confusion(cm: np.ndarray, classes: list[str], path: Path, title: str) -> None:
    """confusion.png: counts, true class rows, predicted class columns."""
    size = 2.5 + 0.6 * len(classes)
    fig, ax = _figure(size, size)
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, str(v), ha="center", va="center", color="white" if v > cm.max() / 2 else "black", fontsize=8)
    _save_png(fig, path)


def plot_curves(metrics_path: Path, path: Path) -> bool:
    """Training loss and validation accuracy per epoch from metrics.jsonl; False when there is none."""
    if not metrics_path.is_file():
        return False
    try:
        rows = [json.loads(line) for line in metrics_path.read_text().splitlines() if line.strip()]
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TrainError(f"{metrics_path} is damaged ({exc}): remove it or train the run again") from None
    if not rows:
        return False
    epochs = [r["epoch"] for r in rows]
    fig, (a, b) = _figure(9, 3.5, cols=2)
    a.plot(epochs, [r["train_loss"] for r in rows], marker="o")
    a.set_xlabel("epoch")
    a.set_ylabel("train loss")
    b.plot(epochs, [r["val_accuracy"] for r in rows], marker="o", color="C1")
    b.set_xlabel("epoch")
    b.set_ylabel("val accuracy")
    _save_png(fig, path)
    return True


def _markdown(r: dict) -> str:
    m = r["metrics"]
    lines = [
        f"# Report: {r['display']} on {r['database']} ({r['split']} split)",
        "",
        f"- dataset: `{r['dataset']}` (dataset.json sha256 `{r['card_sha256'][:12]}`)",
        f"- split scheme: **split by {r['split_by']}**"
        + (" (windows of one patient can be in train and test: optimistic, the paper's setting)" if r["split_by"] == "window" else ""),
        f"- checkpoint: epoch {r['epoch'] + 1} of {r['epochs']}"
        + ("" if r["trained_card_sha256"] == r["card_sha256"]
           else f", trained on another dataset (dataset.json sha256 `{r['trained_card_sha256'][:12]}`)"),
        f"- windows: {m['n_windows']}, records: {m['n_records']}",
        "",
        "| metric | value |",
        "| --- | --- |",
        f"| accuracy | {100 * m['accuracy']:.2f} % |",
        f"| 95 % bootstrap interval ({N_BOOTSTRAP} resamples) | {100 * m['accuracy_ci95'][0]:.2f} - {100 * m['accuracy_ci95'][1]:.2f} % |",
        f"| macro-F1 | {m['macro_f1']:.4f} |",
        f"| record-level accuracy (majority vote) | {100 * m['record_accuracy']:.2f} % ({m['n_records']} records) |",
        "",
        "| class | precision | recall | F1 | support |",
        "| --- | --- | --- | --- | --- |",
    ]
    for c, v in m["per_class"].items():
        lines.append(f"| {c} | {v['precision']:.4f} | {v['recall']:.4f} | {v['f1']:.4f} | {v['support']} |")
    stem = "confusion" + ("" if r["split"] == "test" else f"-{r['split']}")
    lines += ["", f"Confusion matrix (rows true, columns predicted): `{stem}.csv`, `{stem}.png`."]
    if r.get("curves"):
        lines.append("Training curves: `curves.png`.")
    return "\n".join(lines) + "\n"


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
    dataset = Path(dataset or args["dataset"])
    data_card = card_info(read_card(dataset))
    if data_card.classes != loaded.card.classes:
        raise TrainError(f"dataset {dataset} has classes {data_card.classes}, the run was trained on "
                         f"{loaded.card.classes}: evaluate on a dataset with the same classes")
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
    records = read_records(dataset)
    classes = loaded.card.classes
    metrics = compute_metrics(labels, logits.argmax(1), classes, [records.get(k, k) for k in keys], args["seed"])
    out.mkdir(exist_ok=True)
    cm = np.asarray(metrics["confusion"])
    with layout.atomic_path(out / f"confusion{suffix}.csv") as tmp:
        np.savetxt(tmp, cm, fmt="%d", delimiter=",", header=",".join(classes), comments="")
    plot_confusion(cm, classes, out / f"confusion{suffix}.png",
                   f"{loaded.spec.display} / {data_card.database} / {split} (split by {data_card.split_by})")
    result = {
        "model": loaded.spec.name, "display": loaded.spec.display, "database": data_card.database,
        "dataset": str(dataset), "card_sha256": sha, "trained_card_sha256": ckpt["card_sha256"], "split": split,
        "split_by": data_card.split_by, "epoch": ckpt["epoch"], "epochs": args["epochs"], "metrics": metrics,
        "curves": out == run and plot_curves(run / METRICS, run / "curves.png"),
    }
    layout.write_atomic(report.with_suffix(".json"), json.dumps(result, indent=2) + "\n")
    layout.write_atomic(report, _markdown(result))
    return report
