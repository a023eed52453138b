"""`ecgtrain`: train the paper's models on a rendered dataset, evaluate, predict, compare runs."""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

import click

from ecgrender import noise_names
from shards.errors import one_line_errors
from shards.layout import write_atomic
from shards.remote import is_url, open_dataset

from . import __version__
from .errors import TrainError
from .models import get_model, model_names

_DEVICE_HELP = "auto (CUDA when present, else CPU), cpu, cuda or cuda:N."
_WORKERS_HELP = "DataLoader worker processes decoding PNGs (0: in the main process)."
_COMPILE_HELP = ("Compile the training step with torch.compile (TorchInductor, static shapes): the first steps spend "
                 "minutes compiling, then a GPU trains faster (docs/training.md). Validation and test run eager; results "
                 "equal eager training up to rounding. Needs a C++ compiler on CPU, Triton on CUDA.")
_MODEL_HELP = "; ".join(f"{n}: {get_model(n).display} ({get_model(n).input} input)" for n in model_names()) + "."
_WEIGHTS_HELP = ("Initial weights: imagenet (torchvision's, the paper's setting), none (random) or PATH to a state "
                 "dict. Default per model: " + ", ".join(f"{n} {get_model(n).default_weights}" for n in model_names()) + ".")
_BALANCE_HELP = ("Class balancing (docs/training.md, Class imbalance):\n\n\b\n"
                 "none: the paper's plain cross-entropy, each window once\n"
                 "loss: cross-entropy weighted N/(C*n_c) by train counts\n"
                 "      (multi-label: BCE pos_weight negatives/positives)\n"
                 "sampler: N draws per epoch, classes equally likely\n"
                 "      (single-label datasets only)")


def _inference_options(batch_size: int, workers: int, what: str = "Samples per batch."):
    """--batch-size, --workers, --device and --progress, as the commands that run a trained model take them."""
    options = [
        click.option("--batch-size", default=batch_size, show_default=True, help=what),
        click.option("--workers", default=workers, show_default=True, help=_WORKERS_HELP),
        click.option("--device", default="auto", show_default=True, help=_DEVICE_HELP),
        click.option("--progress/--no-progress", default=True, show_default=True, help="Show progress bars."),
    ]

    def decorate(command):
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def _dataset_dir(location: str) -> Path:
    """The local directory of a dataset given as a directory or a URL (shards.remote.open_dataset)."""
    if not is_url(location) and not Path(location).is_dir():
        raise TrainError(f"dataset {location} not found: give a dataset directory made by `ecgrender build`, or its URL")
    return open_dataset(location).resolve()


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="ecgtrain")
def main():
    """Train ImECGnet and the paper's baselines on a dataset made by `ecgrender build`.

    Multi-GPU: `torchrun --nproc-per-node N -m ecgtrain.cli fit ...` (DDP, shards split by rank).
    """


@main.command()
@click.argument("dataset", metavar="DATASET")
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
@click.option("--precise-bn", is_flag=True, help="Re-estimate BatchNorm running statistics on the train split after "
              "every epoch, before validation and checkpoint (evaluation only; training is unchanged). For short runs "
              "of models with slow BatchNorm momentum such as Ref-ECG (docs/training.md).")
@click.option("--amp/--no-amp", default=True, show_default=True, help="bf16 autocast on CUDA (ignored on CPU).")
@click.option("--channels-last/--no-channels-last", default=True, show_default=True, help="channels_last memory format for image models on CUDA.")
@click.option("--compile", "compile", is_flag=True, help=_COMPILE_HELP)
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint (same dataset and model).")
@click.option("--report/--no-report", default=True, show_default=True, help="Evaluate the test split and write report.md at the end.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show progress bars.")
@one_line_errors
def fit(dataset, model, out, **options):
    """Train MODEL on DATASET, checkpoint every epoch into RUN (--out), then report on the test split.

    DATASET is a directory made by `ecgrender build`, or its URL (http(s)://, s3://, ...): the shards are streamed,
    the small files fetched once into the cache (docs/format.md, Remote datasets).
    """
    from .engine import FitConfig
    from .engine import fit as run_fit

    cfg = FitConfig(dataset=str(_dataset_dir(dataset)), model=model, out=str(out),
                    dataset_url=dataset if is_url(dataset) else None, **options)
    run = run_fit(cfg)
    report = run / "report.md"
    if report.is_file() and os.environ.get("RANK", "0") == "0":
        click.echo(f"report: {report}")


@main.command()
@click.argument("run", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--dataset", metavar="DATASET",
              help="Dataset to evaluate on (default: the one the run was trained on; same classes needed). "
                   "Its report goes to RUN/eval-DATASETNAME-SHA8/ (SHA8: start of its dataset.json's sha256).")
