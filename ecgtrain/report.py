"""Test-split report of a run: metrics, confusion matrix, bootstrap interval, curves, report.md/json."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from shards.card import read_card

from .data import Standardize, card_info, dist_info, make_batches, read_records
from .engine import METRICS, load_run, predict_batches, setup_device
from .errors import TrainError
from .models import IMAGE_MODELS

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


def _plot_confusion(cm: np.ndarray, classes: list[str], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    size = 2.5 + 0.6 * len(classes)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, str(v), ha="center", va="center", color="white" if v > cm.max() / 2 else "black", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_curves(metrics_path: Path, path: Path) -> bool:
    """Training loss and validation accuracy per epoch from metrics.jsonl; False when there is none."""
    if not metrics_path.is_file():
        return False
    rows = [json.loads(line) for line in metrics_path.read_text().splitlines() if line.strip()]
    if not rows:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in rows]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.5))
    a.plot(epochs, [r["train_loss"] for r in rows], marker="o")
    a.set_xlabel("epoch")
    a.set_ylabel("train loss")
    b.plot(epochs, [r["val_accuracy"] for r in rows], marker="o", color="C1")
    b.set_xlabel("epoch")
    b.set_ylabel("val accuracy")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def _markdown(r: dict) -> str:
    m = r["metrics"]
    lines = [
        f"# Report: {r['model']} on {r['database']} ({r['split']} split)",
        "",
        f"- dataset: `{r['dataset']}` (card sha256 `{r['card_sha256'][:12]}`)",
        f"- split scheme: **split by {r['split_by']}**"
        + (" (windows of one patient can be in train and test: optimistic, the paper's setting)" if r["split_by"] == "window" else ""),
        f"- checkpoint: epoch {r['epoch'] + 1} of {r['epochs']}",
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
    lines += ["", "Confusion matrix (rows true, columns predicted): `confusion.csv`, `confusion.png`."]
    if r.get("curves"):
        lines.append("Training curves: `curves.png`.")
    return "\n".join(lines) + "\n"


def evaluate_run(run, dataset=None, split: str = "test", device: str = "auto", batch_size: int = 64,
                 workers: int = 4, progress: bool = True) -> Path:
    """Evaluate a run's last checkpoint on `split` and write report.md / report.json and plots; returns report.md.

    `dataset` defaults to the one the run was trained on; another dataset must have the same classes.
    Reports for a split other than test are named report-{split}.md / .json.
    """
    run = Path(run)
    dev = setup_device(device)
    model, ckpt, card = load_run(run, dev)
    args = ckpt["args"]
    dataset = Path(dataset or args["dataset"])
    data_card = card_info(read_card(dataset))
    if data_card.classes != card.classes:
        raise TrainError(f"dataset {dataset} has classes {data_card.classes}, the run was trained on {card.classes}: "
                       "evaluate on a dataset with the same classes")
    image = args["model"] in IMAGE_MODELS
    prep = Standardize(image, image and dev.type == "cuda").to(dev)
    batches = make_batches(dataset, split, args["model"], batch_size, workers, pin_memory=dev.type == "cuda")
    logits, labels, keys = predict_batches(model, prep, batches, dev, args.get("amp", True), f"{split}", progress)
    stem = "report" if split == "test" else f"report-{split}"
    report = run / f"{stem}.md"
    if dist_info()[0] != 0:  # under torchrun every rank predicts its shards, rank 0 writes
        return report
    records = read_records(dataset)
    metrics = compute_metrics(labels, logits.argmax(1), card.classes, [records.get(k, k) for k in keys], args["seed"])
    classes = card.classes
    suffix = "" if split == "test" else f"-{split}"
    np.savetxt(run / f"confusion{suffix}.csv", np.asarray(metrics["confusion"]), fmt="%d", delimiter=",",
               header=",".join(classes), comments="")
    _plot_confusion(np.asarray(metrics["confusion"]), classes, run / f"confusion{suffix}.png",
                    f"{args['model']} / {data_card.database} / {split} (split by {data_card.split_by})")
    result = {
        "model": args["model"], "database": data_card.database, "dataset": str(dataset), "split": split,
        "split_by": data_card.split_by, "card_sha256": ckpt["card_sha256"], "epoch": ckpt["epoch"],
        "epochs": args["epochs"], "metrics": metrics, "curves": plot_curves(run / METRICS, run / "curves.png"),
    }
    (run / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    report.write_text(_markdown(result))
    return report
