"""Multi-label datasets in ecgtrain: multi-hot targets from shards and refecg.h5, BCE-with-logits training that
learns, AUROC / AUPRC / F-max reports, compare (tables and --paired), predict, and the refused sampler."""

import json

import numpy as np
import pytest
import torch
from _train_data import CLASSES, MULTI_LABEL_TARGETS, make_dataset, write_record
from click.testing import CliRunner
from test_train_learns import TinySignalNet

from ecgtrain.cli import main
from ecgtrain.data import Standardize, make_batches
from ecgtrain.engine import make_criterion, positive_weights, train_one_epoch, val_macro_auroc
from ecgtrain.models import get_model, model_names
from shards.manifest import read_manifest

SIGNAL_MODEL = next(name for name in model_names() if get_model(name).input == "signal")
IMAGE_MODEL = "imresnet34"
COUNTS = {"train": 24, "val": 6, "test": 9}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("ml") / "ds", counts=COUNTS, per_shard=6, multi_label=True)


def _cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.mark.parametrize("model", [SIGNAL_MODEL, IMAGE_MODEL])
def test_batches_carry_the_manifest_multi_hot_targets(dataset, model):
    expected = {w.key: [int(t) for t in w.targets] for w in read_manifest(dataset / "manifest.csv")}
    batches = make_batches(dataset, "test", model, batch_size=4, workers=0)
    seen = 0
    for batch in batches:
        assert batch.y.dtype == torch.float32 and batch.y.shape == (len(batch.keys), len(CLASSES))
        assert batch.y.tolist() == [expected[k] for k in batch.keys]
        seen += len(batch.keys)
    assert seen == COUNTS["test"]


def test_bce_loop_drives_the_loss_down(tmp_path):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        root = make_dataset(tmp_path / "ds", counts={"train": 36, "val": 3, "test": 3}, per_shard=9, multi_label=True)
        torch.manual_seed(0)
        model = TinySignalNet().double()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        batches = make_batches(root, "train", SIGNAL_MODEL, batch_size=6, workers=0, train=True)
        criterion = make_criterion(None, torch.device("cpu"), multi_label=True)
        assert isinstance(criterion, torch.nn.BCEWithLogitsLoss)
        # float64, one thread, no BatchNorm: seeds 0-5 end at 0.04-0.08 of the first epoch's loss, far below 0.5
        losses = [train_one_epoch(model, Standardize(image=False), batches, optimizer, torch.device("cpu"), amp=False,
                                  epoch=epoch, progress=False, criterion=criterion)["train_loss"] for epoch in range(10)]
    finally:
        torch.set_num_threads(threads)
    assert losses[0] > 0.5 and losses[-1] < 0.5 * losses[0], losses


def test_balance_loss_weighs_positives_by_negatives_over_positives():
    with pytest.warns(UserWarning, match=r"class\(es\) c have no positive training window"):
        assert positive_weights(["a", "b", "c"], {"a": 16, "b": 4, "c": 0}, 24) == [0.5, 5.0, 0.0]


def test_fit_reports_auroc_auprc_fmax_and_compare_shows_them(dataset, tmp_path):
    runs = []
    for seed in (0, 1):
        run = tmp_path / f"run{seed}"
        result = _cli("fit", dataset, "--model", SIGNAL_MODEL, "--epochs", 2, "--batch-size", 6, "--workers", 0,
                      "--device", "cpu", "--seed", seed, "--balance", "loss", "--out", run, "--no-progress")
        assert result.exit_code == 0, result.output
        runs.append(run)
    report = json.loads((runs[0] / "report.json").read_text())
    m = report["metrics"]
    assert m["label_type"] == "multi-label" and m["n_windows"] == COUNTS["test"]
    for name in ("auroc_macro", "auprc_macro", "fmax"):
        lo, hi = m[f"{name}_ci95"]
        assert 0 <= lo <= m[name] <= hi <= 1
    assert set(m["per_class"]) == set(CLASSES)
    assert m["per_class"]["slow"]["positives"] == sum(t[0] == "1" for t in MULTI_LABEL_TARGETS * 3)
    args = json.loads((runs[0] / "args.json").read_text())
    assert args["class_weights"] == [0.5, 0.5]  # 16 of 24 train windows are positive for each class
    rows = [json.loads(line) for line in (runs[0] / "metrics.jsonl").read_text().splitlines()]
    assert all(0 <= r["val_auroc"] <= 1 for r in rows) and "val_accuracy" not in rows[0]
    assert (runs[0] / "roc.png").is_file() and (runs[0] / "curves.png").is_file()
    header, first = (runs[0] / "predictions.csv").read_text().splitlines()[:2]
    assert header == "key,record,patient,targets,p_slow,p_fast"
    assert first.split(",")[3] in MULTI_LABEL_TARGETS
    assert "macro AUROC" in (runs[0] / "report.md").read_text()

    table = _cli("compare", *runs)
    assert table.exit_code == 0 and "Multi-label runs" in table.output and "macro AUROC" in table.output
    paired = _cli("compare", "--paired", *runs)
    assert paired.exit_code == 0, paired.output
    assert paired.output.count("(reference)") == 3 and "F-max" in paired.output
    evaluated = _cli("evaluate", runs[0], "--workers", 0, "--device", "cpu", "--no-progress")
    assert evaluated.exit_code == 0 and "test macro AUROC" in evaluated.output

    record = write_record(tmp_path / "rec", seconds=6)
    predicted = _cli("predict", runs[0], record, "--device", "cpu", "--json")
    assert predicted.exit_code == 0, predicted.output
    result = json.loads(predicted.output)
    assert result["multi_label"] and set(result["mean_prob"]) == set(CLASSES)
    assert all(set(w["probs"]) == set(CLASSES) for w in result["windows"])