@click.option("--split", default="test", show_default=True, type=click.Choice(["train", "val", "test"]),
              help="Split to evaluate (test writes report.md/json, others report-SPLIT.md/json).")
@_inference_options(batch_size=64, workers=4)
@one_line_errors
def evaluate(run, dataset, split, batch_size, workers, device, progress):
    """Evaluate RUN's last checkpoint: accuracy, balanced accuracy, macro-F1 (intervals over patients), majority
    baseline, AUROC, per-class scores, confusion matrix, record votes and per-window predictions.csv. A multi-label
    run: macro AUROC, macro AUPRC and F-max (intervals over patients), per-class AUROC/AUPRC, ROC curves."""
    from .report import evaluate_run

    report = evaluate_run(run, dataset and _dataset_dir(dataset), split, device, batch_size, workers, progress)
    m = json.loads(report.with_suffix(".json").read_text())["metrics"]
    if m.get("label_type") == "multi-label":
        def value(name: str) -> str:
            lo, hi = m[f"{name}_ci95"]
            return "undefined (no class with positive and negative windows)" if m[name] is None else \
                f"{m[name]:.4f} (95 % CI {lo:.4f}-{hi:.4f})"

        click.echo(f"{split} macro AUROC {value('auroc_macro')}, macro AUPRC {value('auprc_macro')}, F-max "
                   f"{value('fmax')}; intervals: cluster bootstrap over {m['ci_groups']} {m['ci_unit']}s")
        click.echo(f"report: {report}")
        return
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
    majority-class baseline; multi-label runs in their own table (macro AUROC, macro AUPRC, F-max). With --paired:
    each run against the first, window by window."""
    from .compare import compare_table, paired_table

    table = paired_table(runs) if paired else compare_table(runs)
    if out:
        write_atomic(out, table)
    click.echo(table, nl=False)


def _list(kind):
    """click callback: a comma-separated option as a list (None when not given)."""
    def parse(ctx, param, value):
        if value is None:
            return None
        try:
            return [kind(v.strip()) for v in value.split(",") if v.strip()]
        except ValueError:
            raise click.BadParameter(f"expected comma-separated {kind.__name__} values, got {value!r}") from None
    return parse


@main.command()
@click.argument("run", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("record_path", required=False, type=click.Path(path_type=Path))
@click.option("--dataset", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Explain windows of this dataset (same classes as the run) instead of a RECORD.")
@click.option("--keys", callback=_list(str), help="Comma-separated window keys of --dataset (from its manifest.csv); "
              "default: the first --max-windows windows of --split.")
@click.option("--split", default="test", show_default=True, type=click.Choice(["train", "val", "test"]),
              help="Split of --dataset for the default windows and ImECGnet's part summary.")
@click.option("--target", help="Class to explain (default: each window's predicted class).")
@click.option("--max-windows", default=4, show_default=True, help="Windows to explain without --keys.")
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory: KEY.png per window, explanations.json, and summary.csv/png (ImECGnet, --dataset).")
@_inference_options(batch_size=16, workers=0, what="Samples per batch of the part summary.")
@one_line_errors
def explain(run, record_path, dataset, keys, split, target, max_windows, out, batch_size, workers, device, progress):
    """Show what RUN's model used for its decision on windows of RECORD_PATH (a WFDB record, as for predict) or of
    --dataset: Grad-CAM over the image with the lead boundaries (image models), saliency over the samples (Ref-ECG),
    and for ImECGnet each part's exact contribution to the logit (global, each lead, each channel part) as a bar per
    lead under the image, plus (with --dataset) the mean absolute contribution per part and class over --split.
    docs/models.md explains the outputs and their limits."""
    from .explain import run_explain
    from .inference import load_run, setup_device

    loaded = load_run(run, setup_device(device))
    path = run_explain(loaded, out, record_path, dataset, keys, split, target, max_windows, batch_size, workers,
                       progress, click.echo)
    click.echo(f"explanations: {path}")


@main.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--dataset", "clean", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="The clean dataset the RUNS were trained on: its test windows are copied with noise.")
@click.option("--noise", "kinds", default="bw,ma,em,pl", show_default=True, callback=_list(str),
              help=f"Noise types, one panel each (ecgrender build's --noise types: {', '.join(noise_names())}).")
@click.option("--snr", "snrs", default="24,18,12,6,0", show_default=True, callback=_list(float),
              help="SNRs in dB (per window and lead, nst's definition; docs/noise.md).")
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory: datasets/TYPE-SNRdB/ (the noisy sets), robustness.md/.csv/.json/.png.")
@click.option("--source", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="WFDB database the clean dataset was built from (not needed for the demo).")
@click.option("--noise-source", type=click.Path(exists=True, file_okay=False, path_type=Path), metavar="DIR",
              help="MIT-BIH Noise Stress Test Database folder: real bw, ma and em noise instead of synthetic.")
@click.option("--seed", default=0, show_default=True, help="Seed of the noise.")
@click.option("--jobs", type=int, help="Render jobs of the noisy builds (default: all cores).")
@_inference_options(batch_size=64, workers=4)
@one_line_errors
def robustness(runs, clean, kinds, snrs, out, source, noise_source, seed, jobs, batch_size, workers, device,
               progress):
    """Evaluate RUNS on noisy copies of their test windows: for each noise type and SNR, `ecgrender build
    --manifest --noise` makes the copy (reused when already there), every run is evaluated on it, and OUT gets
    accuracy and macro-F1 (multi-label: macro AUROC and F-max) with patient-cluster intervals against SNR as a
    table and a plot, one line per run, one panel per noise type."""
    from .robustness import run_robustness

    table = run_robustness(list(runs), clean, out, kinds, snrs, source, noise_source, seed, jobs, device, batch_size,
                           workers, progress, click.echo)
    click.echo(f"robustness: {table} and {table.with_suffix('.png')}")


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Experiment directory: datasets/SCHEME/, runs/SCHEME/MODEL-RECIPE-seedN/, results.md, results.png.")
@click.option("--source", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="WFDB database directory, instead of the file's [build] source (e.g. your `ecgrender fetch` copy).")
@click.option("--schemes", callback=_list(str), help="Only these split schemes of the file, e.g. window,time.")
@click.option("--models", callback=_list(str), help="Only these models, e.g. refecg (the others stay 'not run').")
@click.option("--recipes", callback=_list(str), help="Only these recipes of the file.")
@click.option("--seeds", callback=_list(int), help="Only these seeds, e.g. 0.")
@click.option("--jobs", type=int, help="Render jobs of the dataset builds (default: all cores).")
@click.option("--workers", default=4, show_default=True, help=_WORKERS_HELP)
@click.option("--device", default="auto", show_default=True, help=_DEVICE_HELP)
@click.option("--compile", "compile", is_flag=True, help=_COMPILE_HELP)
@click.option("--dry-run", is_flag=True, help="Print the plan (build and fit commands, finished runs) and stop.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show progress bars.")
@one_line_errors
def experiment(file, out, source, schemes, models, recipes, seeds, jobs, workers, device, compile, dry_run, progress):
    """Run the experiment FILE (TOML, e.g. experiments/mitdb-table1.toml): build one dataset per split scheme,
    train every model x recipe x seed, evaluate, and write OUT/results.md (Table I as mean ± sd over seeds,
    intervals over test patients, majority baseline, paired differences) with results.png and learning.png.

    Resumable: complete datasets and finished runs are kept, an unfinished run continues from its checkpoint.
    The file format is in docs/experiments.md.
    """
    from .experiment import (
        DATASETS,
        build_command,
        build_datasets,
        dataset_complete,
        fit_command,
        load_experiment,
        plan_runs,
        run_finished,
        train_runs,
    )
    from .experiment_results import write_results

    exp = load_experiment(file)
    if source is not None:
        exp.schemes = {name: options | {"source": str(source.resolve())} for name, options in exp.schemes.items()}
    runs = plan_runs(exp, schemes, models, recipes, seeds)
    if not runs:
        raise TrainError(f"no run of {file} matches --schemes/--models/--recipes/--seeds")
    used = [s for s in exp.schemes if any(r.scheme == s for r in runs)]
    if dry_run:
        for s in used:
            state = "complete" if dataset_complete(out / DATASETS / s) else "to build"
            cmd = build_command(exp.schemes[s], out / DATASETS / s, jobs)
            click.echo(f"dataset {s} ({state}): {shlex.join(['ecgrender', *cmd])}")
        for r in runs:
            click.echo(f"run {r.scheme}/{r.name} ({'finished' if run_finished(r, out) else 'to train'}): {fit_command(r, out)}")
        return
    for r in runs:
        run_finished(r, out)  # refuse runs made with other settings before anything is built or trained
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "experiment.toml", file.read_bytes())
    build_datasets(exp, out, used, jobs, click.echo)
    train_runs(runs, out, {"workers": workers, "device": device, "progress": progress, "compile": compile}, click.echo)
    all_runs = plan_runs(exp)
    click.echo(f"results: {write_results(exp, all_runs, out)}")


if __name__ == "__main__":
    main()
