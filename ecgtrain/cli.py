"""`ecgtrain`: train the paper's models on a rendered dataset, evaluate, predict, compare runs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from shards.errors import one_line_errors
from shards.layout import write_atomic

from . import __version__
from .errors import TrainError
from .models import get_model, model_names

_DEVICE_HELP = "auto (CUDA when present, else CPU), cpu, cuda or cuda:N."
_WORKERS_HELP = "DataLoader worker processes decoding PNGs (0: in the main process)."
_MODEL_HELP = "; ".join(f"{n}: {get_model(n).display} ({get_model(n).input} input)" for n in model_names()) + "."
_WEIGHTS_HELP = ("Initial weights: imagenet (torchvision's, the paper's setting), none (random) or PATH to a state "
                 "dict. Default per model: " + ", ".join(f"{n} {get_model(n).default_weights}" for n in model_names()) + ".")
_BALANCE_HELP = ("Class balancing (docs/training.md, Class imbalance):\n\n\b\n"
                 "none: the paper's plain cross-entropy, each window once\n"
                 "loss: cross-entropy weighted N/(C*n_c) by train counts\n"
                 "sampler: N draws per epoch, classes equally likely")


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="ecgtrain")
def main():
    """Train ImECGnet and the paper's baselines on a dataset made by `ecgrender build`.

    Multi-GPU: `torchrun --nproc-per-node N -m ecgtrain.cli fit ...` (DDP, shards split by rank).
    """


@main.command()
@click.argument("dataset", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--model", "-m", required=True, type=click.Choice(model_names()), help=_MODEL_HELP)
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Run directory: checkpoint.pt, metrics.jsonl, args.json, dataset.json, report.md ...")
@click.option("--epochs", default=12, show_default=True, help="Training epochs (paper: 12).")
@click.option("--batch-size", default=32, show_default=True, help="Samples per batch and GPU (at least 2).")
@click.option("--lr", default=1e-3, show_default=True, help="Initial SGD learning rate (paper: 1e-3).")
@click.option("--lr-step", default=3, show_default=True, help="Divide the learning rate by 10 every this many epochs (paper: 3).")
@click.option("--momentum", default=0.9, show_default=True, help="SGD momentum (paper: 0.9).")
@click.option("--weight-decay", default=0.0, show_default=True, help="SGD weight decay (the paper names none).")
@click.option("--workers", default=4, show_default=True, help=_WORKERS_HELP)
@click.option("--device", default="auto", show_default=True, help=_DEVICE_HELP)
@click.option("--weights", default=None, help=_WEIGHTS_HELP)
@click.option("--seed", default=0, show_default=True, help="Seed for weights init, data order and dropout (recorded in args.json).")
@click.option("--balance", default="none", show_default=True, type=click.Choice(["none", "loss", "sampler"]),
              help=_BALANCE_HELP)
@click.option("--amp/--no-amp", default=True, show_default=True, help="bf16 autocast on CUDA (ignored on CPU).")
@click.option("--channels-last/--no-channels-last", default=True, show_default=True, help="channels_last memory format for image models on CUDA.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint (same dataset and model).")
@click.option("--report/--no-report", default=True, show_default=True, help="Evaluate the test split and write report.md at the end.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show progress bars.")
@one_line_errors
def fit(dataset, model, out, **options):
    """Train MODEL on DATASET, checkpoint every epoch into RUN (--out), then report on the test split."""
    from .engine import FitConfig
    from .engine import fit as run_fit

    cfg = FitConfig(dataset=str(dataset.resolve()), model=model, out=str(out), **options)
    run = run_fit(cfg)
    report = run / "report.md"
    if report.is_file() and os.environ.get("RANK", "0") == "0":
        click.echo(f"report: {report}")


@main.command()
@click.argument("run", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--dataset", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Dataset to evaluate on (default: the one the run was trained on; same classes needed). "
                   "Its report goes to RUN/eval-DATASETNAME-SHA8/ (SHA8: start of its dataset.json's sha256).")
@click.option("--split", default="test", show_default=True, type=click.Choice(["train", "val", "test"]),
              help="Split to evaluate (test writes report.md/json, others report-SPLIT.md/json).")
@click.option("--batch-size", default=64, show_default=True, help="Samples per batch.")
@click.option("--workers", default=4, show_default=True, help=_WORKERS_HELP)
@click.option("--device", default="auto", show_default=True, help=_DEVICE_HELP)
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show a progress bar.")
@one_line_errors
def evaluate(run, dataset, split, batch_size, workers, device, progress):
    """Evaluate RUN's last checkpoint: accuracy, balanced accuracy, macro-F1 (intervals over patients), majority
    baseline, AUROC, per-class scores, confusion matrix, record votes and per-window predictions.csv."""
    from .report import evaluate_run

    report = evaluate_run(run, dataset, split, device, batch_size, workers, progress)
    m = json.loads(report.with_suffix(".json").read_text())["metrics"]
    click.echo(f"{split} accuracy {100 * m['accuracy']:.2f} % "
               f"(95 % CI {100 * m['accuracy_ci95'][0]:.2f}-{100 * m['accuracy_ci95'][1]:.2f}), "
               f"balanced accuracy {100 * m['balanced_accuracy']:.2f} % "
               f"(95 % CI {100 * m['balanced_accuracy_ci95'][0]:.2f}-{100 * m['balanced_accuracy_ci95'][1]:.2f}), "
               f"macro-F1 {m['macro_f1']:.4f} (95 % CI {m['macro_f1_ci95'][0]:.4f}-{m['macro_f1_ci95'][1]:.4f}); "
               f"majority-class baseline {100 * m['majority_accuracy']:.2f} %; "
               f"intervals: cluster bootstrap over {m['ci_groups']} {m['ci_unit']}s")
    click.echo(f"report: {report}")


@main.command()
@click.argument("run", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("record_path", type=click.Path(path_type=Path))
@click.option("--max-windows", default=60, show_default=True, help="Classify at most this many non-overlapping windows, evenly spread.")
@click.option("--device", default="auto", show_default=True, help=_DEVICE_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON instead of a table.")
@one_line_errors
def predict(run, record_path, max_windows, device, as_json):
    """Classify one WFDB record (RECORD_PATH without extension, e.g. mitdb/100) with RUN's model.

    The record is cut into windows of the dataset's length, rendered with the dataset's renderer
    and render settings (stored in RUN/dataset.json), and classified; the record-level class is the
    majority vote of its windows.
    """
    from .predict import format_prediction, predict_record

    if max_windows < 1:
        raise TrainError(f"--max-windows must be at least 1, got {max_windows}")
    result = predict_record(run, record_path, device, max_windows)
    click.echo(json.dumps(result, indent=2) if as_json else format_prediction(result))


@main.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Also write the table to this markdown file.")
@click.option("--paired", is_flag=True, help="Differences of every run from the FIRST on the same test windows, with "
              "paired cluster-bootstrap intervals (reads RUN/predictions.csv).")
@one_line_errors
def compare(runs, out, paired):
    """Markdown table like the paper's Table I from RUNS' test reports (one row per model, one column per dataset),
    then each run's accuracy, balanced accuracy and macro-F1 with 95 % intervals over test patients and the
    majority-class baseline. With --paired: each run against the first, window by window."""
    from .compare import compare_table, paired_table

    table = paired_table(runs) if paired else compare_table(runs)
    if out:
        write_atomic(out, table)
    click.echo(table, nl=False)


if __name__ == "__main__":
    main()