def test_balanced_sampler_is_refused_for_multi_label(dataset, tmp_path):
    result = CliRunner().invoke(main, ["fit", str(dataset), "--model", SIGNAL_MODEL, "--epochs", "1", "--workers", "0",
                                       "--device", "cpu", "--balance", "sampler", "--out", str(tmp_path / "r")])
    assert result.exit_code == 2
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "--balance sampler" in errors[0] and "--balance loss" in errors[0]
    assert not (tmp_path / "r" / "checkpoint.pt").exists()


def test_multi_label_runs_never_mix_with_single_label_datasets(dataset, tmp_path):
    single = make_dataset(tmp_path / "single", counts={"train": 8, "val": 2, "test": 2})
    run = tmp_path / "run"
    assert _cli("fit", dataset, "--model", SIGNAL_MODEL, "--epochs", 1, "--batch-size", 6, "--workers", 0,
                "--device", "cpu", "--out", run, "--no-progress", "--no-report").exit_code == 0
    result = CliRunner().invoke(main, ["evaluate", str(run), "--dataset", str(single), "--workers", "0",
                                       "--device", "cpu", "--no-progress"])
    assert result.exit_code == 2 and "same classes" in result.output
    assert np.isfinite(json.loads((run / "metrics.jsonl").read_text().splitlines()[0])["val_auroc"])


def _build_ptbxl(source, out, *options):
    from buildutil import ecgrender

    result = ecgrender("build", "--db", "ptbxl", "--source", source, "--split-by", "fold", "--allow-missing-classes",
                       "--jobs", 1, "--out", out, *options)
    assert result.exit_code == 0, result.output
    return out


def test_ptbxl_runs_of_two_tasks_stay_apart_and_undefined_metrics_show_as_dashes(synth_ptbxl, tmp_path):
    """Trained on datasets `ecgrender build --db ptbxl` made; fold 10 of the synthetic tree has one NORM record
    and no MI, so with --classes NORM,MI no class has positive and negative test windows."""
    runs = []
    for name, options in (("super", ()), ("rhythm", ("--task", "rhythm")), ("normmi", ("--classes", "NORM,MI"))):
        dataset = _build_ptbxl(synth_ptbxl, tmp_path / f"ds-{name}", *options)
        run = tmp_path / f"run-{name}"
        result = _cli("fit", dataset, "--model", SIGNAL_MODEL, "--epochs", 1, "--batch-size", 4, "--workers", 0,
                      "--device", "cpu", "--out", run, "--no-progress")
        assert result.exit_code == 0, result.output
        runs.append(run)
    normmi = json.loads((runs[2] / "report.json").read_text())["metrics"]
    assert normmi["auroc_macro"] is None and normmi["per_class"]["MI"]["sensitivity"] is None
    table = _cli("compare", *runs)
    assert table.exit_code == 0, table.output
    rows = {line.split(" | ")[1]: line for line in table.output.splitlines() if line.startswith("| Ref-ECG |")}
    rhythm_classes = json.loads((runs[1] / "report.json").read_text())["metrics"]["per_class"]
    assert set(rows) == {"ptbxl superdiagnostic 100 Hz, 5 classes (split by fold)",
                         f"ptbxl rhythm 100 Hz, {len(rhythm_classes)} classes (split by fold)",
                         "ptbxl superdiagnostic 100 Hz, 2 classes (split by fold)"}
    assert rows["ptbxl superdiagnostic 100 Hz, 2 classes (split by fold)"].split(" | ")[2] == "-"  # macro AUROC


def test_a_diverged_multi_label_run_still_reports(dataset, tmp_path):
    """A model whose training diverged outputs NaN: its weights are made NaN here (how a run reaches NaN
    depends on the CPU's arithmetic), and evaluate still writes a report that says so."""
    run = tmp_path / "run"
    assert _cli("fit", dataset, "--model", SIGNAL_MODEL, "--epochs", 1, "--batch-size", 6, "--workers", 0,
                "--device", "cpu", "--out", run, "--no-progress", "--no-report").exit_code == 0
    ckpt = torch.load(run / "checkpoint.pt", weights_only=True)
    ckpt["model"] = {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v
                     for k, v in ckpt["model"].items()}
    torch.save(ckpt, run / "checkpoint.pt")
    result = _cli("evaluate", run, "--workers", 0, "--device", "cpu", "--no-progress")
    assert result.exit_code == 0, result.output
    metrics = json.loads((run / "report.json").read_text())["metrics"]
    assert metrics["non_finite_windows"] == COUNTS["test"]
    assert "training diverged" in (run / "report.md").read_text()
    assert np.isnan(val_macro_auroc(np.array([[1, 0], [0, 1]]), np.array([[np.nan, 0.0], [0.0, 1.0]])))
